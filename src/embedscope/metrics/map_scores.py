"""How well a map keeps its vectors' neighbourhoods: trustworthiness, kNN recall, and kNN accuracy of labels.

Map scores rank a seeded sample of points exactly against all n points, so they are unbiased estimates of the full
scores and stay fast at millions of items; every score is deterministic for a seed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from embedscope.errors import ParameterError
from embedscope.maps import prepare
from embedscope.metrics.neighbour_ranks import nearest_rows, scan_ranks
from embedscope.metrics.score_inputs import as_matrix, check_common, label_codes, sample_rows


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
    codes, present, _ = label_codes(labels, len(Z), "labels")
    points = as_matrix(Z, "Z")
    if not present.all():
        points, codes = points[present], codes[present]
    check_common(k, len(points), sample, metric)
    rows = sample_rows(len(points), sample, seed)
    votes = codes[nearest_rows(points, rows, k, metric)]
    support = (votes[:, :, None] == votes[:, None, :]).sum(axis=2)
    predicted = votes[np.arange(len(rows)), np.argmax(support, axis=1)]
    return float(np.mean(predicted == codes[rows]))


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


def _map_scores(X: np.ndarray, Y: np.ndarray, k: int, sample: int | None, seed: int, metric: str) -> dict[str, float]:
    data, points = as_matrix(X, "X"), as_matrix(Y, "the map Y")
    if len(points) != len(data):
        raise ParameterError(f"the map has {len(points)} points but X has {len(data)} rows; give one point per row")
    n = len(data)
    check_common(k, n, sample, metric)
    rows = sample_rows(n, sample, seed)
    low = nearest_rows(points, rows, k, "euclidean")
    ranks, high = scan_ranks(prepare(data, metric), rows, low, k)
    penalty = np.maximum(ranks - k, 0).sum(dtype=np.float64)
    scale = 2.0 / (len(rows) * k * (2.0 * n - 3.0 * k - 1.0))
    shared = (high[:, :, None] == low[:, None, :]).any(axis=2).sum()
    return {"trustworthiness": float(1.0 - penalty * scale), "knn_recall": float(shared / (len(rows) * k))}


def _check_trust_k(k: int, n: int) -> None:
    if k < n <= 2 * k:  # the normalisation needs k < n / 2; k >= n is refused with the other scores' message
        raise ParameterError(f"trustworthiness with k={k} needs more than {2 * k} items; there are {n}: lower k")

