"""Exit codes tell scripts the truth, for every command: 0 all done, 1 done with some items failed, 2 the
user's input is wrong (one line, no traceback), 130 interrupted (finished work kept)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fakebench.cli import main
from fakebench.media import Clip, write_audio, write_clip

FPS = 25.0
SR = 16000


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def plain_clip(path: Path, *, n: int = 12, audio: np.ndarray | None = None) -> Path:
    y, x = np.mgrid[0:64, 0:64]
    frames = np.stack([np.dstack([(x * 4 + t) % 256, (y * 4) % 256, np.full_like(x, 90)]) for t in range(n)])
    sound = {} if audio is None else {"audio": audio, "sample_rate": SR}
    return write_clip(path, Clip(frames=frames.astype(np.uint8), fps=FPS, **sound))


def test_a_clip_without_audio_is_reported_silent(tmp_path: Path, capsys) -> None:
    code, out, _ = run(capsys, "analyze", plain_clip(tmp_path / "mute.mp4"), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["has_audio"] is False and summary["audio_silent"] is True


def test_unreadable_media_is_named_without_errno_numbers(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video at all")
    code, out, err = run(capsys, "analyze", bad)
    assert code == 2 and out == ""
    assert "Invalid data found when processing input" in err and "Errno" not in err
    assert len(err.strip().splitlines()) == 1


def _one_clip_corpus(tmp_path: Path, capsys, audio: np.ndarray) -> Path:
    plain_clip(tmp_path / "dataset" / "real" / "speaker1" / "take0.mp4", n=25, audio=audio)
    code, _, err = run(capsys, "corpus", "import", "folder", tmp_path / "dataset", "-o", tmp_path / "corpus")
    assert code == 0, err
    return tmp_path / "corpus"


def test_corpus_build_with_failed_clips_exits_1_and_keeps_the_rest(tmp_path: Path, capsys) -> None:
    silent = np.zeros(SR, np.float32)  # a real clip whose speech cannot be found: its outputs fail
    corpus = _one_clip_corpus(tmp_path, capsys, silent)
    code, _, err = run(capsys, "corpus", "build", corpus, "-o", tmp_path / "fake", "--generator", "static",
                       "--executor", "local")
    assert code == 1, err
    assert "failed" in err and "silent" in err


def test_corpus_info_exits_1_on_a_changed_file_and_on_leakage(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    corpus = _one_clip_corpus(tmp_path, capsys, (0.2 * rng.standard_normal(SR)).astype(np.float32))
    code, _, _ = run(capsys, "corpus", "info", corpus, "--verify")
    assert code == 0
    import pandas as pd

    manifest = pd.read_parquet(corpus / "manifest.parquet")
    media = corpus / manifest["path"][0]
    media.write_bytes(media.read_bytes()[:-10] + b"0123456789")  # same size, other bytes
    code, out, _ = run(capsys, "corpus", "info", corpus, "--verify")
    assert code == 1 and "does not match its sha256" in out.replace("\n", " ")  # rich wraps

    # the same bytes listed twice, under two identities: one clip counted as two people
    from fakebench.corpus.manifest import write_corpus
    from fakebench.media import file_sha256

    twin = manifest.iloc[[0]].assign(clip_id="twin", identity="speaker2", sha256=file_sha256(media))
    manifest = pd.concat([manifest.assign(sha256=file_sha256(media)), twin], ignore_index=True)
    write_corpus(corpus, manifest, {"fingerprint": {"kind": "test"}})
    code, out, _ = run(capsys, "corpus", "info", corpus)
    assert code == 1 and "leakage" in out and "twin" in out


INTERRUPT_SCRIPT = textwrap.dedent("""
    import sys
    import fakebench.media as media
    read_audio = media.read_audio
    def announced(*args, **kwargs):
        out = read_audio(*args, **kwargs)
        print("generation starts", file=sys.stderr, flush=True)
        return out
    media.read_audio = announced
    from fakebench.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_ctrl_c_during_generate_exits_130_and_leaves_no_partial_file(tmp_path: Path, astronaut) -> None:
    from PIL import Image

    photo = tmp_path / "face.png"
    Image.fromarray(astronaut).save(photo)
    t = np.arange(40 * SR) / SR
    write_audio(tmp_path / "long.wav", (0.3 * np.sin(2 * np.pi * 3 * t) * np.sin(2 * np.pi * 220 * t))
                .astype(np.float32), SR)
    out = tmp_path / "out" / "fake.mp4"
    out.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPT_SCRIPT, "generate", "--generator", "warp",
                             "--image", str(photo), "--audio", str(tmp_path / "long.wav"), "-o", str(out)],
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        for line in proc.stderr:
            if "generation starts" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    assert code == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest
    assert list(out.parent.iterdir()) == []  # neither the mp4, nor its JSON, nor a temporary file


def test_compare_checks_both_folders_before_decoding_anything(tmp_path: Path, capsys) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "broken.mp4").write_text("decoding this first would fail with a media error")
    code, _, err = run(capsys, "compare", real, tmp_path / "real" / "broken.mp4")
    assert code == 2 and "is not a folder" in err and "not readable media" not in err
