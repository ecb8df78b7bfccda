"""Sample-then-place: fit a projection on a seeded sample, then place the other vectors chunk by chunk.

Memory beyond the output is the sample, its neighbour index and one chunk, so millions of vectors
map on a workstation; the placed points follow the fitted map without changing it.
"""

from __future__ import annotations

import numpy as np

from embedscope.maps.neighbors import NearestNeighbors
from embedscope.maps.projector import Projector
from embedscope.progress import SILENT, Reporter

CHUNK_ROWS = 50_000


def sample_then_place(
    vectors: np.ndarray, projector: Projector, max_fit: int, *, metric: str = "euclidean", seed: int = 0,
    chunk_rows: int = CHUNK_ROWS, reporter: Reporter = SILENT,
) -> np.ndarray:
    """Fit `projector` on `max_fit` rows drawn with `seed` and place the others; return the (n, dims) map.

    One neighbour index over the sample serves both the fit (its own graph) and the placement queries.
    """
    fitted = np.sort(np.random.default_rng(seed).choice(len(vectors), size=max_fit, replace=False))
    sample = np.asarray(vectors[fitted])
    index = None
    if projector.graph_k is not None:
        index = NearestNeighbors(projector.graph_k, metric).fit(sample, reporter)
    knn = index.graph(reporter) if index is not None else None
    fitted_map = projector.fit_transform(sample, knn, reporter)
    placed = np.ones(len(vectors), dtype=bool)
    placed[fitted] = False
    rest = np.flatnonzero(placed)
    out = np.empty((len(vectors), fitted_map.shape[1]), dtype=np.float32)
    out[fitted] = fitted_map
    with reporter.phase("place", len(rest)) as advance:
        for start in range(0, len(rest), chunk_rows):
            rows = rest[start : start + chunk_rows]
            chunk = np.asarray(vectors[rows])
            chunk_knn = index.query(chunk) if index is not None else None
            out[rows] = projector.place(chunk, chunk_knn)
            advance(len(rows))
    return out
