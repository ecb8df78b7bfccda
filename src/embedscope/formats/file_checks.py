"""One-line errors for input files that are missing or that their library cannot read.

Every reader in `formats/` reports through these, so messages name the file and say what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from embedscope.errors import InputError

Reader = TypeVar("Reader")


def require_file(path: Path) -> None:
    """Refuse a path that is not an existing file."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: is a directory, not a file; name the file itself")


def reader_for(path: Path, readers: Mapping[str, Reader], what: str) -> Reader:
    """The reader registered for an existing file's suffix; otherwise one line listing the suffixes we read.

    `what` names the kind of file in the message, e.g. "file type" or "image type".
    """
    require_file(path)
    suffix = known_suffix(path, readers)
    if suffix is None:
        raise InputError(f"{path}: unsupported {what} {path.suffix.lower()!r}; use one of {', '.join(readers)}")
    return readers[suffix]


def known_suffix(path: str | Path, suffixes: Iterable[str]) -> str | None:
    """The longest of `suffixes` that ends the file's name, ignoring case, so ".mrc.gz" wins over ".gz"; else None.

    Names keep their other dots: "TS_56_6.80Apx.mrc" ends in ".mrc", and a name that is only a suffix has none.
    """
    name = Path(path).name.lower()
    return max((suffix for suffix in suffixes if name.endswith(suffix) and len(name) > len(suffix)), key=len,
               default=None)


def damaged(path: Path, what: str, error: BaseException) -> InputError:
    """The error for a file that its library could not read."""
    return InputError(f"{path}: cannot be read as {what} ({reason(error)}); check the file or write it again")


def reason(error: BaseException) -> str:
    """The first line of an exception's message, short enough for a one-line error."""
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:200]
