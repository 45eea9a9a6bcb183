"""Measure clips and compare sets: the library calls behind `fakebench measure` and `fakebench compare`.

Each clip is decoded once and analysed once (the face track comes from the on-disk cache when it
exists); every metric reads that one clip and track.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fakebench.errors import ConfigError, FakebenchError, InputFileError
from fakebench.faces import FaceTrack, analyze, subset_track
from fakebench.media import Clip, probe, read_clip, read_image

CLIP_METRICS = ("sync", "blink", "identity", "quality")
SET_METRICS = ("fid", "kid", "fd_dlib", "identity")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def parse_metrics(text: str, allowed: Sequence[str]) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in allowed]
    if unknown or not names:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(allowed)}")
    return names


class Reference:
    """What a clip is compared with: a photo (identity) or a clip (identity, PSNR/SSIM/LMD)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        info = probe(self.path)
        self.is_photo = info.is_image or not info.has_video
        if self.is_photo:
            self.photo = read_image(self.path)
            self.clip, self.track = None, None
        else:
            self.photo = None
            self.clip, self.track = read_clip(self.path), analyze(self.path)

    def for_identity(self) -> Any:
        return self.photo if self.is_photo else (self.clip, self.track)


def _clip_metric_functions(reference: Reference | None, syncnet_weights: str | os.PathLike | None,
                           facenet_weights: str | os.PathLike | None) -> dict[str, Callable[[Clip, FaceTrack], dict]]:
    from fakebench.metrics.blink import blink_metrics
    from fakebench.metrics.identity import identity_metrics
    from fakebench.metrics.quality import quality_metrics
    from fakebench.metrics.sync import sync_metrics

    def identity(clip: Clip, track: FaceTrack) -> dict:
        if reference is None:
            raise ConfigError("identity needs --reference PHOTO|CLIP (the source photo or the source clip)")
        return identity_metrics(clip, track, reference.for_identity(), facenet_weights=facenet_weights)

    def quality(clip: Clip, track: FaceTrack) -> dict:
        if reference is not None and not reference.is_photo:
            return quality_metrics(clip, track, reference=reference.clip, reference_track=reference.track)
        return quality_metrics(clip, track)

    def sync(clip: Clip, track: FaceTrack) -> dict:
        return sync_metrics(clip, track, syncnet_weights=syncnet_weights)

    return {"sync": sync, "blink": blink_metrics, "identity": identity, "quality": quality}


def measure_clips(paths: Sequence[str | os.PathLike], metrics: Sequence[str] = ("sync", "blink", "quality"), *,
                  reference: str | os.PathLike | None = None,
                  syncnet_weights: str | os.PathLike | None = None,
                  facenet_weights: str | os.PathLike | None = None) -> Iterator[dict]:
    """One flat row per clip: its metrics, the analysis it used, and `<metric>_error` for a metric that failed.

    A metric that cannot run on a clip (no audio for sync, no face…) records its one-line error in the row
    and the other metrics still run; a clip that cannot be read at all gets a row with `error`.
    """
    ref = Reference(reference) if reference is not None else None
    functions = _clip_metric_functions(ref, syncnet_weights, facenet_weights)
    for path in paths:
        row: dict[str, Any] = {"clip": str(path)}
        try:
            track = analyze(path)
            clip = read_clip(path)
        except FakebenchError as e:
            yield row | {"error": e.one_line()}
            continue
        row |= {"frames": clip.n_frames, "fps": clip.fps, "face_frames": track.face_frames,
                "analysis_version": track.meta.get("analysis_version"),
                "analysis_models": "MTCNN (facenet-pytorch) + dlib shape_predictor_68"}
        if ref is not None:
            row["reference"] = str(ref.path)
        for name in metrics:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    row |= functions[name](clip, track)
                for w in caught:
                    row.setdefault("warnings", []).append(f"{name}: {w.message}")
            except FakebenchError as e:
                row[f"{name}_error"] = e.one_line()
        yield row


def _media_files(folder: Path) -> tuple[list[Path], list[Path]]:
    if not folder.exists():
        raise InputFileError(f"{folder}: no such folder; give a folder of clips or images")
    if not folder.is_dir():
        raise InputFileError(f"{folder} is not a folder; give a folder of clips (mp4…) or images (png, jpg)")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not videos and not images:
        raise InputFileError(f"{folder} holds no clips ({', '.join(VIDEO_EXTENSIONS)}) or images "
                             f"({', '.join(IMAGE_EXTENSIONS)})")
    return videos, images


def _sampled_clips(videos: Sequence[Path], frames_per_clip: int) -> list[tuple[Clip, FaceTrack]]:
    """Each clip reduced to its sampled face frames, so a large set never sits in memory whole."""
    from fakebench.metrics.identity import face_frame_indices

    out = []
    for path in videos:
        track = analyze(path)
        idx = face_frame_indices(track, frames_per_clip)
        if len(idx) == 0:
            warnings.warn(f"{path}: no face in any frame; left out of the comparison", stacklevel=2)
            continue
        clip = read_clip(path)
        idx = idx[idx < clip.n_frames]
        out.append((Clip(frames=clip.frames[idx], fps=clip.fps), subset_track(track, idx)))
    return out


def compare_sets(real: str | os.PathLike, fake: str | os.PathLike, metrics: Sequence[str] = ("fid", "kid", "fd_dlib"),
                 *, frames_per_clip: int = 8, crop: str = "face", inception_weights: str | None = None,
                 seed: int = 0) -> dict:
    """Set-level metrics between a folder of real and a folder of fake clips (or images)."""
    from fakebench.metrics.fid import set_metrics
    from fakebench.metrics.identity import identity_set_metrics

    sides = []
    for folder in (Path(real), Path(fake)):
        videos, images = _media_files(folder)
        if videos and images:
            warnings.warn(f"{folder} holds clips and images; comparing the clips only", stacklevel=2)
        sides.append(_sampled_clips(videos, frames_per_clip) if videos else [read_image(p) for p in images])
    out: dict[str, Any] = {"real": str(real), "fake": str(fake)}
    distribution = [m for m in metrics if m != "identity"]
    if distribution:
        out |= set_metrics(_as_set(sides[0]), _as_set(sides[1]), metrics=distribution,
                           frames_per_clip=frames_per_clip, crop=crop, inception_weights=inception_weights, seed=seed)
    if "identity" in metrics:
        if not (isinstance(sides[0][0], tuple) and isinstance(sides[1][0], tuple)):
            raise ConfigError("set identity compares clips with clips: give folders of clips for --metrics identity")
        out |= identity_set_metrics(sides[0], sides[1])
    return out


def _as_set(items: list) -> Any:
    """(Clip, FaceTrack) pairs as they are; images stacked when they share one size."""
    if isinstance(items[0], tuple) or len({im.shape for im in items}) > 1:
        return items
    return np.stack(items)
