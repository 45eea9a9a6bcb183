"""``blink``: physiological. Do the eyes blink as a person's do while talking?

Features from the eye-aspect-ratio trace of the 68 landmarks (`fakebench.metrics.blink`): the blink rate, the
count, the mean blink duration, the longest stretch without a blink, and the mean and spread of the eye
openness. People blink about 10-30 times a minute while talking, each blink 100-400 ms; a still photo made to
talk often does not blink at all. A standardised logistic regression (`LinearProbe`) maps them to P(fake).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fakebench.detectors.base import Finding, LinearDetector, register
from fakebench.samples import Sample

FEATURES = ("blink_rate_per_min", "blink_count", "blink_mean_ms", "longest_without_blink_s", "ear_mean", "ear_std")
TYPICAL_RATE_PER_MIN = (10.0, 30.0)


def blink_evidence(sample: Sample) -> dict[str, Any]:
    from fakebench.faces import eye_aspect_ratio
    from fakebench.metrics.blink import blink_metrics

    cache = sample._cache
    if "detector:blink" not in cache:
        track = sample.track
        result = dict(blink_metrics(sample.clip, track))
        ear = eye_aspect_ratio(track.landmarks)
        ok = track.valid & np.isfinite(ear)
        peaks = [0, *result["blink_frames"], track.n_frames - 1]
        result["longest_without_blink_s"] = float(np.max(np.diff(peaks)) / track.fps)
        result["ear_std"] = float(ear[ok].std())
        result["seconds"] = track.n_frames / track.fps
        cache["detector:blink"] = result
    return cache["detector:blink"]


def features_of(result: Mapping[str, Any]) -> np.ndarray:
    durations = result.get("blink_durations_ms") or []
    return np.array([result["blink_rate_per_min"], result["blink_count"],
                     float(np.mean(durations)) if durations else math.nan, result["longest_without_blink_s"],
                     result["ear_mean"], result["ear_std"]], np.float64)




def in_words(result: Mapping[str, Any]) -> str:
    low, high = TYPICAL_RATE_PER_MIN
    seconds = result["seconds"]
    typical = f"typical is {low * seconds / 60:.0f}-{high * seconds / 60:.0f}"
    if result["blink_count"] == 0:
        return f"no blink in {seconds:.0f} s ({typical} while talking)"
    return (f"{result['blink_count']} blink{'s' if result['blink_count'] != 1 else ''} in {seconds:.0f} s "
            f"({result['blink_rate_per_min']:.0f} per minute; {typical}); longest stretch without one "
            f"{result['longest_without_blink_s']:.1f} s")


@register("blink")
class BlinkDetector(LinearDetector):
    description: ClassVar[str] = ("physiological: blink rate, duration, longest blink-free stretch and eye openness "
                                  "from the eye aspect ratio -> logistic regression")
    needs: ClassVar[tuple[str, ...]] = ("face",)
    features: ClassVar[tuple[str, ...]] = FEATURES

    def features_of(self, sample: Sample) -> np.ndarray:
        return features_of(blink_evidence(sample))

    def explain(self, sample: Sample) -> list[Finding]:
        result = blink_evidence(sample)
        return [Finding(in_words(result), value=float(result["blink_count"]),
                        frames=tuple(int(f) for f in result["blink_frames"])), *self.findings(sample)]
