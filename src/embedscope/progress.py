"""Progress reporting that steps accept and the CLI draws: a bar per phase, or nothing when quiet.

Steps only call `phase(description, total)` and advance it; they know nothing of the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Advance = Callable[[int], None]


class Reporter:
    """Reports nothing; the base for reporters that draw."""

    @contextmanager
    def phase(self, description: str, total: int | None) -> Iterator[Advance]:
        """Run one phase of work; the block calls the yielded function with units done."""
        yield lambda _: None

    def note(self, message: str) -> None:
        """Tell the user something worth knowing that is not an error."""


class BarReporter(Reporter):
    """Draws a rich progress bar per phase on stderr and prints notes there."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextmanager
    def phase(self, description: str, total: int | None) -> Iterator[Advance]:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total)
            try:
                yield lambda done: progress.advance(task, done)
            except BaseException:
                progress.live.transient = True  # a failed phase leaves only the error line
                raise

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False)


SILENT = Reporter()
