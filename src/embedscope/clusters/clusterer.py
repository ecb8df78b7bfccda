"""What every clustering shares: the checks of its data and parameters, the kNN graph when it needs one, and labels
numbered by decreasing cluster size.

The estimators are scikit-learn style: parameters in the constructor (checked there and again at fit),
`fit_predict(X)` returns int32 labels with noise as -1, and the same `random_state` gives the same labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embedscope.errors import ParameterError
from embedscope.maps import KnnGraph, knn_graph, prepare
from embedscope.progress import SILENT, Reporter


class Clusterer:
    """The shared part of every method; a method gives `_check_parameters`, `_cluster` and `params`."""

    n_clusters: int | None = None
    metric: str = "euclidean"

    @property
    def graph_k(self) -> int | None:
        """Neighbours per item in the graph the method clusters, or None when it needs no graph."""
        return None

    def check(self, n: int | None = None) -> None:
        """Refuse parameters that cannot work, and with `n` an item count this clustering cannot use."""
        self._check_parameters()
        if n is None:
            return
        if n < 2:
            raise ParameterError(f"cannot cluster {n} item{'' if n == 1 else 's'}")
        if self.n_clusters is not None and self.n_clusters >= n:
            raise ParameterError(f"k={self.n_clusters} needs more than {self.n_clusters} items; the data has {n}")

    def fit_predict(self, X: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT) -> np.ndarray:
        """Cluster the rows of X; `knn` is X's own neighbour graph, computed here when needed and not given."""
        if np.ndim(X) != 2:
            raise ParameterError(f"clustering needs an (items, dims) array of vectors; got shape {np.shape(X)}")
        self.check(len(X))
        labels = by_size(self._cluster(prepare(X, self.metric), knn, reporter))
        self.n_clusters_ = int(labels.max()) + 1
        return labels

    def params(self) -> dict[str, Any]:
        """The parameters and results worth recording with the labels."""
        raise NotImplementedError

    def _check_parameters(self) -> None:
        raise NotImplementedError

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        raise NotImplementedError

    def _graph(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> KnnGraph:
        if knn is None:
            return knn_graph(data, self.graph_k, self.metric, reporter=reporter)
        if knn.metric != self.metric:
            raise ParameterError(f"the neighbour graph is {knn.metric} but the clustering {self.metric}; "
                                 "give a graph of the same metric")
        if len(knn.indices) != len(data):
            raise ValueError(f"a graph of {len(knn.indices)} items given for {len(data)} vectors")
        return knn.first(self.graph_k)


def by_size(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..m-1 by decreasing cluster size, ties by first appearance; noise (-1) stays -1.

    Cluster 0 is then always the largest, so runs and methods can be compared label by label.
    """
    labels = np.asarray(labels)
    clustered = labels >= 0
    _, first, inverse, counts = np.unique(
        labels[clustered], return_index=True, return_inverse=True, return_counts=True
    )
    rank = np.empty(len(counts), dtype=np.int32)
    rank[np.lexsort((first, -counts))] = np.arange(len(counts), dtype=np.int32)
    renumbered = np.full(len(labels), -1, dtype=np.int32)
    renumbered[clustered] = rank[inverse]
    return renumbered


def check_k(k: int | None, method: str) -> None:
    """Refuse a missing number of clusters, or fewer than 2."""
    if k is None:
        raise ParameterError(f"{method} needs the number of clusters: give --k")
    if k < 2:
        raise ParameterError(f"--k must be at least 2 clusters; got {k}")


def check_neighbors(n_neighbors: int) -> None:
    """Refuse a graph with no neighbours."""
    if n_neighbors < 1:
        raise ParameterError(f"--neighbors must be at least 1; got {n_neighbors}")


def check_metric(metric: str) -> None:
    """Refuse a metric other than the two every method supports."""
    if metric not in ("euclidean", "cosine"):
        raise ParameterError(f"metric must be euclidean or cosine; got {metric!r}")


def rounded(values: np.ndarray) -> list[float]:
    """Values as plain floats to 6 decimals, for the Atlas manifest."""
    return [round(float(value), 6) for value in values]
