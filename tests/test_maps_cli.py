"""`embedscope map`, `cluster` and `quality` on Atlases from `import`: layers, caching, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from embedscope import Atlas

from conftest import assert_one_line_error, write_csv


@pytest.fixture(scope="module")
def blobs_atlas(tmp_path_factory) -> Path:
    """An Atlas of 6 well-separated blobs in 120 dimensions (so the PCA pre-step runs), with labels."""
    vectors, labels = make_blobs(n_samples=1500, n_features=120, centers=6, cluster_std=1.0, random_state=3)
    folder = tmp_path_factory.mktemp("blobs")
    np.save(folder / "blobs.npy", vectors.astype(np.float32))
    write_csv(folder / "labels.csv", {"id": [str(i) for i in range(len(labels))], "label": labels})
    from embedscope.pipeline import import_vectors

    import_vectors([folder / "blobs.npy"], folder / "blobs.atlas", meta=folder / "labels.csv", on="id")
    return folder / "blobs.atlas"


@pytest.fixture
def atlas_copy(blobs_atlas: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "copy.atlas"
    shutil.copytree(blobs_atlas, target)
    return target


def positions(atlas: Path, layer: str) -> np.ndarray:
    table = Atlas.open(atlas).layer(layer)
    return np.column_stack([table.column(c).to_numpy() for c in ("x", "y", "z") if c in table.column_names])


def truth(atlas: Path) -> np.ndarray:
    return np.asarray(Atlas.open(atlas).table(["label"]).column("label").to_numpy())


def kmeans_ari(points: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.cluster import KMeans

    found = KMeans(6, n_init=10, random_state=0).fit_predict(points)
    return adjusted_rand_score(labels, found)


@pytest.mark.parametrize("method", ["umap", "tsne", "pca", "phate"])
def test_each_method_writes_a_layer_that_separates_blobs(cli, atlas_copy, method) -> None:
    result = cli("map", atlas_copy, "--method", method, "--seed", 1)
    assert result.code == 0, result.err
    assert f"wrote layer {method}" in result.out
    layer = Atlas.open(atlas_copy).layers()[method]
    assert layer["columns"] == ["x", "y"]
    assert layer["params"]["method"] == method and layer["params"]["seed"] == 1
    assert layer["params"]["space"] == ("raw" if method == "pca" else "pca50")
    points = positions(atlas_copy, method)
    assert points.shape == (1500, 2) and np.isfinite(points).all()
    assert kmeans_ari(points, truth(atlas_copy)) > 0.9
    assert Atlas.open(atlas_copy).provenance[-1]["step"] == "map"


def test_same_seed_same_map_and_the_graph_is_cached(cli, atlas_copy) -> None:
    assert cli("map", atlas_copy, "--name", "first", "--seed", 7).code == 0
    params = Atlas.open(atlas_copy).layers()["first"]["params"]
    assert params["graph"] == "computed"
    assert cli("map", atlas_copy, "--name", "second", "--seed", 7).code == 0
    assert Atlas.open(atlas_copy).layers()["second"]["params"]["graph"] == "cached"
    np.testing.assert_array_equal(positions(atlas_copy, "first"), positions(atlas_copy, "second"))
    assert cli("map", atlas_copy, "--name", "other", "--seed", 8).code == 0
    assert not np.array_equal(positions(atlas_copy, "first"), positions(atlas_copy, "other"))
    assert cli("cluster", atlas_copy, "--method", "leiden").code == 0
    assert Atlas.open(atlas_copy).layers()["leiden"]["params"]["graph"] == "cached"


def test_three_dimensional_map_and_score(cli, atlas_copy) -> None:
    result = cli("map", atlas_copy, "--dims", 3, "--score")
    assert result.code == 0, result.err
    assert "trustworthiness" in result.out
    layer = Atlas.open(atlas_copy).layers()["umap3d"]
    assert layer["columns"] == ["x", "y", "z"]
    assert layer["params"]["scores"]["trustworthiness"] > 0.9


@pytest.mark.parametrize(
    "args",
    [
        ["--method", "kmeans", "--k", 6],
        ["--method", "kmeans", "--k", 6, "--spherical"],
        ["--method", "spectral", "--k", 12, "--estimate-k"],
        ["--method", "hdbscan"],
        ["--method", "leiden"],
        ["--method", "overcluster", "--k", 6],
    ],
)
def test_each_clustering_recovers_the_blobs(cli, atlas_copy, args) -> None:
    result = cli("cluster", atlas_copy, *args, "--name", "found")
    assert result.code == 0, result.err
    labels = Atlas.open(atlas_copy).layer("found").column("cluster").to_numpy()
    assert adjusted_rand_score(truth(atlas_copy), labels) > 0.9
    if "--estimate-k" in args:
        assert Atlas.open(atlas_copy).layers()["found"]["params"]["estimated_k"] == 6


def test_cluster_on_a_map_layer_and_score_it(cli, atlas_copy) -> None:
    assert cli("map", atlas_copy, "--method", "pca").code == 0
    assert cli("cluster", atlas_copy, "--method", "kmeans", "--k", 6, "--on-layer", "pca").code == 0
    assert Atlas.open(atlas_copy).layers()["kmeans"]["params"]["space"] == "layer:pca"
    result = cli("quality", atlas_copy, "--layer", "kmeans", "--labels", "label", "--json")
    assert result.code == 0, result.err
    scores = json.loads(result.out)
    assert scores["ari"] > 0.9 and scores["n_clusters"] == 6
    result = cli("quality", atlas_copy, "--layer", "pca", "--labels", "label", "--json")
    scores = json.loads(result.out)
    assert 0.5 < scores["trustworthiness"] <= 1.0 and 0.0 <= scores["knn_recall"] <= 1.0
    assert scores["knn_accuracy_map"] > 0.9


def test_bad_input_gives_one_line_and_leaves_the_atlas_unchanged(cli, atlas_copy, tmp_path) -> None:
    before = (atlas_copy / "atlas.json").read_text()
    tiny = tmp_path / "tiny.atlas"
    with Atlas.building(tiny, 3) as atlas:
        atlas.append(np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [2.0, 1.0, 0.0]]))
    cases = [
        (["map", atlas_copy, "--neighbors", 1500], ["1500", "neighbours"]),
        (["map", tiny, "--method", "tsne"], ["perplexity"]),
        (["map", atlas_copy, "--method", "nope"], ["nope"]),
        (["map", atlas_copy, "--dims", 4], ["dims"]),
        (["map", atlas_copy, "--name", "../x"], ["layer name"]),
        (["map", tiny, "--metric", "cosine", "--method", "pca"], ["zero vector", "rows 0"]),
        (["cluster", atlas_copy, "--method", "kmeans"], ["k"]),
        (["cluster", atlas_copy, "--method", "kmeans", "--k", 5000], ["5000"]),
        (["cluster", atlas_copy, "--on-layer", "missing", "--k", 3], ["no layer 'missing'"]),
        (["quality", atlas_copy, "--layer", "missing"], ["no layer 'missing'"]),
        (["quality", tiny, "--layer", "x"], ["no layer"]),
    ]
    for args, fragments in cases:
        assert_one_line_error(cli(*args), *fragments)
    assert (atlas_copy / "atlas.json").read_text() == before
    single = tmp_path / "single.atlas"
    with Atlas.building(single, 2) as atlas:
        atlas.append(np.ones((1, 2)))
    assert_one_line_error(cli("cluster", single, "--method", "kmeans", "--k", 2), "1 item")
    assert cli("map", atlas_copy, "--method", "pca").code == 0
    assert_one_line_error(cli("quality", atlas_copy, "--layer", "pca", "--labels", "nope"), "no column nope")


def test_usage_errors_are_one_line_and_not_called_bugs(cli) -> None:
    for args in (("map",), ("map", "x.atlas", "--bogus"), ("export", "x.atlas", "-o", "y.csv", "--cluster")):
        result = cli(*args)
        assert_one_line_error(result, "--help")
        assert "unexpected" not in result.err


def test_several_clusters_follow_one_option() -> None:
    from embedscope.cli.runner import _expand_multi_values

    assert _expand_multi_values(["export", "a", "--cluster", "3", "7", "--where", ""]) == [
        "export", "a", "--cluster", "3", "--cluster", "7", "--where", ""]
    assert _expand_multi_values(["--cluster", "--format", "csv"]) == ["--cluster", "--format", "csv"]
