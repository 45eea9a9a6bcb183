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
    config: Annotated[str | None, typer.Option(help="sda-small (CPU, default), sda-expressive (sda-small "
                                                    "with emotion codes and a masked output: the default "
                                                    "checkpoint's), sda-paper (published sizes, GPU) "
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


def train_sync(
    data: Annotated[Path, typer.Argument(help="Folder of in-sync talking-face clips with their own speech "
                                              "(searched recursively).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder: model.npz (the projections) and "
                                                                "model.json (settings, training clips, evaluation).")],
    components: Annotated[int, typer.Option(min=1, max=10, help="Canonical components kept.")] = 3,
    regularisation: Annotated[float, typer.Option(min=0.0, max=10.0, help="Ridge added to each covariance, as a "
                                                                          "share of its mean variance.")] = 0.3,
    max_offset: Annotated[int, typer.Option(min=1, max=50, help="Offsets searched in the evaluation, frames.")] = 15,
) -> None:
    """Fit fakebench's av-cca lip-sync model (the default `sync` estimator) and evaluate it leave-one-speaker-out.

    Speakers are grouped by file name: the stem without its last `_token` (grid_bbaf2n and grid_lwbsza are one
    group), so that no clip is scored by a model fitted on its own speaker. The evaluation shifts each clip's
    audio by 0, +-1, +-2, +-3, +-5, +-8 and +-12 frames and counts estimates within one frame; it is written into
    model.json. Clips that cannot be used (no audio, no face) are listed and skipped (exit code 1).
    """
    from rich.table import Table

    from fakebench.avsync import speaker_group, train_sync_model
    from fakebench.errors import FakebenchError, InputFileError
    from fakebench.metrics.measure import media_files
    from fakebench.samples import Sample

    out, err = Console(), Console(stderr=True)
    videos, _ = media_files(data)
    usable, skipped = [], []
    for path in videos:
        sample = Sample.from_path(path)
        try:
            if not sample.clip.has_audio:
                raise InputFileError("no audio track")
            sample.track.require_face("lip-sync training", min_ratio=0.5)
            usable.append(sample)
        except FakebenchError as e:
            skipped.append((path, e.one_line()))
            err.print(f"[yellow]skipped[/] {path}: {e.one_line()}", soft_wrap=True)
    groups = [speaker_group(s.name) for s in usable]
    if len(set(groups)) < 2:
        raise InputFileError(f"{data}: {len(usable)} usable clip(s) in {len(set(groups))} speaker group(s); "
                             "leave-one-speaker-out needs clips of at least two speakers (named apart)")
    model, evaluation = train_sync_model(usable, groups, components=components, regularisation=regularisation,
                                         max_offset=max_offset)
    model.info["skipped"] = [{"clip": p.name, "reason": why} for p, why in skipped]
    model.save(output)
    table = Table(title=f"av-cca, leave-one-speaker-out: {len(usable)} clips, {len(set(groups))} speaker groups")
    for column in ("clip", "group", "offset as is", "within 1 frame (all shifts)"):
        table.add_column(column)
    for row in evaluation["clips"]:
        errors = list(row["errors"].values())
        ok = sum(abs(e) <= 1 for e in errors)
        table.add_row(Path(row["clip"]).name, row["group"], f"{row['errors'][0]:+d}", f"{ok}/{len(errors)}")
    out.print(table)
    out.print(f"within 1 frame: {evaluation['within_1_frame_as_is']:.0%} of clips as they are, "
              f"{evaluation['within_1_frame_all']:.0%} of all shifted copies; model written to {output}")
    if skipped:
        raise typer.Exit(1)
