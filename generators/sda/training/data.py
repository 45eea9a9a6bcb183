"""Training data: aligned face crops at the model size and one audio window per frame, prepared once per clip
and cached on disk; a seeded sampler of training sequences whose state is part of a checkpoint.

Preparation follows inference exactly: the audio is resampled to the model's rate and cut with
`plan_windows` (one 0.2 s window centred on each frame), and the frames are aligned to the model's mean
face on the five stable points (`fakebench.faces.align_faces`) from the clip's cached `FaceTrack`. A clip
whose frame rate differs from the model's is sampled at the model's frame times (nearest frame).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fakebench.errors import FakebenchError, InputFileError, NoFaceError
from fakebench.io import atomic_folder

from ..config import SDAConfig
from ..preprocessing import plan_windows
from .config import DataConfig

PREP_VERSION = 2  # 2: the clip's emotion and its neutral frames (from a ground-truth sidecar)
NEUTRAL_BELOW = 0.05  # a frame whose every action-unit activation is below this counts as neutral
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg")


@dataclass(eq=False)
class PreparedClip:
    name: str  # path relative to the data folder
    frames: np.ndarray  # (T, h, w, 3) uint8 aligned crops (memory-mapped from the cache)
    audio: np.ndarray  # (N,) float32 at ``audio_rate``, the model's
    audio_rate: int
    signal: np.ndarray  # (N',) float32: ``audio`` padded as `plan_windows` says
    starts: np.ndarray  # (T,) int64: first sample of frame i's window in ``signal``
    valid: np.ndarray  # (T,) bool: a face was tracked in this frame
    emotion: str = "neutral"  # what the clip's ground-truth sidecar says it shows (neutral without one)
    intensity: float = 0.0
    neutral: np.ndarray | None = None  # (T,) bool: frames without expression, the stills of an emotional clip

    @property
    def n_frames(self) -> int:
        return len(self.starts)

    def still_frames(self) -> np.ndarray:
        """Indices of frames that may be the identity frame: a face, and no expression in an emotional clip
        (the still is the neutral photo the emotion code must turn into the expression)."""
        ok = self.valid if self.emotion == "neutral" or self.neutral is None else self.valid & self.neutral
        return np.flatnonzero(ok if ok.any() else self.valid)

    def windows(self, first: int, count: int, window: int) -> np.ndarray:
        return self.signal[self.starts[first:first + count, None] + np.arange(window)]


@dataclass(eq=False)
class PreparedData:
    clips: list[PreparedClip]  # usable clips, in sorted order of their names
    skipped: dict[str, str]  # clip name -> why it was skipped
    train: list[int]  # indices into ``clips``
    val: list[int]

    def summary(self) -> dict[str, Any]:
        return {"clips_found": len(self.clips) + len(self.skipped), "clips_used": len(self.clips),
                "clips_skipped": len(self.skipped), "train_clips": [self.clips[i].name for i in self.train],
                "val_clips": [self.clips[i].name for i in self.val], "skipped": self.skipped,
                "train_frames": int(sum(self.clips[i].n_frames for i in self.train))}


def find_clips(data_dir: Path) -> list[Path]:
    if not data_dir.is_dir():
        raise InputFileError(f"training data {data_dir} is not a folder; give a folder of talking-face video clips")
    clips = sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(data_dir).parts))
    if not clips:
        raise InputFileError(f"no video clips in {data_dir} (looked for {', '.join(VIDEO_SUFFIXES)}); put "
                             "talking-face videos with audio there")
    return clips


def prepare_data(data_dir: str | os.PathLike[str], cache_dir: str | os.PathLike[str], model: SDAConfig,
                 data: DataConfig, *, progress: Callable[[int, int, str], None] | None = None) -> PreparedData:
    """Prepare (or load from ``cache_dir``) every clip in ``data_dir``; clips without a usable face, or
    unreadable, silent or too short, are skipped and counted. Raises NoFaceError when no clip is usable."""
    from fakebench.media import file_sha256

    data_dir, cache_dir = Path(data_dir), Path(cache_dir)
    paths = find_clips(data_dir)
    need = max(data.sequence_frames, 2 * data.min_offsync_frames + 1)
    clips: list[PreparedClip] = []
    skipped: dict[str, str] = {}
    for i, path in enumerate(paths):
        name = path.relative_to(data_dir).as_posix()
        if progress is not None:
            progress(i, len(paths), name)
        entry = cache_dir / _cache_key(file_sha256(path), model)
        try:
            if not (entry / "meta.json").is_file():
                _prepare_clip(path, entry, model)
            clip = _load_clip(entry, name, model)
        except FakebenchError as e:
            skipped[name] = e.one_line()
            continue
        if _longest_run(clip.valid) < need:
            skipped[name] = (f"no usable face: {_longest_run(clip.valid)} consecutive frames with a face, "
                             f"{need} needed")
            continue
        clips.append(clip)
    if progress is not None:
        progress(len(paths), len(paths), "")
    if not clips:
        reasons = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:3])
        raise NoFaceError(f"none of the {len(paths)} clip(s) in {data_dir} is usable for training ({reasons}); "
                          "training needs clips with a clearly visible frontal face and speech")
    n_val = min(data.val_clips, len(clips) - 1)
    train = list(range(len(clips) - n_val))
    return PreparedData(clips=clips, skipped=skipped, train=train, val=list(range(len(train), len(clips))))


def _cache_key(content_sha: str, model: SDAConfig) -> str:
    what = {"content": content_sha, "version": PREP_VERSION, "img_size": model.img_size,
            "audio_rate": model.audio_rate, "video_rate": model.video_rate, "window": model.audio_feat_samples,
            "mean_face": np.round(model.mean_face, 6).tolist()}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def _prepare_clip(path: Path, entry: Path, model: SDAConfig) -> None:
    from fakebench.faces import align_faces, analyze
    from fakebench.media import read_clip, resample_audio, rms_dbfs

    clip = read_clip(path)
    if not clip.has_audio or clip.audio.size == 0 or rms_dbfs(clip.audio) < -60:
        raise InputFileError(f"{path.name} has no audible audio track")
    audio = resample_audio(clip.audio, clip.sample_rate, model.audio_rate)
    plan = plan_windows(audio.size, model.audio_rate, model.video_rate, model.audio_feat_samples)
    source = np.round(np.arange(plan.n_frames) * clip.fps / model.video_rate).astype(np.int64)
    keep = source < clip.n_frames
    source = source[keep]
    if source.size == 0:
        raise InputFileError(f"{path.name} has no frames")
    emotion, intensity, activations = _expression_labels(path.with_suffix(".json"))
    track = analyze(clip)
    landmarks = track.landmarks[source]
    valid = track.valid[source] & np.isfinite(landmarks).all(axis=(1, 2))
    frames = np.empty((len(source), *model.img_size, 3), np.uint8)
    for begin in range(0, len(source), 64):
        idx = source[begin:begin + 64]
        frames[begin:begin + len(idx)] = align_faces(clip.frames[idx], landmarks[begin:begin + len(idx)],
                                                     model.img_size, template=model.mean_face)
    neutral = np.ones(len(source), bool)
    if activations is not None and activations.size:
        at = np.minimum(source, activations.shape[1] - 1)
        neutral = (activations[:, at] < NEUTRAL_BELOW).all(axis=0)
    with atomic_folder(entry) as tmp:
        np.save(tmp / "frames.npy", frames)
        np.save(tmp / "audio.npy", audio)
        np.save(tmp / "valid.npy", valid)
        np.save(tmp / "neutral.npy", neutral)
        (tmp / "meta.json").write_text(json.dumps({"source": str(path), "fps": clip.fps,
                                                   "n_frames": int(len(source)), "face_frames": int(valid.sum()),
                                                   "emotion": emotion, "intensity": intensity}))


def _expression_labels(sidecar: Path) -> tuple[str, float, np.ndarray | None]:
    """The emotion, intensity and per-frame AU activations (n_au, T) a generator's ground truth records next to
    the clip (CLIP.json, as `fakebench generate` and corpus builds write it); neutral without one."""
    if not sidecar.is_file():
        return "neutral", 0.0, None
    try:
        truth = json.loads(sidecar.read_text())
        emotion = str(truth.get("emotion") or "neutral")
        intensity = float(truth.get("intensity") or 0.0) if emotion != "neutral" else 0.0
        rows = [np.asarray(v, np.float64) for v in (truth.get("au_activations") or {}).values()]
    except (ValueError, TypeError, AttributeError) as e:
        raise InputFileError(f"{sidecar.name} is not a readable ground-truth JSON ({e}); fix or remove it") from None
    return emotion, intensity, np.stack(rows) if rows else None


def _load_clip(entry: Path, name: str, model: SDAConfig) -> PreparedClip:
    frames = np.load(entry / "frames.npy", mmap_mode="r")
    audio = np.load(entry / "audio.npy")
    meta = json.loads((entry / "meta.json").read_text())
    plan = plan_windows(audio.size, model.audio_rate, model.video_rate, model.audio_feat_samples)
    emotion = str(meta.get("emotion", "neutral"))
    if emotion != "neutral" and emotion not in model.emotions:
        if model.emotions:
            raise InputFileError(f"{name} shows {emotion}, which the model is not conditioned on (model.emotions: "
                                 f"{', '.join(model.emotions)}); add it to the config or leave the clip out")
        emotion = "neutral"  # a model without emotion conditioning learns the expression as part of the face
    return PreparedClip(name=name, frames=frames, audio=audio, audio_rate=model.audio_rate, signal=plan.pad(audio),
                        starts=plan.starts[:len(frames)], valid=np.load(entry / "valid.npy"), emotion=emotion,
                        intensity=float(meta.get("intensity", 0.0)) if emotion != "neutral" else 0.0,
                        neutral=np.load(entry / "neutral.npy"))


def _longest_run(flags: np.ndarray) -> int:
    best = run = 0
    for f in flags:
        run = run + 1 if f else 0
        best = max(best, run)
    return best


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """(..., h, w, 3) uint8 -> (..., 3, h, w) float32 in [-1, 1], as `preprocessing.crop_to_tensor` scales."""
    x = torch.from_numpy(np.array(frames, dtype=np.float32)).div_(127.5).sub_(1.0)
    return x.movedim(-1, -3)


@dataclass(eq=False)
class Batch:
    still: torch.Tensor  # (B, 3, h, w): the identity frame
    frames: torch.Tensor  # (B, L, 3, h, w): the real sequence
    windows: torch.Tensor  # (B, L, W): its audio windows
    sync_start: torch.Tensor  # (B,) int64: first frame of the sync discriminator's window within the sequence
    off_window: torch.Tensor  # (B, W): audio far from the sync window, for off-sync pairs
    emotion: torch.Tensor | None = None  # (B,) int64: index into the model's emotions, -1 for neutral
    intensity: torch.Tensor | None = None  # (B,) float32


class SequenceSampler:
    """Random training sequences (clip ∝ its number of all-face sequences, then a start), from one seeded
    NumPy generator: its state is the data position a checkpoint saves."""

    def __init__(self, data: PreparedData, config: DataConfig, window: int, seed: int,
                 emotions: tuple[str, ...] = ()) -> None:
        self.clips = [data.clips[i] for i in data.train]
        self.emotions = emotions
        self.config = config
        self.window = window
        self.rng = np.random.default_rng(seed)
        length = config.sequence_frames
        self.first_frames: list[np.ndarray] = []
        for clip in self.clips:
            ok = np.convolve(clip.valid.astype(np.int64), np.ones(length, np.int64), "valid") == length
            self.first_frames.append(np.flatnonzero(ok))
        counts = np.array([len(s) for s in self.first_frames], np.float64)
        self.weights = counts / counts.sum()

    def state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def sample(self) -> Batch:
        cfg, rng = self.config, self.rng
        length, k = cfg.sequence_frames, cfg.sync_frames
        stills, seqs, windows, sync_starts, offs, emotions, intensities = [], [], [], [], [], [], []
        for _ in range(cfg.batch_size):
            c = int(rng.choice(len(self.clips), p=self.weights))
            clip = self.clips[c]
            start = int(rng.choice(self.first_frames[c]))
            stills.append(clip.frames[int(rng.choice(clip.still_frames()))])
            emotions.append(-1 if clip.emotion == "neutral" else self.emotions.index(clip.emotion))
            intensities.append(clip.intensity)
            seqs.append(clip.frames[start:start + length])
            windows.append(clip.windows(start, length, self.window))
            sync_start = int(rng.integers(0, length - k + 1))
            centre = start + sync_start + k // 2
            far = np.flatnonzero(np.abs(np.arange(clip.n_frames) - centre) >= cfg.min_offsync_frames)
            offs.append(clip.windows(int(rng.choice(far)), 1, self.window)[0])
            sync_starts.append(sync_start)
        return Batch(still=to_model_range(np.stack(stills)), frames=to_model_range(np.stack(seqs)),
                     windows=torch.from_numpy(np.stack(windows)), sync_start=torch.tensor(sync_starts),
                     off_window=torch.from_numpy(np.stack(offs)), emotion=torch.tensor(emotions),
                     intensity=torch.tensor(intensities, dtype=torch.float32))
