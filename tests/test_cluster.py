"""Clusterings: quality on separated blobs, eigengap k, spherical k-means, seeds, label order, errors, scale."""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from embedscope.clusters import METHODS, by_size, make_clusterer
from embedscope.errors import ParameterError
from embedscope.maps.neighbors import knn_graph
from embedscope.progress import Reporter

OPTIONS = {"kmeans": {"k": 6}, "spectral": {"k": 6}, "hdbscan": {}, "leiden": {}, "overcluster": {"k": 6}}


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    data, truth = make_blobs(3000, 20, centers=6, cluster_std=1.0, random_state=0)
    return data.astype(np.float32), truth


class Recorder(Reporter):
    """Keeps the phases and notes a step reports."""

    def __init__(self) -> None:
        self.phases: list[str] = []
        self.notes: list[str] = []

    @contextmanager
    def phase(self, description, total):
        self.phases.append(description)
        yield lambda _: None

    def note(self, message: str) -> None:
        self.notes.append(message)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_finds_separated_blobs(blobs, method):
    data, truth = blobs
    clusterer = make_clusterer(method, **OPTIONS[method])
    labels = clusterer.fit_predict(data)
    assert labels.dtype == np.int32 and labels.shape == (len(data),)
    assert adjusted_rand_score(truth, labels) > 0.9
    assert clusterer.n_clusters_ == 6
    json.dumps(clusterer.params())


@pytest.mark.parametrize("true_k", [3, 5, 8])
def test_eigengap_finds_the_number_of_blobs_below_the_upper_bound(true_k):
    data, truth = make_blobs(400 * true_k, 16, centers=true_k, cluster_std=1.0, random_state=true_k)
    clusterer = make_clusterer("spectral", k=12, estimate_k=True)
    labels = clusterer.fit_predict(data)
    assert clusterer.estimated_k_ == true_k == clusterer.n_clusters_
    assert len(clusterer.eigenvalues_) == 13 and np.all(np.diff(clusterer.eigenvalues_) >= -1e-9)
    assert adjusted_rand_score(truth, labels) > 0.95
    assert clusterer.params()["estimated_k"] == true_k


def test_eigengap_on_touching_blobs_with_a_connected_graph():
    data, truth = make_blobs(3000, 50, centers=4, cluster_std=1.0, center_box=(-1, 1), random_state=1)
    clusterer = make_clusterer("spectral", k=10, estimate_k=True)
    labels = clusterer.fit_predict(data)
    assert clusterer.estimated_k_ == 4
    assert clusterer.eigenvalues_[1] > 1e-3  # one connected graph: a single zero eigenvalue
    assert adjusted_rand_score(truth, labels) > 0.9


def rays(n: int = 2000, directions: int = 4, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points along rays from the origin: a few directions, lengths from 0.2 to 10, a little angular noise."""
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(directions, dim))
    truth = rng.integers(0, directions, n)
    points = axes[truth] / np.linalg.norm(axes[truth], axis=1, keepdims=True) + rng.normal(0, 0.05, (n, dim))
    return (points * rng.uniform(0.2, 10, (n, 1))).astype(np.float32), truth


def test_spherical_kmeans_groups_directions_where_plain_kmeans_groups_lengths():
    data, truth = rays()
    spherical = make_clusterer("kmeans", k=4, spherical=True).fit_predict(data)
    plain = make_clusterer("kmeans", k=4).fit_predict(data)
    assert adjusted_rand_score(truth, spherical) > 0.95
    assert adjusted_rand_score(truth, plain) < adjusted_rand_score(truth, spherical) - 0.2


def test_spherical_kmeans_keeps_its_centres_unit_length():
    clusterer = make_clusterer("kmeans", k=4, spherical=True)
    clusterer.fit_predict(rays()[0])
    assert np.allclose(np.linalg.norm(clusterer.centres_, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("method", ["kmeans", "spectral", "leiden", "overcluster"])
def test_same_seed_same_labels_ordered_by_size(method):
    data = np.random.default_rng(1).normal(size=(1200, 8)).astype(np.float32)  # no structure: seeds matter
    options = {**OPTIONS[method], "seed": 7}
    first = make_clusterer(method, **options).fit_predict(data)
    again = make_clusterer(method, **options).fit_predict(data)
    assert np.array_equal(first, again)
    sizes = np.bincount(first)
    assert np.all(np.diff(sizes) <= 0) and sizes.min() > 0


def test_a_given_graph_with_more_neighbours_is_cut_to_the_ones_needed(blobs):
    data, _ = blobs
    wide = knn_graph(data, 25)
    for method in ("spectral", "leiden"):
        computed = make_clusterer(method, **OPTIONS[method]).fit_predict(data)
        given_graph = make_clusterer(method, **OPTIONS[method]).fit_predict(data, knn=wide)
        assert np.array_equal(computed, given_graph)


def test_overcluster_maps_each_item_to_its_centres_group(blobs):
    data, truth = blobs
    clusterer = make_clusterer("overcluster", k=6)
    labels = clusterer.fit_predict(data)
    assert clusterer.centres_.shape == (256, data.shape[1]) and clusterer.params()["centres"] == 256
    assert np.array_equal(labels, clusterer.centre_groups_[clusterer.nearest_centre_])
    distances = ((data[:300, None, :] - clusterer.centres_[None]) ** 2).sum(axis=2)
    assert np.array_equal(clusterer.nearest_centre_[:300], distances.argmin(axis=1))


def test_overcluster_with_fewer_items_than_centres_uses_each_item_and_says_so(blobs):
    data, truth = blobs[0][:120], blobs[1][:120]
    recorder = Recorder()
    clusterer = make_clusterer("overcluster", k=6)
    labels = clusterer.fit_predict(data, reporter=recorder)
    assert len(clusterer.centres_) == 120 and "using 120" in recorder.notes[0]
    assert adjusted_rand_score(truth, labels) > 0.9


def test_hdbscan_marks_scattered_points_as_noise(blobs):
    data, _ = blobs
    scattered = np.random.default_rng(0).uniform(-40, 40, size=(60, data.shape[1])).astype(np.float32)
    clusterer = make_clusterer("hdbscan", min_cluster_size=30)
    labels = clusterer.fit_predict(np.vstack([data, scattered]))
    assert clusterer.n_clusters_ == 6 and labels.max() == 5
    assert np.mean(labels[-60:] == -1) > 0.9 and clusterer.params()["noise"] == int((labels == -1).sum())


def test_cosine_metric_clusters_directions():
    data, truth = rays()
    for method in ("kmeans", "spectral", "leiden"):
        labels = make_clusterer(method, **({"k": 4} if method != "leiden" else {}), metric="cosine").fit_predict(data)
        assert adjusted_rand_score(truth, labels) > 0.9, method


def test_long_steps_report_phases(blobs):
    recorder = Recorder()
    make_clusterer("kmeans", k=6).fit_predict(blobs[0], reporter=recorder)
    make_clusterer("spectral", k=6).fit_predict(blobs[0], reporter=recorder)
    assert {"k-means", "k-means: assign", "spectral: eigenvectors"} <= set(recorder.phases)


@pytest.mark.parametrize(
    ("method", "options", "items", "expected"),
    [
        ("kmedoids", {}, 50, "unknown clustering method 'kmedoids'"),
        ("kmeans", {}, 50, "kmeans needs the number of clusters"),
        ("spectral", {}, 50, "spectral needs the number of clusters"),
        ("overcluster", {}, 50, "overcluster needs the number of clusters"),
        ("kmeans", {"k": 1}, 50, "--k must be at least 2"),
        ("kmeans", {"k": 50}, 12, "k=50 needs more than 50 items; the data has 12"),
        ("spectral", {"k": 12}, 12, "k=12 needs more than 12 items; the data has 12"),
        ("leiden", {}, 1, "cannot cluster 1 item"),
        ("hdbscan", {}, 0, "cannot cluster 0 items"),
        ("spectral", {"k": 1, "estimate_k": True}, 50, "needs an upper bound --k of at least 2"),
        ("leiden", {"resolution": 0.0}, 50, "--resolution must be positive"),
        ("leiden", {"resolution": -1.0}, 50, "--resolution must be positive"),
        ("hdbscan", {"min_cluster_size": 1}, 50, "--min-cluster-size must be at least 2"),
        ("hdbscan", {"min_cluster_size": 80}, 50, "exceeds the 50 items"),
        ("hdbscan", {"k": 5}, 50, "--k does not apply to hdbscan"),
        ("kmeans", {"k": 5, "estimate_k": True}, 50, "--estimate-k does not apply to kmeans"),
        ("leiden", {"spherical": True}, 50, "--spherical does not apply to leiden"),
        ("kmeans", {"k": 5, "min_cluster_size": 5}, 50, "--min-cluster-size does not apply to kmeans"),
        ("overcluster", {"k": 8, "centres": 8}, 50, "raise centres above k"),
        ("leiden", {"n_neighbors": 0}, 50, "--neighbors must be at least 1"),
        ("leiden", {"n_neighbors": 60}, 50, "60 neighbours need more than 60 items"),
        ("kmeans", {"k": 3, "metric": "manhattan"}, 50, "metric must be euclidean or cosine"),
    ],
)
def test_bad_parameters_are_refused_in_one_line(method, options, items, expected):
    data = np.random.default_rng(0).normal(size=(items, 4)).astype(np.float32)
    with pytest.raises(ParameterError) as error:
        make_clusterer(method, **options).fit_predict(data)
    message = str(error.value)
    assert expected in message and "\n" not in message


def test_a_graph_of_another_metric_is_refused(blobs):
    data, _ = blobs
    with pytest.raises(ParameterError, match="the neighbour graph is cosine"):
        make_clusterer("leiden").fit_predict(data, knn=knn_graph(data, 10, "cosine"))


@given(st.lists(st.integers(-1, 12), max_size=60), st.permutations(range(13)))
def test_by_size_is_a_canonical_numbering(labels, permutation):
    labels = np.array(labels, dtype=np.int64)
    renumbered = by_size(labels)
    assert renumbered.dtype == np.int32
    assert np.array_equal(renumbered == -1, labels == -1)
    clustered = labels >= 0
    before, after = labels[clustered], renumbered[clustered]
    assert np.array_equal(before[:, None] == before, after[:, None] == after)  # two items share a label iff they did
    sizes = np.bincount(renumbered[clustered])
    assert np.all(sizes > 0) and np.all(np.diff(sizes) <= 0)
    relabelled = np.where(clustered, np.array(permutation)[np.maximum(labels, 0)], -1)
    assert np.array_equal(by_size(relabelled), renumbered)  # the names of clusters do not matter
    assert np.array_equal(by_size(renumbered), renumbered)


def test_kmeans_on_a_million_items():
    data = np.random.default_rng(0).normal(size=(1_000_000, 16)).astype(np.float32)
    labels = make_clusterer("kmeans", k=10).fit_predict(data)
    assert labels.shape == (1_000_000,) and len(np.unique(labels)) == 10
