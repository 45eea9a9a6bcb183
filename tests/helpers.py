"""Helpers shared by the test modules (import them: ``from helpers import run, assert_user_error``).

pytest puts tests/ on sys.path (rootdir conftest, no __init__.py), so this module imports by its plain name.
Fixtures live in conftest.py; plain functions live here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FPS = 25.0


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Run the `fakebench` command in this process; returns (exit code, stdout, stderr)."""
    from fakebench.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def analyze_json(capsys, path: Path, *extra: str) -> dict:
    code, out, err = run(capsys, "analyze", path, "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def assert_user_error(code: int, out: str, err: str, *needles: str) -> None:
    """A user error: exit code 2, one line on stderr starting with "error:" and holding every needle, no traceback."""
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def gradient_frames(n: int, size: int = 64) -> np.ndarray:
    """Smooth colour gradients with a little noise: nothing a face detector should fire on."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    frames = np.zeros((n, size, size, 3), np.uint8)
    for t in range(n):
        base = np.stack([x * 3 + t, y * 3, (x + y) * 1.5 + 40], axis=-1)
        frames[t] = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    return frames


def tone(seconds: float, sr: int, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def no_face_clip(path: Path, *, n: int = 12, audio: np.ndarray | None = None, sr: int = 16000) -> Path:
    from fakebench.media import Clip, write_clip

    if audio is None:
        return write_clip(path, Clip(frames=gradient_frames(n), fps=FPS, has_audio_track=False))
    return write_clip(path, Clip(frames=gradient_frames(n), fps=FPS, audio=audio, sample_rate=sr))


def face_crop_clip(photo: np.ndarray, centre: tuple[float, float], zoom: float, n: int,
                   seed: int) -> np.ndarray:
    from fakebench.synthetic import moving_photo

    return moving_photo(photo, n_frames=n, size=(160, 160), centre=centre, zoom=zoom, seed=seed).clip.frames


_SPEAK_IN_ORDER = """
import sys, numpy as np
from fakebench.media import resample_audio
from fakebench.speech import synthesize
texts = sys.argv[2::2]; voices = sys.argv[3::2]
out = {}
for i, (text, voice) in enumerate(zip(texts, voices)):
    audio, sr, _ = synthesize(text, voice=voice)
    out[f"a{i}"] = resample_audio(audio, sr, 16000)
np.savez(sys.argv[1], **out)
"""


def fresh_speech(items: list[tuple[str, str]], folder: Path) -> list[np.ndarray]:
    """16 kHz speech for (text, voice) pairs, synthesized in order in a fresh process.

    espeak-ng's audio depends on what the process synthesised before (its pitch flutter keeps a phase), so
    speech made inside the test process changes with the order tests run in; a fresh process replaying the same
    calls always gets the same audio."""
    import subprocess
    import sys

    target = folder / "speech.npz"
    args = [a for text, voice in items for a in (text, voice)]
    done = subprocess.run([sys.executable, "-c", _SPEAK_IN_ORDER, str(target), *args], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(target) as arrays:
        return [arrays[f"a{i}"] for i in range(len(items))]
