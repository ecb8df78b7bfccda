"""Progress reporting that steps accept and the CLI draws: a bar per phase, a line per phase in logs, or nothing.

Steps only call `phase(description, total)` and advance it; they know nothing of the terminal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Advance = Callable[[int], None]
BAR_DELAY = 0.5  # seconds: a phase that ends sooner draws no bar


class Reporter:
    """Reports nothing; the base for reporters that draw."""

    @contextmanager
    def phase(self, description: str, total: int | None) -> Iterator[Advance]:
        """Run one phase of work; the block calls the yielded function with units done."""
        yield lambda _: None

    def note(self, message: str) -> None:
        """Tell the user something worth knowing that is not an error."""


class BarReporter(Reporter):
    """On a terminal, a rich bar for each phase that lasts `delay` seconds or more; elsewhere (a log, a pipe),
    one line per phase when it ends: its name, the units done and the seconds taken.

    Notes go to the same console (stderr by default). A phase that fails leaves nothing behind but the error.
    """

    def __init__(self, console: Console | None = None, delay: float = BAR_DELAY) -> None:
        self.console = console or Console(stderr=True)
        self.delay = delay

    @contextmanager
    def phase(self, description: str, total: int | None) -> Iterator[Advance]:
        if self.console.is_terminal:
            with self._bar(description, total) as advance:
                yield advance
            return
        done, started = [0], time.perf_counter()
        yield lambda units: done.__setitem__(0, done[0] + units)
        self.console.print(_summary(description, done[0], total, time.perf_counter() - started),
                           highlight=False, markup=False)

    @contextmanager
    def _bar(self, description: str, total: int | None) -> Iterator[Advance]:
        """A bar that appears only once the phase has run for `delay` seconds (from a timer, so phases that never
        advance show too), and stays when the phase ends."""
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        progress = Progress(*columns, console=self.console, transient=False)
        task = progress.add_task(description, total=total)
        lock, state = threading.Lock(), {"shown": False, "ended": False}

        def show() -> None:
            with lock:
                if not state["ended"]:
                    progress.start()
                    state["shown"] = True

        timer = threading.Timer(self.delay, show)
        timer.daemon = True
        if self.delay <= 0:
            show()
        else:
            timer.start()
        failed = False
        try:
            yield lambda done: progress.advance(task, done)
        except BaseException:
            failed = True
            raise
        finally:
            with lock:
                state["ended"] = True
            timer.cancel()
            if state["shown"]:
                progress.live.transient = failed  # a failed phase leaves only the error line
                progress.stop()

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False, soft_wrap=True)  # one line each, as logs want


def _summary(description: str, done: int, total: int | None, seconds: float) -> str:
    """One log line for a finished phase: `neighbours: search 5,000/5,000 in 0.4 s`."""
    count = f"{done:,}/{total:,} " if total is not None else (f"{done:,} " if done else "")
    return f"{description} {count}in {seconds:.1f} s"


SILENT = Reporter()
