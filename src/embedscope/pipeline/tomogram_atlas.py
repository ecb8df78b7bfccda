"""Tomogram patches and their embeddings as an Atlas: one item per picked point, with its patch as thumbnail.

Both `embed tomograms` and the MiLoPYP commands (reading an `all_output_info.npz`) write Atlases through here,
so a MiLoPYP run and ours give the same columns: tomogram, x, y, z, and thumbnails `patch` (and `tilt`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from embedscope.atlas import Atlas
from embedscope.progress import SILENT, Reporter
from embedscope.sources.thumbnails import to_uint8

THUMB_BATCH = 4096
COORDINATE_COLUMNS = ("x", "y", "z")


def point_ids(names: Sequence[str] | np.ndarray, coords: np.ndarray) -> list[str]:
    """Item ids `tomogram:x:y:z`; a point listed twice gets `#2`, `#3` ... so ids stay unique.

    The id names the point itself, so selections exported from one run apply to another of the same picks.
    """
    seen: dict[str, int] = {}
    ids = []
    for name, (x, y, z) in zip(names, np.asarray(coords).tolist(), strict=True):
        base = f"{name}:{x}:{y}:{z}"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return ids


def write_tomogram_atlas(
    path: Path,
    vectors: np.ndarray,
    names: Sequence[str] | np.ndarray,
    coords: np.ndarray,
    patches: np.ndarray | None,
    tilt_patches: np.ndarray | None = None,
    *,
    step: str,
    parameters: Mapping[str, Any],
    replace: bool = True,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> Atlas:
    """Write an Atlas of tomogram points (vectors, tomogram, x, y, z) with patch thumbnails, atomically.

    Vectors are meant for cosine distance, as SimSiam's loss compares them by angle.
    """
    coords = np.asarray(coords, dtype=np.int32)
    metadata = pa.table({
        "tomogram": pa.array([str(name) for name in names], pa.string()),
        **{axis: pa.array(coords[:, index]) for index, axis in enumerate(COORDINATE_COLUMNS)},
    })
    with Atlas.building(path, vectors.shape[1], metric="cosine", replace=replace) as atlas:
        with reporter.phase("writing items", len(vectors)) as advance:
            atlas.append(vectors, pa.array(point_ids(names, coords)), metadata, label="embeddings", advance=advance)
        for kind, stack in (("patch", patches), ("tilt", tilt_patches)):
            if stack is not None:
                atlas.add_thumbs(kind, _thumbnail_batches(stack))
        atlas.record(step, parameters, command=command)
    return atlas


def _thumbnail_batches(patches: np.ndarray) -> Iterator[np.ndarray]:
    """Each patch scaled to uint8 on its own (1st-99th percentile), in batches, whatever its stored shape."""
    flat = patches.reshape(len(patches), *patches.shape[-2:])
    for start in range(0, len(flat), THUMB_BATCH):
        yield np.stack([to_uint8(image) for image in flat[start:start + THUMB_BATCH]])
