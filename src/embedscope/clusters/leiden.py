"""Leiden communities (Traag et al. 2019) of the kNN affinity graph, maximising modularity at a resolution.

igraph's own Leiden: the same objective as leidenalg's RBConfigurationVertexPartition but about 10x faster.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from embedscope.clusters.clusterer import Clusterer, check_metric, check_neighbors
from embedscope.clusters.spectral import knn_affinity
from embedscope.errors import ParameterError
from embedscope.maps import KnnGraph
from embedscope.progress import Reporter

ITERATIONS = 2


@dataclass
class Leiden(Clusterer):
    """Leiden with scanpy's parameter names; a higher `resolution` gives more, smaller communities."""

    resolution: float = 1.0
    n_neighbors: int = 10
    metric: str = "euclidean"
    random_state: int = 0

    def __post_init__(self) -> None:
        self.check()

    @property
    def graph_k(self) -> int:
        """Neighbours per item in the affinity graph."""
        return self.n_neighbors

    def _check_parameters(self) -> None:
        if not self.resolution > 0:
            raise ParameterError(f"--resolution must be positive (1.0 is the usual start); got {self.resolution}")
        check_neighbors(self.n_neighbors)
        check_metric(self.metric)

    def _cluster(self, data: np.ndarray, knn: KnnGraph | None, reporter: Reporter) -> np.ndarray:
        import igraph

        edges = sparse.triu(knn_affinity(self._graph(data, knn, reporter)), k=1).tocoo()
        network = igraph.Graph(
            n=len(data), edges=np.column_stack([edges.row, edges.col]), edge_attrs={"weight": edges.data}
        )
        with reporter.phase("leiden", None), _igraph_seeded(self.random_state):
            communities = network.community_leiden(
                "modularity", weights="weight", resolution=self.resolution, n_iterations=ITERATIONS
            )
        return np.asarray(communities.membership)

    def params(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "n_neighbors": self.n_neighbors, "seed": self.random_state,
                "n_clusters": self.n_clusters_}


@contextmanager
def _igraph_seeded(seed: int) -> Iterator[None]:
    """Run a block with igraph drawing from its own seeded generator, then give it back the `random` module."""
    import igraph

    igraph.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        igraph.set_random_number_generator(random)
