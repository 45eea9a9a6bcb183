"""Corpora: the manifest schema, loading with validation, identity-disjoint splits, and the summary.

A corpus is a folder holding ``manifest.parquet`` (one row per clip), ``corpus.json`` (how it was made,
and the problems met making it) and the media. Paths in the manifest are relative to the folder, so a
corpus can be moved. Importing a dataset is in `fakebench.corpus.importers`; making fakes from a real corpus
is in `fakebench.corpus.build`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fakebench.errors import ConfigError, FakebenchError
from fakebench.io import atomic_write, write_json_atomic

if TYPE_CHECKING:
    from fakebench.samples import Sample

MANIFEST = "manifest.parquet"
META = "corpus.json"
FORMAT = "fakebench-corpus/1"
LABELS = ("real", "fake")
SPLITS = ("train", "val", "test")
DEFAULT_RATIOS = (0.8, 0.1, 0.1)
SYNTHETIC_REFERENCE = "synthetic-reference"
# x264 writes every corpus clip with one thread: a build's parallelism is across clips (its workers), and the
# fixed count keeps the bytes independent of machine, executor and worker count (see fakebench.media).
CORPUS_ENCODER_THREADS = 1

# The schema of DESIGN.md, plus the ground-truth JSON of generated clips, where the clip comes from, and whether it
# has any audio (False for a visual-only clip: no audio track and no separate audio file).
STRING_COLUMNS = ("clip_id", "path", "label", "generator", "identity", "source_clip", "audio_source", "split",
                  "sha256", "ground_truth", "source")
COLUMN_TYPES: dict[str, str] = {
    "clip_id": "string", "path": "string", "label": "string", "generator": "string", "identity": "string",
    "source_clip": "string", "audio_source": "string", "split": "string", "fps": "float64",
    "sample_rate": "int64", "n_frames": "int64", "duration_s": "float64", "sha256": "string",
    "ground_truth": "string", "source": "string", "has_audio": "bool",
}
# Columns a manifest written before they existed lacks: filled with their default on reading (and on making).
COLUMN_DEFAULTS: dict[str, Any] = {"has_audio": True}
REQUIRED_COLUMNS = tuple(c for c in COLUMN_TYPES if c not in COLUMN_DEFAULTS)
COLUMN_HELP = {
    "generator": "empty for real clips",
    "source_clip": "the clip a row was made from (itself for imported clips)",
    "audio_source": "the clip whose audio it carries",
    "ground_truth": "relative path of the generator's ground-truth JSON; empty for real clips",
    "source": f"dataset the reference class comes from, or {SYNTHETIC_REFERENCE!r} for the offline demo",
    "has_audio": "false for a visual-only clip (no audio track, no separate audio file): audio-driven steps "
                 "(fakes driven by the clip's own audio, lip-sync) skip it; true in manifests older than the column",
}


class CorpusError(FakebenchError):
    """A corpus folder or manifest that is missing, malformed, inconsistent, or of another corpus."""


@dataclass
class Corpus:
    folder: Path
    manifest: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def media_path(self, relative: str) -> Path:
        return self.folder / relative

    def samples(self, split: str | None = None, label: str | None = None) -> list[Sample]:
        """The clips as Samples (in manifest order), optionally of one split and/or label; the other manifest
        columns (generator, source_clip, fps, sha256, ...) are in each Sample's ``meta``."""
        from fakebench.samples import Sample

        frame = filter_manifest(self.manifest, split=split, label=label)
        own = ("clip_id", "path", "label", "identity", "split")
        return [Sample.from_path(self.media_path(row["path"]), clip_id=str(row["clip_id"]), label=str(row["label"]),
                                 identity=str(row["identity"]), split=str(row["split"]),
                                 meta={k: self._meta_value(k, v) for k, v in row.items() if k not in own})
                for row in frame.to_dict("records")]

    def _meta_value(self, column: str, value: Any) -> Any:
        """A manifest value for a Sample's meta: ``audio_path`` (a separate audio file) made absolute, so that
        the Sample's clip carries that audio."""
        if column == "audio_path" and isinstance(value, str) and value:
            return str(self.media_path(value))
        return value

    @property
    def is_synthetic_reference(self) -> bool:
        return bool((self.manifest["source"] == SYNTHETIC_REFERENCE).any())


# ---------------------------------------------------------------------------------------------- the manifest

def make_manifest(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows (dicts) -> a manifest with the schema's columns first, typed, sorted by clip_id."""
    frame = with_default_columns(pd.DataFrame(rows))
    for column in REQUIRED_COLUMNS:
        if column not in frame:
            frame[column] = None
    extra = sorted(c for c in frame.columns if c not in COLUMN_TYPES)
    frame = frame[[*COLUMN_TYPES, *extra]]
    frame = frame.astype({c: t for c, t in COLUMN_TYPES.items() if t == "string"})
    for column in extra:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("string")
    frame = frame.astype({c: t for c, t in COLUMN_TYPES.items() if t != "string"})
    return frame.sort_values("clip_id", kind="stable").reset_index(drop=True)


def with_default_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with each column of `COLUMN_DEFAULTS` present, its missing values filled with the default (a
    manifest written before the column existed reads as it always meant: every clip has audio)."""
    for column, default in COLUMN_DEFAULTS.items():
        if column not in frame.columns:
            at = frame.columns.get_loc("source") + 1 if "source" in frame.columns else len(frame.columns)
            frame.insert(at, column, pd.Series([default] * len(frame), index=frame.index,
                                               dtype=COLUMN_TYPES[column]))
        elif frame[column].isna().any() or frame[column].dtype != COLUMN_TYPES[column]:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), default) \
                .astype(COLUMN_TYPES[column])
    return frame


def validate_manifest(frame: pd.DataFrame, where: str, folder: Path | None = None) -> None:
    """CorpusError for missing columns, duplicate ids, bad labels or splits, and (with `folder`) missing files."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise CorpusError(f"{where} lacks the column(s) {', '.join(missing)} (was it edited by hand?); a manifest "
                          f"needs {', '.join(REQUIRED_COLUMNS)}. Re-create it with `fakebench corpus import` or "
                          "`fakebench corpus build`")
    duplicated = frame["clip_id"][frame["clip_id"].duplicated()].unique()
    if len(duplicated):
        raise CorpusError(f"{where} has {len(duplicated)} duplicate clip id(s): {_few(duplicated)}; "
                          "every clip_id must be unique")
    if frame["clip_id"].isna().any() or frame["path"].isna().any():
        raise CorpusError(f"{where} has rows without a clip_id or path; every row needs both")
    bad = frame["label"][~frame["label"].isin(LABELS)]
    if len(bad):
        raise CorpusError(f"{where} has {len(bad)} row(s) with a bad label ({_few(bad.astype(str).unique())}); "
                          f"labels are {' or '.join(LABELS)}")
    split = frame["split"].dropna()
    bad = split[~split.isin(SPLITS)]
    if len(bad):
        raise CorpusError(f"{where} has {len(bad)} row(s) with an unknown split ({_few(bad.unique())}); splits "
                          f"are {', '.join(SPLITS)}")
    absolute = frame["path"][frame["path"].map(os.path.isabs)]
    if len(absolute):
        raise CorpusError(f"{where} has absolute paths ({_few(absolute)}); paths must be relative to the corpus "
                          "folder so it can be moved")
    if folder is not None:
        gone = [p for p in frame["path"] if not (folder / p).exists()]
        if gone:
            raise CorpusError(f"{where}: {len(gone)} media file(s) listed in the manifest are missing "
                              f"({_few(gone)}); restore them or re-import the corpus")


def _few(values, n: int = 5) -> str:
    values = [str(v) for v in values]
    more = f" and {len(values) - n} more" if len(values) > n else ""
    return ", ".join(values[:n]) + more


def load_corpus(folder: str | os.PathLike, *, check_files: bool = True) -> Corpus:
    """Read and validate a corpus folder; CorpusError says what is wrong and how to fix it."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise CorpusError(f"{folder} is not a folder; give a corpus folder (made by `fakebench corpus import`)")
    if not path.is_file():
        raise CorpusError(f"{folder} is not a corpus: it has no {MANIFEST}; make one with `fakebench corpus "
                          "import` or `fakebench corpus build`")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise CorpusError(f"{path} is not a readable parquet table ({' '.join(str(e).split())[:120]}); "
                          "re-create the corpus") from e
    validate_manifest(frame, str(path), folder if check_files else None)
    return Corpus(folder=folder, manifest=with_default_columns(frame), meta=read_meta(folder))


def read_meta(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / META).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise CorpusError(f"{folder / META} is damaged ({' '.join(str(e).split())[:120]}); delete it and "
                          "re-create the corpus") from e


def write_corpus(folder: Path, manifest: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Write manifest and meta, each atomically (temp file, then rename)."""
    validate_manifest(manifest, f"the manifest for {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / MANIFEST, lambda f: manifest.to_parquet(f, index=False))
    write_json_atomic(folder / META, {"format": FORMAT, **meta})


def claim_output(folder: Path, fingerprint: dict[str, Any]) -> None:
    """Make `folder` ready for the corpus described by `fingerprint`, or say why it cannot be.

    An empty or new folder is claimed; a folder holding the same corpus (same fingerprint) is resumed; a
    folder holding a different corpus, or other files, is refused.
    """
    if folder.exists() and not folder.is_dir():
        raise CorpusError(f"{folder} is a file; give a folder for the corpus")
    if folder.is_dir() and any(folder.iterdir()):
        meta = read_meta(folder)
        if not meta:
            raise CorpusError(f"{folder} already holds files and is not a fakebench corpus; choose an empty or new "
                              "folder")
        if meta.get("fingerprint") != fingerprint:
            made = describe_fingerprint(meta.get("fingerprint"))
            raise CorpusError(f"{folder} already holds a different corpus ({made}); choose another folder, or "
                              "repeat the options it was made with to resume it")
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CorpusError(f"cannot create {folder} ({e.strerror}); choose a writable folder") from e
    write_json_atomic(folder / META, {"format": FORMAT, "fingerprint": fingerprint, "complete": False})


def describe_fingerprint(fingerprint: dict | None) -> str:
    if not fingerprint:
        return "unknown origin"
    return ", ".join(f"{k}={v}" for k, v in fingerprint.items())


# ---------------------------------------------------------------------------------------------- splits

def parse_ratios(text: str | tuple[float, ...]) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' -> train, val, test ratios summing to 1."""
    try:
        values = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise ConfigError(f"split ratios must be three numbers like 0.8,0.1,0.1; got {text!r}") from None
    if len(values) != 3 or any(v < 0 or not np.isfinite(v) for v in values) or sum(values) <= 0:
        raise ConfigError(f"split ratios must be three non-negative numbers (train,val,test) with a positive "
                          f"sum, like 0.8,0.1,0.1; got {text!r}")
    total = sum(values)
    return tuple(v / total for v in values)  # type: ignore[return-value]


def identity_order(identities: pd.Series | list[str], seed: int) -> pd.Series:
    """A seeded hash per identity: the same seed always orders identities the same way."""
    unique = pd.Index(pd.unique(pd.Series(identities, dtype="string")))
    keys = [int.from_bytes(hashlib.sha256(f"{seed}\x00{name}".encode()).digest()[:8], "big") for name in unique]
    return pd.Series(keys, index=unique, dtype="uint64")


def assign_splits(identities: pd.Series, *, seed: int = 0,
                  ratios: tuple[float, float, float] = DEFAULT_RATIOS) -> pd.Series:
    """Identity-disjoint split of each row: identities in seeded-hash order fill train, val, test in turn, each
    identity going to the split where the middle of its share of the clips falls. No identity is in two
    splits; the same seed and identities always give the same split."""
    identities = pd.Series(identities, dtype="string").reset_index(drop=True)
    if identities.isna().any():
        raise CorpusError("some clips have no identity; splits need every clip's identity")
    counts = identities.value_counts()
    order = identity_order(counts.index.tolist(), seed).sort_values(kind="stable")
    counts = counts.reindex(order.index)
    middle = (counts.cumsum() - counts / 2) / counts.sum()
    edges = np.cumsum(ratios)[:-1]
    names = np.array(SPLITS)[np.searchsorted(edges, middle.to_numpy(), side="right")]
    split_of = pd.Series(names, index=counts.index)
    return identities.map(split_of).astype("string")


def filter_manifest(frame: pd.DataFrame, **equals: str | list[str] | None) -> pd.DataFrame:
    """Rows whose columns equal the given values (a list means any of them); None ignores a column."""
    mask = np.ones(len(frame), bool)
    for column, value in equals.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        mask &= frame[column].isin(values).to_numpy()
    return frame[mask]


# ---------------------------------------------------------------------------------------------- summary

def corpus_info(corpus: Corpus, *, verify: bool = False) -> dict[str, Any]:
    """Counts per label, generator, split and identity, total duration, and every problem known."""
    frame = corpus.manifest
    problems = [f"{p['item']}: {p['error']}" for p in corpus.meta.get("problems", [])]
    if verify:
        from fakebench.media import file_sha256

        for row in frame.itertuples():
            if file_sha256(corpus.media_path(row.path)) != row.sha256:
                problems.append(f"{row.clip_id}: {row.path} does not match its sha256 (changed or corrupt)")
    splits = frame.groupby(frame["split"].fillna("(none)"))["identity"].agg(["size", "nunique"])
    info: dict[str, Any] = {
        "folder": str(corpus.folder),
        "reference_class": ("SYNTHETIC REFERENCE: the 'real' clips are generated animations of real photos, not "
                            "real talking-face video" if corpus.is_synthetic_reference else "real clips"),
        "clips": len(frame),
        "duration_s": round(float(frame["duration_s"].sum()), 2),
        "labels": _counts(frame["label"]),
        "generators": _counts(frame["generator"].fillna("").replace("", "(real)")),
        "splits": {k: {"clips": int(v["size"]), "identities": int(v["nunique"])} for k, v in splits.iterrows()},
        "identities": int(frame["identity"].nunique()),
        "clips_per_identity": _counts(frame["identity"]),
        "sources": _counts(frame["source"].fillna("")),
        "visual_only_clips": int((~frame["has_audio"].astype(bool)).sum()) if "has_audio" in frame else 0,
        "skipped": [f"{s['item']}: {s['reason']}" for s in corpus.meta.get("skipped", [])],
        "problems": problems,
    }
    shared = _identities_in_several_splits(frame)
    if shared:
        info["problems"].append(f"identities in more than one split: {_few(shared)}")
    for column, what in (("sha256", "byte-identical"), ("content_sha256", "content-identical")):
        for group in _leaking_duplicates(frame, column):
            info["problems"].append(f"{what} clips under different identities or splits (leakage): {_few(group)}")
    return info


def _leaking_duplicates(frame: pd.DataFrame, column: str) -> list[list[str]]:
    """Groups of clips with the same hash whose identities or splits differ: one clip seen on both sides of a
    split, or counted as two people. (Several fakes may share bytes legitimately only within one identity
    and split.)"""
    if column not in frame.columns:
        return []
    known = frame.dropna(subset=[column])
    known = known[known[column].astype(str).str.len() > 0]
    groups = []
    for _, rows in known.groupby(column):
        if len(rows) > 1 and (rows["identity"].nunique() > 1 or rows["split"].fillna("").nunique() > 1):
            groups.append(sorted(rows["clip_id"]))
    return sorted(groups)


def _counts(column: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in column.value_counts().sort_index().items()}


def _identities_in_several_splits(frame: pd.DataFrame) -> list[str]:
    per_identity = frame.dropna(subset=["split"]).groupby("identity")["split"].nunique()
    return sorted(per_identity[per_identity > 1].index)
