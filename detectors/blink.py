"""``blink``: physiological. Do the eyes blink as a person's do while talking?

Features from the eye-aspect-ratio trace of the 68 landmarks (`fakebench.metrics.blink`): the blink rate, the
count, the mean blink duration, the longest stretch without a blink, and the mean and spread of the eye
openness. People blink about 10-30 times a minute while talking, each blink 100-400 ms; a still photo made to
talk often does not blink at all. A standardised logistic regression (`LinearProbe`) maps them to P(fake).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from fakebench.detectors.base import (
    DetectorBase,
    Finding,
    LinearProbe,
    Scored,
    labels_of,
    linear_findings,
    register,
    score_each,
)
from fakebench.errors import ConfigError
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


def feature_matrix(samples: Sequence[Sample]) -> np.ndarray:
    rows = []
    for s in samples:
        try:
            rows.append(features_of(blink_evidence(s)))
        except Exception:  # noqa: BLE001 - a clip without a usable face trains as all-missing
            rows.append(np.full(len(FEATURES), math.nan))
    return np.array(rows).reshape(len(samples), len(FEATURES))


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
class BlinkDetector(DetectorBase):
    description: ClassVar[str] = ("physiological: blink rate, duration, longest blink-free stretch and eye openness "
                                  "from the eye aspect ratio -> logistic regression")
    needs: ClassVar[tuple[str, ...]] = ("face",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.probe = LinearProbe()

    def fit(self, train: Sequence[Sample], val: Sequence[Sample]) -> BlinkDetector:
        self.probe.fit(feature_matrix(train), labels_of(train), feature_matrix(val), labels_of(val))
        self.info = {"strength": self.probe.strength, "n_train": len(train), "n_val": len(val),
                     "features": list(FEATURES)}
        return self

    def _fitted(self) -> LinearProbe:
        if not self.probe.fitted:
            raise ConfigError("the blink detector is not fitted; fit it or load a saved one")
        return self.probe

    def predict_proba(self, samples: Sequence[Sample]) -> np.ndarray:
        return self.score(samples).p_fake

    def score(self, samples: Sequence[Sample]) -> Scored:
        probe = self._fitted()
        return score_each(self, samples, lambda s: probe.p_fake(features_of(blink_evidence(s))[None])[0])

    def explain(self, sample: Sample) -> list[Finding]:
        result = blink_evidence(sample)
        headline = Finding(in_words(result), value=float(result["blink_count"]),
                           frames=tuple(int(f) for f in result["blink_frames"]))
        return [headline, *linear_findings(self._fitted(), FEATURES, features_of(result), top=2)]

    def state(self) -> dict[str, np.ndarray]:
        return dict(self._fitted().arrays)

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.probe = LinearProbe(state)
        self.probe.check_state(len(FEATURES), "blink detector")
