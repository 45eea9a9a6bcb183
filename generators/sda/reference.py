"""A straightforward port of the original forward pass: the baseline that the fast engine must equal.

One batched pass over the whole clip, as the original runs it: every audio window through the CNN
and GRU, the identity code and every skip feature map repeated T times, a concatenation before
every U-Net block, and the ConvTranspose2d layers as they are. Memory grows with T (the per-frame
skip copies alone take 1.5 MB a frame at 128x96), so this is for tests and benchmarks only.
"""

from __future__ import annotations

import torch

from .generator import Networks


@torch.no_grad()
def reference_forward(nets: Networks, image: torch.Tensor, windows: torch.Tensor,
                      noise: torch.Tensor, emotion: str = "neutral", intensity: float = 0.0) -> torch.Tensor:
    """Image (1, 3, h, w) in [-1, 1], windows (T, W), noise (T, aux) -> frames (T, 3, h, w) in [-1, 1]."""
    n_frames = windows.shape[0]
    z_c = nets.encoder(windows)  # (1, T, rnn_gen_dim)
    z_id, skips = nets.encoder_id(image)
    z_id = z_id.unsqueeze(1).repeat(1, n_frames, 1)  # (1, T, id_enc_dim)
    skips = [s.repeat(n_frames, 1, 1, 1) for s in skips]  # per-frame copies, as the original makes
    code = nets.generator.emotion_code(emotion, intensity)
    return nets.generator(z_c, noise.unsqueeze(0), z_id, skips, still=image, emotion=code)


def skip_copy_bytes_per_frame(nets: Networks, img_size: tuple[int, int]) -> int:
    """Bytes of the repeated skip tensors per frame in the reference pass (float32), all skips e0..e_{n-1}."""
    with torch.no_grad():
        _, skips = nets.encoder_id(torch.zeros(1, 3, *img_size))
    return sum(s.numel() * 4 for s in skips)
