"""Projections: each method separates blobs in 2D and 3D, seeds reproduce bit for bit, the fast engines match
the reference libraries on digits, sample-then-place works chunk by chunk, and bad parameters say how to fix them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.manifold import trustworthiness
from sklearn.metrics import adjusted_rand_score

from embedscope.errors import ParameterError
from embedscope.maps import METHODS, make_projection, project, reduce_dims
from embedscope.maps.neighbors import knn_graph
from embedscope.maps.pca import PCA
from embedscope.maps.placement import sample_then_place
from embedscope.maps.tsne import exact_repulsion, interpolated_repulsion, joint_probabilities, kl_gradient
from embedscope.maps.umap_graph import memberships
from embedscope.progress import Reporter


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    vectors, labels = make_blobs(2000, 30, centers=5, random_state=0)
    return vectors.astype(np.float32), labels


@pytest.fixture(scope="module")
def small_blobs() -> np.ndarray:
    return make_blobs(400, 10, centers=4, random_state=1)[0].astype(np.float32)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data.astype(np.float32)


def clusters_agree(mapped: np.ndarray, labels: np.ndarray) -> float:
    found = KMeans(len(set(labels)), n_init=10, random_state=0).fit_predict(mapped)
    return adjusted_rand_score(labels, found)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_separates_blobs(blobs, method):
    vectors, labels = blobs
    mapped = project(vectors, method)
    assert mapped.shape == (2000, 2) and mapped.dtype == np.float32
    assert np.isfinite(mapped).all()
    assert clusters_agree(mapped, labels) > 0.9


@pytest.mark.parametrize("method", METHODS)
def test_3d_maps_have_three_finite_columns(small_blobs, method):
    mapped = project(small_blobs, method, dims=3, n_neighbors=10, perplexity=10)
    assert mapped.shape == (400, 3) and mapped.dtype == np.float32
    assert np.isfinite(mapped).all()


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_map_bit_for_bit(small_blobs, method):
    first = project(small_blobs, method, seed=3, perplexity=10)
    again = project(small_blobs, method, seed=3, perplexity=10)
    assert first.tobytes() == again.tobytes()


@pytest.mark.parametrize("method", ["umap", "tsne", "phate"])
def test_another_seed_another_map(small_blobs, method):
    assert not np.array_equal(project(small_blobs, method, seed=1, perplexity=10),
                              project(small_blobs, method, seed=2, perplexity=10))


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_fast_engine_as_trustworthy_as_reference_on_digits(digits, method):
    fast = project(digits, method, engine="fast")
    reference = project(digits, method, engine="reference")
    assert trustworthiness(digits, fast, n_neighbors=10) >= trustworthiness(digits, reference, n_neighbors=10) - 0.01


def test_given_graph_with_more_neighbours_is_cut_to_what_the_method_needs(small_blobs):
    wide = knn_graph(small_blobs, 40)
    assert np.array_equal(project(small_blobs, "umap", knn=wide), project(small_blobs, "umap"))
    assert np.array_equal(project(small_blobs, "tsne", perplexity=10, knn=wide),
                          project(small_blobs, "tsne", perplexity=10))


class SpyProjector:
    """Wraps a projector and records the largest number of new vectors it was asked to place at once."""

    def __init__(self, inner) -> None:
        self.inner, self.graph_k, self.largest, self.calls = inner, inner.graph_k, 0, 0

    def fit_transform(self, vectors, knn=None, reporter=None):
        self.fitted = len(vectors)
        return self.inner.fit_transform(vectors, knn)

    def place(self, vectors, knn, reporter=None):
        self.largest, self.calls = max(self.largest, len(vectors)), self.calls + 1
        return self.inner.place(vectors, knn)


@pytest.mark.parametrize("method", METHODS)
def test_sample_then_place_puts_held_out_points_with_their_class(method):
    vectors, labels = make_blobs(3000, 20, centers=5, random_state=2)
    spy = SpyProjector(make_projection(method))
    mapped = sample_then_place(vectors.astype(np.float32), spy, 1000, seed=0, chunk_rows=800)
    assert spy.fitted == 1000 and spy.calls == 3 and spy.largest == 800
    assert mapped.shape == (3000, 2) and np.isfinite(mapped).all()
    assert clusters_agree(mapped, labels) > 0.9


def test_project_samples_above_max_fit(small_blobs):
    mapped = project(small_blobs, "umap", max_fit=300)
    assert mapped.shape == (400, 2) and np.isfinite(mapped).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: make_projection("isomap"), "projection method must be one of pca, umap, tsne, phate"),
        (lambda x: make_projection("umap", engine="gpu"), "engine must be one of fast, reference"),
        (lambda x: make_projection("umap", dims=4), "2 or 3 dimensions"),
        (lambda x: make_projection("umap", metric="manhattan"), "metric must be one of"),
        (lambda x: make_projection("umap", min_dist=-0.1), "min_dist must be 0 or more"),
        (lambda x: make_projection("tsne", perplexity=0), "perplexity must be positive"),
        (lambda x: project(x, "tsne", perplexity=30), "use --perplexity 16.3 or less"),
        (lambda x: project(x, "umap", n_neighbors=50), "use --neighbors 49 or less"),
        (lambda x: project(x, "phate", n_neighbors=60), "use --neighbors 49 or less"),
    ],
)
def test_bad_parameters_say_what_to_change(call, message):
    vectors = np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32)
    with pytest.raises(ParameterError, match=message) as raised:
        call(vectors)
    assert "\n" not in str(raised.value)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(8, 80), dim=st.integers(2, 12), seed=st.integers(0, 2**16), block=st.integers(1, 50))
def test_pca_matches_scikit_learn_up_to_sign(n, dim, seed, block):
    from sklearn.decomposition import PCA as ReferencePCA

    random = np.random.default_rng(seed)
    vectors = (random.normal(size=(n, dim)) * np.geomspace(10, 1, dim) + random.normal(size=dim) * 5).astype(np.float32)
    k = min(dim, n - 1, 3)
    ours = PCA(k, block_rows=block).fit(vectors)
    reference = ReferencePCA(k, svd_solver="full").fit(vectors.astype(np.float64))
    np.testing.assert_allclose(ours.explained_variance_ratio_, reference.explained_variance_ratio_, rtol=1e-6)
    np.testing.assert_allclose(np.abs(ours.components_), np.abs(reference.components_), atol=1e-6)
    projected, expected = ours.transform(vectors), reference.transform(vectors)
    signs = np.sign((projected * expected).sum(axis=0))
    np.testing.assert_allclose(projected * signs, expected, atol=1e-3 * np.abs(expected).max())


def test_pca_signs_are_fixed_by_the_largest_entry():
    components = PCA(3).fit(np.random.default_rng(0).normal(size=(200, 6))).components_
    largest = components[np.arange(3), np.argmax(np.abs(components), axis=1)]
    assert (largest > 0).all()


def test_reduce_dims_normalises_rows_for_cosine():
    vectors = np.random.default_rng(0).normal(size=(300, 120)).astype(np.float32) * 7
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(reduce_dims(vectors, 50, metric="cosine"), PCA(50).fit_transform(unit), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(reduce_dims(vectors, 200, metric="cosine"), axis=1), 1, rtol=1e-5)
    assert reduce_dims(vectors, 50).shape == (300, 50)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(3, 30))
def test_memberships_are_one_at_the_nearest_and_sum_to_log2_k(seed, k):
    # gaps of at least 0.1 keep the search away from its lower bound on the scale, 1e-3 x the mean distance
    distances = np.cumsum(np.random.default_rng(seed).uniform(0.1, 1.0, size=(20, k)), axis=1)
    strengths = memberships(distances)
    np.testing.assert_allclose(strengths[:, 0], 1.0)
    assert ((strengths > 0) & (strengths <= 1)).all()
    np.testing.assert_allclose(strengths.sum(axis=1), np.log2(k), rtol=1e-3)


def exact_forces(y: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The t-SNE attraction and repulsion summed over all pairs, for checking the fast ones."""
    differences = y[:, None, :] - y[None, :, :]
    q = 1.0 / (1.0 + (differences**2).sum(axis=2))
    np.fill_diagonal(q, 0.0)
    attraction = ((P * q)[:, :, None] * differences).sum(axis=1)
    return attraction, ((q**2)[:, :, None] * differences).sum(axis=1) / q.sum()


@pytest.mark.parametrize("dims", [2, 3])
def test_tsne_gradient_matches_the_exact_sums(small_blobs, dims):
    y = np.random.default_rng(0).normal(size=(400, dims)) * np.array([8.0, 3.0, 1.0][:dims]) + 20.0
    P = joint_probabilities(knn_graph(small_blobs, 30), 10)
    attraction, repulsive = exact_forces(y, P.toarray())
    scale = np.abs(repulsive).max()
    np.testing.assert_allclose(kl_gradient(y, P)[1], attraction - repulsive, rtol=1e-4, atol=1e-6 * scale)
    if dims == 2:  # the grid's error; openTSNE's own interpolation is off by about 2-3% on these points too
        assert np.linalg.norm(interpolated_repulsion(y) - repulsive) < 0.05 * np.linalg.norm(repulsive)
    np.testing.assert_allclose(exact_repulsion(y), repulsive, rtol=1e-4, atol=1e-5 * scale)


class RecordingReporter(Reporter):
    def __init__(self) -> None:
        self.phases: dict[str, list] = {}

    def phase(self, description, total):
        from contextlib import contextmanager

        @contextmanager
        def run():
            done = self.phases.setdefault(description, [total, 0])
            yield lambda units: done.__setitem__(1, done[1] + units)

        return run()


def test_layout_reports_its_epochs(small_blobs):
    reporter = RecordingReporter()
    project(small_blobs, "umap", reporter=reporter)
    assert reporter.phases["umap: layout"] == [500, 500]
    assert {"umap: graph", "umap: init"} <= set(reporter.phases)


def test_projection_modules_do_not_import_torch():
    code = ("import sys, embedscope.maps; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
