"""Runs a Typer app the embedscope way: one-line errors, exit code 1, tracebacks only with --debug.

`--debug` and `--quiet` may be given anywhere on the line; they are moved in front of the command.
"""

from __future__ import annotations

import shlex
import sys
import traceback
from dataclasses import dataclass

import click
import typer

from embedscope.errors import UserError
from embedscope.progress import SILENT, BarReporter, Reporter

GLOBAL_FLAGS = ("--debug", "--quiet", "-q")


@dataclass
class Session:
    """What the global flags set for this invocation."""

    debug: bool = False
    quiet: bool = False
    command: str = "embedscope"

    def reporter(self) -> Reporter:
        """Progress bars on stderr, or silence with --quiet."""
        return SILENT if self.quiet else BarReporter()


session = Session()


def run_app(app: typer.Typer, argv: list[str] | None = None, prog_name: str = "embedscope") -> None:
    """Run `app` on `argv` and exit with 0 on success, 1 on any error, 130 on Ctrl-C."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = [arg for arg in argv if arg in GLOBAL_FLAGS]
    rest = [arg for arg in argv if arg not in GLOBAL_FLAGS]
    session.debug = "--debug" in flags
    session.command = shlex.join([prog_name, *argv])
    try:
        result = app(args=flags + rest, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as error:
        _fail(f"{error.format_message()} (see `{prog_name} --help`)", 1)
    except UserError as error:
        _fail(str(error), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as error:  # a bug: still one line unless --debug
        _fail(f"unexpected {type(error).__name__}: {error} (rerun with --debug and report it)", 1)
    sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str, code: int) -> None:
    if session.debug:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
