"""One-line errors for input files that are missing or that their library cannot read.

Every reader in `formats/` reports through these, so messages name the file and say what to do.
"""

from __future__ import annotations

from pathlib import Path

from embedscope.errors import InputError


def require_file(path: Path) -> None:
    """Refuse a path that is not an existing file."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: is a directory, not a file; name the file itself")


def damaged(path: Path, what: str, error: BaseException) -> InputError:
    """The error for a file that its library could not read."""
    return InputError(f"{path}: cannot be read as {what} ({reason(error)}); check the file or write it again")


def reason(error: BaseException) -> str:
    """The first line of an exception's message, short enough for a one-line error."""
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:200]
