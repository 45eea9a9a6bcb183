"""The one atomic writer: every file fakebench writes appears complete or not at all.

A file is written to a hidden temporary file in the target's folder (``.NAME.<random>.tmp``), flushed to disk
(fsync), then renamed over the target (``os.replace``, atomic on POSIX and Windows), and the folder is fsynced so
the rename itself survives a crash. The new file gets the usual permissions (``0666`` less the umask, so ``0644``
under umask 022), not the ``0600`` of `tempfile.mkstemp`. When writing fails, the temporary file is removed and an
existing target is left as it was; an `OSError` becomes an `InputFileError` that says what to do.

- `atomic_write(path, write, mode="wb")`: the general form; ``write`` gets an open file (or, with
  ``mode=None``, the temporary path, for writers that open files themselves).
- `write_bytes_atomic`, `write_text_atomic`, `write_json_atomic`: the common cases.
- `atomic_symlink(source, path)`: a symbolic link, replaced atomically.
- `atomic_folder(path)`: a whole folder made under a temporary name and swapped in.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fakebench.errors import InputFileError

__all__ = ["atomic_folder", "atomic_symlink", "atomic_write", "to_jsonable", "write_bytes_atomic",
           "write_json_atomic", "write_text_atomic"]


def _temp_name(target: Path, suffix: str = ".tmp") -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}{suffix}")


def _create_temp(target: Path) -> Path:
    """Create an empty hidden file beside `target` with umask permissions (os.open honours the umask)."""
    for _ in range(100):
        tmp = _temp_name(target)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name beside {target}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable; a no-op where folders cannot be opened (Windows)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(path: Path, e: OSError) -> InputFileError:
    return InputFileError(f"cannot write {path} ({e.strerror or e}); check that its folder exists and is writable "
                          "and that the disk has free space, or choose another output path")


def atomic_write(path: str | os.PathLike[str], write: Callable[[Any], object], *, mode: str | None = "wb",
                 encoding: str | None = None, make_parents: bool = True) -> Path:
    """Write `path` atomically and return it.

    With ``mode`` "wb" or "w" (text, ``encoding`` default UTF-8), ``write(f)`` gets the open temporary file; with
    ``mode=None``, ``write(tmp)`` gets the temporary file's path (it exists, empty) for writers that open the file
    themselves (they must not rely on its name's suffix to choose a format). ``make_parents`` creates missing
    parent folders.
    """
    if mode not in ("wb", "w", None):
        raise ValueError(f"atomic_write mode must be 'wb', 'w' or None, got {mode!r}")
    target = Path(path)
    tmp: Path | None = None
    try:
        if make_parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_temp(target)
        if mode is None:
            write(tmp)
            _fsync_file(tmp)
        else:
            with open(tmp, mode, encoding=(encoding or "utf-8") if mode == "w" else None) as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
        tmp = None
        _fsync_folder(target.parent)
    except OSError as e:
        raise _write_error(target, e) from e
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return target


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def write_text_atomic(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w", encoding=encoding)


def write_json_atomic(path: str | os.PathLike[str], data: Any, *, indent: int | None = None) -> Path:
    """Write `data` (made JSON-able by `to_jsonable`: numpy values, tuples, NaN -> null) as JSON, atomically."""
    text = json.dumps(to_jsonable(data), indent=indent, allow_nan=False)
    return write_text_atomic(path, text)


def to_jsonable(value: Any) -> Any:
    """`value` with numpy arrays and scalars as Python lists and numbers, tuples as lists, dict keys as strings,
    and non-finite floats as None (JSON has no NaN)."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def atomic_symlink(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Make `path` a symbolic link to `source` (as given), replacing whatever is there atomically."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            tmp = _temp_name(target)
            try:
                os.symlink(source, tmp)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"no free temporary name beside {target}")
        try:
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_folder(target.parent)
    except OSError as e:
        raise _write_error(target, e) from e
    return target


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a folder under a temporary name and swap it in for `path` when the block succeeds.

    ``with atomic_folder(out) as tmp: (tmp / "a.json").write_text(...)``. Readers see the old folder or the
    complete new one: the files written are fsynced; an existing folder is first renamed aside, the new one renamed
    in (the old one restored if that fails), then the old one removed. When the block raises, the temporary folder
    is removed and `path` is untouched.
    """
    target = Path(path)
    tmp = _temp_name(target)
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise _write_error(target, e) from e
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file() and not file.is_symlink():
                _fsync_file(file)
        _fsync_folder(tmp)
        _swap_folder(tmp, target)
        _fsync_folder(target.parent)
    except OSError as e:
        raise _write_error(target, e) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_folder(new: Path, target: Path) -> None:
    if not target.exists():
        os.replace(new, target)
        return
    old = _temp_name(target, ".old")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
