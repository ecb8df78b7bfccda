"""PHATE (Moon et al. 2019): diffusion potentials of an alpha-decay kernel, embedded by MDS.

The fast engine builds the kernel from our kNN graph and hands it to the phate package;
`engine="reference"` lets phate build its own graph from the vectors.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from embedscope.maps.neighbors import KnnGraph
from embedscope.maps.projector import as_vectors, check_map_shape, check_neighbour_count, check_neighbours, own_graph
from embedscope.progress import SILENT, Reporter

DECAY = 40.0
THREADS = 2


@dataclass
class PHATE:
    """PHATE with scikit-learn's parameter names; `fit_transform(X)` returns the (n, n_components) float32 map.

    New vectors are placed at the kernel-weighted mean of their fitted neighbours (`place`).
    """

    n_components: int = 2
    n_neighbors: int = 15
    metric: str = "euclidean"
    random_state: int = 0
    engine: str = "fast"

    def __post_init__(self) -> None:
        self.check()

    @property
    def graph_k(self) -> int:
        """Neighbours per item in the kernel's graph."""
        return self.n_neighbors

    def check(self, n: int | None = None) -> None:
        """Refuse parameters that cannot work, and with `n` a neighbour count that n vectors cannot supply."""
        check_map_shape(self.n_components, self.metric, self.engine)
        check_neighbour_count("phate", self.n_neighbors)
        if n is not None:
            check_neighbours(self.n_neighbors, n)

    def fit_transform(self, X: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT) -> np.ndarray:
        """Embed `X` with PHATE; `knn` (the fast engine's graph) is reused when given."""
        import phate

        vectors = as_vectors(X)
        self.check(len(vectors))
        settings = {"n_components": self.n_components, "random_state": self.random_state, "n_jobs": THREADS,
                    "verbose": 0}
        if self.engine == "reference":
            model = phate.PHATE(knn=self.n_neighbors, knn_dist=self.metric, **settings)
            data = vectors
        else:
            model = phate.PHATE(knn_dist="precomputed_affinity", **settings)
            data = alpha_decay_kernel(own_graph(vectors, knn, self.graph_k, self.metric, reporter))
        with reporter.phase("phate: fit", None), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Graph is disconnected", RuntimeWarning)  # it names phate's own knn
            self.embedding_ = np.asarray(model.fit_transform(data), dtype=np.float32)
        return self.embedding_

    def place(self, X: np.ndarray, knn: KnnGraph | None, reporter: Reporter = SILENT) -> np.ndarray:
        """Each new vector goes to the kernel-weighted mean of its fitted neighbours' positions."""
        knn = knn.first(min(knn.k, self.n_neighbors))
        weights = _decay(knn.distances)
        placed = np.einsum("mk,mkd->md", weights, self.embedding_[knn.indices]) / weights.sum(axis=1)[:, None]
        return placed.astype(np.float32)


def alpha_decay_kernel(knn: KnnGraph) -> sp.csr_matrix:
    """PHATE's symmetric kernel exp(-(d / d_k)^decay) over the graph's edges (d_k: the k-th distance).

    The diagonal is 1, as in phate's own graphs; the kernel goes to phate as a precomputed affinity.
    """
    n, k = knn.indices.shape
    kernel = sp.csr_matrix((_decay(knn.distances).ravel(), knn.indices.ravel(), np.arange(0, n * k + 1, k)),
                           shape=(n, n))
    return ((kernel + kernel.T) / 2 + sp.identity(n, format="csr")).tocsr()


def _decay(distances: np.ndarray) -> np.ndarray:
    """exp(-(d / d_k)^40): about 1 inside the k-th distance, 1/e at it, nothing beyond 1.06 times it."""
    bandwidth = np.maximum(distances[:, -1:], np.finfo(np.float32).tiny)
    return np.exp(-((distances / bandwidth) ** DECAY))
