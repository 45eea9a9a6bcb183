"""Detector evaluation: clip and video metrics, identity-bootstrap intervals, calibration, breakdowns, score files.

Labels are 0 (real) and 1 (fake); scores are P(fake) (any real number for the ranking metrics; calibration needs
[0, 1]). Fake is the positive class everywhere, as in DeepfakeBench, LipForensics and AV-Deepfake1M.

Point estimates come from scikit-learn:

- ``auc``: `roc_auc_score` (trapezoidal area under `roc_curve`).
- ``eer``: the equal error rate where FNR = 1 - TPR meets FPR on `roc_curve` (``drop_intermediate=False``),
  linearly interpolated between the two ROC points that bracket the crossing (DeepfakeBench takes the nearer
  point instead). ``eer_threshold`` is the threshold of the bracketing point nearer to the crossing (a real
  operating point: a clip is called fake when its score is >= the threshold, scikit-learn's convention).
- ``ap``: `average_precision_score` (step-wise, not trapezoidal). AP depends on the class prior, so the row also
  gives ``fake_ratio`` = n_fake / (n_real + n_fake).
- ``accuracy`` and ``balanced_accuracy`` (`accuracy_score`, `balanced_accuracy_score`) call a clip fake when
  score >= ``threshold``. The threshold must come from validation data: `choose_threshold` (EER point, Youden's J
  or a fixed number). When none is given, 0.5 is used and a note says so.
- ``tpr_at_1fpr``, ``tpr_at_5fpr``: TPR at FPR 1 % and 5 %, linearly interpolated on the ROC curve between the
  last point with FPR <= target (the highest TPR there) and the next point.
- Calibration (scores in [0, 1] only): the reliability curve is `sklearn.calibration.calibration_curve`; ``ece``
  is computed by hand with the same equal-width bins (10 on [0, 1]; bin i holds scores in (i/10, (i+1)/10], the
  first bin also 0): ECE = sum over non-empty bins of (n_bin / n) * |fraction of fakes - mean score|;
  ``brier`` is `brier_score_loss`; ``log_loss`` is `log_loss` on scores clipped to [1e-15, 1 - 1e-15].

Uncertainty: percentile 95 % bootstrap intervals that resample IDENTITIES (whole clusters of clips), not clips,
since clips of one person are correlated and resampling clips understates the variance. Identities are resampled
with replacement within strata that keep each resample's class balance: identities with only real clips,
identities with only fake clips, and identities with both (a generator driven by a person's photo gives that
person real and fake clips; such an identity is always drawn whole, both its real and its fake clips). Each
stratum keeps its size. With both classes in the data every resample then holds both classes; a resample that
still held one class would be skipped (and counted in a note). A drawn identity becomes an integer weight on its
clips, so each resample is a weighted ROC; the resamples are computed together in NumPy (one sort, cumulative
sums per resample) and agree with scikit-learn's metrics given the same ``sample_weight`` (the tests check it).
Fewer than ``min_identities`` (5) identities with real clips or with fake clips: no interval, and a note.

Result rows (`evaluate_scores`) are flat, JSON-serialisable dicts with exactly the keys of `RESULT_KEYS`; a
metric that cannot be computed is None and ``notes`` says why. `per_generator` evaluates each generator's fakes
against all real clips of the split, `per_emotion` each emotion the fakes were made with (the corpus manifest's
``emotion`` column) against all real clips; `cross_generator_matrix` pivots train x test AUC. `ScoreWriter` streams
score rows to ``scores.parquet`` in bounded memory and lets an interrupted run resume.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fakebench.errors import InputFileError
from fakebench.io import atomic_write, to_jsonable
from fakebench.tables import PROVENANCE_KEY, Provenance

__all__ = ["RESULT_KEYS", "SCORE_COLUMNS", "Evaluation", "ScoreWriter", "aggregate_videos", "bootstrap_intervals",
           "choose_threshold", "completed_keys", "cross_generator_matrix", "equal_error_rate",
           "evaluate_scores", "evaluate_videos", "expected_calibration_error", "per_emotion", "per_generator",
           "reliability_curve", "tpr_at_fpr"]

RESULT_KEYS = ("auc", "auc_ci_low", "auc_ci_high", "eer", "eer_threshold", "ap", "fake_ratio", "accuracy",
               "balanced_accuracy", "threshold", "tpr_at_1fpr", "tpr_at_5fpr", "ece", "brier", "log_loss",
               "n_real", "n_fake", "n_identities", "notes")

NOTE_ONE_LABEL = "one label only: no AUC"
NOTE_FEW_IDENTITIES = "too few identities for a confidence interval"
NOTE_DEFAULT_THRESHOLD = "threshold 0.5: none chosen on validation data"
NOTE_NOT_PROBABILITIES = "scores outside [0, 1]: no calibration metrics"
NOTE_NO_IDENTITIES = "no identities given: each clip is its own cluster in the bootstrap"
NOTE_NO_BOOTSTRAP = "no bootstrap (n_boot=0)"

LOG_LOSS_EPS = 1e-15
ECE_BINS = 10
MIN_IDENTITIES = 5
_CHUNK_ELEMENTS = 2_000_000  # resamples x clips held at once in the bootstrap


@dataclass
class Evaluation:
    """One evaluation row; `as_row()` gives the flat dict of `RESULT_KEYS` (None where not computable)."""

    auc: float | None
    auc_ci_low: float | None
    auc_ci_high: float | None
    eer: float | None
    eer_threshold: float | None
    ap: float | None
    fake_ratio: float
    accuracy: float
    balanced_accuracy: float | None
    threshold: float
    tpr_at_1fpr: float | None
    tpr_at_5fpr: float | None
    ece: float | None
    brier: float | None
    log_loss: float | None
    n_real: int
    n_fake: int
    n_identities: int | None
    notes: list[str]

    def as_row(self) -> dict[str, Any]:
        return to_jsonable({k: getattr(self, k) for k in RESULT_KEYS})


# --------------------------------------------------------------------------------------------------- inputs


def _labels01(labels: Any) -> np.ndarray:
    """0/1 int array from 0/1, booleans or "real"/"fake" strings; anything else is a ValueError."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "OUS":
        text = np.array([str(v).strip().lower() for v in arr.tolist()])
        bad = ~np.isin(text, ["real", "fake", "0", "1"])
        if bad.any():
            raise ValueError(f"labels must be 0/1 or real/fake, got {text[bad][0]!r}")
        return np.isin(text, ["fake", "1"]).astype(np.int64)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.size and not np.isin(arr, [0, 1]).all():
        raise ValueError(f"labels must be 0 (real) or 1 (fake), got {np.unique(arr)[:5].tolist()}")
    return arr.astype(np.int64)


def _scores(scores: Any, n: int) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"scores must be one score per label ({n}), got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite numbers; a clip without a score must be left out (and reported), "
                         "not scored NaN")
    return s


def _groups(values: Any, n: int, what: str) -> np.ndarray:
    g = np.asarray(values, dtype=object)
    if g.shape != (n,):
        raise ValueError(f"{what} must be one per clip ({n}), got shape {g.shape}")
    return np.array([str(v) for v in g.tolist()], dtype=object)


# --------------------------------------------------------------------------------------------- ROC helpers
# These work on 2-D arrays (one ROC per row) so that the point estimate (one row, from scikit-learn's roc_curve)
# and the bootstrap (one row per resample) share the same interpolation code.


def _eer_rows(fpr: np.ndarray, tpr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EER per row, the index of the first point past the crossing, and the interpolation weight t in (0, 1].

    d = FNR - FPR falls from 1 (first point: FPR 0, TPR 0) to -1 (last point). i is the first point with d <= 0;
    the crossing lies between points i-1 and i at t = d[i-1] / (d[i-1] - d[i]) of the way, where FPR = FNR =
    FPR[i-1] + t (FPR[i] - FPR[i-1]).
    """
    d = (1.0 - tpr) - fpr
    i = np.argmax(d <= 0, axis=1)
    i = np.maximum(i, 1)
    rows = np.arange(fpr.shape[0])
    d0, d1 = d[rows, i - 1], d[rows, i]
    t = d0 / (d0 - d1)
    eer = fpr[rows, i - 1] + t * (fpr[rows, i] - fpr[rows, i - 1])
    return eer, i, t


def _tpr_at_fpr_rows(fpr: np.ndarray, tpr: np.ndarray, target: float) -> np.ndarray:
    """TPR at FPR = target per row: from the last point with FPR <= target (the highest TPR at that FPR, as
    points are ordered by threshold) linearly to the next point."""
    k = (fpr <= target).sum(axis=1)  # FPR is non-decreasing along a row; k >= 1 (the first point has FPR 0)
    rows = np.arange(fpr.shape[0])
    a = k - 1
    b = np.minimum(k, fpr.shape[1] - 1)
    fa, fb, ta, tb = fpr[rows, a], fpr[rows, b], tpr[rows, a], tpr[rows, b]
    gap = fb - fa
    frac = np.divide(target - fa, gap, out=np.zeros_like(fa), where=gap > 0)
    return ta + np.clip(frac, 0.0, 1.0) * (tb - ta)


def _roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, scores, pos_label=1, drop_intermediate=False)
    return fpr, tpr, thresholds


def equal_error_rate(labels: Any, scores: Any) -> tuple[float, float]:
    """(EER, threshold) from scikit-learn's ROC curve, interpolated between the bracketing points (module doc)."""
    y = _labels01(labels)
    s = _scores(scores, len(y))
    if len(np.unique(y)) < 2:
        raise ValueError("the EER needs real and fake clips; " + NOTE_ONE_LABEL)
    fpr, tpr, thresholds = _roc(y, s)
    eer, i, t = _eer_rows(fpr[None, :], tpr[None, :])
    j = int(i[0]) if t[0] >= 0.5 or not np.isfinite(thresholds[int(i[0]) - 1]) else int(i[0]) - 1
    return float(eer[0]), float(thresholds[j])


def tpr_at_fpr(labels: Any, scores: Any, target: float) -> float:
    """TPR at FPR = ``target`` (e.g. 0.01), interpolated on scikit-learn's ROC curve (module doc)."""
    y = _labels01(labels)
    s = _scores(scores, len(y))
    if len(np.unique(y)) < 2:
        raise ValueError("TPR at a fixed FPR needs real and fake clips; " + NOTE_ONE_LABEL)
    fpr, tpr, _ = _roc(y, s)
    return float(_tpr_at_fpr_rows(fpr[None, :], tpr[None, :], target)[0])


def choose_threshold(val_labels: Any, val_scores: Any, rule: str | float = "eer") -> float:
    """A decision threshold chosen on VALIDATION scores (clips with score >= threshold are called fake).

    ``rule``: "eer" (the EER threshold), "youden" (the ROC threshold maximising TPR - FPR, Youden's J; the
    highest such threshold on ties), or a number, returned as it is (0.5: DeepfakeBench's fixed cut on P(fake)).
    """
    if isinstance(rule, int | float) and not isinstance(rule, bool):
        if not np.isfinite(rule):
            raise ValueError(f"a fixed threshold must be a finite number, got {rule}")
        return float(rule)
    if rule == "eer":
        return equal_error_rate(val_labels, val_scores)[1]
    if rule == "youden":
        y = _labels01(val_labels)
        s = _scores(val_scores, len(y))
        if len(np.unique(y)) < 2:
            raise ValueError("Youden's threshold needs real and fake validation clips; " + NOTE_ONE_LABEL)
        fpr, tpr, thresholds = _roc(y, s)
        finite = np.isfinite(thresholds)
        j = np.where(finite, tpr - fpr, -np.inf)
        return float(thresholds[int(np.argmax(j))])
    raise ValueError(f"rule must be 'eer', 'youden' or a number, got {rule!r}")


# ------------------------------------------------------------------------------------------------ calibration


def _bin_ids(scores: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins on [0, 1], binned exactly as `sklearn.calibration.calibration_curve` (strategy uniform)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], scores)


def reliability_curve(labels: Any, scores: Any, n_bins: int = ECE_BINS,
                      strategy: str = "uniform") -> dict[str, list[float]]:
    """The reliability diagram: per non-empty bin the fraction of fakes (`prob_true`), the mean score
    (`prob_pred`, both from `calibration_curve`) and the number of clips (`count`, uniform bins only)."""
    from sklearn.calibration import calibration_curve

    y = _labels01(labels)
    s = _scores(scores, len(y))
    prob_true, prob_pred = calibration_curve(y, s, n_bins=n_bins, strategy=strategy, pos_label=1)
    out = {"prob_true": prob_true.tolist(), "prob_pred": prob_pred.tolist()}
    if strategy == "uniform":
        counts = np.bincount(_bin_ids(s, n_bins), minlength=n_bins)
        out["count"] = counts[counts > 0].astype(int).tolist()
    return out


def expected_calibration_error(labels: Any, scores: Any, n_bins: int = ECE_BINS) -> float:
    """ECE = sum over non-empty equal-width bins b of (n_b / n) * |mean label in b - mean score in b|.

    Bins as `calibration_curve` (uniform): bin i of ``n_bins`` holds scores in (i/n_bins, (i+1)/n_bins], the first
    bin also 0. Scores must be probabilities in [0, 1].
    """
    y = _labels01(labels)
    s = _scores(scores, len(y))
    if len(s) == 0:
        raise ValueError("no scores")
    if s.min() < 0 or s.max() > 1:
        raise ValueError("the ECE needs probabilities in [0, 1]")
    ids = _bin_ids(s, n_bins)
    total = np.bincount(ids, minlength=n_bins).astype(np.float64)
    sum_true = np.bincount(ids, weights=y.astype(np.float64), minlength=n_bins)
    sum_pred = np.bincount(ids, weights=s, minlength=n_bins)
    nz = total > 0
    return float(np.sum(np.abs(sum_true[nz] - sum_pred[nz])) / len(s))


# ------------------------------------------------------------------------------------------------- bootstrap


def _weighted_curves(y_sorted: np.ndarray, last: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """AUC, EER, AP, TPR at 1 % and 5 % FPR for each row of clip weights ``w`` (resamples x clips, clips in
    descending score order; ``last`` indexes the last clip of each run of equal scores, i.e. each threshold).

    The curves are the weighted ROC and precision-recall curves of scikit-learn's ``sample_weight``: cumulative
    weighted true and false positives at each distinct threshold, preceded by the point (0, 0).
    """
    tp = np.cumsum(w * y_sorted, axis=1)[:, last]
    fp = np.cumsum(w * (1 - y_sorted), axis=1)[:, last]
    zeros = np.zeros((w.shape[0], 1))
    tp = np.hstack([zeros, tp])
    fp = np.hstack([zeros, fp])
    pos, neg = tp[:, -1:], fp[:, -1:]
    tpr = tp / pos
    fpr = fp / neg
    auc = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2.0, axis=1)
    called = tp[:, 1:] + fp[:, 1:]
    precision = np.divide(tp[:, 1:], called, out=np.ones_like(called), where=called > 0)
    ap = np.sum(np.diff(tpr, axis=1) * precision, axis=1)
    eer = _eer_rows(fpr, tpr)[0]
    return {"auc": auc, "eer": eer, "ap": ap, "tpr_at_1fpr": _tpr_at_fpr_rows(fpr, tpr, 0.01),
            "tpr_at_5fpr": _tpr_at_fpr_rows(fpr, tpr, 0.05)}


def _strata(y: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Cluster code per clip, and the cluster codes of each non-empty stratum (real-only, fake-only, both)."""
    _, code = np.unique(clusters, return_inverse=True)
    n_c = int(code.max()) + 1
    fakes = np.bincount(code, weights=y, minlength=n_c)
    sizes = np.bincount(code, minlength=n_c)
    kind = np.where(fakes == 0, 0, np.where(fakes == sizes, 1, 2))
    return code, [np.flatnonzero(kind == k) for k in range(3) if (kind == k).any()]


def _cluster_weights(rng: np.random.Generator, strata: list[np.ndarray], n_clusters: int, b: int) -> np.ndarray:
    """How many times each cluster is drawn in each of ``b`` resamples (b x n_clusters), per stratum with
    replacement, each stratum keeping its size."""
    counts = np.zeros((b, n_clusters), dtype=np.float64)
    rows = np.arange(b)[:, None]
    for ids in strata:
        drawn = ids[rng.integers(0, len(ids), size=(b, len(ids)))]
        np.add.at(counts, (np.broadcast_to(rows, drawn.shape), drawn), 1.0)
    return counts


def bootstrap_intervals(labels: Any, scores: Any, identities: Any = None, *, n_boot: int = 1000, seed: int = 0,
                        level: float = 0.95,
                        min_identities: int = MIN_IDENTITIES) -> tuple[dict[str, tuple[float, float] | None],
                                                                       list[str]]:
    """Percentile bootstrap intervals of AUC, EER, AP and TPR at 1 % / 5 % FPR, resampling identities.

    Returns ({"auc": (low, high), "eer": ..., "ap": ..., "tpr_at_1fpr": ..., "tpr_at_5fpr": ...}, notes); every
    interval is None (and a note says why) with one label only, fewer than ``min_identities`` identities with real
    clips or with fake clips, or ``n_boot`` 0. ``identities`` None: each clip is its own cluster (clip bootstrap).
    Stratification and the weighted computation are described in the module doc. Seeded: the same inputs and
    seed give the same intervals.
    """
    y = _labels01(labels)
    s = _scores(scores, len(y))
    names = ("auc", "eer", "ap", "tpr_at_1fpr", "tpr_at_5fpr")
    none: dict[str, tuple[float, float] | None] = dict.fromkeys(names)
    notes: list[str] = []
    if len(np.unique(y)) < 2:
        return none, [NOTE_ONE_LABEL]
    if n_boot <= 0:
        return none, [NOTE_NO_BOOTSTRAP]
    if identities is None:
        clusters = np.arange(len(y)).astype(str).astype(object)
        notes.append(NOTE_NO_IDENTITIES)
    else:
        clusters = _groups(identities, len(y), "identities")
    if min(len(np.unique(clusters[y == 0])), len(np.unique(clusters[y == 1]))) < min_identities:
        return none, [*notes, NOTE_FEW_IDENTITIES]

    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order].astype(np.float64)
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    code, strata = _strata(y, clusters)
    code_sorted = code[order]
    n_clusters = int(code.max()) + 1
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // max(len(y), 1))
    values: dict[str, list[np.ndarray]] = {k: [] for k in names}
    skipped = 0
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        w = _cluster_weights(rng, strata, n_clusters, b)[:, code_sorted]
        both = ((w * y_sorted).sum(axis=1) > 0) & ((w * (1 - y_sorted)).sum(axis=1) > 0)
        skipped += int((~both).sum())
        if not both.any():
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            out = _weighted_curves(y_sorted, last, w[both])
        for k in names:
            values[k].append(out[k])
    if skipped:
        notes.append(f"{skipped} of {n_boot} bootstrap resamples held one class and were skipped")
    if skipped == n_boot:
        return none, notes
    tail = (1.0 - level) / 2.0 * 100.0
    intervals: dict[str, tuple[float, float] | None] = {}
    for k in names:
        low, high = np.percentile(np.concatenate(values[k]), [tail, 100.0 - tail])
        intervals[k] = (float(low), float(high))
    return intervals, notes


# ------------------------------------------------------------------------------------------------ evaluation


def evaluate_scores(labels: Any, scores: Any, identities: Any = None, *, threshold: float | None = None,
                    n_boot: int = 1000, seed: int = 0, min_identities: int = MIN_IDENTITIES,
                    extra_intervals: bool = False) -> dict[str, Any]:
    """All metrics of one set of scored clips as a flat JSON-serialisable dict with the keys of `RESULT_KEYS`.

    ``threshold`` (from `choose_threshold` on validation scores) sets accuracy and balanced accuracy; None uses
    0.5 with a note. The AUC interval resamples ``identities`` (`bootstrap_intervals`; ``n_boot`` 0: none).
    With one label only the ranking metrics are None and ``notes`` says "one label only: no AUC"; calibration
    metrics are None when scores are not in [0, 1]. ``extra_intervals`` adds eer_ci_*, ap_ci_*, tpr_at_1fpr_ci_*
    and tpr_at_5fpr_ci_* keys (beyond the contract of `RESULT_KEYS`).
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        balanced_accuracy_score,
        brier_score_loss,
        log_loss,
        roc_auc_score,
    )

    y = _labels01(labels)
    s = _scores(scores, len(y))
    if len(y) == 0:
        raise ValueError("no clips to evaluate")
    notes: list[str] = []
    both = len(np.unique(y)) == 2
    n_ids = None if identities is None else len(set(_groups(identities, len(y), "identities").tolist()))
    if threshold is None:
        threshold = 0.5
        notes.append(NOTE_DEFAULT_THRESHOLD)
    predicted = (s >= threshold).astype(np.int64)

    row: dict[str, Any] = dict.fromkeys(RESULT_KEYS)
    row.update(n_real=int((y == 0).sum()), n_fake=int((y == 1).sum()), n_identities=n_ids,
               fake_ratio=float(y.mean()), threshold=float(threshold),
               accuracy=float(accuracy_score(y, predicted)))
    if both:
        row["auc"] = float(roc_auc_score(y, s))
        row["eer"], row["eer_threshold"] = equal_error_rate(y, s)
        row["ap"] = float(average_precision_score(y, s, pos_label=1))
        row["balanced_accuracy"] = float(balanced_accuracy_score(y, predicted))
        fpr, tpr, _ = _roc(y, s)
        row["tpr_at_1fpr"] = float(_tpr_at_fpr_rows(fpr[None, :], tpr[None, :], 0.01)[0])
        row["tpr_at_5fpr"] = float(_tpr_at_fpr_rows(fpr[None, :], tpr[None, :], 0.05)[0])
    if s.min() >= 0 and s.max() <= 1:
        row["ece"] = expected_calibration_error(y, s)
        row["brier"] = float(brier_score_loss(y, s, pos_label=1))
        row["log_loss"] = float(log_loss(y, np.clip(s, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS), labels=[0, 1]))
    else:
        notes.append(NOTE_NOT_PROBABILITIES)

    intervals, boot_notes = bootstrap_intervals(y, s, identities, n_boot=n_boot, seed=seed,
                                                min_identities=min_identities)
    notes.extend(n for n in boot_notes if n not in notes)
    if not both and NOTE_ONE_LABEL not in notes:
        notes.append(NOTE_ONE_LABEL)
    if intervals["auc"] is not None:
        row["auc_ci_low"], row["auc_ci_high"] = intervals["auc"]
    if extra_intervals:
        for k in ("eer", "ap", "tpr_at_1fpr", "tpr_at_5fpr"):
            ci = intervals[k]
            row[f"{k}_ci_low"], row[f"{k}_ci_high"] = ci if ci is not None else (None, None)
    row["notes"] = notes
    return to_jsonable(row)


def aggregate_videos(labels: Any, scores: Any, videos: Any,
                     identities: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Clips -> videos: the mean score per video (group key ``videos``, e.g. the source video id).

    Returns (labels, scores, identities or None, video ids), one per video in sorted id order. A video whose
    clips disagree on the label (or on the identity) is a ValueError: the grouping key is wrong.
    """
    import pandas as pd

    y = _labels01(labels)
    s = _scores(scores, len(y))
    frame = pd.DataFrame({"video": _groups(videos, len(y), "videos"), "label": y, "score": s})
    if identities is not None:
        frame["identity"] = _groups(identities, len(y), "identities")
    grouped = frame.groupby("video", sort=True)
    for column in ("label", "identity") if identities is not None else ("label",):
        mixed = grouped[column].nunique()
        if (mixed > 1).any():
            raise ValueError(f"video {mixed[mixed > 1].index[0]!r} mixes clips of different {column}s; "
                             "group clips by a key that is unique per video")
    video = grouped.agg(label=("label", "first"), score=("score", "mean"),
                        **({"identity": ("identity", "first")} if identities is not None else {}))
    ids = video["identity"].to_numpy(dtype=object) if identities is not None else None
    return (video["label"].to_numpy(dtype=np.int64), video["score"].to_numpy(dtype=np.float64), ids,
            video.index.to_numpy(dtype=object))


def evaluate_videos(labels: Any, scores: Any, videos: Any, identities: Any = None, **kwargs: Any) -> dict[str, Any]:
    """`evaluate_scores` at video level: clips averaged per video by `aggregate_videos` first."""
    y, s, ids, _ = aggregate_videos(labels, scores, videos, identities)
    return evaluate_scores(y, s, ids, **kwargs)


# ------------------------------------------------------------------------------------------------ breakdowns

_REAL_GENERATORS = {"", "real", "none", "nan"}


def per_generator(df: Any, *, threshold: float | None = None, n_boot: int = 1000, seed: int = 0,
                  video_col: str | None = None, generator_col: str = "generator") -> Any:
    """One row per generator (plus "all"): that generator's fakes against ALL real clips of ``df``.

    ``df`` (pandas) has columns label (0/1 or real/fake), score, identity and ``generator_col`` (real clips have
    "real" or an empty value there; a fake without one counts as "unknown"), and ``video_col`` when the metrics
    should be computed on videos (`aggregate_videos`). Returns a DataFrame: ``generator`` then `RESULT_KEYS`.
    """
    import pandas as pd

    y = _labels01(df["label"].to_numpy())
    gen = np.array(["" if v is None or (isinstance(v, float) and v != v) else str(v)
                    for v in df[generator_col].tolist()], dtype=object)
    fake_gen = np.where(np.isin(np.char.lower(gen.astype(str)), list(_REAL_GENERATORS)), "unknown", gen)
    real = y == 0
    groups = [("all", np.ones(len(y), dtype=bool))]
    groups += [(g, real | ((y == 1) & (fake_gen == g))) for g in sorted(set(fake_gen[y == 1].tolist()))]
    rows = []
    for name, mask in groups:
        part = df[mask]
        ids = part["identity"].to_numpy() if "identity" in part else None
        kwargs = {"threshold": threshold, "n_boot": n_boot, "seed": seed}
        if video_col is not None:
            row = evaluate_videos(y[mask], part["score"].to_numpy(), part[video_col].to_numpy(), ids, **kwargs)
        else:
            row = evaluate_scores(y[mask], part["score"].to_numpy(), ids, **kwargs)
        rows.append({"generator": name, **row})
    return pd.DataFrame(rows, columns=["generator", *RESULT_KEYS])


NO_EMOTION = "not set"  # per_emotion's group of fakes made without an emotion (a generator without that option)


def per_emotion(df: Any, *, threshold: float | None = None, n_boot: int = 1000, seed: int = 0,
                emotion_col: str = "emotion", intensity_col: str = "emotion_intensity") -> Any:
    """One row per emotion the fakes were made with: that emotion's fakes against ALL real clips of ``df``.

    The question it answers: does a detector still work when the fake smiles? ``df`` (pandas) has label, score,
    identity and ``emotion_col`` (the manifest's ``emotion``: real clips are all counted as real whatever it says;
    fakes without one form the group `NO_EMOTION`), and optionally ``intensity_col``. Rows come in the order
    neutral, happy, sad, ... (`fakebench.metrics.expression.EMOTIONS`), others sorted, `NO_EMOTION` last. Returns a
    DataFrame: ``emotion``, ``mean_intensity`` (of that emotion's fakes; None where none is recorded), then
    `RESULT_KEYS`, computed as `per_generator`'s (the same identity bootstrap)."""
    import pandas as pd

    from fakebench.metrics.expression import EMOTIONS

    y = _labels01(df["label"].to_numpy())
    emotion = np.array([NO_EMOTION if v is None or (isinstance(v, float) and v != v) or not str(v) else str(v)
                        for v in df[emotion_col].tolist()], dtype=object)
    intensity = (pd.to_numeric(df[intensity_col], errors="coerce").to_numpy(dtype=float)
                 if intensity_col in df.columns else np.full(len(y), np.nan))
    present = set(emotion[y == 1].tolist())
    order = [e for e in EMOTIONS if e in present] + sorted(present - {*EMOTIONS, NO_EMOTION})
    order += [NO_EMOTION] if NO_EMOTION in present else []
    rows = []
    for name in order:
        fakes = (y == 1) & (emotion == name)
        mask = (y == 0) | fakes
        part = df[mask]
        ids = part["identity"].to_numpy() if "identity" in part else None
        row = evaluate_scores(y[mask], part["score"].to_numpy(), ids, threshold=threshold, n_boot=n_boot, seed=seed)
        level = intensity[fakes]
        mean = float(np.nanmean(level)) if np.isfinite(level).any() else None
        rows.append({"emotion": name, "mean_intensity": mean, **row})
    return pd.DataFrame(rows, columns=["emotion", "mean_intensity", *RESULT_KEYS])


def cross_generator_matrix(df: Any, *, metric: str = "auc", trained_col: str = "trained_on",
                           generator_col: str = "generator", n_boot: int = 0, seed: int = 0) -> Any:
    """The train x test table of ``metric`` (AUC by default): rows = ``trained_on``, columns = the generator
    tested on (each generator's fakes against all real clips scored by that model, `per_generator`, plus "all").

    ``df`` holds the scores of every trained model, one row per clip and model, with a ``trained_on`` column.
    """
    frames = []
    for trained_on, part in df.groupby(trained_col, sort=True):
        table = per_generator(part, n_boot=n_boot, seed=seed, generator_col=generator_col)
        table.insert(0, trained_col, trained_on)
        frames.append(table)
    import pandas as pd

    long = pd.concat(frames, ignore_index=True)
    matrix = long.pivot(index=trained_col, columns="generator", values=metric)
    columns = [c for c in matrix.columns if c != "all"] + (["all"] if "all" in matrix.columns else [])
    matrix = matrix[columns]
    matrix.columns.name = "tested_on"
    return matrix


# ---------------------------------------------------------------------------------------------- score files

SCORE_COLUMNS = ("clip_id", "detector", "label", "score", "identity", "generator", "perturbation", "split")
KEY_COLUMNS = ("clip_id", "detector", "perturbation")
_PART = re.compile(r"^part-(\d{6,})\.parquet$")


def _score_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("clip_id", pa.string()), ("detector", pa.string()), ("label", pa.int8()),
                      ("score", pa.float64()), ("identity", pa.string()), ("generator", pa.string()),
                      ("perturbation", pa.string()), ("split", pa.string())])


def _partial_dir(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _part_files(folder: Path) -> list[Path]:
    """Finished batch files in order (hidden temporary files of an interrupted write are not parts)."""
    if not folder.is_dir():
        return []
    parts = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _PART.match(p.name))]
    return [p for _, p in sorted(parts)]


def _read_keys(file: Path) -> list[tuple[str, str, str]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file, columns=list(KEY_COLUMNS))
    except (OSError, ValueError) as e:
        raise InputFileError(f"{file} is not a readable score table ({' '.join(str(e).split())[:120]}); "
                             "remove it and score again") from e
    cols = [table.column(c).to_pylist() for c in KEY_COLUMNS]
    return list(zip(*cols, strict=True))


def completed_keys(path: str | os.PathLike[str]) -> set[tuple[str, str, str]]:
    """The (clip_id, detector, perturbation) already scored in ``path`` (scores.parquet) and in the finished
    batches of an interrupted writer (``scores.parquet.partial/part-*.parquet``)."""
    p = Path(path)
    done: set[tuple[str, str, str]] = set()
    if p.is_file():
        done.update(_read_keys(p))
    for part in _part_files(_partial_dir(p)):
        done.update(_read_keys(part))
    return done


class ScoreWriter:
    """Append score rows to ``scores.parquet`` in bounded memory; resumable after a kill.

    Design: rows are buffered and every ``batch_size`` rows written as one complete parquet file,
    ``scores.parquet.partial/part-NNNNNN.parquet``, atomically (`fakebench.io.atomic_write`), so a kill loses at
    most the unflushed buffer and every file left is readable. `close()` streams the rows of an existing
    ``scores.parquet`` (resume) and then every part, one row group at a time, through a `pyarrow.parquet.
    ParquetWriter` into a temporary file that atomically replaces ``scores.parquet`` (provenance in the schema
    metadata, as `fakebench.tables.write_table` stores it, so `read_table` reads it), then removes the partial
    folder. Rows whose key (clip_id, detector, perturbation) was already written are dropped during the merge, so
    a kill between the rename and the removal cannot duplicate rows. Memory: the buffer plus the set of keys.

    With ``resume=True`` (default) the keys already in ``scores.parquet`` and in the partial folder are in
    `done` and `is_done` says which work to skip; a provenance with a different ``config_hash`` from the stored
    one is an error (scores of another configuration must not mix). ``resume=False`` starts afresh: the partial
    folder is removed and ``scores.parquet`` is replaced on close. One writer per file at a time.
    """

    def __init__(self, path: str | os.PathLike[str], provenance: Provenance | None = None, *,
                 batch_size: int = 512, resume: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.path = Path(path)
        self.provenance = provenance or Provenance.make("scores")
        self.batch_size = batch_size
        self.resume = resume
        self.partial = _partial_dir(self.path)
        self._buffer: list[dict[str, Any]] = []
        self._closed = False
        self.rows_written = 0
        if resume:
            self._check_provenance()
            self.done = completed_keys(self.path)
        else:
            shutil.rmtree(self.partial, ignore_errors=True)
            self.done = set()
        parts = _part_files(self.partial)
        self._next_part = int(_PART.match(parts[-1].name).group(1)) + 1 if parts else 0  # type: ignore[union-attr]

    def _check_provenance(self) -> None:
        import pyarrow.parquet as pq

        files = ([self.path] if self.path.is_file() else []) + _part_files(self.partial)
        for file in files:
            try:
                raw = (pq.read_schema(file).metadata or {}).get(PROVENANCE_KEY)
            except (OSError, ValueError) as e:
                raise InputFileError(f"{file} is not a readable score table; remove it and score again") from e
            if raw and self.provenance.config_hash:
                stored = Provenance.from_json(raw)
                if stored.config_hash and stored.config_hash != self.provenance.config_hash:
                    raise InputFileError(f"{file} holds scores made with another configuration; write to a new "
                                         "file, or pass resume=False to replace it")

    def is_done(self, clip_id: str, detector: str, perturbation: str = "none") -> bool:
        return (str(clip_id), str(detector), str(perturbation)) in self.done

    def write(self, row: Mapping[str, Any]) -> None:
        """Add one score row (clip_id, detector, label 0/1 or real/fake, score; identity, generator, split default
        "", perturbation "none"). A key already done is a ValueError."""
        if self._closed:
            raise ValueError("this ScoreWriter is closed")
        missing = [c for c in ("clip_id", "detector", "label", "score") if row.get(c) is None]
        if missing:
            raise ValueError(f"a score row needs {', '.join(missing)}")
        score = float(row["score"])
        if not np.isfinite(score):
            raise ValueError(f"score of {row['clip_id']!r} is not a finite number; leave a failed clip out and "
                             "report it")
        clean = {"clip_id": str(row["clip_id"]), "detector": str(row["detector"]),
                 "label": int(_labels01([row["label"]])[0]), "score": score,
                 "identity": str(row.get("identity") or ""), "generator": str(row.get("generator") or ""),
                 "perturbation": str(row.get("perturbation") or "none"), "split": str(row.get("split") or "")}
        key = (clean["clip_id"], clean["detector"], clean["perturbation"])
        if key in self.done:
            raise ValueError(f"{key} is already scored; check is_done() before scoring")
        self.done.add(key)
        self._buffer.append(clean)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.write(row)

    def _table(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        import pyarrow as pa

        schema = _score_schema().with_metadata({PROVENANCE_KEY: self.provenance.to_json().encode()})
        return pa.Table.from_pylist(list(rows), schema=schema)

    def flush(self) -> None:
        """Write the buffered rows as the next part file (complete or absent after a kill)."""
        if not self._buffer:
            return
        import pyarrow.parquet as pq

        table = self._table(self._buffer)
        target = self.partial / f"part-{self._next_part:06d}.parquet"
        atomic_write(target, lambda f: pq.write_table(table, f))
        self._next_part += 1
        self.rows_written += len(self._buffer)
        self._buffer = []

    def close(self) -> Path:
        """Flush, merge the existing table (when resuming) and all parts into ``scores.parquet`` atomically."""
        if self._closed:
            return self.path
        self.flush()
        import pyarrow.parquet as pq

        sources = ([self.path] if self.resume and self.path.is_file() else []) + _part_files(self.partial)
        schema = self._table([]).schema

        def merge(tmp: Path) -> None:
            seen: set[tuple[str, str, str]] = set()
            with pq.ParquetWriter(tmp, schema) as writer:
                for source in sources:
                    for batch in pq.ParquetFile(source).iter_batches(batch_size=max(self.batch_size, 1024)):
                        table = _conform(batch, schema)
                        keys = zip(*(table.column(c).to_pylist() for c in KEY_COLUMNS), strict=True)
                        keep = []
                        for key in keys:
                            keep.append(key not in seen)
                            seen.add(key)
                        if not all(keep):
                            table = table.filter(keep)
                        if table.num_rows:
                            writer.write_table(table)

        atomic_write(self.path, merge, mode=None)
        shutil.rmtree(self.partial, ignore_errors=True)
        self._closed = True
        return self.path

    def __enter__(self) -> ScoreWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:  # keep the finished rows for a resumed run; the merge waits for a clean close
            with contextlib.suppress(Exception):
                self.flush()
            self._closed = True


def _conform(batch: Any, schema: Any) -> Any:
    """A record batch as a table of the score schema (columns in order, types cast) with ``schema``'s metadata."""
    import pyarrow as pa

    table = pa.Table.from_batches([batch])
    return table.select(list(SCORE_COLUMNS)).cast(schema)
