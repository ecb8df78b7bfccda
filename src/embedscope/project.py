"""Projections of vectors to 2D or 3D maps: PCA, UMAP, t-SNE and PHATE as scikit-learn-style estimators.

Each projector fits on vectors (reusing a kNN graph when given) and places new vectors on the fitted map;
`project` fits on a sample and places the rest when there are too many vectors to fit at once.
"""

from __future__ import annotations

import warnings
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from embedscope.errors import ParameterError
from embedscope.neighbors import METRICS, KnnGraph, knn_graph, prepare
from embedscope.pca import PCA
from embedscope.placement import sample_then_place
from embedscope.progress import SILENT, Reporter
from embedscope.tsne import TSNE
from embedscope.umap_graph import fuzzy_graph, memberships
from embedscope.umap_layout import curve_parameters, default_epochs, optimize

METHODS = ("pca", "umap", "tsne", "phate")
ENGINES = ("fast", "reference")
MAX_FIT = 200_000
INITIAL_EXTENT = 10.0
INITIAL_NOISE = 1e-4
PLACE_ALPHA = 0.25
PHATE_DECAY = 40.0
THREADS = 2


class Projector(Protocol):
    """What every projection offers: the neighbours it needs, fitting, and placing new vectors."""

    graph_k: int | None

    def fit_transform(
        self, vectors: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT
    ) -> np.ndarray:
        """Fit on `vectors` (n, dim) and return their map, (n, dims) float32."""

    def place(self, vectors: np.ndarray, knn: KnnGraph | None, reporter: Reporter = SILENT) -> np.ndarray:
        """Map new vectors onto the fitted map, given their neighbours among the fitted vectors."""


class PCAProjection:
    """The first two or three principal components: linear, exact, and needs no neighbours."""

    graph_k = None

    def __init__(self, dims: int = 2, engine: str = "fast") -> None:
        self.dims, self.engine = dims, engine

    def fit_transform(
        self, vectors: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT
    ) -> np.ndarray:
        """Fit the components on `vectors` and return their coordinates."""
        if self.engine == "reference":
            from sklearn.decomposition import PCA as ReferencePCA

            self.model_ = ReferencePCA(self.dims, svd_solver="full").fit(vectors)
        else:
            self.model_ = PCA(self.dims).fit(vectors, reporter)
        return self.place(vectors, None)

    def place(self, vectors: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT) -> np.ndarray:
        """Coordinates of new vectors on the fitted components (no neighbours needed)."""
        return np.asarray(self.model_.transform(vectors), dtype=np.float32)


class UMAPProjection:
    """UMAP: a fuzzy neighbour graph laid out by SGD with negative sampling, started from PCA.

    `engine="reference"` fits with umap-learn itself (which finds its own neighbours); both engines place
    new vectors the same way.
    """

    def __init__(
        self, dims: int = 2, metric: str = "euclidean", n_neighbors: int = 15, min_dist: float = 0.1,
        seed: int = 0, engine: str = "fast",
    ) -> None:
        self.dims, self.metric, self.n_neighbors, self.min_dist = dims, metric, n_neighbors, min_dist
        self.seed, self.engine = seed, engine
        self.graph_k = n_neighbors
        self.curve_ = curve_parameters(min_dist)

    def fit_transform(
        self, vectors: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT
    ) -> np.ndarray:
        """Build the fuzzy graph of `vectors` and lay it out; `knn` is reused when given."""
        check_neighbours(self.n_neighbors, len(vectors))
        if self.engine == "reference":
            import umap

            model = umap.UMAP(n_components=self.dims, n_neighbors=self.n_neighbors, min_dist=self.min_dist,
                              metric=self.metric, random_state=self.seed)
            with reporter.phase("umap: umap-learn", None):
                self.embedding_ = model.fit_transform(vectors).astype(np.float32)
            return self.embedding_
        knn = own_graph(vectors, knn, self.graph_k, self.metric, reporter)
        with reporter.phase("umap: graph", None):
            graph = fuzzy_graph(knn)
        with reporter.phase("umap: init", None):
            start = scaled_pca(vectors, self.dims, self.seed)
        epochs = default_epochs(len(vectors))
        self.embedding_ = optimize(start, graph, epochs, self.curve_, self.seed, reporter=reporter)
        return self.embedding_

    def place(self, vectors: np.ndarray, knn: KnnGraph | None, reporter: Reporter = SILENT) -> np.ndarray:
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
        return optimize(start, graph, epochs, self.curve_, self.seed, fixed=self.embedding_,
                        initial_alpha=PLACE_ALPHA, reporter=reporter, label="umap: place")


class PHATEProjection:
    """PHATE (Moon et al. 2019): diffusion potentials of an alpha-decay kernel, embedded by MDS.

    The fast engine builds the kernel from our kNN graph and hands it to the phate package;
    `engine="reference"` lets phate build its own graph from the vectors.
    """

    def __init__(
        self, dims: int = 2, metric: str = "euclidean", n_neighbors: int = 15, seed: int = 0, engine: str = "fast"
    ) -> None:
        self.dims, self.metric, self.n_neighbors, self.seed, self.engine = dims, metric, n_neighbors, seed, engine
        self.graph_k = n_neighbors

    def fit_transform(
        self, vectors: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT
    ) -> np.ndarray:
        """Embed `vectors` with PHATE; `knn` (the fast engine's graph) is reused when given."""
        import phate

        check_neighbours(self.n_neighbors, len(vectors))
        settings = {"n_components": self.dims, "random_state": self.seed, "n_jobs": THREADS, "verbose": 0}
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

    def place(self, vectors: np.ndarray, knn: KnnGraph | None, reporter: Reporter = SILENT) -> np.ndarray:
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
    return np.exp(-((distances / bandwidth) ** PHATE_DECAY))


def make_projection(
    method: str, *, dims: int = 2, metric: str = "euclidean", n_neighbors: int = 15, min_dist: float = 0.1,
    perplexity: float = 30.0, seed: int = 0, engine: str = "fast",
) -> Projector:
    """The projector for `method`, its parameters checked (those that depend on n are checked at fit).

    Bad values raise ParameterError with one line that says how to fix them.
    """
    if method not in METHODS:
        raise ParameterError(f"projection method must be one of {', '.join(METHODS)}; got {method!r}")
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if dims not in (2, 3):
        raise ParameterError(f"maps have 2 or 3 dimensions; got --dims {dims}")
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if method == "pca":
        return PCAProjection(dims, engine)
    if n_neighbors < 2:
        raise ParameterError(f"{method} needs at least 2 neighbours; got --neighbors {n_neighbors}")
    if method == "umap":
        if min_dist < 0:
            raise ParameterError(f"min_dist must be 0 or more; got {min_dist:g}")
        return UMAPProjection(dims, metric, n_neighbors, min_dist, seed, engine)
    if method == "phate":
        return PHATEProjection(dims, metric, n_neighbors, seed, engine)
    return TSNE(dims, metric, perplexity, seed, engine)


def reduce_dims(
    vectors: np.ndarray, dims: int = 50, metric: str = "euclidean", seed: int = 0, reporter: Reporter = SILENT
) -> np.ndarray:
    """The PCA pre-step: `dims` principal components, float32 (rows made unit length first for cosine).

    Vectors with at most `dims` dimensions are returned as they are; the PCA is exact, so `seed` changes nothing.
    """
    data = prepare(vectors, metric) if metric == "cosine" else vectors
    if data.shape[1] <= dims:
        return np.asarray(data, dtype=np.float32)
    return PCA(dims).fit_transform(data, reporter)


def project(
    vectors: np.ndarray, method: str, *, dims: int = 2, metric: str = "euclidean", n_neighbors: int = 15,
    min_dist: float = 0.1, perplexity: float = 30.0, seed: int = 0, engine: str = "fast", max_fit: int = MAX_FIT,
    knn: KnnGraph | None = None, reporter: Reporter = SILENT,
) -> np.ndarray:
    """The (n, dims) float32 map of `vectors`: fitted on all rows up to `max_fit`, else on a sample.

    Above `max_fit` the rest are placed in chunks (memory bounded by the chunk) and `knn` is not used.
    """
    projector = make_projection(method, dims=dims, metric=metric, n_neighbors=n_neighbors, min_dist=min_dist,
                                perplexity=perplexity, seed=seed, engine=engine)
    if len(vectors) <= max_fit:
        return projector.fit_transform(vectors, knn, reporter)
    return sample_then_place(vectors, projector, max_fit, metric=metric, seed=seed, reporter=reporter)


def check_neighbours(n_neighbors: int, n: int) -> None:
    """Refuse a neighbour count the data cannot supply."""
    if n_neighbors >= n:
        raise ParameterError(f"{n_neighbors} neighbours need more than {n_neighbors} points; the data has {n}: "
                             f"use --neighbors {max(n - 1, 1)} or less")


def own_graph(vectors: np.ndarray, knn: KnnGraph | None, k: int, metric: str, reporter: Reporter) -> KnnGraph:
    """The given graph of `vectors` cut to k neighbours, or a new one."""
    return knn.first(k) if knn is not None else knn_graph(vectors, k, metric, reporter=reporter)


def scaled_pca(vectors: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """PCA coordinates scaled to +-10 with a little seeded noise, UMAP's starting layout."""
    start = PCA(dims).fit_transform(vectors)
    start *= INITIAL_EXTENT / max(float(np.abs(start).max()), np.finfo(np.float32).tiny)
    return start + np.random.default_rng(seed).normal(scale=INITIAL_NOISE, size=start.shape).astype(np.float32)
