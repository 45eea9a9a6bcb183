"""Result tables: rows (one dict each) with their provenance, written atomically as parquet.

Provenance says what produced the rows: the fakebench version (`importlib.metadata`), the models and the
SHA-256 of the weights they used (where a metric names them), and a hash of the configuration (the options that
change the numbers). It is stored in the parquet file's schema metadata under ``fakebench.provenance`` (JSON),
so `read_table` gives back exactly the rows and the provenance that `write_table` was given, and any parquet
reader still sees a plain table. ``metrics.parquet`` is written through here now; ``scores.parquet`` and
``evaluation.parquet`` next; the report reads tables only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fakebench.errors import InputFileError
from fakebench.io import atomic_write, to_jsonable

PROVENANCE_KEY = b"fakebench.provenance"


def fakebench_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fakebench")
    except PackageNotFoundError:
        return "unknown (not installed)"


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the configuration as canonical JSON (sorted keys; paths and numpy values as JSON)."""
    text = json.dumps(to_jsonable({k: str(v) if isinstance(v, os.PathLike) else v for k, v in config.items()}),
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Provenance:
    """What produced a table: ``kind`` (metrics, scores, evaluation), the fakebench version, the models by role
    (``{"sync": "..."}``), the weights used by name with their SHA-256, the configuration and its hash."""

    kind: str
    fakebench_version: str = field(default_factory=fakebench_version)
    models: dict[str, str] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)  # name -> sha256
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str = ""

    @classmethod
    def make(cls, kind: str, *, config: Mapping[str, Any] | None = None, models: Mapping[str, str] | None = None,
             weights: Mapping[str, str | os.PathLike] | None = None) -> Provenance:
        """``weights`` maps a weights name to its file (hashed here) or to a known SHA-256 (64 hex digits)."""
        config = dict(to_jsonable({k: str(v) if isinstance(v, os.PathLike) else v
                                   for k, v in (config or {}).items()}))
        return cls(kind=kind, models=dict(models or {}),
                   weights={name: _sha256_of(value) for name, value in (weights or {}).items()},
                   config=config, config_hash=config_hash(config))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Provenance:
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _sha256_of(value: str | os.PathLike) -> str:
    text = str(value)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower()) and not Path(text).exists():
        return text.lower()
    from fakebench.weights import sha256_of

    return sha256_of(Path(value))


def write_table(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], provenance: Provenance) -> Path:
    """Write rows (dicts; values made JSON-able: numpy to Python, NaN to null) as a parquet table, atomically.

    The file appears complete or not at all (`fakebench.io.atomic_write`): a failed write leaves an existing
    table as it was and no temporary file behind.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.DataFrame([to_jsonable(dict(r)) for r in rows])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[PROVENANCE_KEY] = provenance.to_json().encode()
    table = table.replace_schema_metadata(metadata)
    return atomic_write(path, lambda f: pq.write_table(table, f))


def read_table(path: str | os.PathLike) -> tuple[list[dict[str, Any]], Provenance | None]:
    """The rows (dicts, in order) and the provenance of a table written by `write_table` (None if it has none)."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such table; give a .parquet file written by fakebench")
    try:
        table = pq.read_table(p)
    except (OSError, ValueError) as e:
        raise InputFileError(f"{p} is not a readable parquet table ({' '.join(str(e).split())[:120]}); "
                             "write it again") from e
    raw = (table.schema.metadata or {}).get(PROVENANCE_KEY)
    rows = table.to_pandas().to_dict("records")
    return [{k: _plain(v) for k, v in r.items()} for r in rows], Provenance.from_json(raw) if raw else None


def _plain(value: Any) -> Any:
    """Parquet list cells come back as numpy arrays and missing numbers as NaN: back to lists and None."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value
