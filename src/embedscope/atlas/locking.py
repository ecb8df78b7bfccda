"""One writer at a time per Atlas, through an advisory lock file that dies with its process.

A lock held by a killed process is released by the kernel, so a crash never leaves an Atlas locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from embedscope.errors import AtlasError

LOCK_NAME = ".lock"


@contextmanager
def writer_lock(atlas_path: Path) -> Iterator[None]:
    """Hold the Atlas's writer lock for the block, or fail at once if another process holds it."""
    handle = open(atlas_path / LOCK_NAME, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise AtlasError(
                f"{atlas_path} is being written by another process (pid {holder}); "
                "wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
