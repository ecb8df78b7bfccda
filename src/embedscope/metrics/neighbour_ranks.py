"""Exact neighbour ranks for map scores: each sampled row's k nearest and the ranks of given neighbours, in one
blocked BLAS pass over the data (a k-d tree for 2D and 3D maps).

Memory is one block of rows by one block of columns, so the scores stay exact at millions of items.
"""

from __future__ import annotations

import numba
import numpy as np

from embedscope.maps import prepare

ROW_BLOCK = 2048
COLUMN_BLOCK = 8192
MAP_MAX_DIM = 3


def nearest_rows(data: np.ndarray, rows: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Exact k nearest neighbours of data[rows] among all rows, each row itself left out: a k-d tree for maps."""
    if data.shape[1] > MAP_MAX_DIM or metric != "euclidean":
        return scan_ranks(prepare(data, metric), rows, np.empty((len(rows), 0), np.int64), k)[1]
    from scipy.spatial import cKDTree

    points = np.asarray(data, dtype=np.float64)
    found = cKDTree(points).query(points[rows], k + 1)[1]
    is_self = found == rows[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # more than k duplicates hid the row itself: drop the farthest instead
    return found[~is_self].reshape(len(rows), k)


def scan_ranks(data: np.ndarray, rows: np.ndarray, neighbours: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """High-dimensional ranks of each row's given `neighbours` (1 + points strictly closer), and its k nearest.

    One pass of blocked BLAS products over the data serves both, with the data centred to keep them accurate.
    """
    mean = data.mean(axis=0, dtype=np.float64).astype(np.float32)
    ranks = np.empty(neighbours.shape, np.int64)
    nearest = np.empty((len(rows), k), np.int64)
    for start in range(0, len(rows), ROW_BLOCK):
        block = slice(start, start + ROW_BLOCK)
        ranks[block], nearest[block] = _scan_block(data, mean, rows[block], neighbours[block], k)
    return ranks, nearest


def _scan_block(
    data: np.ndarray, mean: np.ndarray, rows: np.ndarray, neighbours: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """`scan_ranks` for one block of rows, with distances shifted by each row's squared norm (which ranks ignore).

    The given neighbours' distances are computed directly, not from products, so that none ranks behind itself.
    """
    queries = data[rows] - mean
    shift = np.einsum("ij,ij->i", queries, queries, dtype=np.float64)[:, None]
    exact = np.square(data[rows].astype(np.float64)[:, None, :] - data[neighbours]).sum(axis=2) - shift
    limits = np.sort(exact, axis=1)
    skipped = np.hstack([rows[:, None], neighbours])  # each row itself (never a neighbour) and its given neighbours
    skipped_distances = np.hstack([np.full_like(shift, np.inf), exact])
    closer = np.zeros(neighbours.shape, np.int64)
    best = np.full((len(rows), k), np.inf)
    nearest = np.full((len(rows), k), -1, np.int64)
    for start in range(0, len(data), COLUMN_BLOCK):
        chunk = data[start : start + COLUMN_BLOCK] - mean
        norms = np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64)
        _accumulate(queries @ chunk.T, norms, start, limits, skipped, skipped_distances, closer, best, nearest)
    closer_neighbours = (limits[:, None, :] < limits[:, :, None]).sum(axis=2)
    return 1 + closer + closer_neighbours, nearest


@numba.njit(parallel=True, cache=True)
def _accumulate(products, norms, start, limits, skipped, skipped_distances, closer, best, nearest):
    """Add one block of columns: per row, the points below each limit (skipped columns aside) and the k nearest."""
    for row in numba.prange(products.shape[0]):
        distances = norms - 2.0 * products[row]
        for limit in range(limits.shape[1]):
            closer[row, limit] += _count_below(distances, limits[row, limit])
        if _count_below(distances, best[row, -1]):
            for column in range(len(distances)):
                if distances[column] < best[row, -1] and start + column not in skipped[row]:
                    _insert(best[row], nearest[row], distances[column], start + column)
        for place in range(skipped.shape[1]):
            column = skipped[row, place] - start
            if 0 <= column < len(distances):
                closer[row] -= distances[column] < limits[row]
                if skipped_distances[row, place] < best[row, -1]:
                    _insert(best[row], nearest[row], skipped_distances[row, place], skipped[row, place])


@numba.njit(cache=True)
def _count_below(values, bound):
    """How many values are below the bound (an indexed loop, which compiles to vector instructions)."""
    count = 0
    for index in range(len(values)):
        if values[index] < bound:
            count += 1
    return count


@numba.njit(cache=True)
def _insert(best, nearest, distance, index):
    """Put a point into a row's k nearest so far, kept sorted by distance."""
    place = len(best) - 1
    while place > 0 and best[place - 1] > distance:
        best[place], nearest[place] = best[place - 1], nearest[place - 1]
        place -= 1
    best[place], nearest[place] = distance, index

