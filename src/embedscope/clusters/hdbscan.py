"""HDBSCAN (Campello et al. 2013) through scikit-learn: clusters of any shape at varying density, and noise (-1).

It needs no number of clusters; on wide vectors of many items it is slow, where clustering a map layer is fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from embedscope.clusters.clusterer import Clusterer, check_metric, check_neighbors
from embedscope.errors import ParameterError
from embedscope.maps import KnnGraph
from embedscope.progress import Reporter

SHARE = 200
COMFORTABLE = 50_000  # above this, in more than 3 dims, scikit-learn's HDBSCAN takes minutes


@dataclass
class HDBSCAN(Clusterer):
    """scikit-learn's HDBSCAN with its parameter names; `fit_predict` labels noise -1.

    `min_cluster_size` defaults to 0.5% of the items (at least 5); `min_samples` sets the core distance.
    """

    min_cluster_size: int | None = None
    min_samples: int = 10
    metric: str = "euclidean"

    def __post_init__(self) -> None:
        self.check()

    def _check_parameters(self) -> None:
        if self.min_cluster_size is not None and self.min_cluster_size < 2:
            raise ParameterError(f"--min-cluster-size must be at least 2; got {self.min_cluster_size}")
        check_neighbors(self.min_samples)
        check_metric(self.metric)

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        from sklearn.cluster import HDBSCAN as ScikitHDBSCAN

        n = len(data)
        if self.min_cluster_size is not None and self.min_cluster_size > n:
            raise ParameterError(f"--min-cluster-size={self.min_cluster_size} exceeds the {n} items; lower it")
        self.min_cluster_size_ = self.min_cluster_size or min(n, max(5, n // SHARE))
        model = ScikitHDBSCAN(min_cluster_size=self.min_cluster_size_, min_samples=min(self.min_samples, n), copy=True)
        if n > COMFORTABLE and data.shape[1] > 3:
            reporter.note(f"hdbscan on {n:,} items in {data.shape[1]} dims is slow; --on-layer MAP is fast")
        with reporter.phase("hdbscan", None):
            labels = model.fit_predict(data)
        self.noise_ = int((labels < 0).sum())
        return labels

    def params(self) -> dict[str, Any]:
        return {"min_cluster_size": self.min_cluster_size_, "min_samples": self.min_samples,
                "noise": self.noise_, "n_clusters": self.n_clusters_}
