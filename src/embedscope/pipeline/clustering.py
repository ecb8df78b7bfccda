"""`cluster`: cluster an Atlas's vectors (or a map layer, if asked) and store the labels as a layer.

Graph-based methods reuse the neighbour graph that `map` cached in the same space, and cache theirs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedscope.atlas import Atlas, as_atlas, check_layer_name
from embedscope.errors import AtlasError
from embedscope.pipeline.spaces import WorkSpace, cached_graph, work_space
from embedscope.progress import SILENT, Reporter

MAP_COLUMNS = ("x", "y", "z")


@dataclass
class ClusterReport:
    """What `cluster` wrote: the layer, the number of clusters, the parameters and the time taken."""

    layer: str
    n_clusters: int
    params: dict[str, Any]
    seconds: float


def cluster_atlas(
    atlas: Atlas | str | os.PathLike[str],
    method: str = "kmeans",
    *,
    k: int | None = None,
    estimate_k: bool = False,
    spherical: bool = False,
    min_cluster_size: int | None = None,
    resolution: float = 1.0,
    n_neighbors: int = 10,
    metric: str | None = None,
    seed: int = 0,
    on_layer: str | None = None,
    pca_dims: int | None = None,
    name: str | None = None,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> ClusterReport:
    """Cluster with `method` and write layer `name` (default: the method) with a `cluster` column."""
    atlas = as_atlas(atlas)
    from embedscope.clusters import make_clusterer

    started = time.perf_counter()
    name = name or method
    check_layer_name(name)
    metric = metric or atlas.metric or "euclidean"
    clusterer = make_clusterer(
        method, k=k, estimate_k=estimate_k, spherical=spherical, min_cluster_size=min_cluster_size,
        resolution=resolution, n_neighbors=n_neighbors, metric=metric, seed=seed,
    )
    clusterer.check(atlas.n)  # before any work, so errors come first
    space = _layer_space(atlas, on_layer) if on_layer else work_space(atlas, metric, pca_dims, seed, reporter)
    graph, computed = None, False
    if clusterer.graph_k:
        if on_layer:
            graph, computed = None, False  # computed by the clusterer on the layer, not cached
        else:
            graph, computed = cached_graph(atlas, space, clusterer.graph_k, reporter)
    labels = clusterer.fit_predict(space.data, knn=graph, reporter=reporter)
    params = {"method": method, "metric": space.metric, "space": space.name, **clusterer.params()}
    params["graph"] = "none" if not clusterer.graph_k or on_layer else ("computed" if computed else "cached")
    seconds = time.perf_counter() - started
    params["seconds"] = round(seconds, 2)
    with atlas.transaction():
        if computed:
            atlas.save_graph(graph, space.name)
        atlas.add_layer(name, {"cluster": labels.astype(np.int32)}, params)
        atlas.record("cluster", {**params, "layer": name}, command=command)
    return ClusterReport(name, int(clusterer.n_clusters_), params, seconds)


def _layer_space(atlas: Atlas, layer: str) -> WorkSpace:
    table = atlas.layer(layer)
    axes = [column for column in MAP_COLUMNS if column in table.column_names]
    if len(axes) < 2:
        raise AtlasError(f"layer {layer!r} is not a map (it has no x and y); give --on-layer a map layer")
    data = np.column_stack([table.column(axis).to_numpy() for axis in axes]).astype(np.float32)
    return WorkSpace(data, data, f"layer:{layer}", "euclidean")
