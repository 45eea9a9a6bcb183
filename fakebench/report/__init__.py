"""Reports: `write_report(run_dirs, output)` reads run folders (what `fakebench bench` writes; tables only) and
writes OUTPUT/index.html (self-contained: CSS inline, figures as base64 PNG data URIs, nothing fetched),
OUTPUT/report.md (the same content, figures linked) and the figures as OUTPUT/figures/*.png.

Several runs go side by side: every section has one block per run, labelled with the run folder's name. A table
a run lacks makes its section say "not run"; nothing is estimated in its place.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_report", "write_report"]


def build_report(run_dirs: Sequence[str | os.PathLike]):
    """The `fakebench.report.model.Report` of these run folders (nothing written)."""
    from datetime import UTC, datetime

    from fakebench.report.load import load_runs
    from fakebench.report.model import Report
    from fakebench.report.sections import build_sections, synthetic_banner

    runs = load_runs(list(run_dirs))
    title = "fakebench report: " + ", ".join(r.name for r in runs)
    return Report(title=title, runs=[r.name for r in runs],
                  banners=[synthetic_banner([r.name for r in runs if r.synthetic_reference])]
                  if any(r.synthetic_reference for r in runs) else [],
                  sections=build_sections(runs),
                  generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))


def write_report(run_dirs: Sequence[str | os.PathLike], output: str | os.PathLike) -> Path:
    """Write the report of ``run_dirs`` into the folder ``output`` (created if needed); returns index.html's path.

    A run folder without run.json, or an output path that is a file, raises `fakebench.errors.InputFileError`.
    """
    from fakebench.errors import InputFileError
    from fakebench.report.render import write

    output = Path(output)
    if output.exists() and not output.is_dir():
        raise InputFileError(f"{output} is a file; give a folder for the report (-o)")
    report = build_report(run_dirs)
    return write(report, output)
