"""Where a new Atlas is built: a hidden sibling folder named after the building process, renamed into place at the end.

Folders left by processes that died are removed the next time an Atlas is built beside them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from embedscope.atlas.locking import LOCK_NAME


def new_staging_folder(path: Path, folders: tuple[str, ...]) -> Path:
    """A fresh hidden sibling of `path` to build a new Atlas in, after removing those of dead processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.building-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    staging = path.parent / f".{path.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for folder in folders:
        (staging / folder).mkdir()
    (staging / LOCK_NAME).touch()
    return staging


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
