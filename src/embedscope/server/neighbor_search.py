"""Nearest neighbours of one item in the Atlas's original vector space, for the viewer's click on a point.

A cached graph of the raw vectors answers when it holds enough neighbours; otherwise one exact scan of
the vectors (kept in memory after the first click) finds them: a matrix-vector product, then the
closest candidates measured again without the product's rounding.
"""

from __future__ import annotations

import threading

import numpy as np

from embedscope.atlas import Atlas
from embedscope.maps.neighbors import KnnGraph, knn_graph

MAX_K = 100
RAW_SPACE = "raw"
SPARE_CANDIDATES = 16


class NeighborSearch:
    """Finds the k nearest items of a row (itself excluded), nearest first, in the Atlas's metric."""

    def __init__(self, atlas: Atlas) -> None:
        self.atlas = atlas
        self.metric = atlas.metric or "euclidean"
        self._lock = threading.Lock()
        self._data: np.ndarray | None = None
        self._squared_norms: np.ndarray | None = None

    def find(self, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows (int64) and distances (float32) of the k nearest items of `row`."""
        k = min(k, self.atlas.n - 1)
        if k < 1:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        graph = self.atlas.graph(k, self.metric, RAW_SPACE)
        if graph is not None:
            return np.asarray(graph.indices[row], np.int64), np.asarray(graph.distances[row], np.float32)
        return self._scan(row, k)

    def graph(self, k: int) -> KnnGraph:
        """The k nearest neighbours of every item: the cached graph when there is one, else computed."""
        cached = self.atlas.graph(k, self.metric, RAW_SPACE)
        return cached if cached is not None else knn_graph(self.atlas.vectors(), k, self.metric)

    def _scan(self, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        data, squared_norms = self._vectors()
        query = data[row]
        products = data @ query
        if self.metric == "cosine":
            rough = 1.0 - products
        else:
            rough = squared_norms - 2.0 * products + squared_norms[row]
        rough[row] = np.inf
        count = min(len(data) - 1, 4 * k + SPARE_CANDIDATES)
        candidates = np.argpartition(rough, count - 1)[:count]
        exact = self._exact_distances(data[candidates].astype(np.float64), query.astype(np.float64))
        order = np.lexsort((candidates, exact))[:k]
        return candidates[order].astype(np.int64), exact[order].astype(np.float32)

    def _exact_distances(self, candidates: np.ndarray, query: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            return np.maximum(1.0 - candidates @ query, 0.0)
        return np.sqrt(((candidates - query) ** 2).sum(axis=1))

    def _vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """The vectors (unit length for cosine; zero vectors stay zero) and their squared norms, read once."""
        with self._lock:
            if self._data is None:
                data = np.ascontiguousarray(self.atlas.vectors(), dtype=np.float32)
                if self.metric == "cosine":
                    norms = np.linalg.norm(data, axis=1)
                    data /= np.where(norms > 0, norms, 1.0)[:, None]
                self._data, self._squared_norms = data, np.einsum("ij,ij->i", data, data)
        return self._data, self._squared_norms
