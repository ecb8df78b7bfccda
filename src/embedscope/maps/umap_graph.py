"""UMAP's fuzzy simplicial set: each point's neighbour distances turned into membership strengths.

Per point, distances are shifted by the nearest one (rho) and scaled (sigma, by binary search) so the
memberships sum to log2(k) (McInnes et al. 2018, section 3); the directed graph is then symmetrised by
fuzzy union, w + w' - w w'.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from embedscope.maps.neighbors import KnnGraph

SEARCH_STEPS = 64
TOLERANCE = 1e-5
MIN_SCALE = 1e-3


def fuzzy_graph(knn: KnnGraph) -> sp.csr_matrix:
    """The symmetric fuzzy simplicial set of a kNN graph, as an (n, n) float32 CSR matrix.

    Rows are sorted and free of explicit zeros, ready for the layout.
    """
    n, k = knn.indices.shape
    strengths = memberships(knn.distances)
    rows = np.repeat(np.arange(n, dtype=np.int32), k)
    directed = sp.csr_matrix((strengths.ravel(), (rows, knn.indices.ravel())), shape=(n, n))
    transposed = directed.T.tocsr()
    graph = (directed + transposed - directed.multiply(transposed)).tocsr()
    graph.eliminate_zeros()
    graph.sort_indices()
    graph.data = graph.data.astype(np.float32)
    return graph


def memberships(distances: np.ndarray) -> np.ndarray:
    """Membership strength of each point's k neighbours (k columns, nearest first), in (0, 1].

    Works for a graph's own points and for new points' neighbours among fitted ones alike.
    """
    distances = np.ascontiguousarray(distances, dtype=np.float32)
    mean = float(distances.mean()) if distances.size else 0.0
    return _memberships(distances, np.float32(np.log2(distances.shape[1])), np.float32(mean))


@numba.njit(parallel=True, cache=True, fastmath=False)
def _memberships(distances: np.ndarray, target: np.float32, overall_mean: np.float32) -> np.ndarray:
    n, k = distances.shape
    out = np.empty((n, k), dtype=np.float32)
    for i in numba.prange(n):
        row = distances[i]
        rho = 0.0
        for j in range(k):
            if row[j] > 0.0:
                rho = row[j]
                break
        low, high, sigma = 0.0, np.inf, 1.0
        for _ in range(SEARCH_STEPS):
            total = 0.0
            for j in range(k):
                gap = row[j] - rho
                total += np.exp(-gap / sigma) if gap > 0.0 else 1.0
            if abs(total - target) < TOLERANCE:
                break
            if total > target:
                high = sigma
                sigma = (low + high) / 2.0
            else:
                low = sigma
                sigma = sigma * 2.0 if high == np.inf else (low + high) / 2.0
        floor = MIN_SCALE * (row.mean() if rho > 0.0 else overall_mean)
        sigma = max(sigma, floor, 1e-12)
        for j in range(k):
            gap = row[j] - rho
            out[i, j] = np.exp(-gap / sigma) if gap > 0.0 else 1.0
    return out
