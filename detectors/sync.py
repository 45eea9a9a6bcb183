"""``sync``: audio-visual. Does the mouth move with the speech, and is the audio where the lips say it is?

Features from the `sync` metric's av-cca estimate (`fakebench.metrics.sync`, `fakebench.avsync`): the size of
the offset, how clearly it stands out (evidence z, confidence, the agreement at the best offset and at no
offset), the reliability decision, and the mouth-motion and speech-rhythm levels behind it. An unreliable
estimate is not read as an offset: its offset feature is set to "missing" (imputed), so "unknown" is never
evidence of a shift; the low evidence itself is. A standardised logistic regression (`LinearProbe`) maps them
to P(fake), its strength chosen on the validation split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fakebench.detectors.base import Finding, LinearDetector, register
from fakebench.samples import Sample

FEATURES = ("abs_offset_frames", "evidence_z", "confidence", "peak_agreement", "agreement_at_zero", "reliable",
            "mouth_motion", "speech_modulation_db")


def sync_evidence(sample: Sample) -> dict[str, Any]:
    """The av-cca sync result of a clip (the `sync` metric's keys), computed once per Sample."""
    from fakebench.metrics.sync import sync_metrics

    cache = sample._cache  # the Sample keeps what was computed from its one decode
    if "detector:sync" not in cache:
        cache["detector:sync"] = sync_metrics(sample.clip, sample.track, method="avsync")
    return cache["detector:sync"]


def features_of(result: Mapping[str, Any]) -> np.ndarray:
    curve = np.asarray(result.get("sync_corr_curve") or [math.nan], np.float64)
    reliable = bool(result.get("sync_reliable"))
    offset = result.get("sync_offset_frames")
    return np.array([
        abs(offset) if reliable and offset is not None else math.nan,
        result.get("sync_evidence_z", math.nan), result.get("sync_confidence", math.nan),
        float(np.nanmax(curve)), float(curve[len(curve) // 2]), float(reliable),
        result.get("sync_mouth_motion", math.nan), result.get("sync_speech_modulation_db", math.nan)],
        np.float64)




def in_words(result: Mapping[str, Any], fps: float) -> str:
    """The sync estimate as an analyst reads it."""
    offset = result.get("sync_offset_frames")
    z = result.get("sync_evidence_z")
    if not result.get("sync_reliable"):
        why = result.get("sync_unreliable_reason") or "no clear offset"
        return f"lip sync unknown: {why} (evidence z {z:.1f})" if z is not None else f"lip sync unknown: {why}"
    if offset == 0:
        return f"audio and lips in sync (evidence z {z:.1f}, reliable)"
    ms = abs(offset) / fps * 1000
    which = "lags" if offset > 0 else "leads"
    return (f"audio {which} the lips by {abs(offset)} frame{'s' if abs(offset) != 1 else ''} ({ms:.0f} ms), "
            f"evidence z {z:.1f} (reliable)")


@register("sync")
class SyncDetector(LinearDetector):
    description: ClassVar[str] = ("audio-visual: the av-cca lip-sync estimate (offset, evidence, reliability, mouth "
                                  "motion, speech rhythm) -> logistic regression")
    needs: ClassVar[tuple[str, ...]] = ("face", "audio")
    features: ClassVar[tuple[str, ...]] = FEATURES

    def features_of(self, sample: Sample) -> np.ndarray:
        return features_of(sync_evidence(sample))

    def explain(self, sample: Sample) -> list[Finding]:
        result = sync_evidence(sample)
        return [Finding(in_words(result, sample.clip.fps), value=result.get("sync_offset_frames")),
                *self.findings(sample)]
