"""Progress: a terminal shows a bar only for phases that last, a log gets one line per phase, a failed phase
leaves nothing, and --quiet silences all of it."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from embedscope.progress import SILENT, BarReporter


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100, color_system=None), out


def left_on_screen(out: io.StringIO) -> str:
    """What stays visible: the text after the terminal's last erase-line code (all of it when there is none)."""
    return out.getvalue().rsplit("\x1b[2K", 1)[-1]


def run_phase(reporter, description="neighbours: search", total=5000, seconds=0.0):
    with reporter.phase(description, total) as advance:
        time.sleep(seconds)
        advance(total or 3)


def test_a_quick_phase_draws_no_bar_on_a_terminal():
    screen, out = console(terminal=True)
    run_phase(BarReporter(screen, delay=0.5))
    assert out.getvalue() == ""


def test_a_lasting_phase_draws_its_bar_and_leaves_it_finished():
    screen, out = console(terminal=True)
    run_phase(BarReporter(screen, delay=0.0))
    assert "neighbours: search" in left_on_screen(out) and "5000/5000" in left_on_screen(out)


def test_a_phase_that_never_advances_still_shows_once_it_lasts():
    screen, out = console(terminal=True)
    with BarReporter(screen, delay=0.05).phase("phate: fit", None):
        time.sleep(0.5)
    assert "phate: fit" in left_on_screen(out)


@pytest.mark.parametrize("terminal", [True, False])
def test_a_failed_phase_leaves_nothing_behind(terminal):
    screen, out = console(terminal)
    with pytest.raises(RuntimeError), BarReporter(screen, delay=0.0).phase("umap: layout", 500) as advance:
        advance(100)
        raise RuntimeError("boom")
    assert "umap: layout" not in left_on_screen(out)


def test_a_log_gets_one_line_per_phase_with_name_count_and_seconds():
    log, out = console(terminal=False)
    reporter = BarReporter(log)
    run_phase(reporter)
    run_phase(reporter, "umap: graph", None)
    with reporter.phase("umap: init", None):
        pass
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"neighbours: search 5,000/5,000 in \d+\.\d s", lines[0])
    assert re.fullmatch(r"umap: graph 3 in \d+\.\d s", lines[1])
    assert re.fullmatch(r"umap: init in \d+\.\d s", lines[2])
    assert "━" not in out.getvalue()


def test_notes_are_printed_and_silent_reports_nothing(capsys):
    log, out = console(terminal=False)
    BarReporter(log).note("overcluster: 120 items, fewer than 256 centres; using 120")
    assert out.getvalue() == "overcluster: 120 items, fewer than 256 centres; using 120\n"
    run_phase(SILENT)
    SILENT.note("nothing")
    assert capsys.readouterr() == ("", "")


def test_cli_logs_one_line_per_phase_when_stderr_is_not_a_terminal(cli, tmp_path, vectors_file):
    path, _ = vectors_file(n=10)
    result = cli("import", path, "-o", tmp_path / "a.atlas")
    assert result.code == 0
    assert re.fullmatch(r"import vectors\.npy 10/10 in \d+\.\d s", result.err.strip())
