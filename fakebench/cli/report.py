"""`fakebench report` (library: `fakebench.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

out = Console()


def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders written by `fakebench bench` (each has run.json); "
                                                    "several go side by side.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Report folder: index.html, report.md, figures/.")],
) -> None:
    """Write a report of one or more runs: index.html (self-contained, works offline), report.md and figures/.

    It reads the runs' tables only: what was run (configuration, data, weights and their SHA-256, substitutes),
    the shortcut verdict, per-generator metrics, detector AUC/EER/AP/TPR with 95 % CIs, ROC, cross-generator,
    robustness and calibration plots, metric distributions, sample frames and the worst-misclassified clips. A
    part a run did not produce says "not run".
    """
    from fakebench.report import write_report

    index = write_report(runs, output)
    out.print(f"wrote {index}, {index.parent / 'report.md'} and {index.parent / 'figures'}/", soft_wrap=True)
