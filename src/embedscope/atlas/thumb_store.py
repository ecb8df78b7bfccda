"""Thumbnails stored in an Atlas's `thumbs/` folder: small uint8 images, one or more kinds per item.

Each kind is a run of `.npy` chunks of 4,096 rows (rows, height, width[, 3]), so any row is read by
memory-mapping one chunk, and a million thumbnails are a few hundred files rather than a million.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from embedscope.atlas.graph_store import free_name
from embedscope.errors import AtlasError, ParameterError

CHUNK_ROWS = 4096


def write_thumbs(atlas_path: Path, kind: str, batches: Iterable[np.ndarray], n: int) -> dict[str, Any]:
    """Write `n` thumbnails, streamed in batches of any size, as chunk files; return the manifest entry.

    Every image must have the shape and dtype of the first; nothing is committed here.
    """
    files: list[str] = []
    try:
        shape, written = _write_chunks(atlas_path, kind, batches, files)
        if written != n or shape is None:
            raise ParameterError(f"thumbnails {kind!r}: got {written} images for {n} items; give one per item")
    except BaseException:
        for name in files:
            (atlas_path / name).unlink(missing_ok=True)
        raise
    return {"files": files, "shape": list(shape), "chunk_rows": CHUNK_ROWS, "n": n}


def _write_chunks(
    atlas_path: Path, kind: str, batches: Iterable[np.ndarray], files: list[str]
) -> tuple[tuple[int, ...] | None, int]:
    """Write the batches as chunks of CHUNK_ROWS rows, naming each file in `files` as it lands.

    Returns the image shape (None when there were no batches) and the number of images written."""
    shape: tuple[int, ...] | None = None
    pending: list[np.ndarray] = []
    held = written = 0
    for batch in batches:
        batch = np.asarray(batch)
        shape = shape or _image_shape(batch, kind)
        if batch.dtype != np.uint8 or batch.shape[1:] != shape:
            raise ParameterError(f"thumbnails {kind!r}: every batch must be uint8 {shape}; got {batch.dtype} "
                                 f"{batch.shape[1:]}")
        pending.append(batch)
        held += len(batch)
        while held >= CHUNK_ROWS:
            chunk, pending, held = _take(pending, CHUNK_ROWS)
            files.append(_write_chunk(atlas_path, kind, len(files), chunk))
            written += len(chunk)
    if held:
        files.append(_write_chunk(atlas_path, kind, len(files), np.concatenate(pending)))
    return shape, written + held


def read_thumbs(atlas_path: Path, kind: str, entry: dict[str, Any], rows: np.ndarray | None) -> np.ndarray:
    """The thumbnails of `rows` (all when None) as one uint8 array, in the order given."""
    n, chunk_rows = entry["n"], entry["chunk_rows"]
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise AtlasError(f"thumbnails {kind!r} cover rows 0 to {n - 1}; rows asked for go beyond: "
                         f"run `embedscope thumbs` again after adding items")
    out = np.empty((len(rows), *entry["shape"]), dtype=np.uint8)
    chunks = rows // chunk_rows
    for chunk in np.unique(chunks):
        wanted = np.flatnonzero(chunks == chunk)
        stored = np.load(atlas_path / entry["files"][chunk], mmap_mode="r")
        out[wanted] = stored[rows[wanted] - chunk * chunk_rows]
    return out


def _image_shape(batch: np.ndarray, kind: str) -> tuple[int, ...]:
    if batch.ndim not in (3, 4) or (batch.ndim == 4 and batch.shape[3] != 3):
        raise ParameterError(f"thumbnails {kind!r} must be (rows, height, width) grey or (rows, height, width, 3) "
                             f"RGB; got shape {batch.shape}")
    return tuple(batch.shape[1:])


def _take(pending: list[np.ndarray], count: int) -> tuple[np.ndarray, list[np.ndarray], int]:
    """The first `count` rows of the pending batches, and what remains."""
    joined = np.concatenate(pending)
    rest = joined[count:]
    return joined[:count], [rest] if len(rest) else [], len(rest)


def _write_chunk(atlas_path: Path, kind: str, index: int, chunk: np.ndarray) -> str:
    name = free_name(atlas_path, "thumbs", f"{kind}.{index:05d}", ".npy")
    temporary = atlas_path / f"{name}.tmp-{os.getpid()}"
    with open(temporary, "wb") as handle:
        np.save(handle, np.ascontiguousarray(chunk))
    os.replace(temporary, atlas_path / name)
    return name
