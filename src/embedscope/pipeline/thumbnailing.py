"""`thumbs`: build an Atlas's thumbnails from a column of image paths, cropping around x, y[, z] when present.

Every path is checked before the first image is read, and the thumbnails commit together or not at all.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from embedscope.atlas import Atlas, as_atlas
from embedscope.errors import AtlasError, InputError
from embedscope.progress import SILENT, Reporter

CENTRE_COLUMNS = ("x", "y", "z")
SHOWN = 3


@dataclass
class ThumbsReport:
    """What `thumbs` wrote: the kind, the image shape, how many items, whether they were crops, the time."""

    kind: str
    shape: tuple[int, ...]
    n: int
    cropped: bool
    seconds: float


def thumbs_atlas(
    atlas: Atlas | str | os.PathLike[str],
    column: str,
    *,
    kind: str = "image",
    size: int = 64,
    mode: str | None = None,
    box: int | None = None,
    root: Path | None = None,
    crop: bool = True,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> ThumbsReport:
    """Make one `size`-pixel thumbnail per item from the image named in `column` and store them as `kind`.

    `mode` defaults to "ps" (power spectrum) for the kind `ps` and "image" otherwise; relative paths are
    taken from `root` (default: the current folder). With x and y columns, each item is a crop of `box` pixels.
    """
    atlas = as_atlas(atlas)
    from embedscope.sources.thumbnails import make_thumbnails

    started = time.perf_counter()
    names = atlas.schema().names
    if column not in names:
        raise AtlasError(f"no column {column} in {atlas.path}; columns are {', '.join(names)}")
    centre_columns = [name for name in CENTRE_COLUMNS if name in names] if crop else []
    if centre_columns and centre_columns[:2] != ["x", "y"]:
        centre_columns = []
    table = atlas.table([column, *centre_columns])
    paths = _resolved_paths(table.column(column), column, root or Path.cwd())
    centres = np.column_stack([table.column(name).to_numpy().astype(np.float64) for name in centre_columns]) \
        if centre_columns else None
    mode = mode or ("ps" if kind == "ps" else "image")
    atlas.add_thumbs(kind, make_thumbnails(paths, size, mode, centres=centres, box=box, reporter=reporter))
    shape = tuple(atlas.thumb_kinds()[kind]["shape"])
    parameters = {"kind": kind, "column": column, "size": size, "mode": mode, "box": box,
                  "crop_columns": centre_columns}
    atlas.record("thumbs", parameters, command=command)
    return ThumbsReport(kind, shape, atlas.n, bool(centre_columns), time.perf_counter() - started)


def _resolved_paths(values, column: str, root: Path) -> list[str]:
    """Absolute paths of the column's images, after checking that every one exists (names the missing)."""
    if values.null_count:
        rows = np.flatnonzero(pc.is_null(values).to_numpy(zero_copy_only=False))
        raise InputError(f"column {column} has no path in {len(rows)} row(s) (rows {_listed(rows)}); fill them in")
    unique = {text: root / text for text in pc.unique(values).to_pylist()}
    missing = [text for text, path in unique.items() if not path.is_file()]
    if missing:
        raise InputError(f"{len(missing)} image(s) named in column {column} do not exist (e.g. {missing[0]}); "
                         f"check the paths, or give the folder they are relative to with --root")
    return [str(unique[text]) for text in values.to_pylist()]


def _listed(rows: np.ndarray) -> str:
    return ", ".join(str(row) for row in rows[:SHOWN]) + (", ..." if len(rows) > SHOWN else "")
