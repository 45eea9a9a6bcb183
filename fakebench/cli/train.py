"""`fakebench train-generator`: train the SDA generator on a folder of talking-face clips (the library call is
`fakebench.generators.sda.training.run.train`; this module parses, shows progress and prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fakebench.cli.options import Device, seed_option


def train_generator(
    data: Annotated[Path, typer.Argument(help="Folder of talking-face video clips with audio (searched "
                                              "recursively).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Run folder: checkpoints, train_log.parquet, "
                                                                "sample grids, resumable state.")],
    config: Annotated[str | None, typer.Option(help="sda-small (CPU, default), sda-paper (published sizes, GPU) "
                                                    "or a YAML file.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in the output folder exactly where "
                                         "its last checkpoint left it.")] = False,
    device: Device = "auto",
    max_minutes: Annotated[float | None, typer.Option(help="Stop (with a checkpoint) after this many minutes; "
                                                           "--resume continues.")] = None,
    seed: seed_option("Seed of the initial weights, noise and batches (default 0; a resumed run keeps its own).",
                      optional=True) = None,
) -> None:
    """Train the speech-driven animation GAN (generator + frame, sequence and sync discriminators).

    Checkpoints every N steps (the config's schedule.checkpoint_every) go to OUTPUT/checkpoints/step-N, each
    usable as `fakebench generate --generator sda --checkpoint OUTPUT/checkpoints/step-N`.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fakebench.generators.sda.training.run import Callbacks, train

    out = Console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=out, transient=False) as bar:
        prep = bar.add_task("preparing data", total=None, info="")
        steps = bar.add_task("training", total=None, info="", visible=False)

        def on_data(done: int, total: int, name: str) -> None:
            bar.update(prep, completed=done, total=total, info=name)

        def on_start(step: int, total: int, summary: dict) -> None:
            bar.update(prep, info=f"{summary['clips_used']} clips used, {summary['clips_skipped']} skipped")
            bar.update(steps, completed=step, total=total, visible=True)

        def on_step(step: int, losses: dict[str, float]) -> None:
            info = (f"G {losses['g_total']:.2f} L1 {losses['l1']:.4f} | D frame {losses['d_frame']:.3f} "
                    f"seq {losses['d_sequence']:.3f} sync {losses['d_sync']:.3f}")
            bar.update(steps, completed=step, info=info)

        def on_checkpoint(step: int, folder: Path, metrics: dict[str, float]) -> None:
            bar.console.print(f"step {step}: checkpoint {folder} | val PSNR {metrics['val_psnr']:.2f} dB, SSIM "
                              f"{metrics['val_ssim']:.3f}, |sync offset| {metrics['val_sync_offset_abs']:.2f} frames")

        result = train(data, output, config=config, resume=resume, device=device, max_minutes=max_minutes,
                       seed=seed, callbacks=Callbacks(on_data, on_start, on_step, on_checkpoint))
    skipped = result.data.get("clips_skipped", 0)
    out.print(f"{result.stopped} at step {result.step}/{result.steps} after {result.minutes:.1f} min "
              f"({result.total_minutes:.1f} min in all); {result.data.get('clips_used', 0)} clips used"
              f"{f', {skipped} skipped (see {result.run_dir}/run.json)' if skipped else ''}")
    if result.checkpoint is not None:
        out.print(f"latest checkpoint: {result.checkpoint}")
