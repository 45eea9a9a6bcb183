"""Read a run folder (what `fakebench bench` writes) into one `Run`: run.json and every table it holds.

Tables are read with `fakebench.tables.read_table` only; a table that is not there is None (its report section
then says "not run"). A folder without run.json is not a run: `InputFileError`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fakebench.errors import InputFileError
from fakebench.tables import read_table

RUN_JSON = "run.json"
CORPUS_DIR = "corpus"
MANIFEST = "corpus/manifest.parquet"
METRICS = "metrics.parquet"
COMPARE = "compare.parquet"
SCORES = "evaluation/scores.parquet"
EVALUATION = "evaluation/evaluation.parquet"
SHORTCUT = "evaluation/shortcut.json"
CROSS = "evaluation/cross_generator.parquet"
EVIDENCE = "evaluation/evidence.parquet"
PER_EMOTION = "evaluation/per_emotion.parquet"  # only when the fakes were made with emotions

# The columns each table must have for the report to use it (others are optional).
NEEDED = {
    MANIFEST: ("clip_id", "label"),
    METRICS: ("clip_id", "label"),
    COMPARE: ("generator", "metric", "value"),
    SCORES: ("clip_id", "detector", "label", "score"),
    EVALUATION: ("detector", "perturbation", "generator", "auc"),
    CROSS: ("detector", "trained_on", "tested_on", "auc"),
    EVIDENCE: ("clip_id", "label", "detector", "p_fake"),
    PER_EMOTION: ("detector", "perturbation", "emotion", "auc"),
}


@dataclass
class Run:
    """One run folder: its name (the folder's name, made unique in a report), run.json, and its tables (None when
    absent). ``evaluation_config`` is evaluation.parquet's provenance config; ``shortcut`` the probe's verdict."""

    name: str
    folder: Path
    info: dict[str, Any]
    manifest: pd.DataFrame | None = None
    metrics: pd.DataFrame | None = None
    compare: pd.DataFrame | None = None
    scores: pd.DataFrame | None = None
    evaluation: pd.DataFrame | None = None
    evaluation_config: dict[str, Any] = field(default_factory=dict)
    shortcut: dict[str, Any] | None = None
    cross: pd.DataFrame | None = None
    evidence: pd.DataFrame | None = None
    per_emotion: pd.DataFrame | None = None
    empty: set[str] = field(default_factory=set)  # tables that are there but hold no rows (loaded as None)

    @property
    def corpus_folder(self) -> Path:
        corpus = self.info.get("corpus") or {}
        return self.folder / str(corpus.get("path") or CORPUS_DIR)

    @property
    def synthetic_reference(self) -> bool:
        return bool(self.info.get("synthetic_reference"))

    @property
    def seed(self) -> int:
        seed = self.info.get("seed")
        return int(seed) if isinstance(seed, int | float) and seed == seed else 0


def _frame(folder: Path, relative: str, empty: set[str]) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    path = folder / relative
    if not path.is_file():
        return None, {}
    rows, provenance = read_table(path)
    config = dict(provenance.config) if provenance is not None else {}
    if not rows:
        empty.add(relative)
        return None, config
    frame = pd.DataFrame(rows)
    missing = [c for c in NEEDED.get(relative, ()) if c not in frame.columns]
    if missing:
        raise InputFileError(f"{path} lacks the column(s) {', '.join(missing)}; it is not a table fakebench bench "
                             "wrote. Run `fakebench bench` again")
    return frame, config


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputFileError(f"{path} is not readable JSON ({' '.join(str(e).split())[:100]}); "
                             "run `fakebench bench` again") from e
    if not isinstance(data, dict):
        raise InputFileError(f"{path} holds {type(data).__name__}, not a JSON object; run `fakebench bench` again")
    return data


def load_run(folder: str | os.PathLike, name: str | None = None) -> Run:
    """Read a run folder. Missing tables are None; a folder without run.json raises `InputFileError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"{folder}: no such run folder; give a folder written by `fakebench bench`")
    if not (folder / RUN_JSON).is_file():
        raise InputFileError(f"{folder} is not a run folder (it has no {RUN_JSON}); give a folder written by "
                             "`fakebench bench`")
    info = _json(folder / RUN_JSON)
    run = Run(name=name or folder.resolve().name, folder=folder, info=info)
    run.manifest, _ = _frame(folder, MANIFEST, run.empty)
    run.metrics, _ = _frame(folder, METRICS, run.empty)
    run.compare, _ = _frame(folder, COMPARE, run.empty)
    run.scores, _ = _frame(folder, SCORES, run.empty)
    run.evaluation, run.evaluation_config = _frame(folder, EVALUATION, run.empty)
    run.cross, _ = _frame(folder, CROSS, run.empty)
    run.evidence, _ = _frame(folder, EVIDENCE, run.empty)
    run.per_emotion, _ = _frame(folder, PER_EMOTION, run.empty)
    if (folder / SHORTCUT).is_file():
        run.shortcut = _json(folder / SHORTCUT)
    elif isinstance(run.evaluation_config.get("shortcut"), dict):
        run.shortcut = dict(run.evaluation_config["shortcut"])
    return run


def load_runs(folders: list[str | os.PathLike]) -> list[Run]:
    """Read several run folders; runs whose folders share a name get "-2", "-3" ... appended, in order."""
    if not folders:
        raise InputFileError("no run folder given; give one or more folders written by `fakebench bench`")
    runs: list[Run] = []
    seen: dict[str, int] = {}
    for folder in folders:
        base = Path(folder).resolve().name or "run"
        seen[base] = seen.get(base, 0) + 1
        runs.append(load_run(folder, base if seen[base] == 1 else f"{base}-{seen[base]}"))
    return runs
