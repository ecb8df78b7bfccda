"""k-means from k-means++ seeds, optionally spherical (rows and centres kept unit length), on a seeded sample.

Spherical k-means is prismPYP's cosine k-means; the centres come from a sample of 256 rows per centre, then
every row goes to its nearest centre in blocks, so a million items cluster in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from embedscope.clusters.clusterer import Clusterer, check_k, check_metric
from embedscope.maps import KnnGraph, prepare
from embedscope.progress import SILENT, Reporter

SAMPLE_MIN = 50_000
SAMPLE_PER_CENTRE = 256
MAX_ITERATIONS = 100
RESTARTS = 3
TOLERANCE = 1e-4
BLOCK_DISTANCES = 2**21


@dataclass
class KMeans(Clusterer):
    """k-means with scikit-learn's parameter names; `spherical` clusters directions.

    Metric "cosine" alone normalises the rows but not the centres; `spherical` keeps both unit length.
    """

    n_clusters: int | None = None
    spherical: bool = False
    metric: str = "euclidean"
    random_state: int = 0

    def __post_init__(self) -> None:
        self.check()

    def _check_parameters(self) -> None:
        check_k(self.n_clusters, "kmeans")
        check_metric(self.metric)

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        data = prepare(data, "cosine") if self.spherical else data
        self.centres_ = kmeans_centres(
            data, self.n_clusters, spherical=self.spherical, restarts=RESTARTS, seed=self.random_state,
            reporter=reporter,
        )
        return nearest_centres(data, self.centres_, reporter)

    def params(self) -> dict[str, Any]:
        return {"k": self.n_clusters, "spherical": self.spherical, "seed": self.random_state,
                "n_clusters": self.n_clusters_}


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
