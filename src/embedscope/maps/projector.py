"""What a projection is: the `Projector` protocol that sample-then-place and the registry rely on, and the
checks and input handling every projection shares.

Projections are scikit-learn-style estimators: parameters in the constructor, checked there and again at fit
(when the number of vectors is known), `fit_transform(X)` on a plain array.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from embedscope.errors import ParameterError, VectorError
from embedscope.maps.neighbors import METRICS, KnnGraph, knn_graph
from embedscope.progress import SILENT, Reporter

ENGINES = ("fast", "reference")
SHOWN = 5


class Projector(Protocol):
    """What every projection offers: the neighbours it needs, fitting, and placing new vectors."""

    graph_k: int | None
    random_state: int

    def check(self, n: int | None = None) -> None:
        """Refuse parameters that cannot work, and with `n` those that n vectors cannot support."""

    def fit_transform(
        self, X: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT
    ) -> np.ndarray:
        """Fit on `X` (n, dim) and return its map, (n, n_components) float32."""

    def place(self, X: np.ndarray, knn: KnnGraph | None, reporter: Reporter = SILENT) -> np.ndarray:
        """Map new vectors onto the fitted map, given their neighbours among the fitted vectors."""


def check_map_shape(n_components: int, metric: str, engine: str) -> None:
    """Refuse an engine, a number of map dimensions or a metric that no projection offers."""
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if n_components not in (2, 3):
        raise ParameterError(f"maps have 2 or 3 dimensions; got --dims {n_components}")
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")


def check_neighbour_count(method: str, n_neighbors: int) -> None:
    """Refuse fewer than 2 neighbours, which leave a graph method nothing to connect."""
    if n_neighbors < 2:
        raise ParameterError(f"{method} needs at least 2 neighbours; got --neighbors {n_neighbors}")


def check_neighbours(n_neighbors: int, n: int) -> None:
    """Refuse a neighbour count the data cannot supply."""
    if n_neighbors >= n:
        raise ParameterError(f"{n_neighbors} neighbours need more than {n_neighbors} points; the data has {n}: "
                             f"use --neighbors {max(n - 1, 1)} or less")


def as_vectors(X: np.ndarray, dtype: type | None = np.float32) -> np.ndarray:
    """`X` as an (n, dim) array of `dtype` (no copy when it already is one), refusing NaN and inf by row.

    Lets the estimators take lists, float64 arrays or data frames straight from a notebook.
    """
    data = np.asarray(X, dtype=dtype)
    if data.ndim != 2:
        raise ParameterError(f"a map needs an (items, dims) array of vectors; got shape {data.shape}")
    bad = np.flatnonzero(~np.isfinite(data.sum(axis=1, dtype=np.float64)))
    if bad.size:
        shown = ", ".join(str(row) for row in bad[:SHOWN]) + (", ..." if bad.size > SHOWN else "")
        raise VectorError(f"{bad.size} vector(s) hold NaN or inf (rows {shown}); drop or fix them first")
    return data


def own_graph(vectors: np.ndarray, knn: KnnGraph | None, k: int, metric: str, reporter: Reporter) -> KnnGraph:
    """The given graph of `vectors` cut to k neighbours, or a new one."""
    return knn.first(k) if knn is not None else knn_graph(vectors, k, metric, reporter=reporter)
