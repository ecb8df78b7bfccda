"""MiLoPYP's over-clustering: k-means with many centres, then spectral clustering of the centres into k groups.

Each item takes its centre's group; the centres' affinity is a self-tuning Gaussian, where MiLoPYP's RBF has
a fixed scale. With fewer items than centres, every item is its own centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from embedscope.clusters.clusterer import Clusterer, by_size, check_k, check_metric, check_neighbors
from embedscope.clusters.kmeans import kmeans_centres, nearest_centres
from embedscope.clusters.spectral import local_scale_affinity, spectral_clusters
from embedscope.errors import ParameterError
from embedscope.maps import KnnGraph, prepare
from embedscope.progress import Reporter


@dataclass
class OverCluster(Clusterer):
    """Over-clustering into `n_clusters` groups of `n_centres` k-means centres (MiLoPYP's defaults: 256 centres)."""

    n_clusters: int | None = None
    n_centres: int = 256
    n_neighbors: int = 10
    spherical: bool = False
    metric: str = "euclidean"
    random_state: int = 0

    def __post_init__(self) -> None:
        self.check()

    def _check_parameters(self) -> None:
        check_k(self.n_clusters, "overcluster")
        if self.n_centres <= self.n_clusters:
            raise ParameterError(
                f"overcluster groups {self.n_centres} centres into k={self.n_clusters}; raise centres above k"
            )
        check_neighbors(self.n_neighbors)
        check_metric(self.metric)

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        data = prepare(data, "cosine") if self.spherical else data
        count = min(self.n_centres, len(data))
        if count < self.n_centres:
            reporter.note(f"overcluster: {len(data)} items, fewer than {self.n_centres} centres; using {count}")
        self.centres_ = kmeans_centres(data, count, spherical=self.spherical, seed=self.random_state,
                                       reporter=reporter)
        self.nearest_centre_ = nearest_centres(data, self.centres_, reporter)
        affinity = local_scale_affinity(prepare(self.centres_, self.metric), self.n_neighbors)
        groups, _, _ = spectral_clusters(affinity, self.n_clusters, seed=self.random_state, reporter=reporter)
        labels = by_size(groups[self.nearest_centre_])
        group_label = np.full(self.n_clusters, -1, dtype=np.int32)
        group_label[groups[self.nearest_centre_]] = labels
        self.centre_groups_ = group_label[groups]  # -1 for a centre whose group no item fell into
        return labels

    def params(self) -> dict[str, Any]:
        return {"k": self.n_clusters, "centres": len(self.centres_), "n_neighbors": self.n_neighbors,
                "spherical": self.spherical, "seed": self.random_state, "n_clusters": self.n_clusters_}
