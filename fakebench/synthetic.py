"""Clips with known ground truth, made from a real photo: the photo moved, scaled and rotated.

Used by the demo, the tests and the benchmarks. Each frame is the photo under a known similarity
transform, so any point of the photo (its landmarks included) has a known position in every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fakebench.media import Clip


@dataclass(frozen=True)
class MovingPhoto:
    clip: Clip
    transforms: np.ndarray  # (T, 2, 3): photo pixel coordinates -> frame pixel coordinates

    def map_points(self, points: np.ndarray) -> np.ndarray:
        """Photo points (N, 2) -> their positions in every frame, (T, N, 2)."""
        return np.einsum("tij,nj->tni", self.transforms[:, :, :2], points) + self.transforms[:, None, :, 2]

    def exact_track(self, photo_landmarks: np.ndarray):
        """The ground-truth FaceTrack: the photo's 68 landmarks carried through every frame."""
        from fakebench.faces import FaceTrack, box_from_landmarks

        lms = self.map_points(photo_landmarks).astype(np.float32)
        t = len(lms)
        return FaceTrack(
            boxes=np.stack([box_from_landmarks(lm.astype(np.float64)) for lm in lms]),
            scores=np.ones(t, np.float32), landmarks=lms, valid=np.ones(t, bool), n_faces=np.ones(t, np.int16),
            detected=np.zeros(t, bool), shape_errors=np.zeros(t, np.float32), fps=self.clip.fps,
            width=self.clip.width, height=self.clip.height, meta={"source": "exact track of a moving photo"})


def head_motion(n_frames: int, fps: float, *, seed: int = 0, shift_px: float = 12.0, scale: float = 0.08,
                rotation_deg: float = 8.0) -> np.ndarray:
    """Smooth random motion: (T, 4) of dx, dy, relative scale, rotation in degrees (sums of slow sines)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / fps
    amps = np.array([shift_px, shift_px, scale, rotation_deg])
    out = np.zeros((n_frames, 4))
    for k in range(4):
        freqs = rng.uniform(0.15, 0.9, size=3)
        phases = rng.uniform(0, 2 * np.pi, size=3)
        wave = sum(np.sin(2 * np.pi * f * t + p) for f, p in zip(freqs, phases, strict=True)) / 3
        out[:, k] = amps[k] * wave
    return out


def moving_photo(photo: np.ndarray, *, n_frames: int, size: tuple[int, int] = (256, 256), fps: float = 25.0,
                 centre: tuple[float, float] | None = None, zoom: float = 1.0, motion: np.ndarray | None = None,
                 audio: np.ndarray | None = None, sample_rate: int = 16000, seed: int = 0) -> MovingPhoto:
    """Render `n_frames` of `photo` moving by `motion` ((T, 4) dx, dy, scale, degrees; default smooth
    random motion) about `centre` (photo coordinates, default the photo centre) into (h, w) frames.
    `zoom` scales the photo before the motion (0.5 = half size)."""
    import torch
    import torch.nn.functional as F

    from fakebench.faces import _pixel_to_normalised, invert_transform

    h, w = size
    H, W = photo.shape[:2]
    cx, cy = centre if centre is not None else ((W - 1) / 2, (H - 1) / 2)
    motion = head_motion(n_frames, fps, seed=seed) if motion is None else np.asarray(motion, np.float64)
    transforms = np.zeros((n_frames, 2, 3))
    thetas = np.zeros((n_frames, 2, 3))
    for i, (dx, dy, ds, deg) in enumerate(motion):
        s = zoom * (1 + ds)
        a = np.deg2rad(deg)
        rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        offset = np.array([(w - 1) / 2 + dx, (h - 1) / 2 + dy]) - rot @ [cx, cy]
        transforms[i] = np.hstack([rot, offset[:, None]])
        thetas[i] = _pixel_to_normalised(invert_transform(transforms[i]), (h, w), (H, W))
    src = torch.from_numpy(np.array(photo, np.float32)).permute(2, 0, 1)[None]  # a copy: photos are read-only
    frames = np.zeros((n_frames, h, w, 3), np.uint8)
    for start in range(0, n_frames, 32):
        th = torch.from_numpy(thetas[start:start + 32]).float()
        grid = F.affine_grid(th, [len(th), 3, h, w], align_corners=True)
        out = F.grid_sample(src.expand(len(th), -1, -1, -1), grid, mode="bilinear", padding_mode="border",
                            align_corners=True)
        frames[start:start + len(th)] = out.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    if audio is None:
        audio = np.zeros(0, np.float32)
    clip = Clip(frames=frames, fps=fps, audio=np.asarray(audio, np.float32), sample_rate=sample_rate,
                has_audio_track=audio.size > 0)
    return MovingPhoto(clip=clip, transforms=transforms)
