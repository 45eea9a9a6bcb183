"""Tests for the `fakebench` command: through `fakebench.cli.main` (in process) and the console script.

User errors exit with code 2 and print exactly one line, starting with "error:", and no traceback.
Every test makes its own small media in tmp_path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import (  # shared with the other test modules
    FPS,
    analyze_json,
    assert_user_error,
    face_crop_clip,
    gradient_frames,
    no_face_clip,
    run,
    tone,
)

from fakebench.media import (
    Clip,
    TruncatedMediaWarning,
    read_audio,
    read_clip,
    rms_dbfs,
    write_audio,
    write_clip,
    write_image,
)
from fakebench.synthetic import moving_photo

pytestmark = pytest.mark.slow  # end to end: drives the CLI (`pytest -m 'not slow'` skips it)

SUMMARY_KEYS = {"frames", "fps", "width", "height", "duration_s", "has_audio", "sample_rate", "face_frames",
                "faces_max", "landmark_ok_ratio", "cache_hit"}


# ------------------------------------------------------------------------------------------- basics

def test_help_lists_the_commands(capsys) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("analyze", "speak", "weights", "demo"):
        assert command in out


def test_usage_errors_exit_2_without_traceback(capsys) -> None:
    for args in (["analyze"], ["no-such-command"], ["analyze", "--no-such-option", "x.mp4"]):
        code, out, err = run(capsys, *args)
        assert code == 2, args
        assert "Traceback" not in err + out
        assert "Error" in err


def test_console_script_exits_2_with_one_line(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "fakebench"
    assert exe.is_file()
    env = {**os.environ, "COLUMNS": "200"}
    missing = tmp_path / "missing.mp4"
    proc = subprocess.run([str(exe), "analyze", str(missing)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no such file" in lines[0]
    # a usage error through the real entry point: click's message, exit 2, no traceback
    proc = subprocess.run([str(exe), "analyze"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "Missing argument" in proc.stderr


def test_verbose_shows_the_traceback_and_still_exits_2(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "--verbose", "analyze", tmp_path / "missing.mp4")
    assert code == 2
    assert "Traceback" in err and "InputFileError" in err
    assert err.strip().splitlines()[-1].startswith("error: ")


# ------------------------------------------------------------------------------------------- analyze

@pytest.fixture(scope="module")
def talking_clip(tmp_path_factory, astronaut, speech_16k) -> Path:
    speech, sr = speech_16k
    n = 30
    audio = speech[: int(n / FPS * sr)]
    mp = moving_photo(astronaut, n_frames=n, size=(160, 160), centre=(225, 130), zoom=0.8, audio=audio,
                      sample_rate=sr)
    return write_clip(tmp_path_factory.mktemp("talking") / "talking.mp4", mp.clip)


def test_analyze_json_then_cache_hit(talking_clip: Path, capsys) -> None:
    first = analyze_json(capsys, talking_clip)
    assert SUMMARY_KEYS <= first.keys()
    assert first["frames"] == 30
    assert first["fps"] == pytest.approx(25.0)
    assert (first["width"], first["height"]) == (160, 160)
    assert first["duration_s"] == pytest.approx(1.2)
    assert first["has_audio"] is True
    assert first["sample_rate"] == 16000
    assert first["audio_silent"] is False
    assert first["truncated"] is False
    assert first["face_frames"] >= 28
    assert first["faces_max"] == 1
    assert first["landmark_ok_ratio"] == pytest.approx(first["face_frames"] / 30, abs=1e-3)
    assert first["cache_hit"] is False

    second = analyze_json(capsys, talking_clip)
    assert second["cache_hit"] is True
    assert {k: v for k, v in second.items() if k != "cache_hit"} == \
        {k: v for k, v in first.items() if k != "cache_hit"}

    # the table output shows the same numbers and warns about nothing
    code, out, err = run(capsys, "analyze", talking_clip)
    assert code == 0
    assert "face_frames" in out and str(first["face_frames"]) in out
    assert "warning" not in err


def test_video_without_a_face(tmp_path: Path, capsys) -> None:
    path = no_face_clip(tmp_path / "gradient.mp4", n=15)
    summary = analyze_json(capsys, path)
    assert summary["frames"] == 15
    assert summary["face_frames"] == 0
    assert summary["faces_max"] == 0
    assert summary["landmark_ok_ratio"] == 0.0
    assert summary["has_audio"] is False
    assert summary["sample_rate"] is None
    code, _, err = run(capsys, "analyze", path)  # the table form warns on stderr
    assert code == 0
    assert "no face" in err


def test_two_faces_side_by_side(tmp_path: Path, astronaut, grace_hopper, capsys) -> None:
    # Face boxes in the photos: astronaut ~87 px wide around (224, 117); Grace Hopper ~181 px around
    # (265, 230). Zooms chosen so both faces are ~70 px wide in their 160x160 halves.
    n = 12
    left = face_crop_clip(astronaut, (224, 122), 0.8, n, seed=1)
    right = face_crop_clip(grace_hopper, (265, 235), 0.8 * 87 / 181, n, seed=2)
    path = write_clip(tmp_path / "two.mp4", Clip(frames=np.concatenate([left, right], axis=2), fps=FPS,
                                                 has_audio_track=False))
    summary = analyze_json(capsys, path)
    assert (summary["width"], summary["height"]) == (320, 160)
    assert summary["faces_max"] == 2
    assert summary["face_frames"] >= n - 1

    from fakebench.faces import analyze

    track = analyze(path)  # the CLI's cached track
    assert track.meta["cache_hit"] is True
    centres_x = (track.boxes[track.valid, 0] + track.boxes[track.valid, 2]) / 2
    assert len(centres_x) == summary["face_frames"]
    assert (centres_x < 160).all() or (centres_x >= 160).all()  # one subject, not a jump between two


def test_truncated_clip_is_analyzed_and_flagged(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (40, 64, 64, 3), dtype=np.uint8)  # noise: bytes spread over all frames
    full = write_clip(tmp_path / "full.mp4", Clip(frames=frames, fps=FPS, has_audio_track=False))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    with pytest.warns(TruncatedMediaWarning, match="kept the decodable part"):
        summary = analyze_json(capsys, cut)
    assert summary["truncated"] is True
    assert 2 <= summary["frames"] < 40


@pytest.mark.parametrize("sr", [8000, 48000])
def test_analyze_reports_the_audio_sample_rate(tmp_path: Path, capsys, sr: int) -> None:
    path = no_face_clip(tmp_path / f"a{sr}.mp4", audio=tone(12 / FPS, sr), sr=sr)
    summary = analyze_json(capsys, path)
    assert summary["has_audio"] is True
    assert summary["sample_rate"] == sr
    assert summary["audio_silent"] is False
    assert summary["audio_duration_s"] == pytest.approx(12 / FPS, abs=1 / FPS)


def test_analyze_silent_audio(tmp_path: Path, capsys) -> None:
    path = no_face_clip(tmp_path / "quiet.mp4", audio=np.zeros(int(12 / FPS * 16000), np.float32))
    summary = analyze_json(capsys, path)
    assert summary["has_audio"] is True
    assert summary["audio_silent"] is True


def test_analyze_stereo_audio(tmp_path: Path, capsys) -> None:
    sr, n = 44100, 12
    frames = gradient_frames(n)
    sine = tone(n / FPS, sr)
    path = tmp_path / "stereo.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=int(FPS))
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        aus = out.add_stream("aac", rate=sr, layout="stereo")
        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, int(FPS))
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
        af = av.AudioFrame.from_ndarray(np.stack([sine, 0.5 * sine]), format="fltp", layout="stereo")
        af.sample_rate, af.pts = sr, 0
        out.mux(aus.encode(af))
        out.mux(aus.encode(None))
    summary = analyze_json(capsys, path)
    assert summary["has_audio"] is True
    assert summary["sample_rate"] == sr
    assert summary["audio_silent"] is False
    assert summary["audio_duration_s"] == pytest.approx(n / FPS, abs=1 / FPS)


# ------------------------------------------------------------------------------------------- bad input

def test_analyze_missing_file(tmp_path: Path, capsys) -> None:
    assert_user_error(*run(capsys, "analyze", tmp_path / "missing.mp4"), "no such file")


def test_analyze_empty_file(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert_user_error(*run(capsys, "analyze", empty), "empty")


def test_analyze_text_file_named_mp4(tmp_path: Path, capsys) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n" * 50)
    assert_user_error(*run(capsys, "analyze", fake), "not readable media")


def test_analyze_mp4_cut_to_200_bytes(tmp_path: Path, capsys) -> None:
    full = no_face_clip(tmp_path / "full.mp4", audio=tone(12 / FPS, 16000))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[:200])
    assert_user_error(*run(capsys, "analyze", cut), str(cut), "truncated")


def test_analyze_image(tmp_path: Path, capsys) -> None:
    image = write_image(tmp_path / "photo.png", gradient_frames(1)[0])
    assert_user_error(*run(capsys, "analyze", image), "image")


def test_analyze_audio_only_file(tmp_path: Path, capsys) -> None:
    wav = write_audio(tmp_path / "voice.wav", tone(0.5, 16000), 16000)
    assert_user_error(*run(capsys, "analyze", wav), "no video stream")


def test_analyze_one_frame_video(tmp_path: Path, capsys) -> None:
    one = no_face_clip(tmp_path / "one.mp4", n=1)
    assert read_clip(one, min_frames=1).n_frames == 1
    assert_user_error(*run(capsys, "analyze", one), "1 frame")


# ------------------------------------------------------------------------------------------- speak, weights

def test_speak_writes_audible_speech(tmp_path: Path, capsys) -> None:
    target = tmp_path / "out.wav"
    code, out, err = run(capsys, "speak", "Hello world", "-o", target)
    assert code == 0, err
    assert target.is_file()
    assert "Hello" in out and "world" in out  # word timings
    audio, sr = read_audio(target)
    assert 0.3 < audio.size / sr < 3.0
    assert rms_dbfs(audio) > -40


def test_speak_to_unwritable_output(tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    assert_user_error(*run(capsys, "speak", "Hello", "-o", a_file / "out.wav"), "cannot write")
    assert_user_error(*run(capsys, "speak", "Hello", "-o", "/proc/fakebench-test.wav"), "cannot write")
    assert_user_error(*run(capsys, "speak", "Hello", "-o", tmp_path / "out.mp3"), ".wav or .flac")
    assert sorted(os.listdir(tmp_path)) == ["plain.txt"]


def test_speak_bad_voice_and_empty_text(tmp_path: Path, capsys) -> None:
    target = tmp_path / "out.wav"
    assert_user_error(*run(capsys, "speak", "Hello", "--voice", "xx-nonsense", "-o", target), "voice")
    assert_user_error(*run(capsys, "speak", "", "-o", target), "empty")
    assert not target.exists()


def test_weights_list_json(capsys) -> None:
    code, out, err = run(capsys, "weights", "list", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    dlib = rows["dlib_landmarks_68"]
    assert dlib["found"] is True
    assert dlib["path"] and Path(dlib["path"]).is_file()
    syncnet = rows["syncnet_v2"]
    assert syncnet["found"] is False
    assert syncnet["path"] is None
    assert syncnet["searched"] and all(isinstance(p, str) and p for p in syncnet["searched"])
