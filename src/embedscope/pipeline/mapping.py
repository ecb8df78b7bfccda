"""`map`: project an Atlas's vectors to 2D or 3D and store the result as a layer with its parameters.

The neighbour graph comes from the Atlas's cache when one fits, and is cached when computed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from embedscope.atlas import Atlas, as_atlas, check_layer_name
from embedscope.pipeline.spaces import cached_graph, work_space
from embedscope.progress import SILENT, Reporter

COLUMNS = ("x", "y", "z")


@dataclass
class MapReport:
    """What `map` wrote: the layer, how long it took, where its graph came from, and scores."""

    layer: str
    params: dict[str, Any]
    seconds: float
    scores: dict[str, float] = field(default_factory=dict)


def map_atlas(
    atlas: Atlas | str | os.PathLike[str],
    method: str = "umap",
    *,
    dims: int = 2,
    metric: str | None = None,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    perplexity: float = 30.0,
    seed: int = 0,
    engine: str = "fast",
    pca_dims: int | None = None,
    max_fit: int = 200_000,
    name: str | None = None,
    score: bool = False,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> MapReport:
    """Project the Atlas with `method` and write layer `name` (default: the method, plus "3d")."""
    from embedscope.maps import fit_map, make_projection

    started = time.perf_counter()
    atlas = as_atlas(atlas)
    name = name or (method if dims == 2 else f"{method}{dims}d")
    check_layer_name(name)
    metric = metric or atlas.metric or "euclidean"
    projector = make_projection(
        method, dims=dims, metric=metric, n_neighbors=n_neighbors, min_dist=min_dist,
        perplexity=perplexity, seed=seed, engine=engine,
    )
    projector.check(min(atlas.n, max_fit))  # n-dependent checks before any work, so errors come first
    space = work_space(atlas, metric, 0 if method == "pca" else pca_dims, seed, reporter)
    graph, computed = None, False
    if projector.graph_k and atlas.n <= max_fit:
        graph, computed = cached_graph(atlas, space, projector.graph_k, reporter)
    positions = fit_map(projector, space.data, max_fit=max_fit, knn=graph, reporter=reporter)
    params = _parameters(method, dims, metric, n_neighbors, min_dist, perplexity, seed, engine, space.name, max_fit)
    params["graph"] = "none" if graph is None else ("computed" if computed else "cached")
    report = MapReport(name, params, 0.0)
    if score:
        from embedscope.metrics import map_quality

        with reporter.phase("quality", None):
            report.scores = map_quality(space.vectors, positions, metric=metric, seed=seed)
        params["scores"] = report.scores
    report.seconds = time.perf_counter() - started
    params["seconds"] = round(report.seconds, 2)
    columns = {COLUMNS[axis]: positions[:, axis] for axis in range(dims)}
    with atlas.transaction():
        if computed:
            atlas.save_graph(graph, space.name)
        atlas.add_layer(name, columns, params)
        atlas.record("map", {**params, "layer": name}, command=command)
    return report


def _parameters(
    method: str, dims: int, metric: str, n_neighbors: int, min_dist: float, perplexity: float,
    seed: int, engine: str, space: str, max_fit: int,
) -> dict[str, Any]:
    params: dict[str, Any] = {"method": method, "dims": dims, "metric": metric, "seed": seed, "space": space}
    if method in ("umap", "phate"):
        params["n_neighbors"] = n_neighbors
    if method == "umap":
        params["min_dist"] = min_dist
    if method == "tsne":
        params["perplexity"] = perplexity
    if method in ("umap", "tsne"):
        params["engine"] = engine
    if method != "pca":
        params["max_fit"] = max_fit
    return params
