"""Quality scores of maps and clusterings: trustworthiness, kNN recall and accuracy, silhouette, ARI, NMI.

Map scores rank a seeded sample of points exactly against all n points, so they are unbiased estimates of the full
scores and stay fast at millions of items; every score is deterministic for a seed.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import ArrayLike

from embedscope.errors import ParameterError
from embedscope.neighbors import METRICS, prepare

ROW_BLOCK = 2048
COLUMN_BLOCK = 8192
MAP_MAX_DIM = 3


def trustworthiness(
    X: np.ndarray, Y: np.ndarray, k: int = 10, sample: int | None = 2000, seed: int = 0, metric: str = "euclidean"
) -> float:
    """Venna & Kaski trustworthiness of the map Y of X: 1 when the map's k nearest neighbours are the data's.

    With `sample`, the exact score of that many seeded points, normalised as the full score (an unbiased estimate).
    """
    _check_trust_k(k, len(X))
    return _map_scores(X, Y, k, sample, seed, metric)["trustworthiness"]


def knn_recall(
    X: np.ndarray, Y: np.ndarray, k: int = 10, sample: int | None = 2000, seed: int = 0, metric: str = "euclidean"
) -> float:
    """Mean share of each point's exact k nearest neighbours in X that are also its k nearest in the map Y.

    Counts how much of the local neighbourhood the map keeps, for a seeded sample of points (None: all).
    """
    return _map_scores(X, Y, k, sample, seed, metric)["knn_recall"]


def knn_accuracy(
    Z: np.ndarray, labels: ArrayLike, k: int = 10, sample: int | None = 5000, seed: int = 0, metric: str = "euclidean"
) -> float:
    """Share of sampled items whose label wins the vote of their k nearest neighbours in Z (itself left out).

    Tells whether a map or the vectors keep labelled classes together; ties go to the nearest tied label, and items
    without a label (None/NaN) take no part.
    """
    codes, present, _ = _codes(labels, len(Z), "labels")
    points = _matrix(Z, "Z")
    if not present.all():
        points, codes = points[present], codes[present]
    _check_common(k, len(points), sample, metric)
    rows = _sample_rows(len(points), sample, seed)
    votes = codes[_nearest(points, rows, k, metric)]
    support = (votes[:, :, None] == votes[:, None, :]).sum(axis=2)
    predicted = votes[np.arange(len(rows)), np.argmax(support, axis=1)]
    return float(np.mean(predicted == codes[rows]))


def silhouette(
    X: np.ndarray, labels: ArrayLike, sample: int | None = 5000, seed: int = 0, metric: str = "euclidean"
) -> float:
    """scikit-learn's silhouette score of a clustering of X, on a seeded sample of the clustered items.

    The noise label -1 and missing labels are left out, as they belong to no cluster.
    """
    from sklearn.metrics import silhouette_score

    _check_sample(sample)
    _check_metric(metric)
    codes, present, classes = _codes(labels, len(X), "labels")
    clustered = np.flatnonzero(present & ~np.isin(codes, np.flatnonzero(_is_noise(classes))))
    chosen = clustered[_sample_rows(len(clustered), sample, seed)]
    found = len(np.unique(codes[chosen]))
    if found < 2:
        raise ParameterError(f"silhouette needs at least 2 clusters; found {found}")
    if found >= len(chosen):
        raise ParameterError(f"silhouette needs fewer clusters than items; found {found} in {len(chosen)} items")
    points = _matrix(X, "X")[chosen]
    if metric == "cosine":
        points = prepare(points, metric)
    return float(silhouette_score(points, codes[chosen], metric=metric))


def adjusted_rand(labels: ArrayLike, truth: ArrayLike) -> float:
    """Adjusted Rand index of a clustering against true labels: 0 for chance, 1 for the same partition.

    Items missing a label on either side are left out.
    """
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(*_paired(labels, truth)))


def normalized_mutual_info(labels: ArrayLike, truth: ArrayLike) -> float:
    """Normalised mutual information of a clustering and true labels, in [0, 1].

    Items missing a label on either side are left out.
    """
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(*_paired(labels, truth)))


def map_quality(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    k: int = 10,
    labels: ArrayLike | None = None,
    sample: int | None = 2000,
    seed: int = 0,
    metric: str = "euclidean",
) -> dict[str, float]:
    """Trustworthiness and kNN recall of the map Y of X, and with labels the kNN accuracy of the map and the vectors.

    Trustworthiness and recall share one pass over X.
    """
    _check_trust_k(k, len(X))
    scores = _map_scores(X, Y, k, sample, seed, metric)
    if labels is not None:
        scores["knn_accuracy_map"] = knn_accuracy(Y, labels, k, sample, seed)
        scores["knn_accuracy_vectors"] = knn_accuracy(X, labels, k, sample, seed, metric)
    return scores


def cluster_quality(
    X: np.ndarray,
    clusters: ArrayLike,
    *,
    truth: ArrayLike | None = None,
    sample: int | None = 5000,
    seed: int = 0,
    metric: str = "euclidean",
) -> dict[str, float]:
    """Silhouette and number of clusters (noise -1 not counted), and with true labels the ARI and NMI.

    The silhouette is on a seeded sample; ARI and NMI use every item.
    """
    _, _, classes = _codes(clusters, len(X), "clusters")
    scores = {"silhouette": silhouette(X, clusters, sample, seed, metric)}
    scores["n_clusters"] = int(np.sum(~_is_noise(classes)))
    if truth is not None:
        scores["ari"] = adjusted_rand(clusters, truth)
        scores["nmi"] = normalized_mutual_info(clusters, truth)
    return scores


def _map_scores(X: np.ndarray, Y: np.ndarray, k: int, sample: int | None, seed: int, metric: str) -> dict[str, float]:
    data, points = _matrix(X, "X"), _matrix(Y, "the map Y")
    if len(points) != len(data):
        raise ParameterError(f"the map has {len(points)} points but X has {len(data)} rows; give one point per row")
    n = len(data)
    _check_common(k, n, sample, metric)
    rows = _sample_rows(n, sample, seed)
    low = _nearest(points, rows, k, "euclidean")
    ranks, high = _scan(prepare(data, metric), rows, low, k)
    penalty = np.maximum(ranks - k, 0).sum(dtype=np.float64)
    scale = 2.0 / (len(rows) * k * (2.0 * n - 3.0 * k - 1.0))
    shared = (high[:, :, None] == low[:, None, :]).any(axis=2).sum()
    return {"trustworthiness": float(1.0 - penalty * scale), "knn_recall": float(shared / (len(rows) * k))}


def _nearest(data: np.ndarray, rows: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Exact k nearest neighbours of data[rows] among all rows, each row itself left out: a k-d tree for maps."""
    if data.shape[1] > MAP_MAX_DIM or metric != "euclidean":
        return _scan(prepare(data, metric), rows, np.empty((len(rows), 0), np.int64), k)[1]
    from scipy.spatial import cKDTree

    points = np.asarray(data, dtype=np.float64)
    found = cKDTree(points).query(points[rows], k + 1)[1]
    is_self = found == rows[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # more than k duplicates hid the row itself: drop the farthest instead
    return found[~is_self].reshape(len(rows), k)


def _scan(data: np.ndarray, rows: np.ndarray, neighbours: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
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
    """`_scan` for one block of rows, with distances shifted by each row's squared norm (which ranks ignore).

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


def _sample_rows(n: int, sample: int | None, seed: int) -> np.ndarray:
    """All rows, or `sample` distinct seeded rows in increasing order."""
    if sample is None or sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))


def _codes(labels: ArrayLike, n: int, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer codes of labels (-1 where missing), which are present (not None/NaN), and the distinct labels."""
    values = np.asarray(labels)
    if values.ndim != 1 or len(values) != n:
        raise ParameterError(f"{what} have {len(values)} entries for {n} items; give one per item")
    if values.dtype.kind == "f":
        present = ~np.isnan(values)
    elif values.dtype.kind == "O":
        present = np.array([not _missing(value) for value in values], dtype=bool)
    else:
        present = np.ones(n, dtype=bool)
    classes, found = np.unique(values[present], return_inverse=True)
    codes = np.full(n, -1, np.int64)
    codes[present] = found
    return codes, present, classes


def _missing(value: object) -> bool:
    """Whether a label is absent: None or NaN."""
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value))


def _is_noise(classes: np.ndarray) -> np.ndarray:
    """Which distinct labels are the noise label -1 of density clusterings."""
    return np.array([value == -1 for value in classes.tolist()], dtype=bool)


def _paired(labels: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Codes of two labellings of the same items, keeping the items labelled in both."""
    truth_codes, truth_present, _ = _codes(truth, len(truth), "true labels")
    codes, present, _ = _codes(labels, len(truth_codes), "labels")
    both = present & truth_present
    return truth_codes[both], codes[both]


def _matrix(values: np.ndarray, what: str) -> np.ndarray:
    """`values` as an array, refused unless it has one row per item."""
    array = np.asarray(values)
    if array.ndim != 2:
        raise ParameterError(f"{what} must be a 2-D array (items x dimensions); got shape {array.shape}")
    return array


def _check_common(k: int, n: int, sample: int | None, metric: str) -> None:
    if k < 1:
        raise ParameterError(f"k must be at least 1; got {k}")
    if k >= n:
        raise ParameterError(f"k={k} needs more than {k} items; there are {n}: lower k")
    _check_sample(sample)
    _check_metric(metric)


def _check_trust_k(k: int, n: int) -> None:
    if k < n <= 2 * k:  # the normalisation needs k < n / 2; k >= n is refused with the other scores' message
        raise ParameterError(f"trustworthiness with k={k} needs more than {2 * k} items; there are {n}: lower k")


def _check_sample(sample: int | None) -> None:
    if sample is not None and sample < 1:
        raise ParameterError(f"sample must be at least 1 (or None for every item); got {sample}")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
