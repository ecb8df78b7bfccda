"""k nearest neighbours of every item: exact (blocked BLAS) for small n, HNSW above, cosine or euclidean.

Both back ends are reproducible: the exact search is deterministic, and the HNSW graph is built on
one thread (a multi-threaded build depends on thread timing) and searched on all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedscope.errors import ParameterError, VectorError
from embedscope.progress import SILENT, Reporter

METRICS = ("euclidean", "cosine")
METHODS = ("auto", "exact", "hnsw")
EXACT_MAX_N = 60_000
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

    `method="auto"` searches exactly up to `exact_max_n` items and with HNSW above.
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
        if not self.exact_:
            self.index_.hnsw.efSearch = max(2 * k, 96)
        indices = np.empty((len(data), k), dtype=np.int64)
        squared = np.empty((len(data), k), dtype=np.float32)
        with reporter.phase("neighbours: search", len(data)) as advance:
            for start in range(0, len(data), QUERY_BLOCK):
                block = data[start : start + QUERY_BLOCK]
                squared[start : start + len(block)], indices[start : start + len(block)] = self.index_.search(block, k)
                advance(len(block))
        squared = np.maximum(squared, 0.0)
        distances = squared / 2 if self.metric == "cosine" else np.sqrt(squared)
        return indices, distances.astype(np.float32)


def knn_graph(
    vectors: np.ndarray, k: int = 15, metric: str = "euclidean", method: str = "auto", reporter: Reporter = SILENT
) -> KnnGraph:
    """The k nearest neighbours of every row of `vectors` among the others."""
    return NearestNeighbors(k, metric, method).fit(vectors, reporter).graph(reporter)


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
