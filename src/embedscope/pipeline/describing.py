"""What an Atlas holds, as plain data for `embedscope info` and for scripts (`--json`).

Reads only the manifest and the Parquet footers, so it is instant on any size of Atlas.
"""

from __future__ import annotations

import os
from typing import Any

from embedscope.atlas import Atlas, as_atlas


def describe(atlas: Atlas | str | os.PathLike[str]) -> dict[str, Any]:
    """Items, dim, metric, columns with types, layers with parameters, thumbnails, provenance, size on disk."""
    atlas = as_atlas(atlas)
    schema = atlas.schema()
    return {
        "path": str(atlas.path),
        "items": atlas.n,
        "dim": atlas.dim,
        "metric": atlas.metric,
        "columns": {field.name: str(field.type) for field in schema},
        "layers": atlas.layers(),
        "thumbs": atlas.thumb_kinds(),
        "provenance": atlas.provenance,
        "size_bytes": atlas.size_on_disk(),
    }
