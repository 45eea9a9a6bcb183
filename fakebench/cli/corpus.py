"""`fakebench corpus ...`: import a dataset, build a fake corpus, make the offline demo corpus, summarize one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fakebench.cli.options import (
    DEVICE_HELP,
    Seed,
    Workers,
    device_option,
    json_flag,
    seed_option,
    workers_option,
)
from fakebench.cli.progress import RichProgress
from fakebench.corpus.layouts import LAYOUTS

corpus_app = typer.Typer(help="Corpora: import real datasets, build fake corpora from them, summarize.",
                         no_args_is_help=True)
out = Console()
err = Console(stderr=True)

IMPORT_HELP = (
    "Import a real audio-visual dataset in its own layout as a corpus (manifest.parquet + media links).\n\n"
    "LAYOUT is one of: " + ", ".join(LAYOUTS) + ". Expected layouts:\n\n"
    + "\n\n".join(f"{name}: {text.split(': ', 1)[1]}" for name, text in LAYOUTS.items())
    + "\n\nUnreadable clips are skipped, counted and listed by `fakebench corpus info`. Splits are "
    "identity-disjoint (seeded hashing of the identities)."
)


@corpus_app.command("import", help=IMPORT_HELP)
def import_(
    layout: Annotated[str, typer.Argument(help=f"Dataset layout: {', '.join(LAYOUTS)}.")],
    src: Annotated[Path, typer.Argument(help="The dataset's folder (for `folder`, also a CSV file).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Corpus folder to create.")],
    copy: Annotated[bool, typer.Option("--copy/--link", help="Copy the media into the corpus, or link them "
                                       "(symlinks, the default).")] = False,
    seed: seed_option("Seed of the identity-disjoint split.") = 0,
    splits: Annotated[str, typer.Option(help="train,val,test ratios.")] = "0.8,0.1,0.1",
) -> None:
    from fakebench.corpus.importers import import_dataset
    from fakebench.corpus.manifest import parse_ratios

    result = import_dataset(layout, src, output, mode="copy" if copy else "link", seed=seed,
                            ratios=parse_ratios(splits), progress=RichProgress(err))
    out.print(f"imported {result.clips} clips from {src} into {result.folder}")
    if result.skipped:
        err.print(f"[yellow]warning:[/] {len(result.skipped)} unreadable clip(s) skipped, e.g. "
                  f"{result.skipped[0]['item']}: {result.skipped[0]['error']} (all listed by `fakebench corpus "
                  "info`)")
        raise typer.Exit(1)  # done, with some items failed


EMOTION_HELP = ("Emotion of the fakes of generators with an emotion option: random (drawn per fake from the seed, "
                "intensity 0.5-0.9) or neutral, happy, sad, angry, surprised, fearful, disgusted; recorded in the "
                "manifest (emotion, emotion_intensity). Default: none.")


@corpus_app.command()
def build(
    real: Annotated[Path, typer.Argument(help="Corpus of real clips (from `fakebench corpus import`).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Fake corpus folder (created, or resumed).")],
    generator: Annotated[str | None, typer.Option("--generator", "-g", help="Comma-separated generators "
                                                  "(default: every registered one; `fakebench generators`).",
                                                  show_default=False)] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Model checkpoint for the generators that take one "
                                                         "(else their default search).")] = None,
    audio: Annotated[str, typer.Option(help="Driving audio: own (same words as the real clip), "
                                            "other-same-identity or other.")] = "own",
    per_clip: Annotated[int, typer.Option(help="Fakes per real clip and generator.")] = 1,
    seed: seed_option("Seed: same seed, same corpus.") = 0,
    workers: workers_option("Parallel workers (pool and ray): each is one process making one real clip's outputs at "
                            "a time, writing video with one thread. Default: the usable CPU cores.") = None,
    executor: Annotated[str, typer.Option(help="local (this process), pool (processes) or ray.")] = "pool",
    ray_address: Annotated[str | None, typer.Option(help="Existing Ray cluster (else a local Ray).")] = None,
    device: device_option(f"{DEVICE_HELP} For generators with a model.") = "auto",
    emotion: Annotated[str | None, typer.Option(help=EMOTION_HELP, show_default=False)] = None,
) -> None:
    """Make a fake corpus from a real one: each real clip (silence-trimmed) and its fakes from every generator.

    Photo generators animate the clip's sharpest frontal frame; clip generators manipulate the clip itself.
    Interrupted runs (even kill -9) resume where they stopped when run again with the same options: finished
    clips are never redone. A clip that fails is recorded with its error and the others go on.
    """
    from fakebench.corpus.workers import start_corpus_pool_server

    start_corpus_pool_server(executor)  # its imports run while this process loads the corpus
    from fakebench.corpus.build import BuildOptions, build_corpus, parse_generators

    options = BuildOptions(generators=parse_generators(generator), checkpoint=str(checkpoint) if checkpoint else None,
                           audio=audio, per_clip=per_clip, seed=seed, device=device, emotion=emotion)
    from fakebench.execution import usable_cores

    workers = usable_cores() if workers is None else workers
    result = build_corpus(real, output, options, workers=workers, executor=executor, ray_address=ray_address,
                          progress=RichProgress(err))
    s = result.summary
    out.print(f"{result.folder}: {result.clips} clips ({s.done_now} made now, {s.done_before} finished before) "
              f"in {s.seconds:.1f} s")
    if s.failed:
        key, why = next(iter(s.failed.items()))
        err.print(f"[red]{len(s.failed)} clip(s) failed[/], e.g. {key}: {why}; run the same command again to "
                  "retry them (`fakebench corpus info` lists them all)")
        raise typer.Exit(1)


@corpus_app.command()
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Demo corpus folder.")],
    clips_per_identity: Annotated[int, typer.Option(help="Reference clips per identity.")] = 4,
    variants: Annotated[int, typer.Option(help="Looks of each photo (mirrored, zoomed, rotated, recoloured), each "
                                               "a pseudo-identity of the same person; 1-6. With more than one, "
                                               "train and test hold different persons.")] = 1,
    generator: Annotated[str | None, typer.Option("--generator", "-g", help="Generators of the fakes (default: "
                                                  "every one but the reference clips' generator).",
                                                  show_default=False)] = None,
    seed: Seed = 0,
    workers: Workers = None,
    executor: Annotated[str, typer.Option(help="local, pool or ray.")] = "pool",
    emotion: Annotated[str | None, typer.Option(help=EMOTION_HELP, show_default=False)] = None,
) -> None:
    """Offline demo corpus: the real photos dependencies ship, speaking synthesized sentences in varied voices.

    The reference clips are animations of the real photos by a generator whose clips may stand in for real
    video (warp: human blink statistics, in-sync lips), marked as synthetic reference in the manifest's
    `source` column; the fakes come from the other generators.
    """
    from fakebench.corpus.workers import start_corpus_pool_server

    start_corpus_pool_server(executor, "fakebench.corpus.demo")
    from fakebench.corpus.build import parse_generators
    from fakebench.corpus.demo import make_demo_corpus
    from fakebench.corpus.manifest import corpus_info, load_corpus
    from fakebench.execution import usable_cores

    make_demo_corpus(output, clips_per_identity=clips_per_identity, variants=variants,
                     generators=None if generator is None else parse_generators(generator),
                     seed=seed, workers=usable_cores() if workers is None else workers, executor=executor,
                     progress=RichProgress(err), emotion=emotion)
    print_info(corpus_info(load_corpus(output)))


@corpus_app.command()
def info(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder.")],
    as_json: json_flag("Print one JSON object.") = False,
    verify: Annotated[bool, typer.Option("--verify", help="Also check every file's SHA-256.")] = False,
) -> None:
    """Counts per label, generator, split and identity; total duration; problems found.

    Exit code 1 when a problem is found (failed clips of a build, a file whose SHA-256 does not match with
    --verify, identities shared between splits); 0 when there is none.
    """
    from fakebench.corpus.manifest import corpus_info, load_corpus

    summary = corpus_info(load_corpus(corpus), verify=verify)
    if as_json:
        print(json.dumps(summary))
    else:
        print_info(summary)
    if summary["problems"]:
        raise typer.Exit(1)


def print_info(summary: dict, console: Console = out) -> None:
    console.print(f"[bold]reference class: {summary['reference_class']}[/]")
    console.print(f"corpus {summary['folder']}: {summary['clips']} clips, {summary['duration_s']:.1f} s, "
                  f"{summary['identities']} identities")
    table = Table(show_header=True)
    table.add_column("count of")
    table.add_column("value")
    table.add_column("clips", justify="right")
    for what in ("labels", "generators", "sources"):
        for key, n in summary[what].items():
            table.add_row(what, key, str(n))
    for key, v in summary["splits"].items():
        table.add_row("splits", key, f"{v['clips']} ({v['identities']} identities)")
    per_identity = summary["clips_per_identity"]
    if len(per_identity) <= 12:
        for key, n in per_identity.items():
            table.add_row("identities", key, str(n))
    else:
        counts = sorted(per_identity.values())
        table.add_row("identities", f"{len(counts)} (clips each: min / median / max)",
                      f"{counts[0]} / {counts[len(counts) // 2]} / {counts[-1]}")
    console.print(table)
    if summary["problems"]:
        console.print(f"[yellow]{len(summary['problems'])} problem(s):[/]")
        for p in summary["problems"]:
            console.print(f"  {p}", markup=False)
    else:
        console.print("problems: none")
