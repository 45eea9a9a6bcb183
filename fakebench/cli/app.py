"""The `fakebench` command. Thin: parse, call the library, print, map user errors to exit code 2."""

from __future__ import annotations

import json
import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand, TyperOption

from fakebench.cli.bench import bench, demo
from fakebench.cli.corpus import corpus_app
from fakebench.cli.detect import detect, evaluate, train_detector
from fakebench.cli.options import (
    DEVICE_HELP,
    AllowUnverifiedWeights,
    JsonFlag,
    device_option,
    json_flag,
    seed_option,
)
from fakebench.cli.report import report
from fakebench.cli.train import train_generator, train_sync
from fakebench.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER_ERROR,
    ConfigError,
    FakebenchError,
    InputFileError,
)

_value_type_shown = TyperOption.display_type_rich


def _no_placeholder_on_flags(self: TyperOption, ctx) -> str | None:
    # typer shows "<bool>" after an on/off flag, as if it took a value (`--json true` is then rejected).
    return None if self.is_flag else _value_type_shown(self, ctx)


TyperOption.display_type_rich = _no_placeholder_on_flags  # type: ignore[method-assign]

app = typer.Typer(
    name="fakebench",
    help="Benchmark suite for speech-driven talking-face deepfakes: generate, measure, detect, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
weights_app = typer.Typer(help="Model weights: where each is found, or where fakebench looked.",
                          no_args_is_help=True)
app.add_typer(weights_app, name="weights")
app.add_typer(corpus_app, name="corpus")
app.command("train-generator")(train_generator)
app.command("train-sync")(train_sync)
app.command("train-detector")(train_detector)
app.command("evaluate")(evaluate)
app.command("detect")(detect)
app.command("report")(report)
app.command("bench")(bench)
app.command("demo")(demo)

out = Console()
err = Console(stderr=True)


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors.")] = False,
) -> None:
    """fakebench: make talking-face fakes, measure them, detect them, report."""


@app.command()
def analyze(
    clip: Annotated[Path, typer.Argument(help="Video file (mp4, avi, mov, mkv, webm).")],
    as_json: json_flag("Print one JSON object.") = False,
    max_side: Annotated[int | None, typer.Option(help="Shrink frames so the longer side is at most this.")]
    = None,
    no_cache: Annotated[bool, typer.Option("--no-cache",
                                           help="Recompute even when a cached analysis exists.")] = False,
) -> None:
    """Detect and track the face in a clip (68 landmarks per frame) and print a summary.

    The analysis is cached under $FAKEBENCH_CACHE (default ~/.cache/fakebench) by the file's SHA-256,
    so a second run reads it back instantly (cache_hit: true).
    """
    from fakebench.faces import analyze as analyze_clip

    track = analyze_clip(clip, max_side=max_side, use_cache=not no_cache)
    media = track.meta.get("media", {})
    summary = {
        "clip": str(clip),
        "frames": track.n_frames,
        "fps": round(track.fps, 3),
        "width": track.width,
        "height": track.height,
        "duration_s": round(track.n_frames / track.fps, 3),
        "has_audio": media.get("has_audio", False),
        "sample_rate": media.get("sample_rate"),
        "audio_duration_s": media.get("audio_duration_s"),
        "audio_rms_dbfs": media.get("audio_rms_dbfs"),
        # a clip without an audio track is silent too: there is no speech to measure
        "audio_silent": not media.get("has_audio", False) or (media.get("audio_rms_dbfs") or -999) < -60,
        "truncated": media.get("truncated", False),
        "face_frames": track.face_frames,
        "faces_max": track.faces_max,
        "landmark_ok_ratio": round(track.landmark_ok_ratio, 4),
        "mean_shape_error": track.summary()["mean_shape_error"],
        "cache_hit": bool(track.meta.get("cache_hit")),
        "analysis_version": track.meta.get("analysis_version"),
    }
    if as_json:
        print(json.dumps(summary))
        return
    _print_table(f"analysis of {clip}", summary)
    if track.face_frames == 0:
        err.print("[yellow]warning:[/] no face was found in any frame; metrics that need a face will refuse "
                  "this clip")
    elif track.faces_max > 1:
        err.print(f"[yellow]warning:[/] up to {track.faces_max} faces in one frame; tracked the largest, "
                  "most persistent one")


@app.command()
def speak(
    text: Annotated[str, typer.Argument(help="What to say.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output .wav or .flac file.")],
    voice: Annotated[str, typer.Option(help="espeak-ng voice, e.g. en, en-us, en-gb, de, fr, en+f3.")] = "en",
    rate: Annotated[int, typer.Option(help="Speaking rate, words per minute (80-450).")] = 160,
    pitch: Annotated[int, typer.Option(help="Pitch, 0-100.")] = 50,
) -> None:
    """Synthesize speech with the espeak-ng library shipped on PyPI (offline), and print word timings."""
    from fakebench.media import write_audio
    from fakebench.speech import synthesize

    audio, sr, words = synthesize(text, voice=voice, rate_wpm=rate, pitch=pitch)
    write_audio(output, audio, sr)
    out.print(f"wrote {output}: {audio.size / sr:.2f} s at {sr} Hz, {len(words)} words")
    for w in words:
        out.print(f"  {w.start_s:6.3f}-{w.end_s:6.3f}  {w.word}")


@weights_app.command("list")
def weights_list(
    verify: Annotated[bool, typer.Option("--verify", help="Hash every file found (slow for big files).")]
    = False,
    as_json: JsonFlag = False,
) -> None:
    """Each known model weight: found where (and checksum), or missing and every place fakebench looked."""
    from fakebench.weights import get_spec, list_weights

    rows = []
    for loc in list_weights(verify=verify):
        spec = get_spec(loc.name)
        rows.append({
            "name": loc.name, "found": loc.found, "where": loc.where,
            "path": str(loc.path) if loc.path else None,
            "checksum": loc.checksum, "problem": loc.problem,
            "searched": [str(p) for p in loc.searched], "source": spec.source, "licence": spec.licence,
        })
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title="model weights (nothing is downloaded; see README 'Model weights')")
    for col in ("name", "status", "where / looked in", "checksum"):
        table.add_column(col, overflow="fold")
    for r in rows:
        status = "[green]found[/]" if r["found"] else "[red]missing[/]"
        place = f"{r['where']}: {r['path']}" if r["found"] else "; ".join(r["searched"])
        problem = f" ({r['problem']})" if r["problem"] else ""
        table.add_row(r["name"], status, place, r["checksum"] + problem)
    out.print(table)


@app.command()
def generate(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output mp4; ground truth -> OUT.json.")],
    generator: Annotated[str | None, typer.Option(
        "--generator", "-g", help="A generator's name (`fakebench generators` lists them). Default: the first "
        "photo generator in that list that can run (warp: the best that needs no trained weights).",
        show_default=False)] = None,
    image: Annotated[Path | None, typer.Option(help="Face photo (generators that take a photo).")] = None,
    audio: Annotated[Path | None, typer.Option(help="Driving audio: wav, flac, mp3, m4a or a video's track. "
                                                    "With a clip generator: replaces the clip's audio.")] = None,
    video: Annotated[Path | None, typer.Option(help="Real clip (generators that take a clip).")] = None,
    shift_frames: Annotated[int | None, typer.Option(help="Audio shift: +K = audio K frames later than video.",
                                                     show_default=False)] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Model checkpoint: a folder (fakebench format) or an "
                                                         "original file.")] = None,
    seed: seed_option("Random seed (noise, blinks, head motion), >= 0.") = 0,
    fps: Annotated[float | None, typer.Option(help="Output frame rate, for generators that take one.",
                                              show_default=False)] = None,
    max_side: Annotated[int | None, typer.Option(
        help="Photo generators work at most this many pixels on the longer side (default 1024: a phone photo "
             "is shrunk first, which bounds time and memory and keeps the H.264 level browsers play); "
             "8192 keeps a photo's own size.", show_default=False)] = None,
    device: device_option(f"{DEVICE_HELP} For generators with a model.", optional=True) = None,
    no_paste_back: Annotated[bool, typer.Option("--no-paste-back", help="Output the raw model-size crop instead "
                                                "of pasting it back into the photo.")] = False,
    aligned: Annotated[bool, typer.Option("--aligned", help="The photo is already an aligned face crop at the "
                                          "model's size; no detection or warping.")] = False,
    emotion: Annotated[str | None, typer.Option(help="Expression for generators that take one: neutral, happy, sad, "
                                                     "angry, surprised, fearful or disgusted.",
                                                show_default=False)] = None,
    intensity: Annotated[float | None, typer.Option(help="Strength of --emotion, 0-1 (0.6: FACS grade C, marked).",
                                                    show_default=False)] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help="KEY=VALUE: any option of the generator "
                                                     "(repeatable; `fakebench generators` lists them).")] = None,
) -> None:
    """Make a fake: a photo + audio -> talking clip, or a real clip -> a manipulated one.

    The mp4 holds round(audio duration x fps) frames with the driving audio muxed; OUT.json records
    the ground truth (mouth opening, blinks, head pose, audio offset: whatever the generator did). Each
    generator checks the options it is given and refuses those it does not take.
    """
    from fakebench.generators.base import default_generator, generate_file

    generator = generator or default_generator("photo")
    given = {"shift_frames": shift_frames, "checkpoint": checkpoint, "fps": fps, "max_side": max_side,
             "device": device, "emotion": emotion, "intensity": intensity,
             "paste_back": False if no_paste_back else None, "aligned": True if aligned else None}
    options = {k: v for k, v in given.items() if v is not None}
    flags = {"paste_back": "--no-paste-back"}
    for text in option or []:
        key, value = _parse_key_value(text)
        options[key] = value
        flags[key] = f"--option {key}"
    result = generate_file(generator, output, image=image, video=video, audio=audio, seed=seed, options=options,
                           flags=flags)
    out.print(f"wrote {result.video} ({result.n_frames} frames, {result.width}x{result.height}, "
              f"{result.fps:g} fps, made in {result.seconds:.1f} s) and {result.ground_truth}")


def _parse_key_value(text: str) -> tuple[str, str]:
    from fakebench.errors import ConfigError

    key, sep, value = text.partition("=")
    key = key.strip().lstrip("-").replace("-", "_")
    if not sep or not key.isidentifier():
        raise ConfigError(f"--option takes KEY=VALUE (e.g. --option max_side=256), got {text!r}")
    return key, value


@app.command("generators")
def list_generators(
    as_json: JsonFlag = False,
) -> None:
    """List the generators: what each takes, its options with their valid values, and whether it can run now.

    `fakebench generate` sets an option with its flag (--fps, --max-side, --shift-frames, --checkpoint, --device,
    --no-paste-back, --aligned) or with --option NAME=VALUE.
    """
    from fakebench.generators.base import available

    rows = []
    for name, entry in available().items():
        plugin = entry.plugin
        rows.append({
            "name": name, "description": entry.description, "takes": getattr(plugin, "takes", None),
            "options": [o.describe() for o in entry.options],
            "min_audio_s": getattr(plugin, "min_audio_s", None), "weights": list(getattr(plugin, "weights", ())),
            "available": entry.is_available, "unavailable": entry.unavailable,
        })
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    for r in rows:
        status = "[green]available[/]" if r["available"] else f"[red]unavailable[/]: {r['unavailable']}"
        out.print(f"[bold]{r['name']}[/] (takes a {r['takes']}) {r['description']}")
        out.print(f"  {status}")
        for line in r["options"]:
            out.print(f"  {line}", highlight=False)


@weights_app.command("convert")
def weights_convert(
    original: Annotated[Path, typer.Argument(help="Original speech-driven-animation checkpoint (grid.dat, "
                                                  "timit.dat, crema.dat).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for fakebench's format.")],
) -> None:
    """Convert an original SDA .dat into fakebench's format (weights_only tensors + JSON config)."""
    from fakebench.generators.sda.checkpoint import convert

    folder = convert(original, output)
    out.print(f"converted {original} -> {folder}")


class _MetricsHelp(TyperCommand):
    """A command whose help names the registered metrics: ``{clip_metrics}``, ``{set_metrics}`` (one paragraph
    each) and ``{clip_choices}``, ``{set_choices}`` (comma-separated) are filled in from the metrics registry
    when help is shown, so the metric modules (and torch) are imported only then."""

    def format_help(self, ctx, formatter) -> None:
        from fakebench.metrics.registry import available, describe

        fill = {f"{{{per}_{what}}}": (describe(per) if what == "metrics" else ", ".join(available(per)))
                for per in ("clip", "set") for what in ("metrics", "choices")}

        def filled(text: str | None) -> str | None:
            for key, value in fill.items():
                text = text.replace(key, value) if text else text
            return text

        self.help = filled(self.help)
        for param in self.params:
            param.help = filled(getattr(param, "help", None))
        super().format_help(ctx, formatter)


@app.command(cls=_MetricsHelp)
def measure(
    clips: Annotated[list[Path], typer.Argument(help="Clips to measure.")],
    metrics: Annotated[str, typer.Option(help="Comma-separated, from: {clip_choices}.")]
    = "sync,blink,quality",
    reference: Annotated[Path | None, typer.Option(help="Source PHOTO (identity) or CLIP (identity, PSNR, SSIM, "
                                                        "LMD against it, frame-aligned).")] = None,
    as_json: json_flag("Print one JSON object per clip (JSON Lines).") = False,
    table: Annotated[Path | None, typer.Option("-o", "--output", help="Also write the rows to a .parquet table.")]
    = None,
    syncnet_weights: Annotated[Path | None, typer.Option(help="syncnet_v2.model (else $FAKEBENCH_WEIGHTS, torch "
                                                              "hub cache); gives lse_d/lse_c.")] = None,
    facenet_weights: Annotated[Path | None, typer.Option(help="20180402-114759-vggface2.pt (else "
                                                              "$FAKEBENCH_WEIGHTS, torch caches); "
                                                              "adds facenet_cosine.")]
    = None,
    sync_model: Annotated[Path | None, typer.Option(help="An av-cca lip-sync model folder from `fakebench "
                                                         "train-sync` (default: the one shipped).")] = None,
    allow_unverified_weights: AllowUnverifiedWeights = False,
) -> None:
    """Per-clip metrics: lip-sync offset/confidence, blinks, identity distance, image quality.

    {clip_metrics}

    Each clip is decoded once and its face analysed once (cached); every row names the models and weights used.

    -o writes the rows with their provenance (fakebench version, weights SHA-256, config hash).
    """
    from fakebench.metrics.measure import measure_clips
    from fakebench.metrics.registry import parse_metrics

    wanted = parse_metrics(metrics, "clip")
    _check_given_weights({"syncnet_v2": (syncnet_weights, "--syncnet-weights"),
                          "facenet_vggface2": (facenet_weights, "--facenet-weights"),
                          "sync_cca": (sync_model, "--sync-model")}, allow_unverified_weights)
    if reference is None:
        from fakebench.metrics.registry import get_metric

        needing = [m for m in wanted if get_metric(m, "clip").needs_reference]
        if needing:
            raise ConfigError(f"--metrics {','.join(needing)} needs --reference PHOTO|CLIP (the source photo or "
                              "the source clip of the fakes)")
    rows = []
    for row in measure_clips(clips, wanted, reference=reference, syncnet_weights=syncnet_weights,
                             facenet_weights=facenet_weights, weights={"sync_cca": sync_model}):
        rows.append(row)
        for key in [k for k in row if k == "error" or k.endswith("_error")]:
            err.print(f"[yellow]warning:[/] {row['clip']}: {key}: {row[key]}")
        if as_json:
            print(json.dumps(_jsonable(row)), flush=True)
        else:
            _print_table(f"metrics of {row['clip']}", {k: _short(v) for k, v in row.items() if k != "clip"})
    if table is not None:
        config = {"metrics": wanted, "reference": reference, "syncnet_weights": syncnet_weights,
                  "facenet_weights": facenet_weights, "sync_model": sync_model}
        _write_table(table, rows, kind="metrics", config=config,
                     weights={"syncnet_v2": syncnet_weights, "facenet_vggface2": facenet_weights})
    unreadable = [r for r in rows if "error" in r]
    if rows and len(unreadable) == len(rows):
        raise InputFileError(f"none of the {len(rows)} clip(s) could be read, e.g. {unreadable[0]['clip']}: "
                             f"{unreadable[0]['error']}")
    failed = [r for r in rows if any(k == "error" or k.endswith("_error") for k in r)]
    if failed:
        err.print(f"[yellow]{len(failed)} of {len(rows)} clip(s) have failed metrics[/] (listed above; exit code 1)")
        raise typer.Exit(1)


@app.command(cls=_MetricsHelp)
def compare(
    real: Annotated[Path, typer.Argument(help="Folder of real clips (or images).")],
    fake: Annotated[Path, typer.Argument(help="Folder of fake clips (or images).")],
    metrics: Annotated[str, typer.Option(help="Comma-separated, from: {set_choices}.")] = "fid,kid,fd_dlib",
    frames_per_clip: Annotated[int, typer.Option(help="Frames sampled evenly from each clip's face frames.")] = 8,
    crop: Annotated[str, typer.Option(help="face (aligned face crops, as the field compares) or full frames.")]
    = "face",
    inception_weights: Annotated[Path | None, typer.Option(help="pt_inception-2015-12-05-6726825d.pth "
                                                                "(else $FAKEBENCH_WEIGHTS, torch hub cache).")]
    = None,
    seed: seed_option("Seed for KID subsets.") = 0,
    as_json: json_flag("Print one JSON object.") = False,
    allow_unverified_weights: AllowUnverifiedWeights = False,
) -> None:
    """Set metrics between real and fake: FID and KID (pytorch-fid's Inception), fd_dlib, identity.

    {set_metrics}
    """
    from fakebench.metrics.measure import compare_sets
    from fakebench.metrics.registry import parse_metrics

    wanted = parse_metrics(metrics, "set")
    _check_given_weights({"inception_fid": (inception_weights, "--inception-weights")}, allow_unverified_weights)
    result = compare_sets(real, fake, wanted, frames_per_clip=frames_per_clip,
                          crop=crop, inception_weights=str(inception_weights) if inception_weights else None,
                          seed=seed)
    if as_json:
        print(json.dumps(_jsonable(result)))
    else:
        _print_table(f"{real} vs {fake}", {k: _short(v) for k, v in result.items()})


def _check_given_weights(given: dict[str, tuple[Path | None, str]], allow_unverified: bool) -> None:
    """Weights files given on the command line are checked before any clip is read (refused: exit 2)."""
    from fakebench.weights import allow_unverified_weights, find_weight

    if allow_unverified:
        allow_unverified_weights()
    for name, (path, option) in given.items():
        if path is not None:
            find_weight(name, path, option=option)


def _jsonable(value):
    from fakebench.io import to_jsonable

    return to_jsonable(value)


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _write_table(path: Path, rows: list[dict], *, kind: str, config: dict, weights: dict) -> None:
    """The rows as a parquet table with their provenance (`fakebench.tables`), written atomically."""
    from fakebench.media import check_output_path
    from fakebench.tables import Provenance, write_table

    target = check_output_path(path)
    models: dict[str, str] = {}
    used = {k: v for k, v in weights.items() if v is not None}
    for row in rows:  # what each metric says it used: its *_model names and the *_weights files it found
        for key, value in row.items():
            if (key.endswith("_model") or key == "analysis_models") and value:
                models.setdefault(key, str(value))
            elif key.endswith("_weights") and isinstance(value, str) and Path(value).is_file():
                used.setdefault(key, value)
    write_table(target, rows, Provenance.make(kind, config=config, models=models, weights=used))
    out.print(f"wrote {len(rows)} rows to {target}")


def _print_table(title: str, values: dict) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for k, v in values.items():
        table.add_row(k, str(v))
    out.print(table)


def _format_warning(message, category, filename, lineno, file=None, line=None) -> str:
    return f"warning: {' '.join(str(message).split())}\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script. Returns (and exits with) the exit code.

    0 everything done; 1 done with some items failed (finished ones kept, failures listed); 2 the user's
    input is wrong (one line, no traceback); 130 interrupted (finished work kept).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    verbose = "--verbose" in args or "-v" in args
    warnings.formatwarning = _format_warning
    try:
        # With standalone_mode=False click returns a command's exit code (typer.Exit) instead of exiting.
        result = app(args=args, prog_name="fakebench", standalone_mode=False)
        code = result if isinstance(result, int) and not isinstance(result, bool) else EXIT_OK
        if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C into a silent Exit(130)
            raise KeyboardInterrupt
    except FakebenchError as e:
        if verbose:
            traceback.print_exc()
        print(f"error: {e.one_line()}", file=sys.stderr)
        code = EXIT_USER_ERROR
    except typer.Exit as e:
        code = e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted; finished work is kept (re-run the same command to resume where it can)",
              file=sys.stderr)
        code = EXIT_INTERRUPTED
    except typer.TyperException as e:  # usage errors (typer vendors click: no `import click`)
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {' '.join(e.format_message().split())}", file=sys.stderr)
        code = EXIT_USER_ERROR if e.exit_code == 2 else e.exit_code
    if argv is None:
        sys.exit(code)
    return code
