"""The speech-driven animation GAN of Vougioukas, Petridis & Pantic (IJCV 2019): a clean-room reimplementation
that loads the authors' released checkpoints (grid.dat, timit.dat, crema.dat) with strict checks.

Modules, by role: ``audio_encoder``, ``identity_encoder``, ``noise_generator`` and ``frame_decoder`` (the
networks, with the original's state-dict keys), ``generator`` (the generator network and the fast
inference engine), ``winograd`` (the engine's convolutions), ``preprocessing`` (alignment, audio windows),
``compositing`` (paste-back), ``checkpoint`` (I/O), ``reference`` (a plain port of the original forward
pass, the baseline for tests and benchmarks).

Importing this package registers the generator as "sda" without importing torch; the checkpoint I/O
functions are re-exported lazily (``from fakebench.generators.sda import convert``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fakebench.devices import resolve_device
from fakebench.errors import ConfigError, WeightsError
from fakebench.generators.base import (
    MAX_SIDE_OPTION,
    GeneratedClip,
    GeneratedStream,
    GeneratorBase,
    n_output_frames,
    register,
    size_photo,
)
from fakebench.metrics.expression import EMOTIONS
from fakebench.registry import Option, check_seed

if TYPE_CHECKING:
    from .checkpoint import SDACheckpoint



class CheckpointNote(UserWarning):
    """What a self-trained checkpoint was trained on and what to expect of it (said once per process)."""


_NOTED: set[str] = set()

DESCRIPTION = "speech-driven animation GAN (Vougioukas et al. 2019), clean-room reimplementation"
_LAZY = {
    "SDACheckpoint": "checkpoint", "load_original": "checkpoint", "load_fakebench": "checkpoint",
    "save_fakebench": "checkpoint", "convert": "checkpoint", "load_any": "checkpoint",
    "find_checkpoint": "checkpoint", "init_checkpoint": "checkpoint", "SDAConfig": "config",
    "SDAEngine": "generator",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@register("sda")
class SDAGenerator(GeneratorBase):
    """A photo and speech -> the photo's face talking, with the SDA networks.

    ``checkpoint``: an original ``.dat`` file, a fakebench weights folder, an already loaded
    `SDACheckpoint`, or None to search (see `checkpoint.find_checkpoint`). A missing checkpoint raises the
    WeightsError of the search when the generator is built. ``paste_back`` warps the generated 128x96
    face crops back into the full photo; without it (and always with ``aligned``) the frames are the
    network's crops. ``aligned`` means the photo already is a face crop aligned like the training data.
    ``chunk_frames`` bounds memory: long audio is generated in chunks of this many frames.
    """

    name = "sda"
    description = DESCRIPTION
    takes = "photo"
    options = (
        Option("checkpoint", Path, None, help="checkpoint folder (fakebench format) or an original .dat; "
                                              "default: the first found of the known SDA weights"),
        Option("device", str, "auto", help="auto, cpu, cuda or cuda:N"),
        Option("paste_back", bool, True, flag="--no-paste-back",
               help="paste the generated face crop back into the photo (else output the model-size crop)"),
        Option("aligned", bool, False, help="the photo already is a face crop aligned like the training data"),
        Option("chunk_frames", int, 256, min=1, max=100_000, help="frames generated at a time (bounds memory)"),
        MAX_SIDE_OPTION,
        Option("emotion", str, "neutral", choices=EMOTIONS,
               help="the emotion the face shows (a checkpoint trained with emotion codes, such as the default, "
                    "is needed for any but neutral)"),
        Option("intensity", float, 0.6, min=0.0, max=1.0, help="how strongly the emotion shows (0 none, 1 most)"),
    )
    min_audio_s = 0.1
    weights = ("sda_default", "sda_grid", "sda_crema", "sda_timit")
    default_rank = 20

    @classmethod
    def check_available(cls, checkpoint: Any = None, **options: Any) -> str | None:
        """Why no SDA checkpoint can be used (the search's WeightsError, one line), or None."""
        from .checkpoint import SDACheckpoint, find_checkpoint

        if not isinstance(checkpoint, SDACheckpoint):
            try:
                find_checkpoint(checkpoint)
            except WeightsError as e:
                return e.one_line()
        return None

    def __init__(self, checkpoint: str | os.PathLike[str] | SDACheckpoint | None = None, **options: Any) -> None:
        from .checkpoint import SDACheckpoint, find_checkpoint, load_any, training_note
        from .generator import SDAEngine

        o = self.check_options({"checkpoint": checkpoint, **options})
        checkpoint, device, paste_back, aligned, chunk_frames = (
            o["checkpoint"], o["device"], o["paste_back"], o["aligned"], o["chunk_frames"])
        self.device = resolve_device(device)
        if isinstance(checkpoint, SDACheckpoint):
            ckpt, self.checkpoint_path = checkpoint, None
        else:
            self.checkpoint_path = find_checkpoint(checkpoint)
            ckpt = load_any(self.checkpoint_path)
        # Only the engine's (folded) weights are kept, not the checkpoint's tensors.
        self.config = ckpt.config
        self.checkpoint_source, self.checkpoint_sha256 = ckpt.source, ckpt.sha256
        self.checkpoint_note = training_note(ckpt.source, self.checkpoint_path)
        if self.checkpoint_note and self.checkpoint_note not in _NOTED:  # once per process, not per clip
            _NOTED.add(self.checkpoint_note)
            warnings.warn(self.checkpoint_note, CheckpointNote, stacklevel=2)
        self.paste_back = bool(paste_back)
        self.aligned = bool(aligned)
        self.chunk_frames = int(chunk_frames)
        self.max_side = o["max_side"]
        self.emotion, self.intensity = str(o["emotion"]), float(o["intensity"])
        if self.emotion != "neutral" and self.emotion not in self.config.emotions:
            trained = ", ".join(self.config.emotions) or "none"
            raise ConfigError(f"the SDA checkpoint {self.checkpoint_path or ckpt.source} was not trained with "
                              f"emotion {self.emotion} (its emotions: {trained}); use --emotion neutral, the "
                              "default checkpoint, or --generator warp")
        self.engine = SDAEngine(ckpt, self.device)

    def generate(self, image: np.ndarray, audio: np.ndarray, sample_rate: int, *, seed: int = 0) -> GeneratedClip:
        """Photo (H, W, 3) uint8 RGB (grey and RGBA accepted) and speech -> the talking clip, the driving
        audio attached unmodified. NoFaceError without a face, AudioError for silent or too short audio."""
        return self.generate_stream(image, audio, sample_rate, seed=seed).collect()

    def generate_stream(self, image: np.ndarray, audio: np.ndarray, sample_rate: int, *,
                        seed: int = 0) -> GeneratedStream:
        """Like `generate`, but the frames come chunk by chunk (``chunk_frames`` each), so that a long clip
        can be written out with bounded memory. Inputs are checked before this returns."""
        import torch

        from fakebench.media import ensure_rgb

        from .compositing import PasteBack
        from .config import NOISE_STD
        from .noise_generator import draw_noise
        from .preprocessing import align_photo, crop_to_tensor, prepare_audio

        cfg = self.config
        seed = check_seed(seed)
        sound = prepare_audio(audio, sample_rate, cfg)  # first: a bad audio file fails before face detection
        self.check_audio_length(sound.driving.size, sound.sample_rate, "the driving audio")
        photo = ensure_rgb(image)
        paste = self.paste_back and not self.aligned
        if self.aligned:
            face = align_photo(photo, cfg, aligned=True)
        else:  # aligned on a copy of at most 1024 px (or max_side), pasted back into the photo at max_side
            sized = size_photo(photo, self.max_side)
            face = align_photo(sized.analysis, cfg)
            photo = sized.output()
            if photo is not sized.analysis:
                face = replace(face, crop_to_photo=sized.affine_to_output() @ np.vstack([face.crop_to_photo,
                                                                                          [0.0, 0.0, 1.0]]),
                               landmarks=sized.to_output(face.landmarks))
        plan = sound.plan
        composer = PasteBack.build(photo, face.crop_to_photo, cfg.img_size) if paste else None
        truth = {
            "generator": self.name,
            "description": self.description,
            "checkpoint": str(self.checkpoint_path) if self.checkpoint_path else self.checkpoint_source,
            "checkpoint_source": self.checkpoint_source,
            "checkpoint_sha256": self.checkpoint_sha256,
            "checkpoint_note": self.checkpoint_note,
            "seed": int(seed),
            "fps": float(cfg.video_rate),
            "n_frames": plan.n_frames,
            "n_frames_expected": n_output_frames(sound.driving.size, sound.sample_rate, cfg.video_rate),
            "img_size": list(cfg.img_size),
            "audio_rate": cfg.audio_rate,
            "noise_std": NOISE_STD,
            "paste_back": paste,
            "aligned": self.aligned,
            "photo_size": list(photo.shape[:2]),
            "crop_to_photo": np.round(face.crop_to_photo, 6),
            "photo_landmarks": None if face.landmarks is None else np.round(face.landmarks, 3),
            "faces_in_photo": face.n_faces,
            "windows": plan.to_json(),
            "device": self.device,
            "engine": self.engine.algorithm,
            "output": cfg.output,
            "emotion": self.emotion,
            "intensity": self.intensity if self.emotion != "neutral" else 0.0,
        }

        def chunks() -> Iterator[np.ndarray]:
            masked = composer is not None and cfg.output == "masked"
            raw = self.engine.run(crop_to_tensor(face.crop), torch.from_numpy(plan.pad(sound.resampled)),
                                  torch.from_numpy(plan.starts), draw_noise(plan.n_frames, cfg.aux_latent, seed),
                                  chunk_frames=self.chunk_frames, emotion=self.emotion, intensity=self.intensity,
                                  keep_mask=masked)
            for chunk in raw:
                # The original's frames: 125 y + 125 (not 127.5), clipped and truncated to uint8.
                pixels = chunk[..., :3].mul(125.0).add_(125.0).clamp_(0, 255).trunc_()
                if composer is None:
                    yield pixels.to(torch.uint8).cpu().numpy()
                else:
                    out = np.empty((len(pixels), *photo.shape), np.uint8)
                    out[:] = photo
                    composer.apply(pixels, out, drawn=1.0 - chunk[..., 3:] if masked else None)
                    yield out

        height, width = photo.shape[:2] if paste else cfg.img_size
        return GeneratedStream(n_frames=plan.n_frames, fps=float(cfg.video_rate), width=width, height=height,
                               audio=sound.driving, sample_rate=sound.sample_rate, chunks=chunks(), ground_truth=truth)
