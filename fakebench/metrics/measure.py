"""Measure clips and compare sets: the library calls behind `fakebench measure` and `fakebench compare`.

Each clip is a `fakebench.samples.Sample`: decoded once, analysed once (the face track from the on-disk cache
when it exists); every metric reads that one clip and track. The metrics are found by name in
`fakebench.metrics.registry`, where each metric module registers its own.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fakebench.errors import FakebenchError, InputFileError
from fakebench.faces import face_frame_indices, photo_face, subset_track
from fakebench.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Clip, probe, read_image
from fakebench.metrics.registry import MetricContext, Reference, available, get_metric, parse_metrics
from fakebench.samples import Sample
from fakebench.weights import weights_verified

ANALYSIS_MODELS = "MTCNN (facenet-pytorch's weights) + dlib shape_predictor_68"

__all__ = ["compare_sets", "load_reference", "measure_clips", "parse_metrics"]


def load_reference(path: str | os.PathLike) -> Reference:
    """A reference photo (read now) or clip (a Sample: decoded and analysed when a metric first needs it)."""
    info = probe(path)
    if info.is_image or not info.has_video:
        photo = read_image(path)
        photo_face(photo, what=f"the reference photo {path}")  # no face: the user's input is wrong (exit 2)
        return Reference(path=str(path), photo=photo)
    return Reference(path=str(path), sample=Sample.from_path(path))


def _as_samples(items: Iterable[Sample | str | os.PathLike]) -> Iterator[tuple[Sample, bool]]:
    """(Sample, made here) for each item: paths become Samples that this module may release after use."""
    for item in items:
        yield (item, False) if isinstance(item, Sample) else (Sample.from_path(item), True)


def measure_clips(clips: Iterable[Sample | str | os.PathLike], metrics: Sequence[str] = ("sync", "blink", "quality"),
                  *, reference: str | os.PathLike | Reference | None = None,
                  syncnet_weights: str | os.PathLike | None = None,
                  facenet_weights: str | os.PathLike | None = None,
                  weights: Mapping[str, str | os.PathLike | None] | None = None,
                  device: str | None = None, reference_for: Collection[str] | None = None) -> Iterator[dict]:
    """One flat row per clip (a Sample or a path): its metrics, the analysis it used, and `<metric>_error` for a
    metric that failed.

    A metric that cannot run on a clip (silent audio for sync, no face…) records its one-line error in the row
    and the other metrics still run; a clip that cannot be read at all gets a row with `error`. A metric that
    does not apply to a clip records why as `<metric>_skipped` (sync on a visual-only clip, one without any
    audio track: ``sync_skipped: "no audio track"``); a skip is not a failure. ``weights``
    gives weights files by name (`fakebench.weights.KNOWN_WEIGHTS`); ``syncnet_weights`` and ``facenet_weights``
    are the two the command line takes. ``reference_for``: the metrics the reference is given to (default all);
    the others measure as if none were given.
    """
    specs = [get_metric(name, "clip") for name in metrics]
    ref = load_reference(reference) if reference is not None and not isinstance(reference, Reference) \
        else reference
    given = {"syncnet_v2": syncnet_weights, "facenet_vggface2": facenet_weights, **(weights or {})}
    ctx = MetricContext(reference=ref, weights={k: v for k, v in given.items() if v is not None}, device=device)
    no_ref = replace(ctx, reference=None)
    for sample, made_here in _as_samples(clips):
        row: dict[str, Any] = {"clip": sample.name}
        try:
            clip, track = sample.clip, sample.track
        except FakebenchError as e:
            yield row | {"error": e.one_line()}
            continue
        row |= {"frames": clip.n_frames, "fps": clip.fps, "face_frames": track.face_frames,
                "analysis_version": track.meta.get("analysis_version"), "analysis_models": ANALYSIS_MODELS}
        if ref is not None:
            row["reference"] = ref.path
        for spec in specs:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    row |= spec.fn(sample, ctx if reference_for is None or spec.name in reference_for else no_ref)
                for w in caught:
                    row.setdefault("warnings", []).append(f"{spec.name}: {w.message}")
            except FakebenchError as e:
                row[f"{spec.name}_error"] = e.one_line()
        row["weights_verified"] = weights_verified(w for spec in specs for w in spec.weights)
        if made_here:
            sample.release()  # bounded memory over many clips
        yield row


def media_files(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """The clips and the images under a folder (recursively, sorted), by `fakebench.media`'s extensions."""
    folder = Path(folder)
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


def _sampled_clips(samples: Iterable[Sample | str | os.PathLike], frames_per_clip: int) -> list[tuple[Clip, Any]]:
    """Each clip reduced to its sampled face frames, so a large set never sits in memory whole.

    The track comes first (from the cache it needs no decoding), then the clip is decoded once and let go.
    """
    out = []
    for sample, made_here in _as_samples(samples):
        track = sample.track
        idx = face_frame_indices(track, frames_per_clip)
        if len(idx) == 0:
            warnings.warn(f"{sample.name}: no face in any frame; left out of the comparison", stacklevel=2)
            continue
        clip = sample.clip
        idx = idx[idx < clip.n_frames]
        out.append((Clip(frames=clip.frames[idx], fps=clip.fps), subset_track(track, idx)))
        if made_here:
            sample.release()
    return out


def _side(side: str | os.PathLike | Sequence[Sample], frames_per_clip: int) -> list:
    """A folder (its clips, else its images) or Samples -> (Clip, FaceTrack) pairs or images."""
    if not isinstance(side, str | os.PathLike):
        return _sampled_clips(side, frames_per_clip)
    videos, images = media_files(side)
    if videos and images:
        warnings.warn(f"{side} holds clips and images; comparing the clips only", stacklevel=3)
    return _sampled_clips(videos, frames_per_clip) if videos else [read_image(p) for p in images]


def compare_sets(real: str | os.PathLike | Sequence[Sample], fake: str | os.PathLike | Sequence[Sample],
                 metrics: Sequence[str] = ("fid", "kid", "fd_dlib"), *, frames_per_clip: int = 8, crop: str = "face",
                 inception_weights: str | os.PathLike | None = None, seed: int = 0,
                 weights: Mapping[str, str | os.PathLike | None] | None = None, device: str | None = None,
                 _shared: dict | None = None) -> dict:
    """Set-level metrics between real and fake: each a folder of clips (or images) or a list of Samples.

    Metrics registered with one function (FID, KID, fd_dlib) are computed in one call, in the registry's order.
    ``fake`` may also map names to fake sets: then the result maps each name to its comparison with the one real
    set, whose frames and features are computed once.
    """
    if isinstance(fake, Mapping):
        ctx_shared: dict = {}
        return {name: compare_sets(real, side, metrics, frames_per_clip=frames_per_clip, crop=crop,
                                   inception_weights=inception_weights, seed=seed, weights=weights, device=device,
                                   _shared=ctx_shared)
                for name, side in fake.items()}
    wanted = [get_metric(name, "set").name for name in metrics]
    given = {"inception_fid": inception_weights, **(weights or {})}
    ctx = MetricContext(weights={k: v for k, v in given.items() if v is not None}, device=device,
                        frames_per_clip=frames_per_clip, crop=crop, seed=seed,
                        shared=_shared if _shared is not None else {})
    for side in (real, fake):  # both folders checked before any clip is decoded
        if isinstance(side, str | os.PathLike):
            media_files(side)
    if ctx.shared.get("real_input") is real:
        real_set = ctx.shared["real_set"]
    else:
        real_set = _as_set(_side(real, frames_per_clip))
        ctx.shared.update(real_input=real, real_set=real_set)
    sides = [real_set, _as_set(_side(fake, frames_per_clip))]
    groups: dict[Any, list[str]] = {}
    for name, spec in available("set").items():
        if name in wanted:
            groups.setdefault(spec.fn, []).append(name)
    out: dict[str, Any] = {"real": _describe(real), "fake": _describe(fake)}
    for fn, names in groups.items():
        out |= fn(sides[0], sides[1], names, ctx)
    out["weights_verified"] = weights_verified(w for name in wanted for w in get_metric(name, "set").weights)
    return out


def _describe(side: Any) -> str:
    return str(side) if isinstance(side, str | os.PathLike) else f"{len(side)} samples"


def _as_set(items: list) -> Any:
    """(Clip, FaceTrack) pairs as they are; images stacked when they share one size."""
    if not items or isinstance(items[0], tuple) or len({im.shape for im in items}) > 1:
        return items
    return np.stack(items)

