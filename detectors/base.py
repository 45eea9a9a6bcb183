"""The Detector protocol, its registry, findings, and saving a fitted detector safely.

A detector learns P(fake) for a clip from labelled Samples, scikit-learn style: ``fit(train, val)`` (the
validation split is the only data model selection may read; test never reaches ``fit``),
``predict_proba(samples)`` -> P(fake) per clip (NaN where it cannot score the clip, ``status`` says why),
``explain(sample)`` -> the findings behind a score, ``save(dir)`` / ``load(dir)``.

Detectors register by name with ``@register("name")`` in ``DETECTORS``; adding one is adding one file. Each
declares on its class what it needs from a clip (``needs``: "face", "audio"), its options, and a one-line
description. Nothing outside the plug-in knows a detector by name.

A saved detector is a folder: ``detector.json`` (name, options, fakebench's version, the training corpus's
hash, the files and their SHA-256) and ``state.npz`` (its fitted numbers, NumPy arrays only: loaded with
``allow_pickle=False``, never unpickled). Loading checks the format version and every checksum, so a folder
from another version or one that was tampered with is refused with a one-line reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fakebench.errors import ConfigError, FakebenchError, WeightsError
from fakebench.io import atomic_write, to_jsonable
from fakebench.registry import Option, Registry, validate_options
from fakebench.samples import Sample

DETECTORS = Registry("detector", "fakebench.detectors")
register = DETECTORS.register

FORMAT = "fakebench-detector"
FORMAT_VERSION = 1
CONFIG_FILE = "detector.json"
STATE_FILE = "state.npz"
LABELS = {"real": 0, "fake": 1}
OK = "ok"
CORPUS_CHECK = "corpus_check"


def corpus_checks() -> list[str]:
    """The registered detectors whose role is `CORPUS_CHECK` (fakebench has one: the metadata probe)."""
    return [name for name, cls in DETECTORS.registered().items() if getattr(cls, "role", "") == CORPUS_CHECK]


def is_corpus_check(name: str) -> bool:
    return name in DETECTORS and getattr(DETECTORS.get(name), "role", "") == CORPUS_CHECK


@dataclass(frozen=True)
class Finding:
    """One piece of evidence, in words a person reads, with the number behind it and the frames it concerns."""

    text: str
    value: float | None = None
    frames: tuple[int, ...] = ()
    weight: float | None = None  # how much it moved the score, when the detector can say

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


def labels_of(samples: Sequence[Sample]) -> np.ndarray:
    """0 for real, 1 for fake; any other label is a ConfigError naming the clip."""
    out = np.empty(len(samples), np.int64)
    for i, s in enumerate(samples):
        if s.label not in LABELS:
            raise ConfigError(f"{s.name}: label {s.label!r} is neither real nor fake; a detector learns from "
                              "labelled clips (a corpus manifest's label column)")
        out[i] = LABELS[s.label]
    return out


def corpus_hash(samples: Iterable[Sample]) -> str:
    """A hash of what a detector was trained on: the clip ids, labels and identities, in order."""
    h = hashlib.sha256()
    for s in samples:
        h.update(f"{s.clip_id}\t{s.label}\t{s.identity}\n".encode())
    return h.hexdigest()


class DetectorBase:
    """The detector contract, as data on the class; a detector subclasses this and implements the rest."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()  # "face", "audio": what a clip must have to be scored
    options: ClassVar[tuple[Option, ...]] = ()
    # "detector", or "corpus_check": a probe of the corpus rather than of the manipulation (one that reads only
    # metadata). An evaluation fits the corpus check when it is not given one, reads its AUC as a verdict on the
    # corpus (`rank_features` says which feature carries it), and reports keep it apart from the detectors.
    role: ClassVar[str] = "detector"

    @classmethod
    def rank_features(cls, samples: Sequence[Sample]) -> list[tuple[str, float]]:
        """A corpus check's features with each one's own AUC on these clips, strongest first; [] for a detector."""
        return []

    def __init__(self, **options: Any) -> None:
        self.config = validate_options(self.name, self.options, options)
        self.info: dict[str, Any] = {}

    # ------------------------------------------------------------------ the protocol
    def fit(self, train: Sequence[Sample], val: Sequence[Sample]) -> DetectorBase:
        raise NotImplementedError

    def predict_proba(self, samples: Sequence[Sample]) -> np.ndarray:
        raise NotImplementedError

    def explain(self, sample: Sample) -> list[Finding]:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """The fitted numbers to save (NumPy arrays)."""
        raise NotImplementedError

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ what a clip offers
    def status(self, sample: Sample) -> str:
        """"ok", or why this detector cannot score the clip ("no audio", "no face")."""
        clip = sample.clip
        if "audio" in self.needs and not (clip.has_audio_track and clip.has_audio):
            return "no audio"
        if "face" in self.needs and sample.track.face_frames == 0:
            return "no face"
        return OK

    # ------------------------------------------------------------------ saving
    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: np.asarray(v) for k, v in self.state().items()}
        atomic_write(folder / STATE_FILE, lambda f: np.savez(f, **state))
        from fakebench import __version__

        description = {"format": FORMAT, "format_version": FORMAT_VERSION, "detector": self.name,
                       "options": to_jsonable(self.config), "fakebench_version": __version__,
                       "info": to_jsonable(self.info),
                       "files": {STATE_FILE: _sha256(folder / STATE_FILE)}}
        text = json.dumps(description, indent=1, sort_keys=True) + "\n"
        atomic_write(folder / CONFIG_FILE, lambda f: f.write(text), mode="w")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> DetectorBase:
        folder = Path(folder)
        description = read_description(folder)
        if cls is not DetectorBase and description["detector"] != cls.name:
            raise WeightsError(f"{folder} holds a {description['detector']!r} detector, not {cls.name!r}")
        plugin = cls if cls is not DetectorBase else DETECTORS.get(description["detector"])
        detector = plugin(**description.get("options", {}))
        detector.info = dict(description.get("info", {}))
        with np.load(folder / STATE_FILE, allow_pickle=False) as arrays:
            detector.set_state({k: arrays[k] for k in arrays.files})
        return detector


def read_description(folder: Path) -> dict[str, Any]:
    """A saved detector's detector.json, checked: format, version and the SHA-256 of every file."""
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise WeightsError(f"{folder} is not a saved detector (no {CONFIG_FILE}); train one with `fakebench "
                           "train-detector`")
    try:
        description = json.loads(config.read_text())
    except (OSError, ValueError) as e:
        raise WeightsError(f"{config} is not readable JSON ({e}); the folder is damaged, train the detector "
                           "again") from None
    if description.get("format") != FORMAT or description.get("format_version") != FORMAT_VERSION:
        raise WeightsError(f"{folder} was saved as {description.get('format')} version "
                           f"{description.get('format_version')}; this fakebench reads {FORMAT} version "
                           f"{FORMAT_VERSION}: train the detector again")
    for name, expected in dict(description.get("files", {})).items():
        path = folder / name
        if not path.is_file():
            raise WeightsError(f"{path} is missing; the saved detector is incomplete, train it again")
        if _sha256(path) != expected:
            raise WeightsError(f"{path} does not match its checksum in {CONFIG_FILE} (changed after saving); "
                               "train the detector again or restore the folder")
    if "detector" not in description:
        raise WeightsError(f"{config} does not name its detector; train it again")
    return description


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class Scored:
    """P(fake) of each clip (NaN where it could not be scored) and each clip's status."""

    p_fake: np.ndarray
    status: list[str] = field(default_factory=list)


def score_each(detector: DetectorBase, samples: Sequence[Sample], score_one) -> Scored:
    """Run ``score_one(sample)`` on every clip the detector can score; the others get NaN and their status.

    A clip whose media fails (a FakebenchError) gets NaN and the one-line reason as its status: one bad clip
    does not stop an evaluation."""
    p = np.full(len(samples), np.nan)
    status = []
    for i, sample in enumerate(samples):
        try:
            state = detector.status(sample)
            if state == OK:
                p[i] = float(score_one(sample))
        except FakebenchError as e:
            state = e.one_line()
        status.append(state)
    return Scored(p, status)


def clip_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of clip scores (label 1 = fake) over the scored clips (NaN left out); NaN without both labels."""
    ok = np.isfinite(scores)
    labels, scores = labels[ok], scores[ok]
    if len(set(labels.tolist())) < 2:
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def clip_log_loss(labels: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy of clip probabilities (unscored clips left out); 0 when there are none."""
    ok = np.isfinite(p)
    if not ok.any():
        return 0.0
    q = np.clip(p[ok], 1e-7, 1 - 1e-7)
    return float(-np.mean(labels[ok] * np.log(q) + (1 - labels[ok]) * np.log(1 - q)))


def train_by_validation(network: Any, run_epoch: Callable[[], None], validate: Callable[[], np.ndarray],
                        y_val: np.ndarray, *, epochs: int, patience: int) -> dict[str, Any]:
    """Train a torch ``network`` epoch by epoch (``run_epoch``: one pass over the training data) and keep the epoch
    whose validation clips (``validate``: their P(fake)) score the best AUC, a tie (a small validation split
    saturates at 1.0) going to the lower log loss; stop after ``patience`` epochs without a better one. Without a
    validation AUC to choose by, the last epoch. Returns the history (best epoch, epochs run, AUC per epoch) and
    leaves the network in eval mode with the chosen weights."""
    best: tuple[tuple[float, float], int, dict] | None = None
    aucs: list[float] = []
    since_best = 0
    for epoch in range(epochs):
        network.train()
        run_epoch()
        p_val = validate()
        auc = clip_auc(y_val, p_val)
        aucs.append(auc)
        score = (auc if math.isfinite(auc) else -math.inf, -clip_log_loss(y_val, p_val))
        if best is None or score[0] > best[0][0] + 1e-9 or (abs(score[0] - best[0][0]) <= 1e-9 and
                                                              score[1] > best[0][1] + 1e-9):
            best = (score, epoch, {k: v.detach().clone() for k, v in network.state_dict().items()})
            since_best = 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    if not math.isfinite(best[0][0]):
        best = (best[0], len(aucs) - 1, network.state_dict())
    network.load_state_dict(best[2])
    network.eval()
    return {"best_epoch": best[1] + 1, "epochs_run": len(aucs),
            "val_auc": [None if not math.isfinite(a) else round(a, 4) for a in aucs]}


class LinearProbe:
    """Standardised numeric features (missing values imputed with the training median) and L2 logistic
    regression (scikit-learn), its strength chosen by AUC on the validation split only. Small, deterministic,
    saved as plain arrays, and explainable: each feature's contribution to the logit."""

    STRENGTHS = (0.01, 0.1, 1.0, 10.0)
    KEYS = ("median", "mean", "scale", "coef", "intercept", "real_mean", "fake_mean")

    def __init__(self, state: Mapping[str, np.ndarray] | None = None) -> None:
        self.arrays: dict[str, np.ndarray] = dict(state or {})
        self.strength: float | None = None

    def fit(self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> LinearProbe:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score

        if len(set(y_train.tolist())) < 2:
            raise ConfigError("the training split has one label only; a detector needs real and fake clips")
        median = _column_stat(np.nanmedian, x_train)
        filled = np.where(np.isfinite(x_train), x_train, median)
        scale = filled.std(axis=0)
        self.arrays = {"median": median, "mean": filled.mean(axis=0), "scale": np.where(scale > 0, scale, 1.0)}
        z_train = self.standardise(x_train)
        best: tuple[float, float] | None = None
        if len(set(y_val.tolist())) == 2:
            z_val = self.standardise(x_val)
            for strength in self.STRENGTHS:
                model = LogisticRegression(C=strength, max_iter=2000).fit(z_train, y_train)
                auc = float(roc_auc_score(y_val, model.predict_proba(z_val)[:, 1]))
                if best is None or auc > best[0] + 1e-9:
                    best = (auc, strength)
        self.strength = best[1] if best is not None else 1.0  # no validation labels of both kinds: the default
        model = LogisticRegression(C=self.strength, max_iter=2000).fit(z_train, y_train)
        self.arrays |= {"coef": model.coef_[0].astype(np.float64),
                        "intercept": np.array([model.intercept_[0]], np.float64),
                        "real_mean": _column_stat(np.nanmean, x_train[y_train == 0], missing=np.nan),
                        "fake_mean": _column_stat(np.nanmean, x_train[y_train == 1], missing=np.nan)}
        return self

    def standardise(self, x: np.ndarray) -> np.ndarray:
        a = self.arrays
        return (np.where(np.isfinite(x), x, a["median"]) - a["mean"]) / a["scale"]

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return self.standardise(x) * self.arrays["coef"]

    def p_fake(self, x: np.ndarray) -> np.ndarray:
        logit = self.contributions(x).sum(axis=-1) + self.arrays["intercept"][0]
        from scipy.special import expit

        return expit(logit)  # 1 / (1 + e^-logit) without overflow for a far-out clip

    @property
    def fitted(self) -> bool:
        return "coef" in self.arrays

    def check_state(self, n_features: int, what: str) -> None:
        if set(self.arrays) != set(self.KEYS) or any(
                np.asarray(self.arrays[k]).shape != (n_features,) for k in self.KEYS if k != "intercept"):
            raise WeightsError(f"the saved {what} does not fit this fakebench's {n_features} features; train it again")
        self.arrays = {k: np.asarray(v, np.float64) for k, v in self.arrays.items()}


def _column_stat(stat, x: np.ndarray, missing: float = 0.0) -> np.ndarray:
    """``stat`` (nanmean, nanmedian) of each column over its finite values; ``missing`` where it has none."""
    finite = np.isfinite(x).any(axis=0) if len(x) else np.zeros(x.shape[1], bool)
    out = np.full(x.shape[1], missing)
    if finite.any():
        out[finite] = stat(np.where(np.isfinite(x[:, finite]), x[:, finite], np.nan), axis=0)
    return out


def linear_findings(probe: LinearProbe, names: Sequence[str], x: np.ndarray, *, top: int = 3,
                    describe=None) -> list[Finding]:
    """The features that moved one clip's score most, in words: value, direction, and the training means."""
    a = probe.arrays
    contributions = probe.contributions(x[None])[0]
    findings = []
    for j in np.argsort(-np.abs(contributions))[:top]:
        if abs(contributions[j]) < 0.05:
            continue
        value = x[j]
        shown = "missing" if not np.isfinite(value) else f"{value:.3g}"
        toward = "fake" if contributions[j] > 0 else "real"
        text = (describe(names[j], value) if describe else None) or f"{names[j].replace('_', ' ')} {shown}"
        findings.append(Finding(text=f"{text}: points to {toward} (training clips: real {a['real_mean'][j]:.3g}, "
                                     f"fake {a['fake_mean'][j]:.3g} on average)",
                                value=None if not np.isfinite(value) else float(value),
                                weight=float(contributions[j])))
    return findings


class LinearDetector(DetectorBase):
    """A detector whose score is a `LinearProbe` over a fixed list of per-clip features: a subclass names them
    (``features``) and says how to compute one clip's row (`features_of`), and explains a clip in its own words."""

    features: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.probe = LinearProbe()

    def features_of(self, sample: Sample) -> np.ndarray:
        """One clip's feature row; raises FakebenchError when the clip cannot give it."""
        raise NotImplementedError

    def feature_matrix(self, samples: Sequence[Sample]) -> np.ndarray:
        """(clips, features); a clip that cannot give its features is a row of NaN (imputed when fitting)."""
        rows = []
        for sample in samples:
            loaded = sample.is_loaded
            try:
                rows.append(self.features_of(sample))
            except FakebenchError:
                rows.append(np.full(len(self.features), np.nan))
            if not loaded:
                sample.release()  # decoded here, let go here: a long list never sits in memory whole
        return np.array(rows, np.float64).reshape(len(samples), len(self.features))

    def fit(self, train: Sequence[Sample], val: Sequence[Sample]) -> LinearDetector:
        self.probe.fit(self.feature_matrix(train), labels_of(train), self.feature_matrix(val), labels_of(val))
        self.info = {"strength": self.probe.strength, "n_train": len(train), "n_val": len(val),
                     "features": list(self.features)}
        return self

    def fitted(self) -> LinearProbe:
        if not self.probe.fitted:
            raise ConfigError(f"the {self.name} detector is not fitted; fit it or load a saved one")
        return self.probe

    def predict_proba(self, samples: Sequence[Sample]) -> np.ndarray:
        return self.score(samples).p_fake

    def score(self, samples: Sequence[Sample]) -> Scored:
        probe = self.fitted()
        return score_each(self, samples, lambda s: probe.p_fake(self.features_of(s)[None])[0])

    def findings(self, sample: Sample, top: int = 2) -> list[Finding]:
        """The features that moved this clip's score most, in words."""
        return linear_findings(self.fitted(), self.features, self.features_of(sample), top=top)

    def state(self) -> dict[str, np.ndarray]:
        return dict(self.fitted().arrays)

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.probe = LinearProbe(state)
        self.probe.check_state(len(self.features), f"{self.name} detector")
