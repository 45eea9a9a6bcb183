"""Every command through every exit code it can give: 0 done, 1 some items failed, 2 bad input, 130 interrupted.

`CASES` names, per command, the arguments that must give each code; the walk over the command tree makes a new
command without its row fail here. A command that works on one item has no 1 (it either did the item or not).
A few 0 cases cost minutes and already run in other test files: `ELSEWHERE` names those tests, and the test here
checks they still exist. Interruption (130) is driven the same way for every command: the command's work raises
KeyboardInterrupt, as Ctrl-C does, and the process must say "interrupted" and exit 130 (a real SIGINT in a
subprocess is `test_exit_codes.py::test_ctrl_c_during_generate_exits_130_and_leaves_no_partial_file`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import typer
from helpers import run

from fakebench.cli.app import app
from fakebench.media import Clip, write_audio, write_clip, write_image

pytestmark = pytest.mark.slow  # drives the CLI end to end

SR = 16000
FPS = 25.0
Args = Callable[[Path], list]


@pytest.fixture(scope="module")
def media(tmp_path_factory, astronaut, speech_16k) -> Path:
    """A face photo, speech, a short talking clip, an unreadable 'clip', a two-clip dataset with one bad clip."""
    from fakebench.generators.base import create

    root = tmp_path_factory.mktemp("exit-matrix")
    photo = np.ascontiguousarray(astronaut[20:276, 100:356][::2, ::2])
    write_image(root / "face.png", photo)
    audio, sr = speech_16k
    write_audio(root / "speech.wav", audio, sr)
    create("static").generate(photo, audio, sr).save(root / "talk.mp4")
    (root / "broken.mp4").write_text("not a video")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64]
    frames = np.stack([np.dstack([(x * 4 + t) % 256, (y * 4) % 256, np.full_like(x, 90)]) for t in range(25)])
    noise = (0.2 * rng.standard_normal(SR)).astype(np.float32)
    for folder in ("dataset", "dataset_with_bad"):
        write_clip(root / folder / "real" / "speaker1" / "take0.mp4",
                   Clip(frames=frames.astype(np.uint8), fps=FPS, audio=noise, sample_rate=SR))
    (root / "dataset_with_bad" / "real" / "speaker2").mkdir(parents=True)
    (root / "dataset_with_bad" / "real" / "speaker2" / "take0.mp4").write_text("not a video")
    for folder in ("images_a", "images_b"):
        (root / folder).mkdir()
        write_image(root / folder / "0.png", photo)
        write_image(root / folder / "1.png", np.ascontiguousarray(photo[:, ::-1]))
    code, _, _ = _run_plain(["corpus", "import", "folder", root / "dataset", "-o", root / "corpus"])
    assert code == 0
    code, _, _ = _run_plain(["corpus", "import", "folder", root / "dataset", "-o", root / "changed"])
    assert code == 0
    for clip in (root / "changed").rglob("*.mp4"):  # a file that no longer matches its manifest SHA-256
        clip.unlink()
        clip.write_bytes((root / "talk.mp4").read_bytes())
    return root


def _run_plain(args: list) -> tuple[int, str, str]:
    from fakebench.cli import main

    return main([str(a) for a in args]), "", ""


CASES: dict[tuple[str, ...], dict[int, Args]] = {
    ("analyze",): {0: lambda m: [m / "talk.mp4"], 2: lambda m: [m / "missing.mp4"]},
    ("speak",): {0: lambda m: ["Hello there.", "-o", m / "out" / "hello.wav"],
                 2: lambda m: ["Hello.", "-o", m / "out" / "x.wav", "--rate", "5"]},
    ("generate",): {0: lambda m: ["-g", "static", "--image", m / "face.png", "--audio", m / "speech.wav",
                                  "-o", m / "out" / "gen.mp4"],
                    2: lambda m: ["-g", "static", "--image", m / "face.png", "--audio", m / "speech.wav",
                                  "-o", m / "out" / "bad.mp4", "--fps", "0"]},
    ("generators",): {0: lambda m: ["--json"], 2: lambda m: ["--no-such-flag"]},
    ("measure",): {0: lambda m: [m / "talk.mp4", "--metrics", "quality"],
                   1: lambda m: [m / "talk.mp4", m / "broken.mp4", "--metrics", "quality"],
                   2: lambda m: [m / "broken.mp4", "--metrics", "quality"]},
    ("compare",): {0: lambda m: [m / "images_a", m / "images_b", "--metrics", "fid"],
                   2: lambda m: [m / "images_a", m / "missing"]},
    ("demo",): {2: lambda m: ["-o", m / "out" / "demo2", "--config", m / "missing.yaml"]},
    ("bench",): {2: lambda m: [m / "missing.yaml", "-o", m / "out" / "bench2"]},
    ("weights", "list"): {0: lambda m: ["--json"], 2: lambda m: ["--no-such-flag"]},
    ("weights", "convert"): {2: lambda m: [m / "missing.dat", "-o", m / "out" / "conv"]},
    ("train-generator",): {2: lambda m: [m / "missing", "-o", m / "out" / "run"]},
    ("train-sync",): {2: lambda m: [m / "missing", "-o", m / "out" / "sync"]},
    ("train-detector",): {2: lambda m: [m / "missing", "-d", "sync", "-o", m / "out" / "det"]},
    ("evaluate",): {2: lambda m: [m / "missing-detector", m / "corpus", "-o", m / "out" / "eval"]},
    ("detect",): {2: lambda m: [m / "missing.mp4"]},
    ("corpus", "import"): {0: lambda m: ["folder", m / "dataset", "-o", m / "out" / "c0"],
                           1: lambda m: ["folder", m / "dataset_with_bad", "-o", m / "out" / "c1"],
                           2: lambda m: ["folder", m / "missing", "-o", m / "out" / "c2"]},
    ("corpus", "build"): {0: lambda m: [m / "corpus", "-o", m / "out" / "b0", "-g", "desync", "--executor",
                                        "local"],
                          2: lambda m: [m / "missing", "-o", m / "out" / "b2"]},
    ("corpus", "demo"): {2: lambda m: ["-o", m / "out" / "d2", "--clips-per-identity", "0"]},
    ("corpus", "info"): {0: lambda m: [m / "corpus"], 1: lambda m: [m / "changed", "--verify"],
                         2: lambda m: [m / "missing"]},
    ("report",): {2: lambda m: [m / "corpus", "-o", m / "out" / "report"]},  # a corpus is not a run folder
}

ELSEWHERE: dict[tuple[tuple[str, ...], int], str] = {
    (("weights", "convert"), 0): "test_sda.py::test_convert_round_trip_is_exact",
    (("train-generator",), 0): "test_sda_training.py::test_cli_trains_logs_and_its_checkpoint_generates",
    (("corpus", "demo"), 0): "test_corpus.py::test_demo_corpus_marks_its_synthetic_reference_class",
    (("train-sync",), 0):
        "test_avsync.py::test_train_sync_fits_evaluates_leave_one_speaker_out_and_writes_a_loadable_model",
    (("train-sync",), 1): "test_avsync.py::test_train_sync_skips_unusable_clips_and_exits_1",
    (("train-detector",), 0): "test_detect_cli.py::test_train_evaluate_and_detect",
    (("evaluate",), 0): "test_detect_cli.py::test_train_evaluate_and_detect",
    (("evaluate",), 1): "test_detect_cli.py::test_clips_that_cannot_be_scored_are_listed_and_exit_1",
    (("detect",), 0): "test_detect_cli.py::test_train_evaluate_and_detect",
    (("detect",), 1): "test_detect_cli.py::test_clips_that_cannot_be_scored_are_listed_and_exit_1",
    (("demo",), 0): "test_bench.py::test_demo_runs_its_config_and_writes_the_report",
    (("demo",), 1): "test_bench.py::test_a_killed_metrics_stage_resumes_and_a_clip_that_broke_is_exit_1",
    (("bench",), 0): "test_bench.py::test_running_a_finished_run_again_does_no_work",
    (("bench",), 1): "test_bench.py::test_a_killed_metrics_stage_resumes_and_a_clip_that_broke_is_exit_1",
    (("corpus", "build"), 1): "test_exit_codes.py::test_corpus_build_with_failed_clips_exits_1_and_keeps_the_rest",
    (("report",), 0): "test_report.py::test_report_of_a_run_exits_0_and_writes_html_md_and_figures",
}

SINGLE_ITEM = {("analyze",), ("speak",), ("generate",), ("generators",), ("compare",), ("train-detector",),
               ("weights", "list"), ("weights", "convert"), ("train-generator",), ("corpus", "demo"), ("report",)}


def _leaf_commands(command=None, path: tuple[str, ...] = ()):
    command = command or typer.main.get_command(app)
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _leaf_commands(sub, (*path, name))
    else:
        yield path


def test_every_command_has_every_code_it_can_give():
    leaves = set(_leaf_commands())
    assert leaves == set(CASES), "a command without its exit cases (or a case for a command that is gone)"
    for command in leaves:
        codes = set(CASES[command]) | {code for (c, code) in ELSEWHERE if c == command}
        wanted = {0, 2} if command in SINGLE_ITEM else {0, 1, 2}
        assert codes == wanted, (command, codes)
    here = Path(__file__).parent
    for reference in ELSEWHERE.values():
        file, name = reference.split("::")
        assert re.search(rf"^def {name}\(", (here / file).read_text(), re.MULTILINE), reference


@pytest.mark.parametrize(("command", "code"), [(c, k) for c, cases in CASES.items() for k in cases],
                         ids=lambda v: "-".join(v) if isinstance(v, tuple) else str(v))
def test_exit_code(command, code, media, capsys):
    got, out, err = run(capsys, *command, *CASES[command][code](media))
    assert got == code, (got, err[-600:])
    assert "Traceback" not in err
    if code == 2:
        assert err.strip().splitlines()[-1].startswith(("error:", "Error", "│", "╰")), err


@pytest.mark.parametrize("command", sorted(CASES), ids="-".join)
def test_interrupted_work_exits_130_saying_so(command, media, capsys, monkeypatch):
    """Ctrl-C inside the command's work (the callback raises KeyboardInterrupt) -> 130 and 'interrupted'."""
    cli = typer.main.get_command(app)
    leaf = cli
    for name in command:
        leaf = leaf.commands[name]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(typer.main, "get_command", lambda _app: cli)
    monkeypatch.setattr(leaf, "callback", interrupted)
    valid = CASES[command].get(0) or CASES[command][2]
    got, out, err = run(capsys, *command, *valid(media))
    assert got == 130
    assert "interrupted" in err and "Traceback" not in err
