"""The space that maps and clusters work in: the vectors, or their PCA reduction when they are wide.

Shared by `map` and `cluster` so both find the same cached neighbour graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from embedscope.atlas import Atlas
from embedscope.errors import ParameterError
from embedscope.progress import SILENT, Reporter

if TYPE_CHECKING:  # the maps are imported when a step runs, so `import embedscope.pipeline` stays fast
    from embedscope.maps import KnnGraph

AUTO_PCA_DIMS = 50
AUTO_PCA_ABOVE = 100
RERANK_SURPLUS = 15


@dataclass
class WorkSpace:
    """Vectors as read from the Atlas, the rows a method works on, and the name of that space."""

    vectors: np.ndarray
    data: np.ndarray
    name: str
    metric: str


def work_space(
    atlas: Atlas, metric: str | None, pca_dims: int | None, seed: int, reporter: Reporter = SILENT
) -> WorkSpace:
    """Read the vectors and reduce them with PCA when asked (`pca_dims`) or when wider than 100.

    `pca_dims=None` means automatic (50 above 100 dimensions), 0 means never.
    """
    from embedscope.maps import prepare, reduce_dims

    metric = metric or atlas.metric or "euclidean"
    if atlas.n < 2:
        raise ParameterError(f"{atlas.path} holds {atlas.n} item(s); maps and clusters need at least 2")
    vectors = atlas.vectors()
    if metric == "cosine":
        prepare(vectors, metric)  # refuses zero vectors, naming their rows, before any work
    dims = AUTO_PCA_DIMS if pca_dims is None and atlas.dim > AUTO_PCA_ABOVE else (pca_dims or 0)
    if dims < 0:
        raise ParameterError(f"--pca-dims must be 0 (off) or positive; got {dims}")
    if not dims or dims >= atlas.dim:
        return WorkSpace(vectors, vectors, "raw", metric)
    reduced = reduce_dims(vectors, dims, metric=metric, seed=seed, reporter=reporter)
    return WorkSpace(vectors, reduced, f"pca{dims}", metric)


def cached_graph(
    atlas: Atlas, space: WorkSpace, k: int, reporter: Reporter = SILENT
) -> tuple[KnnGraph, bool]:
    """The kNN graph of the space from the Atlas's cache, else computed; and whether it was computed.

    In a PCA space, k + 15 candidates are found there and re-measured in the full vectors: the kept
    neighbours and their distances are the original space's, which is what maps are scored against.
    """
    from embedscope.maps import knn_graph, rerank

    graph = atlas.graph(k, space.metric, space.name)
    if graph is not None:
        return graph, False
    if space.data is space.vectors:
        return knn_graph(space.data, k, space.metric, reporter=reporter), True
    candidates = knn_graph(space.data, min(k + RERANK_SURPLUS, len(space.data) - 1), space.metric, reporter=reporter)
    with reporter.phase("neighbours: re-measure in full width", None):
        return rerank(candidates, space.vectors, k), True
