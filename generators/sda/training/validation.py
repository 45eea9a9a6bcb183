"""Validation on held-out clips: reconstruction PSNR/SSIM of the generated face crops against the real aligned
crops (the IJCV paper's protocol), the lip-sync offset of the generated clip, and a PNG grid of samples.

Each held-out clip is generated from its first face frame (the still) and its own audio, with fixed noise
(seed 0), by the training networks in eval mode; frames become uint8 exactly as inference makes them.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from fakebench.errors import FakebenchError

from ..noise_generator import draw_noise
from .data import PreparedClip, PreparedData, to_model_range
from .trainer import Trainer, generate_sequences

GRID_FRAMES = 6


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(..., 3, h, w) in [-1, 1] -> (..., h, w, 3) uint8 as the SDA generator outputs (125 y + 125, truncated)."""
    pixels = frames.mul(125.0).add(125.0).clamp(0, 255).trunc().to(torch.uint8)
    return pixels.movedim(-3, -1).cpu().numpy()


@torch.no_grad()
def generate_clip(trainer: Trainer, clip: PreparedClip, n_frames: int) -> np.ndarray:
    """The networks' frames (n, h, w, 3) uint8 for the first ``n_frames`` of ``clip``, from its first face frame."""
    window = trainer.model_config.audio_feat_samples
    n = min(n_frames, clip.n_frames)
    still = to_model_range(clip.frames[int(clip.still_frames()[0])][None]).to(trainer.device)
    windows = torch.from_numpy(clip.windows(0, n, window))[None].to(trainer.device)
    noise = draw_noise(n, trainer.model_config.aux_latent, seed=0)[None].to(trainer.device)
    modules = trainer.nets.modules().values()
    for m in modules:
        m.eval()
    try:
        emotion = None
        if trainer.model_config.emotions:
            emotion = trainer.nets.generator.emotion_code(clip.emotion, clip.intensity).to(trainer.device)
        return to_uint8(generate_sequences(trainer.nets, still, windows, noise, emotion)[0])
    finally:
        for m in modules:
            m.train()


def validate(trainer: Trainer, data: PreparedData, *, sync: bool = True) -> tuple[dict[str, float], list]:
    """Mean PSNR/SSIM over the held-out clips' face frames and the mean absolute sync offset (frames);
    also returns (real, fake) frame pairs for the sample grid. Without held-out clips: NaN metrics, and the
    grid shows the first training clip."""
    from fakebench.metrics.quality import psnr, ssim

    psnrs, ssims, offsets, pairs = [], [], [], []
    for index in data.val:
        clip = data.clips[index]
        fake = generate_clip(trainer, clip, trainer.config.data.val_frames)
        real = np.asarray(clip.frames[:len(fake)])
        ok = clip.valid[:len(fake)]
        psnrs.append(psnr(real[ok], fake[ok]))
        ssims.append(ssim(real[ok], fake[ok]))
        if sync:
            offsets.append(sync_offset(fake, clip, trainer.model_config.video_rate))
        pairs.append((real, fake))
    if not pairs:
        clip = data.clips[data.train[0]]
        fake = generate_clip(trainer, clip, trainer.config.data.val_frames)
        pairs.append((np.asarray(clip.frames[:len(fake)]), fake))
    finite = [abs(o) for o in offsets if not math.isnan(o)]
    return {
        "val_psnr": float(np.mean(psnrs)) if psnrs else math.nan,
        "val_ssim": float(np.mean(ssims)) if ssims else math.nan,
        "val_sync_offset_abs": float(np.mean(finite)) if finite else math.nan,
        "val_sync_measured": float(len(finite)),
    }, pairs


def sync_offset(frames: np.ndarray, clip: PreparedClip, fps: int) -> float:
    """The lip-sync offset in frames of generated crops with the clip's audio (fakebench's sync metric); NaN
    when it cannot be measured (no face found in the crops, a still mouth)."""
    from fakebench.faces import analyze
    from fakebench.media import Clip
    from fakebench.metrics.sync import sync_metrics

    n_samples = int(round(len(frames) / fps * clip.audio_rate))
    media = Clip(frames=np.ascontiguousarray(frames), fps=float(fps),
                 audio=np.ascontiguousarray(clip.audio[:n_samples], np.float32), sample_rate=clip.audio_rate)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            track = analyze(media, use_cache=False)
            result = sync_metrics(media, track, method="envelope")
    except FakebenchError:
        return math.nan
    offset = result.get("sync_offset_frames")
    return math.nan if offset is None else float(offset)


def write_grid(pairs: list[tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Rows of real (top) and generated (bottom) frames, ``GRID_FRAMES`` evenly spaced ones per clip."""
    from fakebench.media import write_image

    rows = []
    for real, fake in pairs:
        idx = np.linspace(0, len(fake) - 1, GRID_FRAMES).round().astype(int)
        rows += [np.concatenate(list(real[idx]), axis=1), np.concatenate(list(fake[idx]), axis=1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, np.concatenate(rows, axis=0))
