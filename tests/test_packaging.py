"""The default SDA checkpoint is package data: a wheel carries it, and an installed (not editable) fakebench finds
it, lists it with its checksum and generates with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ("fakebench/data/weights/sda-default/config.json", "fakebench/data/weights/sda-default/weights.pt")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """fakebench built as a wheel and installed (without dependencies: the test venv has them) into a folder."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(work / "dist"), str(ROOT)], check=True, capture_output=True, cwd=work)
    wheel = next((work / "dist").glob("fakebench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(CHECKPOINT) <= names
    assert "fakebench/data/weights/MODEL_CARD.md" in names
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target",
                    str(work / "site"), str(wheel)], check=True, capture_output=True, cwd=work)
    return work / "site"


def _run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    code = ("import sys, fakebench; assert fakebench.__file__.startswith(sys.argv[1]), fakebench.__file__; "
            "from fakebench.cli import main; sys.exit(main(sys.argv[2:]))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("FAKEBENCH_WEIGHTS", None)
    return subprocess.run([sys.executable, "-c", code, str(site), *args], capture_output=True, text=True, cwd=cwd,
                          env=env)


@pytest.mark.slow
def test_installed_wheel_lists_and_uses_the_shipped_checkpoint(installed, tmp_path, astronaut, speech_16k):
    from fakebench.media import read_clip, write_audio, write_image

    done = _run_installed(installed, tmp_path, "weights", "list", "--json", "--verify")
    assert done.returncode == 0, done.stderr
    row = next(r for r in json.loads(done.stdout) if r["name"] == "sda_default")
    assert row["found"] and row["checksum"] == "ok" and row["where"] == "fakebench package data"
    assert Path(row["path"]) == installed / "fakebench" / "data" / "weights" / "sda-default"

    audio, sr = speech_16k
    photo, wav = write_image(tmp_path / "photo.png", astronaut), write_audio(tmp_path / "speech.wav", audio, sr)
    done = _run_installed(installed, tmp_path, "generate", "--generator", "sda", "--image", str(photo), "--audio",
                          str(wav), "-o", "x.mp4")
    assert done.returncode == 0, done.stderr
    clip = read_clip(tmp_path / "x.mp4")
    assert clip.n_frames > 10 and clip.has_audio_track and np.ptp(clip.frames) > 0
