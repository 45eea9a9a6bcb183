"""``fusion``: every per-clip measurement at once. The sync estimate (`detectors.sync`), the blink statistics
(`detectors.blink`) and the face's sharpness (CPBD, `fakebench.metrics.quality`) side by side in one standardised
logistic regression (`LinearProbe`); its explanation is the measurements that weighed most for this clip, with
the coefficient-times-value weights as their importance.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from fakebench.detectors import blink as blink_detector
from fakebench.detectors import sync as sync_detector
from fakebench.detectors.base import Finding, LinearDetector, register
from fakebench.errors import FakebenchError
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




@register("fusion")
class FusionDetector(LinearDetector):
    description: ClassVar[str] = ("every per-clip measurement (sync estimate, blink statistics, sharpness) -> one "
                                  "logistic regression; its weights explain a score")
    needs: ClassVar[tuple[str, ...]] = ("face",)
    features: ClassVar[tuple[str, ...]] = FEATURES

    def features_of(self, sample: Sample) -> np.ndarray:
        return features_of(sample)

    def explain(self, sample: Sample) -> list[Finding]:
        return self.findings(sample, top=4)
