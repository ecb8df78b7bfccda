"""How good a clustering is: silhouette on a seeded sample, and against true labels the ARI and NMI.

The noise label -1 and missing labels take no part, as they belong to no cluster.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from embedscope.errors import ParameterError
from embedscope.maps import prepare
from embedscope.metrics.score_inputs import as_matrix, check_metric, check_sample, is_noise, label_codes, sample_rows


def silhouette(
    X: np.ndarray, labels: ArrayLike, sample: int | None = 5000, seed: int = 0, metric: str = "euclidean"
) -> float:
    """scikit-learn's silhouette score of a clustering of X, on a seeded sample of the clustered items.

    The noise label -1 and missing labels are left out, as they belong to no cluster.
    """
    from sklearn.metrics import silhouette_score

    check_sample(sample)
    check_metric(metric)
    codes, present, classes = label_codes(labels, len(X), "labels")
    clustered = np.flatnonzero(present & ~np.isin(codes, np.flatnonzero(is_noise(classes))))
    chosen = clustered[sample_rows(len(clustered), sample, seed)]
    found = len(np.unique(codes[chosen]))
    if found < 2:
        raise ParameterError(f"silhouette needs at least 2 clusters; found {found}")
    if found >= len(chosen):
        raise ParameterError(f"silhouette needs fewer clusters than items; found {found} in {len(chosen)} items")
    points = as_matrix(X, "X")[chosen]
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
    _, _, classes = label_codes(clusters, len(X), "clusters")
    scores = {"silhouette": silhouette(X, clusters, sample, seed, metric)}
    scores["n_clusters"] = int(np.sum(~is_noise(classes)))
    if truth is not None:
        scores["ari"] = adjusted_rand(clusters, truth)
        scores["nmi"] = normalized_mutual_info(clusters, truth)
    return scores


def _paired(labels: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Codes of two labellings of the same items, keeping the items labelled in both."""
    truth_codes, truth_present, _ = label_codes(truth, len(truth), "true labels")
    codes, present, _ = label_codes(labels, len(truth_codes), "labels")
    both = present & truth_present
    return truth_codes[both], codes[both]

