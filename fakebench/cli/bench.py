"""`fakebench bench CONFIG -o RUN` and `fakebench demo`: a whole benchmark from one YAML file, then its report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fakebench.cli.progress import RichProgress

err = Console(stderr=True)
out = Console()

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "data" / "configs" / "demo.yaml"


def _run(config: Path, run_dir: Path) -> int:
    from fakebench.bench import run_bench

    def stage(name: str, skipped: bool) -> None:
        err.print(f"[bold]{name}[/]" + (" (done already)" if skipped else ""))

    result = run_bench(config, run_dir, progress=RichProgress(err), on_stage=stage)
    if not result.stages_run:
        err.print(f"{run_dir}: every stage was done already; nothing to do")
    shortcut = result.shortcut or {}
    if shortcut.get("found"):
        out.print(f"[bold red]shortcut:[/] the metadata probe separates this corpus (AUC {shortcut['auc']:.2f}, "
                  f"95% CI {shortcut['auc_ci_low']:.2f}-{shortcut['auc_ci_high']:.2f}); carried by "
                  f"{shortcut.get('carrier')}")
    if result.failures:
        err.print(f"[yellow]{result.failures} item(s) failed; see {run_dir / 'run.json'}[/]")
    return 1 if result.failures else 0


def bench(
    config: Annotated[Path, typer.Argument(help="Benchmark YAML (examples in benchmarks/configs/).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Run folder (resumed when it holds this run).")],
) -> None:
    """Run a whole benchmark from one config: corpus (demo, import or an imported real corpus), the generators'
    fakes, per-clip and set metrics, detectors trained and evaluated (perturbations, cross-generator), evidence.

    The config is checked before any work (an unknown key, a wrong type or a missing folder is one line naming the
    key, exit 2). Every stage resumes; re-running a finished run does no work. RUN/run.json records the config,
    versions, weights and each stage's time; `fakebench report RUN -o DIR` writes the report. Exit 1 when some
    clips failed.
    """
    code = _run(config, output)
    out.print(f"run: {output}  (report: fakebench report {output} -o REPORT_DIR)", soft_wrap=True)
    raise typer.Exit(code)


def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the run and its report.")]
    = Path("demo_out"),
    config: Annotated[Path | None, typer.Option(help="Another benchmark config (default: the demo's, "
                                                     "benchmarks/configs/demo.yaml).")] = None,
) -> None:
    """The offline demo, end to end: the demo benchmark (its corpus from the bundled photos and espeak-ng speech,
    every generator, the metrics, detectors, evaluation with perturbations) and its report, OUT/report/index.html.
    """
    from fakebench.report import write_report

    t0 = time.perf_counter()
    code = _run(config or DEMO_CONFIG, output / "run")
    report = write_report([output / "run"], output / "report")
    out.print(f"report: {report} ({time.perf_counter() - t0:.0f} s)", soft_wrap=True)
    raise typer.Exit(code)
