"""``fusion``: every per-clip measurement at once. The sync estimate (`detectors.sync`), the blink statistics
(`detectors.blink`) and the face's sharpness (CPBD, `fakebench.metrics.quality`) side by side in one standardised
logistic regression (`LinearProbe`); its explanation is the measurements that weighed most for this clip, with
the coefficient-times-value weights as their importance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from fakebench.detectors import blink as blink_detector
from fakebench.detectors import sync as sync_detector
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
from fakebench.errors import ConfigError, FakebenchError
from fakebench.samples import Sample

FEATURES = (*(f"sync_{f}" for f in sync_detector.FEATURES), *(f"blink_{f}" for f in blink_detector.FEATURES),
            "cpbd")


def _sharpness(sample: Sample) -> float:
    from fakebench.metrics.quality import quality_metrics

    cache = sample._cache
    if "detector:cpbd" not in cache:
        cache["detector:cpbd"] = float(quality_metrics(sample.clip, sample.track)["cpbd"])
    return cache["detector:cpbd"]


def features_of(sample: Sample) -> np.ndarray:
    parts = []
    for part, size in ((lambda: sync_detector.features_of(sync_detector.sync_evidence(sample)),
                        len(sync_detector.FEATURES)),
                       (lambda: blink_detector.features_of(blink_detector.blink_evidence(sample)),
                        len(blink_detector.FEATURES)),
                       (lambda: np.array([_sharpness(sample)]), 1)):
        try:
            parts.append(part())
        except FakebenchError:  # no audio, no face: those measurements are missing, the others still count
            parts.append(np.full(size, math.nan))
    return np.concatenate(parts)


def feature_matrix(samples: Sequence[Sample]) -> np.ndarray:
    return np.array([features_of(s) for s in samples]).reshape(len(samples), len(FEATURES))


@register("fusion")
class FusionDetector(DetectorBase):
    description: ClassVar[str] = ("every per-clip measurement (sync estimate, blink statistics, sharpness) -> one "
                                  "logistic regression; its weights explain a score")
    needs: ClassVar[tuple[str, ...]] = ("face",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.probe = LinearProbe()

    def fit(self, train: Sequence[Sample], val: Sequence[Sample]) -> FusionDetector:
        self.probe.fit(feature_matrix(train), labels_of(train), feature_matrix(val), labels_of(val))
        self.info = {"strength": self.probe.strength, "n_train": len(train), "n_val": len(val),
                     "features": list(FEATURES)}
        return self

    def _fitted(self) -> LinearProbe:
        if not self.probe.fitted:
            raise ConfigError("the fusion detector is not fitted; fit it or load a saved one")
        return self.probe

    def predict_proba(self, samples: Sequence[Sample]) -> np.ndarray:
        return self.score(samples).p_fake

    def score(self, samples: Sequence[Sample]) -> Scored:
        probe = self._fitted()
        return score_each(self, samples, lambda s: probe.p_fake(features_of(s)[None])[0])

    def explain(self, sample: Sample) -> list[Finding]:
        return linear_findings(self._fitted(), FEATURES, features_of(sample), top=4)

    def state(self) -> dict[str, np.ndarray]:
        return dict(self._fitted().arrays)

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.probe = LinearProbe(state)
        self.probe.check_state(len(FEATURES), "fusion detector")
