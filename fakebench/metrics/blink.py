"""Blinks from the eye aspect ratio (EAR, Soukupova & Cech 2016) of the clip's 68 landmarks.

A blink is a dip of the EAR below its local open-eye level that recovers:

1. Gaps: invalid frames (no face, implausible landmarks) are gaps. Gaps of at most
   ``max_fill_s`` (2 frames at 25-30 fps) are filled by linear interpolation; longer gaps split
   the trace into segments, and nothing is detected across them or at their edges.
2. Baseline: a rolling median of the EAR over ``baseline_s`` (1.5 s) in each segment. It follows
   slow changes (head turns, squinting, smiling) but not blinks, which fill far less than half of
   any window.
3. Threshold: a frame is closed when its EAR is below the baseline by more than
   ``max(rel_depth * baseline, noise_k * sigma)``: by default 25% of the clip's own open-eye
   level, or 4 robust standard deviations (1.4826 MAD of EAR - baseline) of its landmark jitter
   when that is larger.
4. Events: runs of closed frames less than ``merge_gap_s`` apart are merged; an event needs at
   least ``min_duration_s`` of closed frames (never fewer than 2) and at most ``max_duration_s``
   (0.7 s: longer closures are not blinks).
5. Dip and recovery: the EAR must come back. The 75th percentile of the EAR in the
   ``context_s`` before and after the event must both exceed the event's minimum by the
   threshold, so a step (a head turn that stays turned) is not a blink.

The blink's extent (``start``, ``end``) is the frames where the EAR is below half its depth
(halfway between the baseline and the minimum) and its duration the time between the two
half-depth crossings, interpolated between frames: the half-amplitude duration of blink research,
independent of the detection threshold. ``peak`` is the frame of the minimum. Blinks are
`fakebench.faces.Blink`, the schema of the generators' ground truth too, so `fakebench.faces.score_blinks`
scores detections against what a generator put in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from fakebench.faces import Blink, FaceTrack, eye_aspect_ratio
from fakebench.media import Clip
from fakebench.metrics.registry import MetricContext, register_metric

if TYPE_CHECKING:
    from fakebench.samples import Sample

BLINK_MODEL = ("EAR (Soukupova & Cech 2016) on dlib 68 landmarks, adaptive threshold: dip below a 1.5 s "
               "rolling-median baseline by max(25% of it, 4 robust sigma), 2 frames to 0.7 s, recovering; "
               "duration at half amplitude")


def fill_short_gaps(ear: np.ndarray, ok: np.ndarray, max_gap: int) -> np.ndarray:
    """EAR with gaps of at most `max_gap` frames between two good frames interpolated; other gaps NaN."""
    out = np.where(ok, ear, np.nan)
    good = np.flatnonzero(ok)
    for a, b in zip(good[:-1], good[1:], strict=True):
        if 1 < b - a <= max_gap + 1:
            out[a + 1:b] = np.interp(np.arange(a + 1, b), [a, b], [ear[a], ear[b]])
    return out


def segments(finite: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) half-open ranges of consecutive True values."""
    edges = np.diff(np.concatenate([[0], finite.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def rolling_baseline(ear: np.ndarray, window: int) -> np.ndarray:
    """Rolling median of each finite segment (NaN in gaps)."""
    out = np.full_like(ear, np.nan)
    for a, b in segments(np.isfinite(ear)):
        out[a:b] = ndimage.median_filter(ear[a:b], size=min(window, b - a), mode="nearest")
    return out


def closed_runs(closed: np.ndarray, merge_gap: int) -> list[tuple[int, int]]:
    """Inclusive (first, last) frames of runs of closed frames, merging runs at most `merge_gap` apart."""
    runs: list[tuple[int, int]] = []
    for a, b in segments(closed):
        if runs and a - runs[-1][1] - 1 <= merge_gap:
            runs[-1] = (runs[-1][0], b - 1)
        else:
            runs.append((a, b - 1))
    return runs


def detect_blinks(ear: np.ndarray, fps: float, *, valid: np.ndarray | None = None, rel_depth: float = 0.25,
                  noise_k: float = 4.0, baseline_s: float = 1.5, min_duration_s: float = 0.06,
                  max_duration_s: float = 0.7, merge_gap_s: float = 0.04, context_s: float = 0.25,
                  max_fill_s: float = 0.08) -> list[Blink]:
    """Blinks in an EAR trace (T,) sampled at `fps`; NaN or `valid == False` frames are missing.

    The rule is the module's (see its docstring); the keyword arguments are its constants.
    """
    ear = np.asarray(ear, np.float64)
    ok = np.isfinite(ear) if valid is None else np.isfinite(ear) & np.asarray(valid, bool)
    filled = fill_short_gaps(ear, ok, max_gap=max(1, round(max_fill_s * fps)))
    finite = np.isfinite(filled)
    if finite.sum() < 3:
        return []
    baseline = rolling_baseline(filled, window=max(3, round(baseline_s * fps)) | 1)
    resid = (filled - baseline)[finite]
    sigma = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    threshold = np.maximum(rel_depth * baseline, noise_k * sigma)  # NaN in gaps
    closed = finite & (filled < baseline - np.nan_to_num(threshold, nan=np.inf))

    min_frames = max(2, int(np.ceil(min_duration_s * fps - 1e-9)))
    max_frames = int(np.floor(max_duration_s * fps + 1e-9))
    context = max(2, round(context_s * fps))
    seg_bounds = segments(finite)
    seg_of = np.full(len(ear), -1)
    for k, (a, b) in enumerate(seg_bounds):
        seg_of[a:b] = k

    blinks = []
    for first, last in closed_runs(closed, merge_gap=max(1, round(merge_gap_s * fps))):
        a, b = seg_bounds[seg_of[first]]
        if seg_of[last] != seg_of[first] or first == a or last == b - 1:
            continue  # touches a gap or the clip's end: its recovery cannot be seen
        if closed[first:last + 1].sum() < min_frames or last - first + 1 > max_frames:
            continue
        peak = first + int(np.argmin(filled[first:last + 1]))
        before = filled[max(a, first - context):first]
        after = filled[last + 1:min(b, last + 1 + context)]
        recovered = min(np.percentile(before, 75), np.percentile(after, 75))
        if recovered - filled[peak] < threshold[peak]:
            continue
        blinks.append(_half_depth_extent(filled, baseline[peak], peak, first, last, (a, b), fps))
    return blinks


def _half_depth_extent(ear: np.ndarray, level: float, peak: int, first: int, last: int,
                       segment: tuple[int, int], fps: float) -> Blink:
    """The frames below half depth around the minimum; the duration between the interpolated crossings."""
    half = (level + ear[peak]) / 2
    below = first + np.flatnonzero(ear[first:last + 1] <= half)
    start, end = int(below.min()), int(below.max())
    while start - 1 >= segment[0] and ear[start - 1] <= half:
        start -= 1
    while end + 1 < segment[1] and ear[end + 1] <= half:
        end += 1
    rise = _crossing(ear, start, start - 1, half, segment)
    fall = _crossing(ear, end, end + 1, half, segment)
    return Blink(start=start, end=end, peak=int(peak), duration_ms=float((fall - rise) * 1000.0 / fps),
                 depth=float(level - ear[peak]))


def _crossing(ear: np.ndarray, inside: int, outside: int, half: float, segment: tuple[int, int]) -> float:
    """Where (in fractional frames) the EAR crosses `half` between a frame below it and its neighbour."""
    if not segment[0] <= outside < segment[1]:
        return (inside + outside) / 2
    frac = (half - ear[inside]) / (ear[outside] - ear[inside])
    return inside + frac * (outside - inside)


def blink_metrics(clip: Clip, track: FaceTrack) -> dict:
    """Blink count, rate per minute of face time, peak frames, durations, mean inter-blink interval, mean EAR.

    The inter-blink interval is between consecutive peaks (across gaps too); None with fewer than 2 blinks.
    """
    track.require_face("blink metrics")
    ear = eye_aspect_ratio(track.landmarks)
    ok = track.valid & np.isfinite(ear)
    blinks = detect_blinks(ear, track.fps, valid=ok)
    peaks = [b.peak for b in blinks]
    face_minutes = ok.sum() / track.fps / 60.0
    return {
        "blink_count": len(blinks),
        "blink_rate_per_min": float(len(blinks) / face_minutes),
        "blink_frames": peaks,
        "blink_durations_ms": [round(b.duration_ms, 3) for b in blinks],
        "ibi_mean_s": float(np.diff(peaks).mean() / track.fps) if len(peaks) >= 2 else None,
        "ear_mean": float(ear[ok].mean()),
        "blink_model": BLINK_MODEL,
    }


@register_metric("blink", per="clip",
                 keys=("blink_count", "blink_rate_per_min", "blink_frames", "blink_durations_ms", "ibi_mean_s",
                       "ear_mean"),
                 description="blinks from the eye aspect ratio of the 68 landmarks: count, rate, peak frames, "
                             "durations, mean inter-blink interval")
def _blink_metric(sample: Sample, ctx: MetricContext) -> dict:
    return blink_metrics(sample.clip, sample.track)
