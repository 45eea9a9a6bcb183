"""fakebench.io: the one atomic writer."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from fakebench.errors import InputFileError
from fakebench.io import (
    atomic_folder,
    atomic_symlink,
    atomic_write,
    to_jsonable,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_mode_follows_the_umask(tmp_path, umask_022):
    write_bytes_atomic(tmp_path / "a.bin", b"x")
    atomic_write(tmp_path / "b.bin", lambda tmp: tmp.write_bytes(b"y"), mode=None)
    write_json_atomic(tmp_path / "c.json", {"a": 1})
    assert _mode(tmp_path / "a.bin") == _mode(tmp_path / "b.bin") == _mode(tmp_path / "c.json") == 0o644
    os.umask(0o077)
    write_text_atomic(tmp_path / "d.txt", "z")
    assert _mode(tmp_path / "d.txt") == 0o600


def test_writes_the_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "data.json"  # missing parents are made
    write_json_atomic(target, {"x": np.float32(1.5), "n": np.int64(3), "bad": float("nan"), "t": (1, 2)})
    assert json.loads(target.read_text()) == {"x": 1.5, "n": 3, "bad": None, "t": [1, 2]}
    write_text_atomic(target, "again")
    assert target.read_text() == "again"
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.json"]


def test_a_failing_write_keeps_the_old_file_and_removes_its_temp(tmp_path):
    target = tmp_path / "table.bin"
    target.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"half")
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError, match="encoder crashed"):
        atomic_write(target, half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, lambda tmp: (_ for _ in ()).throw(KeyboardInterrupt()), mode=None)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.bin"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions and a non-root user")
def test_an_unwritable_folder_is_an_input_file_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(InputFileError, match=r"cannot write .*ro/out.json .*writable"):
            write_json_atomic(folder / "out.json", {})
        with pytest.raises(InputFileError):
            with atomic_folder(folder / "model"):
                pass
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


def test_a_folder_that_is_a_file_is_an_input_file_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputFileError, match="cannot write"):
        write_json_atomic(tmp_path / "file" / "out.json", {})
    with pytest.raises(InputFileError, match="cannot write"):
        atomic_write(tmp_path / "file" / "out.bin", lambda f: None, make_parents=False)


def test_an_oserror_inside_the_writer_is_an_input_file_error(tmp_path):
    def full_disk(f):
        raise OSError(28, "No space left on device")

    with pytest.raises(InputFileError, match="No space left on device") as info:
        atomic_write(tmp_path / "x.bin", full_disk)
    assert "\n" not in info.value.one_line()
    assert list(tmp_path.iterdir()) == []


def test_symlink_replaces_atomically(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("A")
    b.write_text("B")
    link = tmp_path / "media" / "clip"
    atomic_symlink(a, link)
    atomic_symlink(b, link)
    assert link.is_symlink() and link.read_text() == "B"
    assert sorted(p.name for p in link.parent.iterdir()) == ["clip"]


def test_atomic_folder_swaps_in_the_new_folder_or_keeps_the_old(tmp_path):
    out = tmp_path / "model"
    with atomic_folder(out) as tmp:
        (tmp / "config.json").write_text("1")
    with atomic_folder(out) as tmp:
        (tmp / "config.json").write_text("2")
        (tmp / "weights.pt").write_bytes(b"w")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "weights.pt"]
    assert (out / "config.json").read_text() == "2"
    with pytest.raises(ValueError):
        with atomic_folder(out) as tmp:
            (tmp / "config.json").write_text("3")
            raise ValueError("conversion failed")
    assert (out / "config.json").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_to_jsonable():
    assert to_jsonable({1: np.array([1, 2]), "b": np.bool_(True), "f": np.float64("inf")}) == \
        {"1": [1, 2], "b": True, "f": None}


def test_outputs_of_the_library_follow_the_umask(tmp_path, umask_022):
    """The writers that used to come out 0600 (mkstemp) now follow the umask."""
    from fakebench.media import Clip, write_audio, write_clip, write_image

    frames = np.zeros((4, 16, 16, 3), np.uint8)
    audio = np.zeros(1600, np.float32)
    write_clip(tmp_path / "c.mp4", Clip(frames=frames, fps=10.0, audio=audio, sample_rate=16000))
    write_audio(tmp_path / "a.wav", audio, 16000)
    write_image(tmp_path / "i.png", frames[0])
    for name in ("c.mp4", "a.wav", "i.png"):
        assert _mode(tmp_path / name) == 0o644, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "c.mp4", "i.png"]
