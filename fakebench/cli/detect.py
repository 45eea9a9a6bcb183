"""`fakebench train-detector`, `fakebench evaluate` and `fakebench detect` (library: `fakebench.detection`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fakebench.cli.options import json_flag, seed_option

out = Console()
err = Console(stderr=True)


def train_detector(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder (manifest.parquet), with train and val splits.")],
    detector: Annotated[str, typer.Option("--detector", "-d", help="Detector to train: a registered name "
                                                                   "(README 'Detectors'; a wrong one lists them).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the trained detector.")],
    train_generators: Annotated[str | None, typer.Option(help="Comma-separated generators whose fakes it learns "
                                                              "from (default: all); the others stay unseen.")]
    = None,
    seed: seed_option("Seed of the training.") = 0,
) -> None:
    """Train a detector on a corpus's train split; its validation split is the only data model selection reads."""
    from fakebench.corpus.manifest import load_corpus
    from fakebench.detection import train_detector as train
    from fakebench.detectors.base import DETECTORS

    DETECTORS.get(detector)  # an unknown name is a one-line error before the corpus is read
    c = load_corpus(corpus)
    train_set, val_set = c.samples(split="train"), c.samples(split="val")
    if train_generators:
        wanted = {g.strip() for g in train_generators.split(",") if g.strip()}
        present = {str(s.meta.get("generator") or "") for s in train_set if s.label == "fake"}
        unknown = sorted(wanted - present)
        if unknown:
            from fakebench.errors import ConfigError

            raise ConfigError(f"--train-generators {','.join(unknown)}: no such fakes in the train split (it has "
                              f"{', '.join(sorted(present)) or 'none'})")
        from fakebench.detection import keep_generators

        train_set, val_set = keep_generators(train_set, sorted(wanted)), keep_generators(val_set, sorted(wanted))
    trained = train(detector, train_set, val_set, output, seed=seed,
                    info={"corpus": str(corpus), "train_generators": sorted(wanted) if train_generators else "all"})
    out.print(f"trained {detector} on {trained.info['n_train']} (train) and {trained.info['n_val']} (val); "
              f"saved to {output}")


def evaluate(
    detectors: Annotated[list[Path], typer.Argument(help="Trained detector folders, then the corpus folder last.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Run folder: scores.parquet, evaluation.parquet, "
                                                                "run.json.")],
    split: Annotated[str, typer.Option(help="Split to evaluate on.")] = "test",
    perturb: Annotated[str | None, typer.Option(help="Comma-separated NAME:LEVEL (levels 1-5), e.g. "
                                                     "blur:3,h264:5; each is scored besides the clean clips.")]
    = None,
    n_boot: Annotated[int, typer.Option(min=0, max=100000, help="Bootstrap resamples (over identities) for the "
                                                                 "confidence intervals.")] = 1000,
    seed: seed_option("Seed of the perturbations and the bootstrap.") = 0,
) -> None:
    """Score a split with trained detectors and write one evaluation row per detector x generator x perturbation.

    Rows carry auc, auc_ci_low, auc_ci_high (95 %, bootstrap over identities), eer, ap, tpr_at_1fpr, tpr_at_5fpr,
    ece, n_real, n_fake, n_identities. When the corpus's fakes were made with emotions (corpus build --emotion),
    per_emotion.parquet has the same per emotion of the fakes. The shortcut probe always runs; the verdict (and the
    metadata feature carrying a shortcut) is printed and kept in run.json. Re-running the same command resumes from
    scores.parquet. Exit code 1 when some clips could not be scored (listed in run.json).
    """
    from fakebench.corpus.manifest import load_corpus
    from fakebench.detection import evaluate_detectors, load_detectors
    from fakebench.errors import ConfigError
    from fakebench.io import write_json_atomic
    from fakebench.perturb import parse_perturbations

    if len(detectors) < 2:
        raise ConfigError("give at least one trained detector folder and then the corpus folder")
    *folders, corpus = detectors
    perturbations = parse_perturbations(perturb) if perturb else []
    loaded = load_detectors(folders)
    c = load_corpus(corpus)
    samples = c.samples(split=split)
    if not samples:
        raise ConfigError(f"{corpus} has no clips in split {split!r}")
    run = evaluate_detectors(loaded, samples, output, perturbations=perturbations, n_boot=n_boot, seed=seed,
                             shortcut_fit=(c.samples(split="train"), c.samples(split="val")))
    from fakebench.tables import read_table

    rows, _ = read_table(run.evaluation)
    table = Table(title=f"{corpus} ({split}): AUC with 95 % CI over identities")
    for column in ("detector", "perturbation", "generator", "AUC", "95 % CI", "EER", "n real/fake"):
        table.add_column(column)
    notes: dict[str, None] = {}
    for r in rows:
        ci = "-" if r.get("auc_ci_low") is None else f"{r['auc_ci_low']:.2f}-{r['auc_ci_high']:.2f}"
        auc = "-" if r.get("auc") is None else f"{r['auc']:.3f}"
        eer = "-" if r.get("eer") is None else f"{r['eer']:.3f}"
        table.add_row(str(r["detector"]), str(r["perturbation"]), str(r["generator"]), auc, ci, eer,
                      f"{r.get('n_real')}/{r.get('n_fake')}")
        notes |= dict.fromkeys(n for n in str(r.get("notes") or "").split("; ") if n)
    out.print(table)
    for note in notes:
        out.print(f"note: {note}")
    if run.per_emotion is not None:
        out.print(f"AUC per emotion of the fakes: {run.per_emotion}")
    verdict = run.shortcut
    if verdict.get("found"):
        out.print(f"[bold red]shortcut:[/] metadata alone separates real from fake (AUC {verdict['auc']:.2f}); "
                  f"carried by {verdict.get('carrier')} (AUC {verdict.get('carrier_auc', float('nan')):.2f} alone)")
    elif verdict.get("ran"):
        out.print(f"shortcut probe: {verdict.get('why') or 'no shortcut found (its AUC interval includes 0.5)'}")
    write_json_atomic(output / "run.json", {"corpus": str(corpus), "split": split, "detectors": [str(f) for f in
                                                                                                    folders],
                                            "perturbations": perturb or "", "shortcut": verdict,
                                            "failures": run.failures}, indent=1)
    if run.failures:
        err.print(f"[yellow]{len(run.failures)} score(s) could not be made[/] (listed in {output / 'run.json'}); "
                  "exit code 1")
        raise typer.Exit(1)


def detect(
    clips: Annotated[list[Path], typer.Argument(help="Clips to judge.")],
    detector: Annotated[list[Path] | None, typer.Option("--detector", "-d", help="A trained detector folder "
                                                                                 "(repeatable). Default: the "
                                                                                 "detectors shipped with fakebench.")]
    = None,
    as_json: json_flag("Print JSON Lines: one object per clip.") = False,
) -> None:
    """Is it fake, and why? P(fake) from each detector, one decision, and the evidence in words.

    Decision from the mean P(fake) of the detectors that could score the clip: fake >= 0.65, real <= 0.35,
    otherwise (or when none could) uncertain. A detector that cannot score a clip says why ("no face", "no
    audio"). JSON: {"clip", "p_fake", "decision", "evidence", "detectors": [{"name", "p_fake", "status",
    "evidence"}]}. Exit code 1 when some clip could be scored by no detector.
    """
    from fakebench.detection import default_detector_folders, detect_clips, load_detectors
    from fakebench.errors import WeightsError
    from fakebench.media import check_input_file
    from fakebench.samples import Sample

    for path in clips:  # every clip checked before any work
        check_input_file(path)
    if not detector:
        detector = default_detector_folders()
        if not detector:
            raise WeightsError("the default detectors are missing from this installation; reinstall fakebench, or "
                               "train one with `fakebench train-detector CORPUS -d sync -o DIR` and pass "
                               "--detector DIR")
        err.print(f"using the default detectors {', '.join(d.name for d in detector)} (fitted on fakebench's own "
                  "demo corpus: fakes of fakebench's generators, not a verdict on real-world deepfakes; see "
                  f"{detector[0].parent / 'MODEL_CARD.md'})", soft_wrap=True)
    loaded = load_detectors(detector)
    verdicts = detect_clips([Sample.from_path(p) for p in clips], loaded)
    for v in verdicts:
        if as_json:
            print(json.dumps(v.to_json()), flush=True)
            continue
        p = "-" if v.p_fake is None else f"{v.p_fake:.2f}"
        out.print(f"[bold]{v.clip}[/]: {v.decision} (P(fake) {p})")
        for d in v.detectors:
            score = "-" if d["p_fake"] is None else f"{d['p_fake']:.2f}"
            out.print(f"  {d['name']}: {score} ({d['status']})")
            for sentence in d["evidence"]:
                out.print(f"    - {sentence}")
    if any(v.p_fake is None for v in verdicts):
        raise typer.Exit(1)
