"""UMAP's layout: stochastic gradient descent on the fuzzy cross-entropy with negative sampling.

Deterministic on any number of threads: each epoch reads a frozen copy of the previous positions,
each point is moved only by the thread that owns it (through its own row of the symmetric graph),
and negative samples come from a counter-based hash of (seed, epoch, edge, sample), so thread
timing cannot change a bit.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp
from scipy.optimize import curve_fit

from embedscope.progress import SILENT, Reporter

NEGATIVE_SAMPLE_RATE = 5
GRADIENT_CLIP = 4.0
EPOCHS_PER_CALL = 10
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def curve_parameters(min_dist: float, spread: float = 1.0) -> tuple[float, float]:
    """The a, b of the low-dimensional similarity 1 / (1 + a d^2b) that best fits min_dist and spread.

    The target is 1 up to min_dist and exp(-(d - min_dist) / spread) beyond, as in the UMAP paper.
    """
    d = np.linspace(0.0, 3.0 * spread, 300)
    target = np.where(d < min_dist, 1.0, np.exp(-(d - min_dist) / spread))
    (a, b), _ = curve_fit(lambda d, a, b: 1.0 / (1.0 + a * d ** (2 * b)), d, target, p0=(1.0, 1.0))
    return float(a), float(b)


def default_epochs(n: int) -> int:
    """Epochs for a graph of n points: more for small graphs, where each epoch is cheap."""
    return 500 if n <= 10_000 else 200


def optimize(
    positions: np.ndarray,
    graph: sp.csr_matrix,
    n_epochs: int,
    curve: tuple[float, float],
    seed: int,
    *,
    fixed: np.ndarray | None = None,
    initial_alpha: float = 1.0,
    reporter: Reporter = SILENT,
    label: str = "umap: layout",
) -> np.ndarray:
    """Move `positions` (n, dims) along the edges of `graph` for n_epochs; return them as float32.

    Without `fixed`, the graph joins the points to each other (fit). With `fixed` (m, dims), row i of
    the graph joins point i to fixed points, which attract and repel it but never move (placement).
    """
    heads = np.ascontiguousarray(positions, dtype=np.float32).copy()
    tails = heads.copy() if fixed is None else np.ascontiguousarray(fixed, dtype=np.float32)
    weights = graph.data.astype(np.float64)
    keep = weights >= weights.max(initial=0.0) / n_epochs
    graph = sp.csr_matrix((weights * keep, graph.indices, graph.indptr), shape=graph.shape)
    graph.eliminate_zeros()
    period = graph.data.max(initial=1.0) / graph.data
    negative_period = period / NEGATIVE_SAMPLE_RATE
    next_sample, next_negative = period.copy(), negative_period.copy()
    indptr, indices = graph.indptr.astype(np.int64), graph.indices.astype(np.int64)
    a, b = np.float32(curve[0]), np.float32(curve[1])
    with reporter.phase(label, n_epochs) as advance:
        for start in range(0, n_epochs, EPOCHS_PER_CALL):
            stop = min(n_epochs, start + EPOCHS_PER_CALL)
            _epochs(
                heads, tails, fixed is None, indptr, indices, period, negative_period, next_sample, next_negative,
                start, stop, n_epochs, np.float32(initial_alpha), a, b, np.uint64(seed),
            )
            advance(stop - start)
    return heads


@numba.njit(inline="always")
def _mix(value: np.uint64) -> np.uint64:
    """SplitMix64's finaliser: a bijective hash that turns counters into random bits."""
    value = (value ^ (value >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    value = (value ^ (value >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return value ^ (value >> np.uint64(31))


@numba.njit(inline="always")
def _clip(value: np.float32) -> np.float32:
    """Limit a gradient component, as UMAP does, so close pairs cannot fling points away."""
    return max(np.float32(-GRADIENT_CLIP), min(np.float32(GRADIENT_CLIP), value))


@numba.njit(parallel=True, cache=True, fastmath=True)
def _epochs(
    heads, tails, shared, indptr, indices, period, negative_period, next_sample, next_negative,
    first, stop, n_epochs, initial_alpha, a, b, seed,
):  # pragma: no cover - compiled
    """Run epochs first..stop-1. A sampled edge's pull and its negative samples' pushes are computed from
    the same head position and applied together: independent evaluations, which the CPU overlaps."""
    n_heads, dims = heads.shape
    n_tails = np.uint64(tails.shape[0])
    step = np.zeros_like(heads)
    two, one, eps = np.float32(2.0), np.float32(1.0), np.float32(0.001)
    for epoch in range(first, stop):
        if shared:
            tails[:] = heads
        alpha = initial_alpha * (one - np.float32(epoch) / np.float32(n_epochs))
        epoch_key = _mix(seed ^ (np.uint64(epoch + 1) * GOLDEN))
        for i in numba.prange(n_heads):
            for edge in range(indptr[i], indptr[i + 1]):
                if next_sample[edge] > epoch:
                    continue
                j = indices[edge]
                dist2 = np.float32(0.0)
                for d in range(dims):
                    step[i, d] = 0.0
                    dist2 += (heads[i, d] - tails[j, d]) ** 2
                if dist2 > 0.0:
                    power = dist2 ** (b - one)
                    coefficient = -two * a * b * power / (one + a * power * dist2)
                    for d in range(dims):
                        step[i, d] += _clip(coefficient * (heads[i, d] - tails[j, d]))
                next_sample[edge] += period[edge]
                negatives = int((epoch - next_negative[edge]) / negative_period[edge])
                next_negative[edge] += negatives * negative_period[edge]
                edge_key = _mix(epoch_key + np.uint64(edge) * GOLDEN)
                for sample in range(negatives):
                    k = ((_mix(edge_key + np.uint64(sample + 1)) >> np.uint64(32)) * n_tails) >> np.uint64(32)
                    if shared and k == i:
                        continue
                    dist2 = np.float32(0.0)
                    for d in range(dims):
                        dist2 += (heads[i, d] - tails[k, d]) ** 2
                    if dist2 > 0.0:
                        coefficient = two * b / ((eps + dist2) * (one + a * dist2**b))
                        for d in range(dims):
                            step[i, d] += _clip(coefficient * (heads[i, d] - tails[k, d]))
                for d in range(dims):
                    heads[i, d] += alpha * step[i, d]
