"""`quality`: score a map layer against the vectors, or a clustering against the data and a label column.

Scores are computed in the original space on a seeded sample, so they are comparable across methods.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow.compute as pc

from embedscope.atlas import Atlas, as_atlas
from embedscope.errors import AtlasError

MAP_COLUMNS = ("x", "y", "z")


def assess_layer(
    atlas: Atlas | str | os.PathLike[str],
    layer: str,
    *,
    labels: str | None = None,
    k: int = 10,
    sample: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Scores of a map layer (trustworthiness, kNN recall, kNN accuracy) or a clustering (silhouette, ARI, NMI)."""
    atlas = as_atlas(atlas)
    from embedscope.metrics import cluster_quality, map_quality

    table = atlas.layer(layer)
    params = atlas.layers()[layer]["params"]
    metric = params.get("metric") or atlas.metric or "euclidean"
    truth = _labels(atlas, labels) if labels else None
    vectors = atlas.vectors()
    if "cluster" in table.column_names:
        clusters = table.column("cluster").to_numpy()
        scores = cluster_quality(vectors, clusters, truth=truth, sample=max(sample, 5000), seed=seed, metric=metric)
    elif {"x", "y"} <= set(table.column_names):
        axes = [column for column in MAP_COLUMNS if column in table.column_names]
        positions = np.column_stack([table.column(axis).to_numpy() for axis in axes])
        scores = map_quality(vectors, positions, k=k, labels=truth, sample=sample, seed=seed, metric=metric)
    else:
        raise AtlasError(f"layer {layer!r} is neither a map (x, y) nor a clustering (cluster); nothing to score")
    return {"layer": layer, "labels": labels, "k": k, "sample": sample, **scores}


def _labels(atlas: Atlas, column: str) -> np.ndarray:
    values = atlas.table([column]).column(column).combine_chunks()
    if values.null_count == len(values):
        raise AtlasError(f"column {column!r} has no values; choose a label column with values")
    return np.asarray(pc.cast(values, "string").to_pylist(), dtype=object)
