"""kNN graphs: the exact search equals brute force, HNSW finds nearly all neighbours, both are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist

from embedscope.errors import ParameterError, VectorError
from embedscope.maps.neighbors import KnnGraph, NearestNeighbors, knn_graph, rerank
from embedscope.maps.pca import PCA

TOLERANCE = 1e-5


def clustered(n: int, dim: int = 16, centres: int = 10, seed: int = 0) -> np.ndarray:
    """Float32 points in Gaussian clusters, the shape of real embeddings."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(centres, dim))[rng.integers(0, centres, n)] * 4 + rng.normal(size=(n, dim))).astype(
        np.float32
    )


def brute_distances(queries: np.ndarray, points: np.ndarray, metric: str) -> np.ndarray:
    """All distances in float64 from the float32 values that the index holds."""
    queries, points = queries.astype(np.float32).astype(np.float64), points.astype(np.float32).astype(np.float64)
    if metric == "cosine":
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        points = points / np.linalg.norm(points, axis=1, keepdims=True)
        return np.maximum(1.0 - queries @ points.T, 0.0)
    return cdist(queries, points)


def brute_graph(vectors: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's distances to all others, sorted, and the argsort (self excluded)."""
    distances = brute_distances(vectors, vectors, metric)
    np.fill_diagonal(distances, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")
    return order, np.take_along_axis(distances, order, axis=1)


def assert_matches_brute_force(graph: KnnGraph, order: np.ndarray, distances: np.ndarray) -> None:
    """Same distances; same neighbour sets wherever the k-th and (k+1)-th distances differ (no tie at the cut)."""
    k = graph.k
    scale = np.maximum(1.0, distances[:, :k])
    np.testing.assert_allclose(graph.distances, distances[:, :k], rtol=0, atol=TOLERANCE * scale.max())
    if distances.shape[1] > k:
        distinct = distances[:, k] - distances[:, k - 1] > 10 * TOLERANCE * scale[:, -1]
    else:
        distinct = np.ones(len(order), dtype=bool)
    for row in np.flatnonzero(distinct):
        assert set(graph.indices[row]) == set(order[row, :k]), f"row {row}"


finite_matrices = st.integers(2, 40).flatmap(
    lambda n: arrays(
        np.float32,
        st.tuples(st.just(n), st.integers(1, 6)),
        elements=st.floats(-1000, 1000, allow_nan=False, allow_infinity=False, width=32),
    )
)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@settings(max_examples=30, deadline=None)
@given(vectors=finite_matrices, k=st.integers(1, 8))
def test_exact_graph_equals_brute_force_on_any_finite_data(vectors: np.ndarray, k: int, metric: str) -> None:
    assume(k < len(vectors))
    if metric == "cosine":
        assume(np.all(np.linalg.norm(vectors, axis=1) > 1e-3))
    graph = knn_graph(vectors, k, metric, "exact")
    assert_matches_brute_force(graph, *brute_graph(vectors, k, metric))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_exact_graph_equals_brute_force_on_clusters(metric: str) -> None:
    vectors = clustered(800, dim=24)
    graph = knn_graph(vectors, 15, metric, "exact")
    order, distances = brute_graph(vectors, 15, metric)
    assert graph.exact and graph.metric == metric
    assert_matches_brute_force(graph, order, distances)
    assert np.array_equal(graph.indices, order[:, :15])


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_approximate_search_finds_nearly_all_neighbours(method: str, metric: str) -> None:
    vectors = clustered(4000, dim=32)
    graph = knn_graph(vectors, 10, metric, method)
    order, distances = brute_graph(vectors, 10, metric)
    recall = np.mean([len(set(found) & set(true)) for found, true in zip(graph.indices, order[:, :10])]) / 10
    assert not graph.exact and recall > 0.95
    found = np.take_along_axis(brute_distances(vectors, vectors, metric), graph.indices, axis=1)
    np.testing.assert_allclose(graph.distances, found, atol=TOLERANCE * max(1.0, found.max()))


@pytest.mark.parametrize("method", ["exact", "ivf", "hnsw"])
def test_neighbours_exclude_self_and_are_sorted_by_distance(method: str) -> None:
    vectors = np.vstack([clustered(1500), clustered(300, seed=1), clustered(1500)[:200]])  # the last 200 repeat
    graph = knn_graph(vectors, 12, "euclidean", method)
    assert graph.indices.shape == graph.distances.shape == (len(vectors), 12)
    assert not np.any(graph.indices == np.arange(len(vectors))[:, None])
    assert np.all((graph.indices >= 0) & (graph.indices < len(vectors)))
    assert np.all(np.diff(graph.distances, axis=1) >= 0)
    assert np.all(graph.distances[1800:, 0] < TOLERANCE)


def test_duplicates_are_each_others_nearest_neighbours() -> None:
    base = clustered(300)
    vectors = np.vstack([base, base])
    graph = knn_graph(vectors, 5, "euclidean", "exact")
    assert np.array_equal(graph.indices[:, 0], np.r_[np.arange(300) + 300, np.arange(300)])
    assert np.all(graph.distances[:, 0] < TOLERANCE)


def test_auto_picks_exact_up_to_the_limit_and_inverted_lists_above() -> None:
    vectors = clustered(201)
    assert NearestNeighbors(5, exact_max_n=200).fit(vectors[:200]).exact_
    above = NearestNeighbors(5, exact_max_n=200).fit(vectors)
    assert not above.exact_ and hasattr(above.index_, "nprobe")
    assert knn_graph(vectors[:50], 5).exact


def test_inverted_lists_too_small_for_k_fall_back_to_every_list() -> None:
    vectors = clustered(4096, dim=8)  # 64 lists of 64 on average, 32 probed: about 2,048 candidates per row
    search = NearestNeighbors(2100, method="ivf").fit(vectors)
    assert search.index_.nlist == 64 and search.index_.nprobe == 32
    assert (search.index_.search(vectors, 2101)[1] < 0).any()  # faiss alone leaves holes
    graph = search.graph()
    assert np.all((graph.indices >= 0) & (graph.indices != np.arange(4096)[:, None]))
    found = np.take_along_axis(brute_distances(vectors, vectors, "euclidean"), graph.indices, axis=1)
    np.testing.assert_allclose(graph.distances, found, atol=1e-3)


@pytest.mark.parametrize("method", ["exact", "ivf", "hnsw"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_query_finds_the_neighbours_of_new_points(method: str, metric: str) -> None:
    vectors, new = clustered(3000), clustered(100, seed=5)
    search = NearestNeighbors(8, metric, method).fit(vectors)
    distances = brute_distances(new, vectors, metric)
    order = np.argsort(distances, axis=1)
    for k in (None, 3):
        found = search.query(new, k)
        expected_k = k or 8
        assert found.indices.shape == (100, expected_k)
        recall = np.mean([len(set(a) & set(b)) for a, b in zip(found.indices, order[:, :expected_k])]) / expected_k
        assert recall == 1.0 if method == "exact" else recall > 0.95
        np.testing.assert_allclose(
            found.distances, np.take_along_axis(distances, found.indices, axis=1), atol=TOLERANCE * distances.max()
        )


@pytest.mark.parametrize("method", ["exact", "ivf", "hnsw"])
def test_two_builds_give_identical_graphs(method: str) -> None:
    vectors = clustered(3000)
    first, second = knn_graph(vectors, 10, "cosine", method), knn_graph(vectors, 10, "cosine", method)
    assert np.array_equal(first.indices, second.indices)
    assert np.array_equal(first.distances, second.distances)


def test_zero_vectors_with_cosine_are_refused_by_row() -> None:
    vectors = clustered(50)
    vectors[[3, 17]] = 0
    with pytest.raises(VectorError, match=r"2 zero vector\(s\).*rows 3, 17"):
        knn_graph(vectors, 5, "cosine")
    assert knn_graph(vectors, 5, "euclidean").k == 5


def test_zero_vectors_in_a_query_are_refused() -> None:
    search = NearestNeighbors(5, "cosine").fit(clustered(50))
    with pytest.raises(VectorError, match="rows 1"):
        search.query(np.vstack([clustered(2, seed=3)[:1], np.zeros((1, 16), np.float32)]))


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"k": 20}, "20 neighbours need more than 20 items; the data has 20"),
        ({"k": 25}, "25 neighbours need more than 25 items"),
        ({"k": 0}, "at least 1"),
        ({"metric": "manhattan"}, "metric must be one of euclidean, cosine; got 'manhattan'"),
        ({"method": "annoy"}, "method must be one of auto, exact, ivf, hnsw; got 'annoy'"),
    ],
)
def test_bad_parameters_raise(arguments: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        knn_graph(clustered(20), **arguments)


def test_first_cuts_a_graph_to_fewer_neighbours() -> None:
    graph = knn_graph(clustered(200), 10, "euclidean", "exact")
    cut = graph.first(4)
    assert cut.k == 4 and cut.metric == graph.metric and cut.exact
    assert np.array_equal(cut.indices, graph.indices[:, :4]) and np.array_equal(cut.distances, graph.distances[:, :4])
    assert graph.first(10).k == 10
    with pytest.raises(ParameterError, match="a graph of 10 neighbours cannot give 11"):
        graph.first(11)


def test_query_for_more_neighbours_than_items_is_refused() -> None:
    search = NearestNeighbors(5, method="exact").fit(clustered(30))
    with pytest.raises(ParameterError):
        search.query(clustered(3, seed=1), k=40)
    with pytest.raises(ParameterError):
        search.query(clustered(3, seed=1), k=0)
    with pytest.raises(ParameterError):
        knn_graph(clustered(30), 5).first(0)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_rerank_of_every_other_item_is_the_exact_graph(metric: str) -> None:
    vectors = clustered(300, dim=40)
    everyone = knn_graph(vectors, 299, metric, "exact")
    shuffled = np.random.default_rng(0).permuted(everyone.indices, axis=1)  # order and distances must be remade
    reranked = rerank(KnnGraph(shuffled, np.zeros_like(everyone.distances), metric, True), vectors, 12)
    order, distances = brute_graph(vectors, 12, metric)
    assert reranked.k == 12 and not reranked.exact and reranked.metric == metric
    assert_matches_brute_force(reranked, order, distances)


def test_rerank_of_pca_candidates_recovers_full_width_neighbours() -> None:
    vectors = clustered(2000, dim=64, centres=4)
    reduced = PCA(8).fit_transform(vectors)
    order, _ = brute_graph(vectors, 10, "euclidean")

    def recall(graph: KnnGraph) -> float:
        return np.mean([len(set(found) & set(true)) for found, true in zip(graph.indices, order[:, :10])]) / 10

    candidates = knn_graph(reduced, 40, "euclidean", "exact")
    assert recall(rerank(candidates, vectors, 10)) > recall(candidates.first(10)) + 0.1
    with pytest.raises(ParameterError, match="a graph of 40 candidates cannot give 41"):
        rerank(candidates, vectors, 41)
