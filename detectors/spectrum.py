"""``spectrum``: frequency artefacts. Generators that upsample or blend leave the high end of a face's spectrum
too weak or too regular (Durall et al., CVPR 2020: "Watch your up-convolution").

Features: up to 8 face frames of the clip, each aligned to a 128 x 128 face crop and turned grey; the 2-D power
spectrum (Hann-windowed FFT) in dB, averaged over rings of equal frequency (the azimuthal average, 32 bands from
the centre to the corner), averaged over the frames and taken relative to its own mean, so the shape counts and
not the brightness. A standardised logistic regression (`LinearProbe`) maps the 32 bands to P(fake).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from fakebench.detectors.base import Finding, LinearDetector, labels_of, register
from fakebench.errors import FakebenchError
from fakebench.samples import Sample

CROP = 128
BANDS = 32
FRAMES = 8
HIGH = slice(3 * BANDS // 4, BANDS)  # the top quarter of the frequencies
MID = slice(BANDS // 4, BANDS // 2)


def _ring_index() -> np.ndarray:
    y, x = np.indices((CROP, CROP)) - CROP // 2
    radius = np.hypot(x, y) / np.hypot(CROP // 2, CROP // 2)
    return np.minimum((radius * BANDS).astype(int), BANDS - 1)


RINGS = _ring_index()
WINDOW = np.outer(np.hanning(CROP), np.hanning(CROP))


def azimuthal_spectrum(grey: np.ndarray) -> np.ndarray:
    """(BANDS,) power (dB) of one grey CROP x CROP image averaged over rings, relative to its mean."""
    power = np.abs(np.fft.fftshift(np.fft.fft2((grey - grey.mean()) * WINDOW))) ** 2
    level = 10.0 * np.log10(np.bincount(RINGS.ravel(), power.ravel(), BANDS) /
                            np.bincount(RINGS.ravel(), minlength=BANDS) + 1e-12)
    return level - level.mean()


def spectrum_features(sample: Sample) -> np.ndarray:
    from fakebench.faces import align_faces, face_frame_indices

    cache = sample._cache
    if "detector:spectrum" not in cache:
        track = sample.track
        idx = face_frame_indices(track, FRAMES)
        if len(idx) == 0:
            raise FakebenchError("no face in any frame")
        crops = align_faces(sample.clip.frames[idx], track.landmarks[idx], (CROP, CROP)).astype(np.float64)
        grey = crops @ np.array([0.299, 0.587, 0.114])
        cache["detector:spectrum"] = np.mean([azimuthal_spectrum(g) for g in grey], axis=0)
    return cache["detector:spectrum"]




def high_frequency_db(spectrum: np.ndarray) -> float:
    """The top quarter of the frequencies relative to the middle band, dB: lower = smoother, less detail."""
    return float(np.mean(spectrum[HIGH]) - np.mean(spectrum[MID]))


@register("spectrum")
class SpectrumDetector(LinearDetector):
    description: ClassVar[str] = ("frequency artefacts: the azimuthally averaged power spectrum of aligned face "
                                  "crops (32 bands) -> logistic regression")
    needs: ClassVar[tuple[str, ...]] = ("face",)
    features: ClassVar[tuple[str, ...]] = tuple(f"band_{k}" for k in range(BANDS))

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.high_db = np.full(2, math.nan)  # training means of high_frequency_db: real, fake

    def features_of(self, sample: Sample) -> np.ndarray:
        return spectrum_features(sample)

    def fit(self, train: Sequence[Sample], val: Sequence[Sample]) -> SpectrumDetector:
        super().fit(train, val)
        x, y = self.feature_matrix(train), labels_of(train)
        high = np.array([high_frequency_db(row) if np.isfinite(row).all() else math.nan for row in x])
        self.high_db = np.array([np.nanmean(high[y == k]) for k in (0, 1)])
        return self

    def explain(self, sample: Sample) -> list[Finding]:
        """The quarter of the spectrum that moved the score most, its level against the training means, and the
        overall fine-detail level."""
        probe = self.fitted()
        spectrum = spectrum_features(sample)
        contributions = probe.contributions(spectrum[None])[0]
        quarters = [slice(q * BANDS // 4, (q + 1) * BANDS // 4) for q in range(4)]
        q = int(np.argmax([abs(contributions[band].sum()) for band in quarters]))
        band, push = quarters[q], contributions[quarters[q]].sum()
        name = ("lowest", "lower-middle", "upper-middle", "highest")[q]
        level = float(np.mean(spectrum[band]))
        real, fake = (float(np.mean(probe.arrays[k][band])) for k in ("real_mean", "fake_mean"))
        toward = "fake" if push > 0 else "real"
        detail = high_frequency_db(spectrum)
        return [Finding(f"the face's {name} frequencies are at {level:.1f} dB (relative to its mean spectrum); "
                        f"training clips: real {real:.1f} dB, fake {fake:.1f} dB: points to {toward}",
                        value=level, weight=float(push)),
                Finding(f"fine detail (top quarter of the spectrum against its middle) {detail:.1f} dB; training "
                        f"clips: real {self.high_db[0]:.1f} dB, fake {self.high_db[1]:.1f} dB", value=detail)]

    def state(self) -> dict[str, np.ndarray]:
        return {**super().state(), "high_db": self.high_db}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        state = dict(state)
        self.high_db = np.asarray(state.pop("high_db", np.full(2, math.nan)), np.float64)
        super().set_state(state)
