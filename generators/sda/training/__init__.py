"""Training the SDA generator with the three discriminators of the IJCV paper (spec §7).

Modules: ``config`` (the run's configuration, YAML files in ``configs/``), ``data`` (aligned face crops and
audio windows prepared once from a folder of clips, and the seeded batch sampler), ``discriminators``
(frame, sequence and sync), ``trainer`` (one optimisation step, checkpoints and exact resume),
``validation`` (PSNR/SSIM/sync on held-out clips, sample grids) and ``run`` (the whole loop the CLI drives).
"""
