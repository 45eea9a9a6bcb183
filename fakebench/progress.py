"""How library code reports progress: a small callback protocol, silent by default.

Long work (a corpus build, an import, a run of tasks) takes a ``progress: Progress | None`` argument and calls
``start(total, description)``, then ``advance()`` per finished item (``failed=True`` for one that failed), ``note``
for a message the user should see (a skipped generator, say), and ``finish()``; one object may be started again for
the next stage. The library never prints: the CLI passes an implementation that draws a rich bar
(`fakebench.cli.progress.RichProgress`), tests pass a recorder, and ``None`` means `SILENT`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

__all__ = ["SILENT", "Progress", "Silent", "or_silent", "stage", "track"]


@runtime_checkable
class Progress(Protocol):
    def start(self, total: int | None, description: str) -> None:
        """A stage begins: `total` items (None when unknown)."""

    def advance(self, n: int = 1, *, failed: bool = False) -> None:
        """`n` more items are finished (or, with `failed`, failed)."""

    def note(self, message: str) -> None:
        """A message for the user (a warning, a skipped item); one line."""

    def finish(self) -> None:
        """The stage is over (also when it stopped with an error)."""


class Silent:
    """The default: reports nothing."""

    def start(self, total: int | None, description: str) -> None:
        pass

    def advance(self, n: int = 1, *, failed: bool = False) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def finish(self) -> None:
        pass


SILENT = Silent()


def or_silent(progress: Progress | None) -> Progress:
    return SILENT if progress is None else progress


@contextlib.contextmanager
def stage(progress: Progress | None, total: int | None, description: str) -> Iterator[Progress]:
    """``with stage(progress, n, "importing") as p: ... p.advance()``: `finish` is called however the block ends."""
    p = or_silent(progress)
    p.start(total, description)
    try:
        yield p
    finally:
        p.finish()


def track(items: Iterable[T], progress: Progress | None, description: str, *,
          total: int | None = None) -> Iterator[T]:
    """Yield `items`, advancing `progress` after each one (a stage of its own)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with stage(progress, total, description) as p:
        for item in items:
            yield item
            p.advance()
