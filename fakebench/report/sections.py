"""The report's sections, in order, each with one block per run. Every number shown comes from the run's tables
(or, for intervals the tables lack, from the same rows through `fakebench.evaluation` / `numbers.mean_ci`, and
the caption says so); a table that is not there makes its section say "not run". The sections themselves are in
run_sections (1-3), detector_sections (4-7) and clip_sections (8-10)."""

from __future__ import annotations

from collections.abc import Callable

from fakebench.detectors.base import corpus_checks
from fakebench.report import figures
from fakebench.report.clip_sections import distributions_section, frames_section, worst_section
from fakebench.report.common import groups_of
from fakebench.report.detector_sections import calibration_section, cross_section, detectors_section, robustness_section
from fakebench.report.load import Run
from fakebench.report.model import Block, Item, Section
from fakebench.report.run_sections import generators_section, shortcut_section, synthetic_banner, what_was_run

__all__ = ["build_sections", "synthetic_banner"]

STACKED = {"run", "detectors", "worst"}  # sections whose tables are too wide for runs in columns


def build_sections(runs: list[Run]) -> list[Section]:
    palette = _palette(runs)
    makers: list[tuple[str, str, Callable[[Run, dict[str, str]], list[Item]], str]] = [
        ("run", "What was run", what_was_run, ""),
        ("shortcut", "Shortcut check", shortcut_section,
         "Can metadata alone (duration, frame rate, size, audio facts) tell real from fake? If it can, the "
         "detector numbers below may measure that shortcut, not the manipulation."),
        ("generators", "Generators", generators_section, ""),
        ("detectors", "Detectors", detectors_section, ""),
        ("cross", "Cross-generator generalisation", cross_section, ""),
        ("robustness", "Robustness to perturbations", robustness_section, ""),
        ("calibration", "Calibration", calibration_section, ""),
        ("distributions", "Metric distributions, real vs fake", distributions_section, ""),
        ("frames", "Sample frames", frames_section, ""),
        ("worst", "Worst-misclassified clips", worst_section, ""),
    ]
    sections = []
    for number_, (key, title, make, intro) in enumerate(makers, start=1):
        sections.append(Section(key=key, number=number_, title=title, intro=intro,
                                blocks=[Block(run=r.name, items=make(r, palette)) for r in runs],
                                layout="stack" if key in STACKED else "side"))
    return sections


def _palette(runs: list[Run]) -> dict[str, str]:
    """One colour per generator and per detector across all runs (so a name keeps its colour side by side)."""
    generators: set[str] = set()
    detectors: set[str] = set()
    for run in runs:
        for frame in (run.manifest, run.metrics, run.scores, run.evaluation):
            if frame is not None and "label" in frame.columns:
                generators |= set(groups_of(frame))
            elif frame is not None and "generator" in frame.columns:
                generators |= {g for g in frame["generator"] if isinstance(g, str) and g}
            if frame is not None and "detector" in frame.columns:
                detectors |= {str(d) for d in frame["detector"]}
    generators -= {"real", "all"}
    return figures.palette(sorted(generators), sorted(detectors - set(corpus_checks())))
