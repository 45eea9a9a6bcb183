"""Audio-visual synchrony of speech: mouth-shape and speech-spectrum features, and a linear model that relates them.

The model (``av-cca``) is a pair of linear projections learned by canonical correlation analysis (Slaney & Covell
2000, FaceSync) on in-sync talking clips pooled over speakers: mouth features on one side, speech features on the
other. On a new clip both sides are projected and correlated at every candidate offset; the offset where they
agree best is the clip's audio-visual offset, and how far that agreement stands above chance says whether the
estimate can be trusted.

Features, one row per video frame:

- mouth: the 20 mouth landmarks, each frame aligned to the clip's mean face on the rigid points (nose bridge,
  eye corners) so head motion cancels, in inter-ocular units; band-passed to the syllable rate (1-8 Hz); each
  coordinate standardised over the clip; and their frame-to-frame changes (80 numbers);
- speech: 24 log-mel band levels (80-7600 Hz) averaged over the frame's time slot, floored 40 dB under the loud
  speech level; band-passed and standardised the same way; stacked over +-4 frames of context, so the model can
  learn that lips lead the voice (216 numbers).

The model is fitted by `fit_sync_model` (`fakebench train-sync`), stored as plain arrays (`.npz`, no pickle)
beside a JSON description, and evaluated leave-one-speaker-out by `leave_one_group_out`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakebench.errors import NoFaceError, WeightsError
from fakebench.faces import MOUTH, RIGID_POINTS, FaceTrack, apply_transform, inter_ocular, similarity_transform
from fakebench.io import atomic_write

FEATURES_VERSION = "avsync-features-1"
MODEL_FORMAT = "fakebench-sync-cca"
MODEL_FILE = "model.npz"
CONFIG_FILE = "model.json"

SAMPLE_RATE = 16000
N_MELS = 24
MEL_RANGE_HZ = (80.0, 7600.0)
N_FFT, HOP, WINDOW = 512, 160, 400  # 32 ms FFT, 10 ms hop, 25 ms window at 16 kHz
LEVEL_RANGE_DB = 40.0
BAND_HZ = (1.0, 8.0)  # syllable-rate modulations, where mouth motion and speech co-vary
AUDIO_CONTEXT = 4  # frames of speech context on each side
MIN_FRAMES = 15


# ---------------------------------------------------------------------------------------------- features

def mouth_shapes(track: FaceTrack) -> np.ndarray:
    """(T, 20, 2) mouth landmarks aligned to the clip's mean face on the rigid points, in inter-ocular units.

    Frames without a face are interpolated from their neighbours. Raises NoFaceError with fewer than two faces.
    """
    valid = np.asarray(track.valid, bool)
    if valid.sum() < 2:
        raise NoFaceError("fewer than two frames with mouth landmarks; lip-sync needs a visible speaking face")
    landmarks = np.asarray(track.landmarks, np.float64)
    reference = landmarks[valid].mean(0)
    scale = float(inter_ocular(reference))
    aligned = np.zeros((len(landmarks), MOUTH.stop - MOUTH.start, 2))
    for i in np.flatnonzero(valid):
        to_reference = similarity_transform(landmarks[i, RIGID_POINTS], reference[RIGID_POINTS])
        aligned[i] = apply_transform(to_reference, landmarks[i, MOUTH])
    aligned /= max(scale, 1e-6)
    return _interpolate(aligned.reshape(len(landmarks), -1), valid).reshape(aligned.shape)


def mouth_motion(shapes: np.ndarray, fps: float) -> float:
    """How much the mouth moves at syllable rate: the median over coordinates of their band-passed standard
    deviation (inter-ocular units). A still photo's landmark jitter stays far below a speaking mouth."""
    moving = band_pass(shapes.reshape(len(shapes), -1), fps)
    return float(np.median(moving.std(0)))


def video_features(shapes: np.ndarray, fps: float) -> np.ndarray:
    """(T, 80): band-passed, standardised mouth coordinates and their frame-to-frame changes."""
    coords = standardise(band_pass(shapes.reshape(len(shapes), -1), fps))
    return np.hstack([coords, standardise(np.gradient(coords, axis=0))])


def mel_levels(audio: np.ndarray, sample_rate: int, n_frames: int, fps: float) -> np.ndarray:
    """(T, N_MELS) log-mel levels (dB) per video frame: the mean power of the 10 ms columns in frame i's slot
    [i/fps, (i+1)/fps); frames after the audio ends repeat its last level (no step that looks like speech)."""
    import librosa

    from fakebench.media import resample_audio

    x = resample_audio(np.asarray(audio, np.float32), sample_rate, SAMPLE_RATE)
    power = librosa.feature.melspectrogram(y=x, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, win_length=WINDOW,
                                           n_mels=N_MELS, fmin=MEL_RANGE_HZ[0], fmax=MEL_RANGE_HZ[1], power=2.0)
    slot = np.floor(np.arange(power.shape[1]) * HOP / SAMPLE_RATE * fps).astype(np.int64)
    keep = slot < n_frames
    total = np.zeros((n_frames, N_MELS))
    count = np.zeros(n_frames)
    np.add.at(total, slot[keep], power[:, keep].T)
    np.add.at(count, slot[keep], 1.0)
    level = 10.0 * np.log10(total / np.maximum(count, 1.0)[:, None] + 1e-10)
    heard = count > 0
    if not heard.any():
        return np.full((n_frames, N_MELS), -100.0)
    level = level[np.maximum.accumulate(np.where(heard, np.arange(n_frames), 0))]  # past the audio's end: its last
    return np.maximum(level, np.percentile(level[heard], 95, axis=0) - LEVEL_RANGE_DB)


def audio_features(levels: np.ndarray, fps: float) -> np.ndarray:
    """(T, N_MELS * (2 AUDIO_CONTEXT + 1)): band-passed, standardised mel levels with +-AUDIO_CONTEXT frames."""
    return context_stack(standardise(band_pass(levels, fps)), AUDIO_CONTEXT)


def speech_modulation_db(levels: np.ndarray, fps: float) -> float:
    """The syllable-rate modulation of the overall speech level (dB, standard deviation after band-passing).

    Speech rises and falls by 10 dB or more several times a second; steady noise or music without syllables
    hardly moves, whatever its loudness."""
    overall = 10.0 * np.log10(np.sum(10.0 ** (levels / 10.0), axis=1))
    return float(band_pass(overall[:, None], fps).std())


def band_pass(x: np.ndarray, fps: float, band: tuple[float, float] = BAND_HZ) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth band-pass along time (the high edge kept under Nyquist)."""
    from scipy import signal

    x = np.asarray(x, np.float64)
    low, high = band[0], min(band[1], 0.45 * fps)
    sos = signal.butter(2, [low, high], btype="bandpass", fs=fps, output="sos")
    if len(x) <= 3 * (2 * len(sos) + 1):
        return x - x.mean(0)
    return signal.sosfiltfilt(sos, x, axis=0)


def standardise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(0)
    std = x.std(0)
    return x / np.where(std > 1e-9, std, 1.0)


def context_stack(x: np.ndarray, context: int) -> np.ndarray:
    """Each row followed by its neighbours: [x[t-c], ..., x[t], ..., x[t+c]] (edges repeated)."""
    if context == 0:
        return x
    padded = np.pad(x, ((context, context), (0, 0)), mode="edge")
    return np.hstack([padded[i:i + len(x)] for i in range(2 * context + 1)])


def _interpolate(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    t = np.arange(len(x))
    out = x.copy()
    for j in range(x.shape[1]):
        out[:, j] = np.interp(t, t[valid], x[valid, j])
    return out


@dataclass
class ClipFeatures:
    """What the sync model reads from one clip: features for both sides, and what says whether to trust it."""

    video: np.ndarray  # (T, 80)
    audio: np.ndarray  # (T, 216)
    valid: np.ndarray  # (T,) bool: a face was found on the frame
    fps: float
    mouth_motion: float
    speech_modulation_db: float
    name: str = ""

    @classmethod
    def of(cls, track: FaceTrack, audio: np.ndarray, sample_rate: int, fps: float, name: str = "") -> ClipFeatures:
        shapes = mouth_shapes(track)
        levels = mel_levels(audio, sample_rate, track.n_frames, fps)
        return cls(video=video_features(shapes, fps), audio=audio_features(levels, fps),
                   valid=np.asarray(track.valid, bool), fps=float(fps), mouth_motion=mouth_motion(shapes, fps),
                   speech_modulation_db=speech_modulation_db(levels, fps), name=name)

    def with_audio(self, levels_source: ClipFeatures) -> ClipFeatures:
        """This clip's mouth with another clip's speech (cut or repeated to this length): a null pair."""
        n = len(self.video)
        audio = np.resize(levels_source.audio, (n, levels_source.audio.shape[1]))
        return ClipFeatures(self.video, audio, self.valid, self.fps, self.mouth_motion,
                            levels_source.speech_modulation_db, f"{self.name}+audio:{levels_source.name}")


# ---------------------------------------------------------------------------------------------- the model

@dataclass
class SyncModel:
    """Linear projections of mouth and speech features and the canonical correlations that weight them."""

    video_weights: np.ndarray  # (80, r)
    audio_weights: np.ndarray  # (216, r)
    correlations: np.ndarray  # (r,) training canonical correlations, used as weights
    info: dict[str, Any] = field(default_factory=dict)

    def project(self, features: ClipFeatures) -> tuple[np.ndarray, np.ndarray]:
        return features.video @ self.video_weights, features.audio @ self.audio_weights

    def curve(self, features: ClipFeatures, max_offset: int) -> tuple[np.ndarray, np.ndarray]:
        """(agreement, overlap) at offsets -max_offset..+max_offset: the weighted mean correlation of the
        projected mouth at frame i with the projected speech at frame i + k, and how many frames overlapped.
        A peak at k = K means the audio is K frames late."""
        video, audio = self.project(features)
        weights = self.correlations / self.correlations.sum()
        agreement = np.zeros(2 * max_offset + 1)
        overlap = np.zeros(2 * max_offset + 1, np.int64)
        for j, k in enumerate(range(-max_offset, max_offset + 1)):
            v, a = _overlap(video, audio, k)
            agreement[j] = float(weights @ _column_correlations(v, a))
            overlap[j] = len(v)
        return agreement, overlap

    def agreement_sd(self, features: ClipFeatures, offset: int) -> float:
        """The standard deviation of the agreement at ``offset`` if mouth and speech were unrelated.

        Both sides are smooth (band-passed), so neighbouring frames are not independent samples: Bartlett's
        variance of a cross-correlation, (1/n) sum over lags of the product of the two autocorrelations, for
        each component, combined with the components' weights."""
        video, audio = _overlap(*self.project(features), offset)
        n = len(video)
        weights = self.correlations / self.correlations.sum()
        lags = min(n // 4, int(round(features.fps)))
        variance = 0.0
        for j, w in enumerate(weights):
            rv, ra = _autocorrelation(video[:, j], lags), _autocorrelation(audio[:, j], lags)
            terms = float(rv[0] * ra[0] + 2.0 * np.sum(rv[1:] * ra[1:]))
            variance += w * w * max(terms, 1.0) / n
        return math.sqrt(variance)

    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / MODEL_FILE, lambda f: np.savez(
            f, video_weights=self.video_weights, audio_weights=self.audio_weights, correlations=self.correlations))
        description = {"format": MODEL_FORMAT, "features": FEATURES_VERSION, **self.info}
        text = json.dumps(description, indent=1, sort_keys=True, default=_json_default) + "\n"
        atomic_write(folder / CONFIG_FILE, lambda f: f.write(text), mode="w")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> SyncModel:
        folder = Path(folder)
        try:
            info = json.loads((folder / CONFIG_FILE).read_text())
            with np.load(folder / MODEL_FILE, allow_pickle=False) as arrays:
                video, audio, corr = (np.asarray(arrays[k], np.float64)
                                      for k in ("video_weights", "audio_weights", "correlations"))
        except (OSError, ValueError, KeyError) as e:
            raise WeightsError(f"{folder} is not a fakebench sync model ({MODEL_FILE} + {CONFIG_FILE}): "
                               f"{str(e).splitlines()[0]}; train one with `fakebench train-sync`") from None
        if info.get("format") != MODEL_FORMAT or info.get("features") != FEATURES_VERSION:
            raise WeightsError(f"{folder} holds a {info.get('format')}/{info.get('features')} model; this fakebench "
                               f"reads {MODEL_FORMAT}/{FEATURES_VERSION}: retrain it with `fakebench train-sync`")
        expected = (len(corr),)
        if video.shape[1:] != expected or audio.shape[1:] != expected or not np.all(corr > 0):
            raise WeightsError(f"{folder}: the projections and correlations do not fit together; retrain it")
        return cls(video, audio, corr, {k: v for k, v in info.items() if k not in ("format", "features")})


def _overlap(video: np.ndarray, audio: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mouth frames i and speech frames i + k where both exist."""
    n = len(video)
    return video[max(0, -k):n - max(0, k)], audio[max(0, k):n - max(0, -k)]


def _column_correlations(v: np.ndarray, a: np.ndarray) -> np.ndarray:
    v = v - v.mean(0)
    a = a - a.mean(0)
    denom = np.sqrt((v * v).sum(0) * (a * a).sum(0))
    return np.divide((v * a).sum(0), denom, out=np.zeros(v.shape[1]), where=denom > 0)


def _autocorrelation(x: np.ndarray, lags: int) -> np.ndarray:
    x = x - x.mean()
    power = float(x @ x)
    if power <= 0:
        return np.r_[1.0, np.zeros(lags)]
    return np.array([float(x[:len(x) - k] @ x[k:]) / power for k in range(lags + 1)])


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def fit_sync_model(clips: Sequence[ClipFeatures], *, components: int = 3, regularisation: float = 0.3,
                   info: dict[str, Any] | None = None) -> SyncModel:
    """Regularised CCA of mouth against speech features over the face frames of in-sync clips, pooled.

    Each covariance gets ``regularisation`` times its mean variance added on the diagonal (ridge), so the
    216-dimensional speech side cannot fit noise on a few minutes of video.
    """
    if not clips:
        raise ValueError("no clips to fit the sync model on")
    video = np.vstack([c.video[c.valid] for c in clips])
    audio = np.vstack([c.audio[c.valid] for c in clips])
    n = len(video)
    if n < 10 * components:
        raise ValueError(f"{n} face frames are too few to fit {components} components")
    video = video - video.mean(0)
    audio = audio - audio.mean(0)
    cvv, caa, cva = video.T @ video / n, audio.T @ audio / n, video.T @ audio / n
    cvv += regularisation * np.trace(cvv) / len(cvv) * np.eye(len(cvv))
    caa += regularisation * np.trace(caa) / len(caa) * np.eye(len(caa))
    whiten_v = np.linalg.inv(np.linalg.cholesky(cvv))
    whiten_a = np.linalg.inv(np.linalg.cholesky(caa))
    u, s, vt = np.linalg.svd(whiten_v @ cva @ whiten_a.T)
    model_info = {"components": components, "regularisation": regularisation, "frames": n, "clips": len(clips),
                  "canonical_correlations": np.round(s[:components], 4).tolist(), **(info or {})}
    return SyncModel(whiten_v.T @ u[:, :components], whiten_a.T @ vt[:components].T, s[:components], model_info)


# ---------------------------------------------------------------------------------------------- estimation

@dataclass(frozen=True)
class SyncEstimate:
    offset: int  # +K: the audio is K frames later than the picture
    agreement: float  # the weighted correlation at the offset
    confidence: float  # agreement minus the median agreement over the offsets searched
    evidence_z: float  # the agreement in standard deviations of unrelated mouth and speech (Bartlett)
    curve: np.ndarray
    max_offset: int


def estimate_offset(model: SyncModel, features: ClipFeatures, max_offset: int) -> SyncEstimate:
    agreement, _ = model.curve(features, max_offset)
    best = int(np.argmax(agreement))
    peak = float(agreement[best])
    evidence = peak / model.agreement_sd(features, best - max_offset)
    return SyncEstimate(offset=best - max_offset, agreement=peak, confidence=peak - float(np.median(agreement)),
                        evidence_z=evidence, curve=agreement, max_offset=max_offset)


def usable_max_offset(n_frames: int, max_offset: int) -> int:
    """The search range actually used: at the extreme offsets at least two thirds of the clip overlap."""
    return max(1, min(max_offset, n_frames // 3))


# ---------------------------------------------------------------------------------------------- evaluation

def speaker_group(name: str) -> str:
    """The default speaker group of a clip file: its stem without a trailing ``_token`` (so numbered takes of
    one recording set stay together: ``grid_bbaf2n`` -> ``grid``, ``interview_3`` -> ``interview``)."""
    stem = Path(name).stem
    return re.sub(r"_[^_]+$", "", stem) or stem


def leave_one_group_out(clips: Sequence[ClipFeatures], groups: Sequence[str],
                        evaluate: Callable[[SyncModel, ClipFeatures], Any], **fit_options: Any) -> list[Any]:
    """``evaluate(model, clip)`` for every clip, each with a model fitted on the other groups only."""
    if len(set(groups)) < 2:
        raise ValueError("leave-one-speaker-out needs clips of at least two speaker groups")
    models: dict[str, SyncModel] = {}
    results = []
    for clip, group in zip(clips, groups, strict=True):
        if group not in models:
            models[group] = fit_sync_model([c for c, g in zip(clips, groups, strict=True) if g != group],
                                           **fit_options)
        results.append(evaluate(models[group], clip))
    return results


def shifted_levels_features(track: FaceTrack, audio: np.ndarray, sample_rate: int, fps: float,
                            shifts: Iterable[int]) -> dict[int, ClipFeatures]:
    """The clip's features with its audio delayed by each shift (frames; +K = audio K frames later)."""
    out = {}
    for shift in shifts:
        out[int(shift)] = ClipFeatures.of(track, shift_audio(audio, sample_rate, fps, int(shift)), sample_rate, fps)
    return out


def shift_audio(audio: np.ndarray, sample_rate: int, fps: float, frames: int) -> np.ndarray:
    """The audio delayed by ``frames`` video frames (silence in front), or advanced when negative; same length."""
    n = int(round(abs(frames) * sample_rate / fps))
    audio = np.asarray(audio)
    if frames == 0 or n == 0:
        return audio.copy()
    pad = np.zeros(min(n, len(audio)), audio.dtype)
    if frames > 0:
        return np.concatenate([pad, audio])[:len(audio)]
    return np.concatenate([audio[n:], pad])[:len(audio)]


EVALUATION_SHIFTS = (0, 1, -1, 2, -2, 3, -3, 5, -5, 8, -8, 12, -12)


def clip_features(sample: Any, shift: int = 0) -> ClipFeatures:
    """Features of a `fakebench.samples.Sample` (its clip and face track), its audio delayed by ``shift`` frames."""
    clip, track = sample.clip, sample.track
    if not clip.has_audio:
        raise ValueError(f"{sample.name} has no audio")
    audio = shift_audio(clip.audio, clip.sample_rate, clip.fps, shift)
    return ClipFeatures.of(track, audio, clip.sample_rate, clip.fps, name=f"{sample.name}{shift:+d}")


def train_sync_model(samples: Sequence[Any], groups: Sequence[str] | None = None, *, components: int = 3,
                     regularisation: float = 0.3, max_offset: int = 15,
                     shifts: Sequence[int] = EVALUATION_SHIFTS) -> tuple[SyncModel, dict[str, Any]]:
    """Fit the sync model on in-sync Samples, and evaluate it leave-one-speaker-out on copies of each clip with its
    audio shifted by ``shifts`` frames. Returns the model fitted on all clips and the evaluation (per clip and
    overall: the share within +-1 frame of the shift)."""
    groups = list(groups) if groups is not None else [speaker_group(s.name) for s in samples]
    base = [clip_features(s) for s in samples]
    options = {"components": components, "regularisation": regularisation}
    position = {id(f): i for i, f in enumerate(base)}

    def evaluate(model: SyncModel, features: ClipFeatures) -> dict[str, Any]:
        sample = samples[position[id(features)]]
        errors = {}
        for shift in shifts:
            found = estimate_offset(model, clip_features(sample, shift) if shift else features, max_offset)
            errors[int(shift)] = found.offset - int(shift)
        return {"clip": Path(sample.name).name, "errors": errors}

    per_clip = leave_one_group_out(base, groups, evaluate, **options)
    for row, group in zip(per_clip, groups, strict=True):
        row["group"] = group
    within = [abs(e) <= 1 for row in per_clip for e in row["errors"].values()]
    as_is = [abs(row["errors"][0]) <= 1 for row in per_clip]
    evaluation = {"protocol": "leave-one-speaker-group-out", "shifts": list(shifts), "max_offset": max_offset,
                  "within_1_frame_as_is": float(np.mean(as_is)), "within_1_frame_all": float(np.mean(within)),
                  "clips": per_clip}
    info = {"trained_on": [Path(s.name).name for s in samples], "groups": sorted(set(groups)), "evaluation": evaluation}
    return fit_sync_model(base, info=info, **options), evaluation
