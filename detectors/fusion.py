"""``fusion``: every per-clip measurement at once. The sync estimate (`detectors.sync`), the blink statistics
(`detectors.blink`), the face's sharpness (CPBD, `fakebench.metrics.quality`) and its expression (the action-unit
intensities and the emotion's confidence of `fakebench.metrics.expression`) side by side in one standardised
logistic regression (`LinearProbe`); its explanation is the measurements that weighed most for this clip, with
the coefficient-times-value weights as their importance.

Every part reads the clip's one face track (`Sample.track`) and is kept in the Sample's cache, so a clip's faces
are analysed once whatever the number of features. The expression is measured against the population norms (a
detector sees the clip alone, not the photo it may have been made from); AU7 is left out, since the 68 landmarks
give it the value of AU6 (one column for both, see `fakebench.metrics.expression`).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from fakebench.detectors import blink as blink_detector
from fakebench.detectors import sync as sync_detector
from fakebench.detectors.base import Finding, LinearDetector, register
from fakebench.errors import FakebenchError
from fakebench.metrics.expression import REPORTED
from fakebench.samples import Sample

EXPRESSION_AUS = tuple(au for au in REPORTED if au != 7)  # AU7 is AU6 again (one landmark column for both)
EXPRESSION_FEATURES = (*(f"au{au:02d}" for au in EXPRESSION_AUS), "expression_confidence")
FEATURES = (*(f"sync_{f}" for f in sync_detector.FEATURES), *(f"blink_{f}" for f in blink_detector.FEATURES),
            "cpbd", *EXPRESSION_FEATURES)


def _sharpness(sample: Sample) -> float:
    from fakebench.metrics.quality import quality_metrics

    cache = sample._cache
    if "detector:cpbd" not in cache:
        cache["detector:cpbd"] = float(quality_metrics(sample.clip, sample.track)["cpbd"])
    return cache["detector:cpbd"]


def expression(sample: Sample) -> dict:
    """The clip's expression metric (population norms as the neutral), from its face track; kept in the Sample."""
    from fakebench.metrics.expression import expression_metrics

    cache = sample._cache
    if "detector:expression" not in cache:
        cache["detector:expression"] = expression_metrics(sample.track)
    return cache["detector:expression"]


def expression_features(sample: Sample) -> np.ndarray:
    result = expression(sample)
    return np.array([float(result[name]) for name in EXPRESSION_FEATURES], np.float64)


def features_of(sample: Sample) -> np.ndarray:
    parts = []
    for part, size in ((lambda: sync_detector.features_of(sync_detector.sync_evidence(sample)),
                        len(sync_detector.FEATURES)),
                       (lambda: blink_detector.features_of(blink_detector.blink_evidence(sample)),
                        len(blink_detector.FEATURES)),
                       (lambda: np.array([_sharpness(sample)]), 1),
                       (lambda: expression_features(sample), len(EXPRESSION_FEATURES))):
        try:
            parts.append(part())
        except FakebenchError:  # no audio, no face: those measurements are missing, the others still count
            parts.append(np.full(size, math.nan))
    return np.concatenate(parts)


@register("fusion")
class FusionDetector(LinearDetector):
    description: ClassVar[str] = ("every per-clip measurement (sync estimate, blink statistics, sharpness, facial "
                                  "action units) -> one logistic regression; its weights explain a score")
    needs: ClassVar[tuple[str, ...]] = ("face",)
    features: ClassVar[tuple[str, ...]] = FEATURES

    def features_of(self, sample: Sample) -> np.ndarray:
        return features_of(sample)

    def explain(self, sample: Sample) -> list[Finding]:
        return self.findings(sample, top=4)
