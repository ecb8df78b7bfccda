"""Files that appear whole or not at all: write to a hidden temporary sibling, then rename over the target.

Every writer of user-visible files (figures, exports, volumes, checkpoints) goes through here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from embedscope.errors import ParameterError


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary sibling of `path` to write; it replaces `path` only when the block succeeds.

    A crash or error leaves neither a half-written file nor the temporary file behind.
    """
    path = Path(path)
    if path.is_dir():
        raise ParameterError(f"{path} is a folder; give a file name to write")
    if not path.parent.is_dir():
        raise ParameterError(f"cannot write {path}: the folder {path.parent} does not exist")
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
