"""Quality scores: trustworthiness and clustering scores equal scikit-learn's, sampled scores estimate the full ones."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness as sklearn_trustworthiness
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from embedscope.errors import ParameterError
from embedscope.metrics import (
    adjusted_rand,
    cluster_quality,
    knn_accuracy,
    knn_recall,
    map_quality,
    normalized_mutual_info,
    silhouette,
    trustworthiness,
)


def blobs(n: int, dim: int, centres: int, spread: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs around centres 8 apart on average, and each point's blob."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, centres, n)
    return rng.normal(size=(centres, dim))[labels] * 8 + spread * rng.normal(size=(n, dim)), labels


def noisy_map(X: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """A two-dimensional PCA map of X with noise added, so that it is neither perfect nor random."""
    positions = PCA(2, random_state=0).fit_transform(X)
    return positions + noise * positions.std() * np.random.default_rng(seed).normal(size=positions.shape)


def data_sets() -> list:
    rng = np.random.default_rng(1)
    gaussian = rng.normal(size=(300, 10))
    clustered, _ = blobs(400, 20, 5)
    curve = np.column_stack([np.cos(t := rng.uniform(0, 6, 350)), np.sin(t), t, rng.normal(size=(350, 3))])
    return [
        pytest.param(gaussian, noisy_map(gaussian, 0.1), 5, "euclidean", id="gaussian"),
        pytest.param(clustered, noisy_map(clustered, 0.3), 10, "euclidean", id="blobs"),
        pytest.param(curve, noisy_map(curve, 0.05), 7, "euclidean", id="curve"),
        pytest.param(clustered, noisy_map(clustered, 0.3), 10, "cosine", id="blobs-cosine"),
        pytest.param(gaussian.astype(np.float32), gaussian[:, :3] + 0.3 * rng.normal(size=(300, 3)), 8, "cosine",
                     id="float32-3d-cosine"),
    ]


@pytest.mark.parametrize("X, Y, k, metric", data_sets())
def test_trustworthiness_equals_sklearn(X: np.ndarray, Y: np.ndarray, k: int, metric: str) -> None:
    expected = sklearn_trustworthiness(X, Y, n_neighbors=k, metric=metric)
    assert 0.5 < expected < 1.0
    assert trustworthiness(X, Y, k, sample=None, metric=metric) == pytest.approx(expected, abs=1e-6)


def test_sampled_trustworthiness_and_recall_are_close_to_the_full_scores() -> None:
    X, _ = blobs(5000, 16, 8)
    Y = noisy_map(X, 0.2)
    full = trustworthiness(X, Y, sample=None)
    assert 0.6 < full < 0.98
    assert trustworthiness(X, Y, sample=1000) == pytest.approx(full, abs=0.01)
    assert knn_recall(X, Y, sample=1000) == pytest.approx(knn_recall(X, Y, sample=None), abs=0.02)


def test_an_identity_map_scores_one_and_a_random_map_scores_low() -> None:
    X = np.random.default_rng(0).uniform(size=(2000, 2))
    assert trustworthiness(X, X) == pytest.approx(1.0)
    assert knn_recall(X, X) == 1.0
    random_map = np.random.default_rng(1).normal(size=(2000, 2))
    assert trustworthiness(X, random_map) < 0.6
    assert knn_recall(X, random_map) < 0.02


def test_knn_recall_against_brute_force() -> None:
    X, _ = blobs(600, 12, 4, spread=3.0)
    Y = noisy_map(X, 0.1)
    high = _brute_neighbours(X, 10)
    low = _brute_neighbours(Y, 10)
    expected = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(high, low)])
    assert knn_recall(X, Y, k=10, sample=None) == pytest.approx(expected)


def test_knn_accuracy_on_separated_blobs_and_random_labels() -> None:
    X, labels = blobs(3000, 10, 4, spread=0.5)
    assert knn_accuracy(X, labels) == 1.0
    assert knn_accuracy(PCA(2, random_state=0).fit_transform(X), labels) == 1.0
    shuffled = np.random.default_rng(2).integers(0, 4, len(X))
    assert knn_accuracy(X, shuffled, sample=None) == pytest.approx(1 / 4, abs=0.03)


@pytest.mark.parametrize("dims", [2, 8], ids=["map", "vectors"])
def test_knn_accuracy_breaks_ties_by_the_nearest_neighbour(dims: int) -> None:
    # On the line 0 1 3 7 12 with k=2, the nearest neighbour's label wins every tie: all five guesses are wrong,
    # where the farther neighbour's label would make three right.
    Z = np.zeros((5, dims))
    Z[:, 0] = [0, 1, 3, 7, 12]
    assert knn_accuracy(Z, ["a", "b", "a", "b", "a"], k=2) == 0.0


def test_knn_accuracy_leaves_out_missing_labels() -> None:
    X, labels = blobs(400, 6, 3, spread=0.5)
    named = np.array([f"class {label}" for label in labels], dtype=object)
    named[::7] = None
    assert knn_accuracy(X, named, sample=None) == 1.0
    assert knn_accuracy(X, np.where(np.arange(400) % 5 == 0, np.nan, labels.astype(float))) == 1.0


def test_adjusted_rand_and_nmi_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 500)
    found = np.where(rng.uniform(size=500) < 0.7, truth, rng.integers(0, 6, 500))
    assert adjusted_rand(found, truth) == pytest.approx(adjusted_rand_score(truth, found), abs=1e-12)
    assert normalized_mutual_info(found, truth) == pytest.approx(normalized_mutual_info_score(truth, found), abs=1e-12)
    names = np.array([f"type {label}" for label in truth], dtype=object)
    names[:50] = None
    assert adjusted_rand(found, names) == pytest.approx(adjusted_rand_score(truth[50:], found[50:]), abs=1e-12)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_silhouette_equals_sklearn_and_leaves_out_noise(metric: str) -> None:
    X, labels = blobs(600, 8, 4, spread=2.0)
    assert silhouette(X, labels, sample=None, metric=metric) == pytest.approx(
        silhouette_score(X, labels, metric=metric), abs=1e-6
    )
    noisy = np.where(np.arange(600) % 4 == 0, -1, labels)
    kept = noisy != -1
    assert silhouette(X, noisy, sample=None, metric=metric) == pytest.approx(
        silhouette_score(X[kept], labels[kept], metric=metric), abs=1e-6
    )


def test_map_and_cluster_quality_report_every_score() -> None:
    X, labels = blobs(1000, 10, 4, spread=0.5)
    scores = map_quality(X, PCA(2, random_state=0).fit_transform(X), labels=labels.astype(str))
    assert set(scores) == {"trustworthiness", "knn_recall", "knn_accuracy_map", "knn_accuracy_vectors"}
    assert scores["knn_accuracy_map"] == scores["knn_accuracy_vectors"] == 1.0
    assert set(map_quality(X, X[:, :2])) == {"trustworthiness", "knn_recall"}
    clusters = np.where(np.arange(1000) % 10 == 0, -1, labels)
    scores = cluster_quality(X, clusters, truth=labels)
    assert scores["n_clusters"] == 4 and scores["silhouette"] > 0.8
    assert 0.8 < scores["ari"] < 1.0 and 0.8 < scores["nmi"] < 1.0
    assert set(cluster_quality(X, labels)) == {"silhouette", "n_clusters"}


def test_scores_are_deterministic_for_a_seed() -> None:
    X, labels = blobs(4000, 10, 6, spread=3.0)
    Y = noisy_map(X, 0.3)
    first = map_quality(X, Y, labels=labels, sample=500, seed=7)
    assert map_quality(X, Y, labels=labels, sample=500, seed=7) == first
    assert map_quality(X, Y, labels=labels, sample=500, seed=8) != first
    assert silhouette(X, labels, sample=300, seed=7) == silhouette(X, labels, sample=300, seed=7)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda X, Y, labels: trustworthiness(X[:10], Y[:10], k=10), "k=10 needs more than 10 items"),
        (lambda X, Y, labels: knn_recall(X, Y, k=0), "k must be at least 1"),
        (lambda X, Y, labels: trustworthiness(X[:15], Y[:15], k=10), "needs more than 20 items"),
        (lambda X, Y, labels: knn_accuracy(X[:5], labels[:5], k=5), "k=5 needs more than 5 items"),
        (lambda X, Y, labels: trustworthiness(X, Y[:-1]), "the map has 99 points but X has 100 rows"),
        (lambda X, Y, labels: knn_accuracy(X, labels[:-1]), "labels have 99 entries for 100 items"),
        (lambda X, Y, labels: silhouette(X, np.zeros(100)), "silhouette needs at least 2 clusters; found 1"),
        (lambda X, Y, labels: silhouette(X, np.where(labels == 0, -1, 5)), "at least 2 clusters; found 1"),
        (lambda X, Y, labels: adjusted_rand(labels, labels[:-1]), "labels have 100 entries for 99 items"),
        (lambda X, Y, labels: knn_recall(X, Y, sample=0), "sample must be at least 1"),
        (lambda X, Y, labels: silhouette(X, labels, sample=-3), "sample must be at least 1"),
        (lambda X, Y, labels: map_quality(X, Y, metric="manhattan"), "metric must be one of euclidean, cosine"),
        (lambda X, Y, labels: trustworthiness(X, Y[:, 0]), "the map Y must be a 2-D array"),
    ],
)
def test_bad_parameters_raise_one_line_errors(call, message: str) -> None:
    X, labels = blobs(100, 5, 3)
    with pytest.raises(ParameterError, match=message) as raised:
        call(X, X[:, :2], labels)
    assert "\n" not in str(raised.value)


def _brute_neighbours(points: np.ndarray, k: int) -> np.ndarray:
    distances = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    return np.argsort(distances, axis=1)[:, :k]
