"""Writing a benchmark's record (benchmarks/results/*.json), for the benchmark scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as indented JSON to ``path`` (its folder made when missing) and say where."""
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"recorded in {path}")
