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
from typer.exceptions import TyperException

from embedscope.errors import UserError
from embedscope.progress import SILENT, BarReporter, Reporter

GLOBAL_FLAGS = ("--debug", "--quiet", "-q")
MULTI_VALUE_OPTIONS = ("--cluster", "--good-real-classes", "--good-fft-classes")  # `--cluster 3 7` means
# `--cluster 3 --cluster 7`, as argparse's nargs="+" options read in the tools we replace
# Typer releases from 0.2x raise their own copy of click's exceptions; both kinds are handled alike.
EXITS = (click.exceptions.Exit, typer.Exit)
ABORTS = (click.exceptions.Abort, typer.Abort)
USAGE_ERRORS = (click.ClickException, TyperException)


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
    rest = _expand_multi_values([arg for arg in argv if arg not in GLOBAL_FLAGS])
    session.debug = "--debug" in flags
    session.command = shlex.join([prog_name, *argv])
    try:
        result = app(args=flags + rest, prog_name=prog_name, standalone_mode=False)
    except EXITS as exit_:
        sys.exit(getattr(exit_, "exit_code", 0))
    except ABORTS:
        _fail("aborted", 130)
    except USAGE_ERRORS as error:
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        _fail(f"{message} (see `{prog_name} --help`)", 1)
    except UserError as error:
        _fail(str(error), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as error:  # a bug: still one line unless --debug
        _fail(f"unexpected {type(error).__name__}: {error} (rerun with --debug and report it)", 1)
    sys.exit(result if isinstance(result, int) else 0)


def _expand_multi_values(argv: list[str]) -> list[str]:
    """Repeat a multi-value option before each whole number that follows it, as click wants them."""
    expanded: list[str] = []
    option, values = None, 0
    for index, arg in enumerate([*argv, None]):
        if option and arg is not None and arg.lstrip("-").isdigit():
            expanded += [option, arg]
            values += 1
            continue
        if option and not values:
            expanded.append(option)  # no number followed: let click say what the option needs
        option, values = (arg, 0) if arg in MULTI_VALUE_OPTIONS else (None, 0)
        if option is None and index < len(argv):
            expanded.append(arg)
    return expanded


def _fail(message: str, code: int) -> None:
    if session.debug:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
