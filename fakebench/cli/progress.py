"""The CLI's implementation of `fakebench.progress.Progress`: a rich bar per stage, notes as warnings."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichBar


class RichProgress:
    """Draws a bar counting finished (and failed) items (on a terminal only: no bar in logs or pipes); `note`
    prints a yellow line above it."""

    def __init__(self, console: Console | None = None, *, note_prefix: str = "warning: ") -> None:
        self.console = console or Console(stderr=True)
        self.note_prefix = note_prefix
        self._bar: RichBar | None = None
        self._task = None
        self._failed = 0

    def start(self, total: int | None, description: str) -> None:
        self.finish()
        self._failed = 0
        self._bar = RichBar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[failed]}"), TimeRemainingColumn(), console=self.console,
                            transient=False, disable=not self.console.is_terminal)
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, failed="")

    def advance(self, n: int = 1, *, failed: bool = False) -> None:
        if self._bar is None:
            return
        self._failed += n if failed else 0
        self._bar.update(self._task, advance=n, failed=f"[red]{self._failed} failed[/]" if self._failed else "")

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]{self.note_prefix}[/]{message}", highlight=False)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
