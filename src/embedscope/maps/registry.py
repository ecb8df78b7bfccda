"""The map methods by name, as the command line and the pipeline ask for them, and fitting a map of any size.

`make_projection` turns a method name and the CLI's parameters into a checked estimator; `fit_map` fits it on
every vector up to `max_fit` and, above, on a seeded sample with the rest placed chunk by chunk.
"""

from __future__ import annotations

import numpy as np

from embedscope.errors import ParameterError
from embedscope.maps.neighbors import KnnGraph
from embedscope.maps.pca import PCA
from embedscope.maps.phate import PHATE
from embedscope.maps.placement import sample_then_place
from embedscope.maps.projector import Projector, check_map_shape, check_neighbour_count
from embedscope.maps.tsne import TSNE
from embedscope.maps.umap import UMAP
from embedscope.progress import SILENT, Reporter

METHODS = ("pca", "umap", "tsne", "phate")
MAX_FIT = 200_000


def make_projection(
    method: str, *, dims: int = 2, metric: str = "euclidean", n_neighbors: int = 15, min_dist: float = 0.1,
    perplexity: float = 30.0, seed: int = 0, engine: str = "fast",
) -> Projector:
    """The estimator for `method`, its parameters checked (those that depend on n: call its `check(n)`).

    Bad values raise ParameterError with one line that says how to fix them.
    """
    if method not in METHODS:
        raise ParameterError(f"projection method must be one of {', '.join(METHODS)}; got {method!r}")
    check_map_shape(dims, metric, engine)
    if method == "pca":
        return PCA(n_components=dims, random_state=seed, engine=engine)
    check_neighbour_count(method, n_neighbors)
    shared = {"n_components": dims, "metric": metric, "random_state": seed, "engine": engine}
    if method == "umap":
        return UMAP(n_neighbors=n_neighbors, min_dist=min_dist, **shared)
    if method == "phate":
        return PHATE(n_neighbors=n_neighbors, **shared)
    return TSNE(perplexity=perplexity, **shared)


def fit_map(
    projector: Projector, vectors: np.ndarray, *, max_fit: int = MAX_FIT, knn: KnnGraph | None = None,
    reporter: Reporter = SILENT,
) -> np.ndarray:
    """The (n, dims) float32 map of `vectors`: fitted on all rows up to `max_fit`, else on a sample.

    Above `max_fit` the rest are placed in chunks (memory bounded by the chunk) and `knn` is not used.
    """
    if len(vectors) <= max_fit:
        return projector.fit_transform(vectors, knn, reporter)
    metric = getattr(projector, "metric", "euclidean")  # PCA has none: it needs no neighbours
    return sample_then_place(vectors, projector, max_fit, metric=metric, seed=projector.random_state,
                             reporter=reporter)


def project(
    vectors: np.ndarray, method: str, *, dims: int = 2, metric: str = "euclidean", n_neighbors: int = 15,
    min_dist: float = 0.1, perplexity: float = 30.0, seed: int = 0, engine: str = "fast", max_fit: int = MAX_FIT,
    knn: KnnGraph | None = None, reporter: Reporter = SILENT,
) -> np.ndarray:
    """The map of `vectors` by `method` with the CLI's parameter names: `make_projection`, then `fit_map`."""
    projector = make_projection(method, dims=dims, metric=metric, n_neighbors=n_neighbors, min_dist=min_dist,
                                perplexity=perplexity, seed=seed, engine=engine)
    return fit_map(projector, vectors, max_fit=max_fit, knn=knn, reporter=reporter)
