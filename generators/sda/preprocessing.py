"""Preprocessing as the original does it (spec §3): the photo aligned to the checkpoint's mean face, and the
audio cut into one window per video frame.

One deliberate deviation: window i starts at round(i * audio_rate / video_rate) instead of i * hop with
hop = int(audio_rate / video_rate). The two are identical whenever the rate divides by the frame rate
(50 kHz / 25 fps, 48 kHz / 30 fps, 16 kHz / 25 fps); at 16 kHz / 30 fps the original's truncated hop
(533 instead of 533.33 samples) lets the video drift ahead of the audio by 1 frame every 50 s, which
exact timing avoids. The padding split (left = floor(P/2), right = P - left, P = W - hop) is the original's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fakebench.errors import AudioError
from fakebench.faces import invert_transform, photo_face, similarity_transform
from fakebench.media import check_speech_audio, ensure_rgb, resample_audio, to_mono

from .config import STABLE_POINTS, SDAConfig

# ---------------------------------------------------------------------------------------------- photo


@dataclass(frozen=True, eq=False)
class AlignedFace:
    crop: np.ndarray  # (h, w, 3) uint8: the network's input
    crop_to_photo: np.ndarray  # (2, 3): crop pixel (x, y) -> photo pixel (x, y)
    landmarks: np.ndarray | None  # (68, 2) in the photo; None when the photo came aligned
    n_faces: int


def align_photo(image: np.ndarray, config: SDAConfig, *, aligned: bool = False) -> AlignedFace:
    """The face crop the networks see, and where it sits in the photo.

    Not ``aligned``: landmarks of the largest face (NoFaceError without one), the least-squares
    similarity taking points 33, 36, 39, 42, 45 to the mean face's, a bilinear warp into ``img_size`` with
    black outside the photo, x255 truncated to uint8 (as scikit-image and the original do).
    ``aligned``: the photo already is the crop; it is resized to ``img_size`` (bilinear), nothing detected.
    """
    from skimage.transform import AffineTransform, warp

    rgb = ensure_rgb(image)
    h, w = config.img_size
    if aligned:
        from PIL import Image

        crop = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR)) if rgb.shape[:2] != (h, w) else rgb
        sy, sx = rgb.shape[0] / h, rgb.shape[1] / w
        to_photo = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
        return AlignedFace(crop=np.ascontiguousarray(crop), crop_to_photo=to_photo, landmarks=None, n_faces=1)
    face = photo_face(rgb)  # warns when there are several faces
    points = list(STABLE_POINTS)
    to_crop = similarity_transform(face.landmarks[points], config.mean_face[points])
    to_photo = invert_transform(to_crop)
    warped = warp(rgb, AffineTransform(matrix=np.vstack([to_photo, [0.0, 0.0, 1.0]])), output_shape=(h, w),
                  order=1, mode="constant", cval=0.0)
    crop = (warped * 255).astype(np.uint8)
    return AlignedFace(crop=crop, crop_to_photo=to_photo, landmarks=face.landmarks, n_faces=face.n_faces)


def crop_to_tensor(crop: np.ndarray) -> torch.Tensor:
    """(h, w, 3) uint8 -> (1, 3, h, w) float32 in [-1, 1]: /255, then normalised with mean 0.5, std 0.5."""
    x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float().div_(255.0)
    return x.sub_(0.5).div_(0.5).unsqueeze(0)


# ---------------------------------------------------------------------------------------------- audio


@dataclass(frozen=True, eq=False)
class WindowPlan:
    """Where each video frame's audio window lies in the padded signal."""

    audio_rate: int
    video_rate: int
    window: int  # W: samples per window
    hop: int  # the original's truncated hop, which sets the padding
    pad_left: int
    pad_right: int
    starts: np.ndarray  # (T,) int64: first sample of window i in the padded signal
    n_samples: int  # length of the unpadded signal

    @property
    def n_frames(self) -> int:
        return int(self.starts.size)

    def centres_s(self) -> np.ndarray:
        """Time of each window's centre in the unpadded signal, in seconds."""
        return (self.starts - self.pad_left + self.window / 2) / self.audio_rate

    def pad(self, signal: np.ndarray) -> np.ndarray:
        return np.pad(np.asarray(signal, np.float32), (self.pad_left, self.pad_right))

    def windows(self, padded: np.ndarray | torch.Tensor) -> torch.Tensor:
        """All windows (T, W) at once (the reference pass; the engine cuts them chunk by chunk)."""
        padded = torch.as_tensor(padded)
        return padded[torch.from_numpy(self.starts)[:, None] + torch.arange(self.window)]

    def to_json(self) -> dict[str, Any]:
        return {"audio_rate": self.audio_rate, "video_rate": self.video_rate, "window_samples": self.window,
                "window_s": self.window / self.audio_rate, "original_hop_samples": self.hop,
                "hop_samples": self.audio_rate / self.video_rate, "pad_left": self.pad_left,
                "pad_right": self.pad_right, "window_starts": "round(i * audio_rate / video_rate)",
                "n_frames": self.n_frames}


def plan_windows(n_samples: int, audio_rate: int, video_rate: int, window: int) -> WindowPlan:
    """One window of ``window`` samples per frame for ``n_samples`` of audio at ``audio_rate``.

    T = round(n_samples * video_rate / audio_rate), less any last frames whose window would run past
    the padded signal (at most one, when the duration is not a whole number of frames).
    """
    hop = int(audio_rate / video_rate)
    pad = max(window - hop, 0)
    left = pad // 2
    wanted = (2 * n_samples * video_rate + audio_rate) // (2 * audio_rate)  # round half up, exactly
    i = np.arange(wanted, dtype=np.int64)
    starts = (2 * i * audio_rate + video_rate) // (2 * video_rate)  # round(i * rate / fps), exactly
    starts = starts[starts + window <= n_samples + pad]
    if starts.size == 0:
        raise AudioError(f"audio of {n_samples / audio_rate * 1000:.0f} ms is shorter than one video frame "
                         f"({1000 / video_rate:.0f} ms at {video_rate} fps); give a longer recording")
    return WindowPlan(audio_rate=audio_rate, video_rate=video_rate, window=window, hop=hop, pad_left=left,
                      pad_right=pad - left, starts=starts, n_samples=int(n_samples))


@dataclass(frozen=True, eq=False)
class PreparedAudio:
    driving: np.ndarray  # (N,) float32 mono at the caller's rate: what the output clip carries
    sample_rate: int
    resampled: np.ndarray  # (N',) float32 at the model's audio rate
    plan: WindowPlan


def prepare_audio(audio: np.ndarray, sample_rate: int, config: SDAConfig) -> PreparedAudio:
    """Mono float audio (integer PCM is scaled by its dtype's maximum, as the original does), checked for
    length and silence, resampled to the model's rate (soxr), with its window plan."""
    a = np.asarray(audio)
    if a.size == 0:
        raise AudioError("the audio is empty; give a recording of speech")
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float64) / np.iinfo(a.dtype).max
    mono = to_mono(a) if a.ndim == 2 else np.asarray(a, np.float32).reshape(-1)
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if not np.isfinite(mono).all():
        raise AudioError("the audio contains NaN or infinite samples; decode it again")
    sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {sample_rate}")
    check_speech_audio(mono, sample_rate, fps=config.video_rate)
    resampled = resample_audio(mono, sample_rate, config.audio_rate)
    plan = plan_windows(resampled.size, config.audio_rate, config.video_rate, config.audio_feat_samples)
    return PreparedAudio(driving=mono, sample_rate=sample_rate, resampled=resampled, plan=plan)
