"""``shortcut``: a deliberately dumb probe that sees only container and signal metadata, never a face.

Audio-visual deepfake datasets turned out to be separable by the length of the leading silence alone (Smeu et
al. 2024, arXiv 2412.00175): their fakes were made by a pipeline that left a trace no detector should be
credited for finding. This probe looks only at such traces: duration, leading and trailing silence, the
speech level, file size and bitrate, frame rate, frame size, sample rate and the video codec. Every
evaluation runs it: if it separates real from fake (its AUC's confidence interval excludes 0.5) the corpus
has a shortcut, and `shortcut_features` says which feature carries it.

Model: standardised features (missing ones, e.g. the file size of a clip in memory, imputed with the training
median) and L2 logistic regression (scikit-learn), its strength chosen on the validation split only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from fakebench.detectors.base import CORPUS_CHECK, Finding, LinearDetector, labels_of, register
from fakebench.errors import FakebenchError
from fakebench.samples import Sample

FEATURES = ("duration_s", "leading_silence_s", "trailing_silence_s", "speech_level_dbfs", "file_size_mb",
            "bitrate_kbps", "fps", "width", "height", "sample_rate", "codec_h264")
SILENCE_WINDOW_S = 0.01
SILENCE_BELOW_LOUD_DB = 35.0  # a 10 ms window this far under the loud (95th percentile) level is silence
SILENCE_FLOOR_DBFS = -60.0


def silences(audio: np.ndarray, sample_rate: int) -> tuple[float, float, float]:
    """(leading silence s, trailing silence s, loud level dBFS) of mono audio, from 10 ms RMS windows."""
    hop = max(1, int(round(SILENCE_WINDOW_S * sample_rate)))
    n = len(audio) // hop
    if n == 0:
        return 0.0, 0.0, -120.0
    rms = np.sqrt(np.mean(np.square(audio[:n * hop].reshape(n, hop).astype(np.float64)), axis=1))
    level = 20.0 * np.log10(rms + 1e-12)
    loud = float(np.percentile(level, 95))
    sound = level > max(loud - SILENCE_BELOW_LOUD_DB, SILENCE_FLOOR_DBFS)
    if not sound.any():
        whole = n * SILENCE_WINDOW_S
        return whole, whole, loud
    first, last = int(np.argmax(sound)), int(n - 1 - np.argmax(sound[::-1]))
    return first * SILENCE_WINDOW_S, (n - 1 - last) * SILENCE_WINDOW_S, loud


def metadata_features(sample: Sample) -> dict[str, float]:
    """The probe's features of one clip; NaN where the clip does not have it (no file, no audio)."""
    clip = sample.clip
    duration = clip.n_frames / clip.fps if clip.fps else math.nan
    out = dict.fromkeys(FEATURES, math.nan)
    out |= {"duration_s": duration, "fps": float(clip.fps), "width": float(clip.frames.shape[2]),
            "height": float(clip.frames.shape[1])}
    if clip.has_audio_track and clip.audio.size:
        lead, trail, loud = silences(clip.audio, clip.sample_rate)
        out |= {"leading_silence_s": lead, "trailing_silence_s": trail, "speech_level_dbfs": loud,
                "sample_rate": float(clip.sample_rate)}
    if sample.path is not None and sample.path.is_file():
        size = sample.path.stat().st_size
        out["file_size_mb"] = size / 1e6
        out["bitrate_kbps"] = size * 8 / 1000 / duration if duration else math.nan
        out["codec_h264"] = float(_video_codec(sample.path) == "h264")
    return out


def _video_codec(path) -> str:
    import av

    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.name if c.streams.video else ""


def feature_matrix(samples: Sequence[Sample]) -> np.ndarray:
    """(clips, features); a clip whose media cannot be read is a row of NaN (imputed when fitting, and scored as
    failed by `score_each`)."""
    rows = []
    for s in samples:
        loaded = s.is_loaded
        try:
            values = metadata_features(s)
        except FakebenchError:
            values = dict.fromkeys(FEATURES, math.nan)
        rows.append([values[f] for f in FEATURES])
        if not loaded:
            s.release()  # decoded here, let go here: a long list never sits in memory whole
    return np.array(rows, np.float64).reshape(len(samples), len(FEATURES))


def shortcut_features(samples: Sequence[Sample]) -> list[tuple[str, float]]:
    """Each feature's own AUC at telling fake from real on these clips, strongest first (|AUC - 0.5|): the
    feature at the top carries a shortcut when the probe finds one. Features that are constant or missing on
    every clip are left out."""
    from sklearn.metrics import roc_auc_score

    labels = labels_of(samples)
    if len(set(labels)) < 2:
        return []
    x = feature_matrix(samples)
    out = []
    for j, name in enumerate(FEATURES):
        col = x[:, j]
        ok = np.isfinite(col)
        if ok.sum() < 2 or len(set(labels[ok])) < 2 or np.ptp(col[ok]) == 0:
            continue
        out.append((name, float(roc_auc_score(labels[ok], col[ok]))))
    return sorted(out, key=lambda item: -abs(item[1] - 0.5))


@register("shortcut")
class ShortcutProbe(LinearDetector):
    description: ClassVar[str] = ("metadata-only probe (duration, silences, level, size, bitrate, fps, frame size, "
                                  "sample rate, codec): a corpus it can separate has a shortcut")
    needs: ClassVar[tuple[str, ...]] = ()
    features: ClassVar[tuple[str, ...]] = FEATURES
    role: ClassVar[str] = CORPUS_CHECK

    @classmethod
    def rank_features(cls, samples: Sequence[Sample]) -> list[tuple[str, float]]:
        return shortcut_features(samples)

    def features_of(self, sample: Sample) -> np.ndarray:
        values = metadata_features(sample)
        return np.array([values[f] for f in FEATURES], np.float64)

    def explain(self, sample: Sample) -> list[Finding]:
        return [Finding(f"{f.text}; metadata, not the face", f.value, f.frames, f.weight)
                for f in self.findings(sample, top=3)]
