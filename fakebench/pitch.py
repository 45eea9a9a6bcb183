"""Fundamental frequency (f0) of a voice, per 10 ms, and whether the voice sings.

`f0_track` is YIN (de Cheveigné & Kawahara 2002: the cumulative-mean-normalised difference function, its first
dip under a threshold, parabolic interpolation) computed for all windows at once with FFTs, in blocks, on the
audio resampled to 8 kHz: ten minutes of audio take about a second. A window is voiced when its aperiodicity
(the normalised difference at the chosen lag) is low and it is not silent.

`sung_fraction` tells singing from speech by what singing has and speech lacks: notes, i.e. voiced stretches of
at least `NOTE_MIN_S` whose pitch stays within `NOTE_RANGE_ST` semitones (vibrato included). Speech glides:
its voiced stretches are short and its pitch keeps moving, so little of its voiced time lies in such notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fakebench.media import resample_audio

PITCH_SR = 8000
HOP_S = 0.01
FRAME = 512  # 64 ms windows at 8 kHz: two periods of the lowest pitch
F0_MIN, F0_MAX = 60.0, 1000.0
YIN_THRESHOLD = 0.15
VOICED_APERIODICITY = 0.3
SILENCE_DB = 35.0  # windows this far below the loud part of the clip are silent (unvoiced)
NOTE_MIN_S = 0.3
NOTE_RANGE_ST = 2.5
SINGING_FRACTION = 0.5  # at least this share of the voiced time in notes: singing


@dataclass(frozen=True, eq=False)
class PitchTrack:
    """Per window (every ``hop_s`` seconds, centred at ``times``): f0 in Hz (NaN where unvoiced), the voiced
    flag and the aperiodicity (0 perfectly periodic .. 1 noise)."""

    times: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray
    aperiodicity: np.ndarray
    hop_s: float = HOP_S

    def median_f0(self) -> float:
        """The median voiced f0 (Hz); NaN when nothing is voiced."""
        return float(np.median(self.f0[self.voiced])) if self.voiced.any() else float("nan")

    def semitones(self, reference_hz: float | None = None) -> np.ndarray:
        """f0 in semitones above `reference_hz` (default the median voiced f0); NaN where unvoiced."""
        ref = self.median_f0() if reference_hz is None else float(reference_hz)
        out = np.full(self.f0.shape, np.nan)
        if np.isfinite(ref) and ref > 0:
            out[self.voiced] = 12.0 * np.log2(self.f0[self.voiced] / ref)
        return out


def f0_track(audio: np.ndarray, sample_rate: int, *, fmin: float = F0_MIN, fmax: float = F0_MAX,
             block: int = 2048) -> PitchTrack:
    """YIN f0 of mono `audio` every 10 ms (see the module's docstring)."""
    x = resample_audio(np.asarray(audio, np.float32), int(sample_rate), PITCH_SR).astype(np.float32)
    hop = int(round(HOP_S * PITCH_SR))
    n = 1 + x.size // hop
    padded = np.pad(x, (FRAME // 2, FRAME // 2 + hop))
    frames = np.lib.stride_tricks.sliding_window_view(padded, FRAME)[::hop][:n]
    w = FRAME // 2  # integration window; lags 0 .. FRAME - w
    tau_min, tau_max = max(2, int(PITCH_SR / fmax)), min(FRAME - w - 1, int(np.ceil(PITCH_SR / fmin)))
    f0 = np.full(n, np.nan)
    aper = np.ones(n)
    energy = np.empty(n)
    lags = np.arange(tau_max + 2)
    for start in range(0, n, block):
        b = frames[start:start + block].astype(np.float64)
        energy[start:start + len(b)] = np.mean(b[:, w // 2:w // 2 + w] ** 2, axis=1)
        size = 2 * FRAME
        corr = np.fft.irfft(np.conj(np.fft.rfft(b[:, :w], size)) * np.fft.rfft(b, size), size)[:, :tau_max + 2]
        sq = np.concatenate([np.zeros((len(b), 1)), np.cumsum(b**2, axis=1)], axis=1)
        e_shift = sq[:, lags + w] - sq[:, lags]  # sum of x[j + tau]^2 over the window
        diff = np.maximum(sq[:, w:w + 1] + e_shift - 2.0 * corr, 0.0)
        cum = np.cumsum(diff[:, 1:], axis=1)
        cmnd = np.ones_like(diff)
        cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(cum, 1e-12)
        seg = cmnd[:, tau_min:tau_max + 1]
        trough = np.zeros_like(seg, bool)
        trough[:, 1:-1] = (seg[:, 1:-1] <= seg[:, :-2]) & (seg[:, 1:-1] <= seg[:, 2:])
        below = trough & (seg < YIN_THRESHOLD)
        first = np.where(below.any(1), np.argmax(below, axis=1), np.argmin(seg, axis=1))
        rows = np.arange(len(b))
        best = seg[rows, first]
        lo = seg[rows, np.maximum(first - 1, 0)]
        hi = seg[rows, np.minimum(first + 1, seg.shape[1] - 1)]
        denom = lo - 2 * best + hi
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (lo - hi) / np.where(denom == 0, 1, denom), 0.0)
        tau = tau_min + first + np.clip(shift, -1.0, 1.0)
        f0[start:start + len(b)] = PITCH_SR / tau
        aper[start:start + len(b)] = np.clip(best, 0.0, 1.0)
    level = 10.0 * np.log10(energy + 1e-12)
    loud = float(np.percentile(level, 95)) if n else 0.0
    voiced = (aper < VOICED_APERIODICITY) & (level > loud - SILENCE_DB) & (level > -60.0)
    voiced &= (f0 >= fmin) & (f0 <= fmax)
    f0[~voiced] = np.nan
    return PitchTrack(times=np.arange(n) * HOP_S, f0=f0, voiced=voiced, aperiodicity=aper)


def note_mask(track: PitchTrack) -> np.ndarray:
    """The voiced windows that lie in a note: a voiced stretch of `NOTE_MIN_S` or more whose pitch (median-smoothed
    over 50 ms) stays within `NOTE_RANGE_ST` semitones."""
    from scipy.ndimage import maximum_filter1d, median_filter, minimum_filter1d

    n = track.f0.size
    length = 2 * int(round(NOTE_MIN_S / track.hop_s / 2)) + 1  # odd: windows centred on a window
    if n < length:
        return np.zeros(n, bool)
    st = track.semitones()
    filled = np.where(track.voiced, st, 0.0)
    smooth = median_filter(filled, size=5, mode="nearest")
    all_voiced = minimum_filter1d(track.voiced.astype(np.uint8), length, mode="constant", cval=0) > 0
    spread = (maximum_filter1d(smooth, length, mode="nearest") - minimum_filter1d(smooth, length, mode="nearest"))
    steady = all_voiced & (spread <= NOTE_RANGE_ST)
    # a steady stretch marks every window it covers: dilate by its length
    covered = maximum_filter1d(steady.astype(np.uint8), length, mode="constant", cval=0) > 0
    return covered & track.voiced


def sung_fraction(track: PitchTrack) -> float:
    """The share of the voiced time that lies in notes (`note_mask`): near 0 for speech, most of it for singing."""
    voiced = int(track.voiced.sum())
    return float(note_mask(track).sum() / voiced) if voiced else 0.0


def is_singing(track: PitchTrack) -> bool:
    """Whether the voice sings: `sung_fraction` at least `SINGING_FRACTION`."""
    return sung_fraction(track) >= SINGING_FRACTION
