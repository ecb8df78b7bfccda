"""k nearest neighbours of every item: exact (blocked BLAS) for small n, inverted lists above, cosine or euclidean.

Every back end is reproducible: the exact search and the inverted-file index (k-means lists from a seeded
sample) are deterministic, and the HNSW graph is built on one thread (a multi-threaded build depends on
thread timing) and searched on all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from embedscope.errors import ParameterError, VectorError
from embedscope.progress import SILENT, Reporter

METRICS = ("euclidean", "cosine")
METHODS = ("auto", "exact", "ivf", "hnsw")
EXACT_MAX_N = 60_000
LISTS_PER_ROOT_N = 2
PROBED_FRACTION = 1 / 28
MIN_PROBES = 32
TRAINING_PER_LIST = 64
QUERY_BLOCK = 8_192
HNSW_LINKS = 16
HNSW_BUILD_EFFORT = 64
SHOWN = 5


@dataclass(frozen=True)
class KnnGraph:
    """The k nearest neighbours of each of n items (itself excluded), nearest first.

    `distances` are euclidean distances, or cosine distances (1 - cosine similarity).
    """

    indices: np.ndarray
    distances: np.ndarray
    metric: str
    exact: bool

    @property
    def k(self) -> int:
        """Neighbours per item."""
        return self.indices.shape[1]

    def first(self, k: int) -> KnnGraph:
        """The same graph cut to the k nearest neighbours (k at most this graph's k)."""
        if not 1 <= k <= self.k:
            raise ParameterError(f"a graph of {self.k} neighbours cannot give {k}")
        return KnnGraph(self.indices[:, :k], self.distances[:, :k], self.metric, self.exact)


class NearestNeighbors:
    """An index over vectors that answers k-nearest-neighbour queries, scikit-learn style.

    `method="auto"` searches exactly up to `exact_max_n` items and with inverted lists ("ivf") above:
    on 200k x 50 they find 98% of the true neighbours in half the time HNSW takes to find 96%.
    """

    def __init__(
        self, k: int = 15, metric: str = "euclidean", method: str = "auto", exact_max_n: int = EXACT_MAX_N
    ) -> None:
        self.k = k
        self.metric = metric
        self.method = method
        self.exact_max_n = exact_max_n

    def fit(self, vectors: np.ndarray, reporter: Reporter = SILENT) -> NearestNeighbors:
        """Index `vectors` (n, dim)."""
        import faiss

        _check_parameters(self.k, self.metric, self.method, len(vectors))
        data = prepare(vectors, self.metric)
        self.exact_ = self.method == "exact" or (self.method == "auto" and len(data) <= self.exact_max_n)
        if self.exact_:
            index = faiss.IndexFlatL2(data.shape[1])
            index.add(data)
        elif self.method in ("auto", "ivf"):
            index = _inverted_lists(data, reporter)
        else:
            index = faiss.IndexHNSWFlat(data.shape[1], HNSW_LINKS)
            index.hnsw.efConstruction = HNSW_BUILD_EFFORT
            with reporter.phase("neighbours: build index", None), _faiss_threads(1):
                index.add(data)
        self.index_, self.data_ = index, data
        return self

    def graph(self, reporter: Reporter = SILENT) -> KnnGraph:
        """The neighbours of each fitted item among the other fitted items."""
        indices, distances = self._search(self.data_, self.k + 1, reporter)
        indices, distances = _drop_self(indices, distances, self.k)
        return KnnGraph(indices, distances, self.metric, self.exact_)

    def query(self, vectors: np.ndarray, k: int | None = None, reporter: Reporter = SILENT) -> KnnGraph:
        """The neighbours of new `vectors` among the fitted items."""
        k = self.k if k is None else k
        indexed = len(self.data_)
        if not 1 <= k <= indexed:
            raise ParameterError(f"{k} neighbours asked of {indexed} indexed items; ask for 1 to {indexed}")
        indices, distances = self._search(prepare(vectors, self.metric), k, reporter)
        return KnnGraph(indices, distances, self.metric, self.exact_)

    def _search(self, data: np.ndarray, k: int, reporter: Reporter) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(self.index_, "hnsw"):
            self.index_.hnsw.efSearch = max(2 * k, 96)
        indices = np.empty((len(data), k), dtype=np.int64)
        squared = np.empty((len(data), k), dtype=np.float32)
        with reporter.phase("neighbours: search", len(data)) as advance:
            for start in range(0, len(data), QUERY_BLOCK):
                block = data[start : start + QUERY_BLOCK]
                squared[start : start + len(block)], indices[start : start + len(block)] = self.index_.search(block, k)
                advance(len(block))
        short = np.flatnonzero((indices < 0).any(axis=1))
        if short.size:  # probed lists held fewer than k items: search those rows in every list
            probes, self.index_.nprobe = self.index_.nprobe, self.index_.nlist
            squared[short], indices[short] = self.index_.search(data[short], k)
            self.index_.nprobe = probes
        squared = np.maximum(squared, 0.0)
        distances = squared / 2 if self.metric == "cosine" else np.sqrt(squared)
        return indices, distances.astype(np.float32)


def _inverted_lists(data: np.ndarray, reporter: Reporter):
    """An IVF index: 2 sqrt(n) k-means lists trained on a seeded sample, of which a search probes 1/28 (at least 32)."""
    import faiss

    n, dim = data.shape
    lists = max(1, min(int(LISTS_PER_ROOT_N * np.sqrt(n)), n // TRAINING_PER_LIST))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, lists)
    index.nprobe = min(lists, max(MIN_PROBES, int(np.ceil(lists * PROBED_FRACTION))))
    training = data[np.sort(np.random.default_rng(0).choice(n, min(n, TRAINING_PER_LIST * lists), replace=False))]
    with reporter.phase("neighbours: build index", None):
        index.train(training)
        index.add(data)
    return index


def knn_graph(
    vectors: np.ndarray, k: int = 15, metric: str = "euclidean", method: str = "auto", reporter: Reporter = SILENT
) -> KnnGraph:
    """The k nearest neighbours of every row of `vectors` among the others."""
    return NearestNeighbors(k, metric, method).fit(vectors, reporter).graph(reporter)


def rerank(graph: KnnGraph, vectors: np.ndarray, k: int) -> KnnGraph:
    """The graph's neighbours re-measured in `vectors`, nearest first, cut to k.

    Candidates found fast in a reduced space (PCA) get their order and distances from the full-width vectors.
    """
    if not 1 <= k <= graph.k:
        raise ParameterError(f"a graph of {graph.k} candidates cannot give {k} neighbours")
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    cosine = graph.metric == "cosine"
    norms = np.linalg.norm(data, axis=1).astype(np.float32) if cosine else np.ones(len(data), dtype=np.float32)
    distances = np.empty(graph.indices.shape, dtype=np.float32)
    _candidate_distances(data, norms, graph.indices, cosine, distances)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return KnnGraph(np.take_along_axis(graph.indices, order, axis=1), np.take_along_axis(distances, order, axis=1),
                    graph.metric, exact=False)


def prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Contiguous float32 rows, unit length for cosine (refusing zero vectors, which have no direction)."""
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric != "cosine":
        return data
    norms = np.linalg.norm(data, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        shown = ", ".join(str(row) for row in zero[:SHOWN]) + (", ..." if zero.size > SHOWN else "")
        raise VectorError(
            f"{zero.size} zero vector(s) have no cosine distance (rows {shown}); "
            "drop them or use --metric euclidean"
        )
    return data / norms[:, None]


def _check_parameters(k: int, metric: str, method: str, n: int) -> None:
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if method not in METHODS:
        raise ParameterError(f"neighbour method must be one of {', '.join(METHODS)}; got {method!r}")
    if k < 1:
        raise ParameterError(f"the number of neighbours must be at least 1; got {k}")
    if k >= n:
        raise ParameterError(f"{k} neighbours need more than {k} items; the data has {n}: lower --neighbors")


def _drop_self(indices: np.ndarray, distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (or, if the search missed it, the farthest hit) to keep k."""
    rows = np.arange(len(indices))[:, None]
    is_self = indices == rows
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    return indices[keep].reshape(-1, k), distances[keep].reshape(-1, k)


class _faiss_threads:
    """Run a block with faiss limited to `count` threads, restoring the previous count."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __enter__(self) -> None:
        import faiss

        self.previous = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.count)

    def __exit__(self, *_: object) -> None:
        import faiss

        faiss.omp_set_num_threads(self.previous)


@numba.njit(parallel=True, fastmath=True, cache=True)
def _candidate_distances(data, norms, candidates, cosine, out):  # pragma: no cover - compiled
    """Euclidean or cosine distance from each row to each of its candidates (float64 sums)."""
    for i in numba.prange(candidates.shape[0]):
        for j in range(candidates.shape[1]):
            other = candidates[i, j]
            total = 0.0
            if cosine:
                for d in range(data.shape[1]):
                    total += data[i, d] * data[other, d]
                out[i, j] = max(1.0 - total / (norms[i] * norms[other]), 0.0)
            else:
                for d in range(data.shape[1]):
                    difference = data[i, d] - data[other, d]
                    total += difference * difference
                out[i, j] = np.sqrt(total)
