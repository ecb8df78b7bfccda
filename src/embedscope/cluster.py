"""Clusterings of vectors: k-means (optionally spherical), spectral, HDBSCAN, Leiden and over-clustering.

One estimator per method, scikit-learn style: parameters checked in `__init__`, `fit_predict` returns labels
renumbered by decreasing cluster size (noise -1), and the same seed always gives the same labels.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy import sparse

from embedscope.errors import ParameterError
from embedscope.neighbors import KnnGraph, knn_graph, prepare
from embedscope.progress import SILENT, Reporter
from embedscope.spectral import knn_affinity, local_scale_affinity, spectral_clusters

METHODS = ("kmeans", "spectral", "hdbscan", "leiden", "overcluster")
SAMPLE_MIN = 50_000
SAMPLE_PER_CENTRE = 256
MAX_ITERATIONS = 100
KMEANS_RESTARTS = 3
LEIDEN_ITERATIONS = 2
TOLERANCE = 1e-4
BLOCK_DISTANCES = 2**21
HDBSCAN_SHARE = 200
HDBSCAN_COMFORTABLE = 50_000  # above this, in more than 3 dims, scikit-learn's HDBSCAN takes minutes

USED_BY = {
    "--k": ("kmeans", "spectral", "overcluster"),
    "--estimate-k": ("spectral",),
    "--spherical": ("kmeans", "overcluster"),
    "--min-cluster-size": ("hdbscan",),
}


def make_clusterer(
    method: str,
    *,
    k: int | None = None,
    estimate_k: bool = False,
    spherical: bool = False,
    min_cluster_size: int | None = None,
    resolution: float = 1.0,
    n_neighbors: int = 10,
    centres: int = 256,
    metric: str = "euclidean",
    seed: int = 0,
) -> Clusterer:
    """The clusterer for `method`, its parameters checked; options the method does not use are refused.

    One entry point for the pipeline and the CLI, so a mistyped combination fails before any work.
    """
    if method not in METHODS:
        raise ParameterError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")
    given = {"--k": k is not None, "--estimate-k": estimate_k, "--spherical": spherical,
             "--min-cluster-size": min_cluster_size is not None}
    for option, methods in USED_BY.items():
        if given[option] and method not in methods:
            raise ParameterError(f"{option} does not apply to {method}, only to {', '.join(methods)}: drop it")
    if method == "kmeans":
        return KMeans(k, spherical=spherical, metric=metric, seed=seed)
    if method == "spectral":
        return Spectral(k, estimate_k=estimate_k, n_neighbors=n_neighbors, metric=metric, seed=seed)
    if method == "hdbscan":
        return HDBSCAN(min_cluster_size, n_neighbors=n_neighbors, metric=metric)
    if method == "leiden":
        return Leiden(resolution, n_neighbors=n_neighbors, metric=metric, seed=seed)
    return Overcluster(k, centres=centres, n_neighbors=n_neighbors, spherical=spherical, metric=metric, seed=seed)


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


class Clusterer:
    """What every method shares: the data checks, the kNN graph when it needs one, size-ordered labels."""

    k: int | None = None
    graph_k: int | None = None
    metric: str = "euclidean"

    def fit_predict(self, X: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT) -> np.ndarray:
        """Cluster the rows of X; `knn` is X's own neighbour graph, computed here when needed and not given."""
        data = self._check_data(X)
        labels = by_size(self._cluster(data, knn, reporter))
        self.n_clusters_ = int(labels.max()) + 1
        return labels

    def params(self) -> dict[str, Any]:
        """The parameters and results worth recording with the labels."""
        raise NotImplementedError

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        raise NotImplementedError

    def check_size(self, n: int) -> None:
        """Refuse an item count this clustering cannot use, before any work is done."""
        if n < 2:
            raise ParameterError(f"cannot cluster {n} item{'' if n == 1 else 's'}")
        if self.k is not None and self.k >= n:
            raise ParameterError(f"k={self.k} needs more than {self.k} items; the data has {n}")

    def _check_data(self, X: np.ndarray) -> np.ndarray:
        if np.ndim(X) != 2:
            raise ParameterError(f"clustering needs an (items, dims) array of vectors; got shape {np.shape(X)}")
        self.check_size(len(X))
        return prepare(X, self.metric)

    def _graph(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> KnnGraph:
        if knn is None:
            return knn_graph(data, self.graph_k, self.metric, reporter=reporter)
        if knn.metric != self.metric:
            raise ParameterError(f"the neighbour graph is {knn.metric} but the clustering {self.metric}; "
                                 "give a graph of the same metric")
        if len(knn.indices) != len(data):
            raise ValueError(f"a graph of {len(knn.indices)} items given for {len(data)} vectors")
        return knn.first(self.graph_k)


class KMeans(Clusterer):
    """k-means from k-means++ seeds; `spherical` clusters directions (rows and centres kept unit length).

    Spherical k-means is prismPYP's cosine k-means; metric "cosine" alone normalises rows but not centres.
    """

    def __init__(self, k: int | None, spherical: bool = False, metric: str = "euclidean", seed: int = 0) -> None:
        self.k = _checked_k(k, "kmeans")
        self.spherical, self.metric, self.seed = spherical, _checked_metric(metric), seed

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        data = prepare(data, "cosine") if self.spherical else data
        self.centres_ = kmeans_centres(
            data, self.k, spherical=self.spherical, restarts=KMEANS_RESTARTS, seed=self.seed, reporter=reporter
        )
        return nearest_centres(data, self.centres_, reporter)

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "spherical": self.spherical, "seed": self.seed, "n_clusters": self.n_clusters_}


class Spectral(Clusterer):
    """Spectral clustering of the kNN affinity; with `estimate_k`, k is chosen by the eigengap up to `k`.

    As CryoSiam's `estimate_num_clusters`, on a sparse graph so it scales past a dense n x n matrix.
    """

    def __init__(
        self, k: int | None, estimate_k: bool = False, n_neighbors: int = 10, metric: str = "euclidean", seed: int = 0
    ) -> None:
        if estimate_k and k is not None and k < 2:
            raise ParameterError(f"spectral with --estimate-k needs an upper bound --k of at least 2; got {k}")
        self.k = _checked_k(k, "spectral")
        self.estimate_k, self.graph_k = estimate_k, _checked_neighbors(n_neighbors)
        self.metric, self.seed = _checked_metric(metric), seed

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        affinity = knn_affinity(self._graph(data, knn, reporter))
        labels, spectrum, chosen = spectral_clusters(affinity, self.k, self.estimate_k, self.seed, reporter)
        self.eigenvalues_ = spectrum.eigenvalues
        self.estimated_k_ = chosen if self.estimate_k else None
        return labels

    def params(self) -> dict[str, Any]:
        found = {"estimated_k": self.estimated_k_, "eigenvalues": _rounded(self.eigenvalues_)}
        return {"k": self.k, "estimate_k": self.estimate_k, "n_neighbors": self.graph_k, "seed": self.seed,
                **(found if self.estimate_k else {}), "n_clusters": self.n_clusters_}


class HDBSCAN(Clusterer):
    """scikit-learn's HDBSCAN: clusters of any shape at varying density, and noise (-1).

    `min_cluster_size` defaults to 0.5% of the items (at least 5); `n_neighbors` sets the core distance.
    """

    def __init__(self, min_cluster_size: int | None = None, n_neighbors: int = 10, metric: str = "euclidean") -> None:
        if min_cluster_size is not None and min_cluster_size < 2:
            raise ParameterError(f"--min-cluster-size must be at least 2; got {min_cluster_size}")
        self.min_cluster_size, self.n_neighbors = min_cluster_size, _checked_neighbors(n_neighbors)
        self.metric = _checked_metric(metric)

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        from sklearn.cluster import HDBSCAN as ScikitHDBSCAN

        n = len(data)
        if self.min_cluster_size is not None and self.min_cluster_size > n:
            raise ParameterError(f"--min-cluster-size={self.min_cluster_size} exceeds the {n} items; lower it")
        self.min_cluster_size_ = self.min_cluster_size or min(n, max(5, n // HDBSCAN_SHARE))
        model = ScikitHDBSCAN(
            min_cluster_size=self.min_cluster_size_, min_samples=min(self.n_neighbors, n), copy=True
        )
        if n > HDBSCAN_COMFORTABLE and data.shape[1] > 3:
            reporter.note(f"hdbscan on {n:,} items in {data.shape[1]} dims is slow; --on-layer MAP is fast")
        with reporter.phase("hdbscan", None):
            labels = model.fit_predict(data)
        self.noise_ = int((labels < 0).sum())
        return labels

    def params(self) -> dict[str, Any]:
        return {"min_cluster_size": self.min_cluster_size_, "min_samples": self.n_neighbors,
                "noise": self.noise_, "n_clusters": self.n_clusters_}


class Leiden(Clusterer):
    """Leiden communities of the kNN affinity graph, maximising modularity at `resolution`.

    igraph's own Leiden, the same objective as leidenalg's RBConfigurationVertexPartition but ~10x faster.
    """

    def __init__(
        self, resolution: float = 1.0, n_neighbors: int = 10, metric: str = "euclidean", seed: int = 0
    ) -> None:
        if not resolution > 0:
            raise ParameterError(f"--resolution must be positive (1.0 is the usual start); got {resolution}")
        self.resolution, self.graph_k = resolution, _checked_neighbors(n_neighbors)
        self.metric, self.seed = _checked_metric(metric), seed

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        import igraph

        edges = sparse.triu(knn_affinity(self._graph(data, knn, reporter)), k=1).tocoo()
        network = igraph.Graph(
            n=len(data), edges=np.column_stack([edges.row, edges.col]), edge_attrs={"weight": edges.data}
        )
        with reporter.phase("leiden", None), _igraph_seeded(self.seed):
            communities = network.community_leiden(
                "modularity", weights="weight", resolution=self.resolution, n_iterations=LEIDEN_ITERATIONS
            )
        return np.asarray(communities.membership)

    def params(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "n_neighbors": self.graph_k, "seed": self.seed,
                "n_clusters": self.n_clusters_}


class Overcluster(Clusterer):
    """MiLoPYP's over-clustering: k-means with many centres, spectral clustering of the centres into k groups.

    Each item takes its centre's group; the centres' affinity is a self-tuning Gaussian, where MiLoPYP's
    RBF has a fixed scale. With fewer items than centres, every item is its own centre.
    """

    def __init__(
        self, k: int | None, centres: int = 256, n_neighbors: int = 10, spherical: bool = False,
        metric: str = "euclidean", seed: int = 0,
    ) -> None:
        self.k = _checked_k(k, "overcluster")
        if centres <= self.k:
            raise ParameterError(f"overcluster groups {centres} centres into k={self.k}; raise centres above k")
        self.centres, self.n_neighbors = centres, _checked_neighbors(n_neighbors)
        self.spherical, self.metric, self.seed = spherical, _checked_metric(metric), seed

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        data = prepare(data, "cosine") if self.spherical else data
        count = min(self.centres, len(data))
        if count < self.centres:
            reporter.note(f"overcluster: {len(data)} items, fewer than {self.centres} centres; using {count}")
        self.centres_ = kmeans_centres(data, count, spherical=self.spherical, seed=self.seed, reporter=reporter)
        self.nearest_centre_ = nearest_centres(data, self.centres_, reporter)
        affinity = local_scale_affinity(prepare(self.centres_, self.metric), self.n_neighbors)
        groups, _, _ = spectral_clusters(affinity, self.k, seed=self.seed, reporter=reporter)
        labels = by_size(groups[self.nearest_centre_])
        group_label = np.full(self.k, -1, dtype=np.int32)
        group_label[groups[self.nearest_centre_]] = labels
        self.centre_groups_ = group_label[groups]  # -1 for a centre whose group no item fell into
        return labels

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "centres": len(self.centres_), "n_neighbors": self.n_neighbors,
                "spherical": self.spherical, "seed": self.seed, "n_clusters": self.n_clusters_}


def kmeans_centres(
    data: np.ndarray, k: int, *, spherical: bool = False, restarts: int = 1, seed: int = 0,
    reporter: Reporter = SILENT,
) -> np.ndarray:
    """k-means centres: the best of `restarts` runs of k-means++ seeding and Lloyd iterations, on a sample.

    256 rows per centre (at least 50,000) place centres as well as all rows do, in a fraction of the time.
    """
    from sklearn.cluster import kmeans_plusplus

    size = max(SAMPLE_MIN, SAMPLE_PER_CENTRE * k)
    rng = np.random.default_rng(seed)
    sample = data if len(data) <= size else data[np.sort(rng.choice(len(data), size, replace=False))]
    tolerance = TOLERANCE * float(np.mean(np.var(sample, axis=0)))
    best, best_inertia = None, np.inf
    with reporter.phase("k-means", restarts * MAX_ITERATIONS) as advance:
        for _ in range(restarts):
            seeds, _ = kmeans_plusplus(sample, k, random_state=int(rng.integers(2**31)))
            centres, inertia = _lloyd(sample, seeds, spherical, tolerance, advance)
            if inertia < best_inertia:
                best, best_inertia = centres, inertia
    return best


def nearest_centres(data: np.ndarray, centres: np.ndarray, reporter: Reporter = SILENT) -> np.ndarray:
    """The index of each row's nearest centre (euclidean), searched in blocks of about 8 MB of distances."""
    block = max(1, BLOCK_DISTANCES // len(centres))
    labels = np.empty(len(data), dtype=np.int64)
    with reporter.phase("k-means: assign", len(data)) as advance:
        for start in range(0, len(data), block):
            rows = data[start : start + block]
            labels[start : start + len(rows)] = _nearest(rows, centres)
            advance(len(rows))
    return labels


def _nearest(rows: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """argmin over centres of |c|^2 - 2 x.c, the squared distance less |x|^2, which is the same for every centre."""
    distances = rows @ centres.T
    distances *= -2
    distances += np.einsum("ij,ij->i", centres, centres)
    return distances.argmin(axis=1)


def _lloyd(
    sample: np.ndarray, centres: np.ndarray, spherical: bool, tolerance: float, advance: Callable[[int], None]
) -> tuple[np.ndarray, float]:
    """Lloyd iterations until the centres move less than `tolerance` (summed squares); centres and inertia."""
    iterations, shift = 0, np.inf
    while iterations < MAX_ITERATIONS and shift > tolerance:
        moved = _means(sample, nearest_centres(sample, centres), centres)
        moved = _unit(moved) if spherical else moved
        shift = float(np.sum((moved - centres) ** 2))
        centres, iterations = moved, iterations + 1
        advance(1)
    advance(MAX_ITERATIONS - iterations)
    inertia = float(np.sum((sample - centres[nearest_centres(sample, centres)]) ** 2))
    return centres, inertia


def _means(data: np.ndarray, labels: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The mean of each cluster's rows; an empty cluster keeps its previous centre."""
    k, n = len(previous), len(labels)
    members = sparse.csr_matrix((np.ones(n, dtype=np.float32), (labels, np.arange(n))), shape=(k, n))
    counts = np.bincount(labels, minlength=k)
    means = previous.copy()
    filled = counts > 0
    means[filled] = (members @ data)[filled] / counts[filled, None]
    return means


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.finfo(np.float32).tiny)


def _checked_k(k: int | None, method: str) -> int:
    if k is None:
        raise ParameterError(f"{method} needs the number of clusters: give --k")
    if k < 2:
        raise ParameterError(f"--k must be at least 2 clusters; got {k}")
    return k


def _checked_neighbors(n_neighbors: int) -> int:
    if n_neighbors < 1:
        raise ParameterError(f"--neighbors must be at least 1; got {n_neighbors}")
    return n_neighbors


def _checked_metric(metric: str) -> str:
    if metric not in ("euclidean", "cosine"):
        raise ParameterError(f"metric must be euclidean or cosine; got {metric!r}")
    return metric


@contextmanager
def _igraph_seeded(seed: int) -> Iterator[None]:
    """Run a block with igraph drawing from its own seeded generator, then give it back the `random` module."""
    import igraph

    igraph.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        igraph.set_random_number_generator(random)


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(value), 6) for value in values]
