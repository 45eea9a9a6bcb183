"""Train a detector on labelled Samples, evaluate detectors on a split (with perturbations), explain single clips.

The library behind `fakebench train-detector`, `fakebench evaluate` and `fakebench detect`; it takes Samples (the
command line makes them from a corpus or from paths) and writes nothing but the files it is asked for.

- `train_detector`: fit a registered detector on the train split, the validation split its only model-selection
  data, and save it with what it was trained on.
- `evaluate_detectors`: score a split with every detector under every perturbation, streaming rows into
  ``scores.parquet`` (resumable), then one `evaluation.parquet` row per detector x generator x perturbation with
  bootstrap confidence intervals over identities. The shortcut probe always runs (fitted here on train/val when
  not given): when its AUC's interval excludes 0.5 the evaluation says the corpus has a shortcut, and which
  metadata feature carries it. When fakes were made with emotions (the manifest's ``emotion`` column), also
  ``per_emotion.parquet``: one row per detector x perturbation x emotion of the fakes (`fakebench.evaluation.
  per_emotion`: each emotion's fakes against all real clips, the same bootstrap).
- `detect_clips`: P(fake) and evidence per detector for single clips, and one decision.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakebench.detectors.base import (
    CORPUS_CHECK,
    DETECTORS,
    OK,
    DetectorBase,
    corpus_checks,
    corpus_hash,
    read_description,
)
from fakebench.errors import ConfigError, FakebenchError
from fakebench.samples import Sample

# Default detectors, fitted by fakebench on its own demo corpus and shipped as package data (see the MODEL_CARD.md
# there): `detect` uses them when no --detector is given.
DEFAULT_DETECTORS = Path(__file__).resolve().parent / "data" / "detectors"
# detect's decision from the mean P(fake) of the detectors that could score the clip
DECIDE_FAKE, DECIDE_REAL = 0.65, 0.35


def train_detector(name: str, train: Sequence[Sample], val: Sequence[Sample], output: str | os.PathLike, *,
                   options: dict[str, Any] | None = None, seed: int = 0,
                   info: dict[str, Any] | None = None) -> DetectorBase:
    """Fit detector ``name`` on ``train`` (``val`` for model selection only) and save it to ``output``."""
    if not train:
        raise ConfigError("the training split is empty; give a corpus with a train split (corpus import assigns "
                          "identity-disjoint splits)")
    np.random.seed(seed)  # detectors are deterministic; this pins any library that draws from the global state
    detector = DETECTORS.create(name, **(options or {}))
    detector.fit(list(train), list(val))
    detector.info |= {"seed": seed, "trained_on_hash": corpus_hash([*train, *val]),
                      "n_train": {k: sum(s.label == k for s in train) for k in ("real", "fake")},
                      "n_val": {k: sum(s.label == k for s in val) for k in ("real", "fake")}, **(info or {})}
    detector.save(output)
    return detector


def keep_generators(samples: Sequence[Sample], generators: Sequence[str]) -> list[Sample]:
    """The real clips and the fakes of ``generators`` (to train a detector on some generators only)."""
    wanted = set(generators)
    return [s for s in samples if s.label == "real" or str(s.meta.get("generator") or "") in wanted]


def default_detector_folders() -> list[Path]:
    """The shipped default detectors' folders (those holding a saved detector), in name order."""
    if not DEFAULT_DETECTORS.is_dir():
        return []
    return sorted(p for p in DEFAULT_DETECTORS.iterdir() if (p / "detector.json").is_file())


def load_detectors(folders: Sequence[str | os.PathLike]) -> dict[str, DetectorBase]:
    """Saved detectors by name: the folder's name (two detectors of one kind can be told apart)."""
    out: dict[str, DetectorBase] = {}
    for folder in folders:
        path = Path(folder)
        key = path.name or read_description(path)["detector"]
        if key in out:
            raise ConfigError(f"two detector folders are named {key!r}; give them different names")
        out[key] = DetectorBase.load(path)
    return out


@dataclass
class EvaluationRun:
    scores: Path
    evaluation: Path
    failures: list[dict[str, str]] = field(default_factory=list)
    shortcut: dict[str, Any] = field(default_factory=dict)
    per_emotion: Path | None = None  # per_emotion.parquet, written when fakes were made with emotions


def evaluate_detectors(detectors: dict[str, DetectorBase], samples: Sequence[Sample], output: str | os.PathLike, *,
                       perturbations: Sequence[tuple[str, int]] = (), shortcut_fit: tuple[Sequence[Sample],
                                                                                          Sequence[Sample]] = ((), ()),
                       n_boot: int = 1000, seed: int = 0,
                       progress: Callable[[int, int], None] | None = None) -> EvaluationRun:
    """Score ``samples`` with each detector under no perturbation and each of ``perturbations``; write
    OUTPUT/scores.parquet (resumable) and OUTPUT/evaluation.parquet. Clips a detector cannot score are listed in
    ``failures`` with the reason, not dropped silently. ``shortcut_fit`` = (train, val): the corpus check (the
    detector registered with the role "corpus_check": the metadata shortcut probe) is fitted on them when not
    given, and each detector's decision threshold is chosen on val (never on test)."""
    import pandas as pd

    from fakebench.evaluation import ScoreWriter, per_generator
    from fakebench.perturb import apply
    from fakebench.tables import Provenance, write_table

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    detectors = dict(detectors)
    checks = [k for k, d in detectors.items() if d.role == CORPUS_CHECK]
    if not checks and corpus_checks():
        train, val = shortcut_fit
        checks = corpus_checks()[:1]
        if {s.label for s in train} == {"real", "fake"}:
            detectors[checks[0]] = DETECTORS.create(checks[0]).fit(list(train), list(val))
    variants = [("none", 0), *perturbations]
    config = {"detectors": sorted(detectors), "perturbations": [f"{n}:{lv}" for n, lv in perturbations],
              "clips": corpus_hash(samples)}
    thresholds = validation_thresholds(detectors, shortcut_fit[1])
    config["thresholds"] = thresholds
    writer = ScoreWriter(output / "scores.parquet", Provenance.make("scores", config=config))
    failures: list[dict[str, str]] = []
    total, done = len(samples) * len(variants), 0
    for sample in samples:
        for name, level in variants:
            tag = "none" if name == "none" else f"{name}:{level}"
            todo = [k for k in detectors if not writer.is_done(sample.clip_id, k, tag)]
            if todo:
                try:
                    shown = sample if name == "none" else apply(sample, name, level, seed=seed)
                except FakebenchError as e:
                    failures += [{"clip": sample.clip_id, "detector": k, "perturbation": tag, "reason": e.one_line()}
                                 for k in todo]
                    todo = []
                for key in todo:
                    scored = detectors[key].score([shown])
                    p, status = scored.p_fake[0], scored.status[0]
                    if status != OK or not np.isfinite(p):
                        failures.append({"clip": sample.clip_id, "detector": key, "perturbation": tag,
                                         "reason": status})
                        continue
                    writer.write({"clip_id": sample.clip_id, "detector": key, "label": sample.label, "score": p,
                                  "identity": sample.identity, "generator": sample.meta.get("generator") or "",
                                  "perturbation": tag, "split": sample.split})
            done += 1
            if progress is not None:
                progress(done, total)
        sample.release(track=True)
    scores_path = writer.close()
    from fakebench.tables import read_table

    scores = pd.DataFrame(read_table(scores_path)[0], columns=["clip_id", "detector", "label", "score", "identity",
                                                                "generator", "perturbation", "split"])
    rows = []
    for (key, tag), part in scores.groupby(["detector", "perturbation"], sort=True):
        if part["label"].nunique() < 2:
            rows.append({"detector": key, "perturbation": tag, "generator": "all",
                         "notes": ["one label only: no AUC"]})
            continue
        table = per_generator(part, threshold=thresholds.get(key), n_boot=n_boot, seed=seed)
        table.insert(0, "perturbation", tag)
        table.insert(0, "detector", key)
        rows += table.to_dict("records")
    frame = pd.DataFrame(rows)
    shortcut = _shortcut_verdict(frame, samples, checks[0] if checks else None)
    if len(frame):
        frame["notes"] = frame["notes"].apply(lambda v: "; ".join(v) if isinstance(v, list | tuple) else (v or ""))
    evaluation_path = write_table(output / "evaluation.parquet", frame.to_dict("records"),
                                  Provenance.make("evaluation", config={**config, "shortcut": shortcut}))
    emotion_path = _per_emotion(scores, samples, thresholds, output, config, n_boot=n_boot, seed=seed)
    return EvaluationRun(scores_path, evaluation_path, failures, shortcut, emotion_path)


def _recorded(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and str(value) != ""


def _per_emotion(scores: Any, samples: Sequence[Sample], thresholds: dict[str, float], output: Path,
                 config: dict[str, Any], *, n_boot: int, seed: int) -> Path | None:
    """OUTPUT/per_emotion.parquet when some fake in ``samples`` has an emotion (the manifest's ``emotion``), else
    nothing (and a stale file from an earlier evaluation is removed)."""
    from fakebench.evaluation import per_emotion
    from fakebench.tables import Provenance, write_table

    target = output / "per_emotion.parquet"
    asked = {s.clip_id: (s.meta.get("emotion"), s.meta.get("emotion_intensity")) for s in samples}
    if not any(s.label == "fake" and _recorded(s.meta.get("emotion")) for s in samples):
        target.unlink(missing_ok=True)
        return None
    scores = scores[scores["clip_id"].isin(asked.keys())].copy()
    scores["emotion"] = [asked[c][0] if _recorded(asked[c][0]) else None for c in scores["clip_id"]]
    scores["emotion_intensity"] = [asked[c][1] for c in scores["clip_id"]]
    rows = []
    for (key, tag), part in scores.groupby(["detector", "perturbation"], sort=True):
        if part["label"].nunique() < 2:
            continue
        table = per_emotion(part, threshold=thresholds.get(key), n_boot=n_boot, seed=seed)
        table.insert(0, "perturbation", tag)
        table.insert(0, "detector", key)
        rows += table.to_dict("records")
    for r in rows:
        r["notes"] = "; ".join(r["notes"]) if isinstance(r["notes"], list | tuple) else (r["notes"] or "")
    return write_table(target, rows, Provenance.make("per_emotion", config=config))


def validation_thresholds(detectors: dict[str, DetectorBase], val: Sequence[Sample]) -> dict[str, float]:
    """Each detector's decision threshold, chosen on the validation clips (the EER threshold of their scores); a
    detector whose validation scores lack a class gets none (the evaluation then notes the fixed 0.5)."""
    from fakebench.evaluation import choose_threshold

    out = {}
    if len({s.label for s in val}) < 2:
        return out
    for key, detector in detectors.items():
        scored = detector.score(list(val))
        p = np.asarray(scored.p_fake, float)
        ok = np.array([st == OK for st in scored.status]) & np.isfinite(p)
        labels = np.array([s.label == "fake" for s in val])[ok]
        if ok.sum() >= 2 and len(set(labels.tolist())) == 2:
            out[key] = float(choose_threshold(labels.astype(int), p[ok]))
    for s in val:
        s.release()
    return out


def _shortcut_verdict(frame: Any, samples: Sequence[Sample], check: str | None) -> dict[str, Any]:
    """The corpus check's verdict: a shortcut is found when its AUC's interval excludes 0.5."""
    if check is None:
        return {"ran": False, "why": "no corpus check (metadata probe) is registered"}
    row = frame[(frame.get("detector") == check) & (frame.get("perturbation") == "none")
                & (frame.get("generator") == "all")] if len(frame) else frame
    if not len(row):
        return {"ran": False, "detector": check,
                "why": "the shortcut probe could not be fitted (the train split lacks real or fake)"}
    r = row.iloc[0]
    low, high = r.get("auc_ci_low"), r.get("auc_ci_high")
    found = bool(low is not None and np.isfinite(low) and (low > 0.5 or high < 0.5))
    verdict = {"ran": True, "detector": check, "auc": r.get("auc"), "auc_ci_low": low, "auc_ci_high": high,
               "found": found}
    if low is None or not np.isfinite(low):
        verdict["why"] = "no confidence interval (too few identities): no verdict"
    ranked = DETECTORS.get(check).rank_features([s for s in samples if s.label in ("real", "fake")])
    if ranked:
        verdict["carrier"], verdict["carrier_auc"] = ranked[0]
    return verdict


@dataclass
class ClipVerdict:
    clip: str
    p_fake: float | None
    decision: str
    evidence: list[str]
    detectors: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"clip": self.clip, "p_fake": self.p_fake, "decision": self.decision, "evidence": self.evidence,
                "detectors": self.detectors}


def detect_clips(samples: Sequence[Sample], detectors: dict[str, DetectorBase]) -> list[ClipVerdict]:
    """For each clip: every detector's P(fake) (or why it could not score), its evidence in words, and one
    decision from the mean P(fake): fake >= 0.65, real <= 0.35, uncertain between (or when nothing scored)."""
    out = []
    for sample in samples:
        per = []
        for key, detector in detectors.items():
            scored = detector.score([sample])
            p, status = scored.p_fake[0], scored.status[0]
            evidence = []
            if status == OK and np.isfinite(p):
                try:
                    evidence = [f.text for f in detector.explain(sample)]
                except FakebenchError as e:
                    evidence = [f"could not explain: {e.one_line()}"]
            per.append({"name": key, "p_fake": float(p) if np.isfinite(p) else None,
                        "status": status, "evidence": evidence})
        scored_ps = [d["p_fake"] for d in per if d["p_fake"] is not None]
        p_fake = float(np.mean(scored_ps)) if scored_ps else None
        decision = ("uncertain" if p_fake is None else "fake" if p_fake >= DECIDE_FAKE
                    else "real" if p_fake <= DECIDE_REAL else "uncertain")
        headline = [d["evidence"][0] for d in per if d["evidence"]]
        out.append(ClipVerdict(sample.name, p_fake, decision, headline, per))
        sample.release()
    return out
