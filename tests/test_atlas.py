"""The Atlas store through its Python API: round trips, layers, provenance, atomic commits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from embedscope import Atlas
from embedscope.atlas.parts import ROW_GROUP_ROWS
from embedscope.errors import AtlasError, ParameterError, VectorError


def test_created_atlas_has_the_documented_layout(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 4, metric="cosine")
    names = {path.name for path in atlas.path.iterdir()}
    assert {"atlas.json", "items", "layers", "graph", "thumbs"} <= names
    manifest = json.loads((atlas.path / "atlas.json").read_text())
    assert manifest["format"] == "embedscope-atlas"
    assert manifest["format_version"] == 1
    assert (manifest["n"], manifest["dim"], manifest["metric"]) == (0, 4, "cosine")
    assert len(Atlas.open(atlas.path)) == 0
    assert not list(tmp_path.glob(".a.atlas.building-*"))


def test_items_round_trip_with_ids_and_metadata(tmp_path: Path) -> None:
    vectors = np.random.default_rng(1).normal(size=(30, 5))
    metadata = pa.table({"label": [f"c{i % 3}" for i in range(30)], "score": np.arange(30) / 7})
    with Atlas.building(tmp_path / "a.atlas", 5) as atlas:
        atlas.append(vectors, pa.array([f"item-{i}" for i in range(30)]), metadata)
    reopened = Atlas.open(tmp_path / "a.atlas")
    np.testing.assert_array_equal(reopened.vectors(), vectors.astype(np.float32))
    table = reopened.table()
    assert table.column_names == ["row", "id", "label", "score"]
    assert table.column("id").to_pylist()[:2] == ["item-0", "item-1"]
    assert table.column("row").to_pylist() == list(range(30))
    assert table.column("label").to_pylist() == metadata.column("label").to_pylist()


def test_parquet_parts_are_readable_without_embedscope(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 3)
    atlas.append(np.ones((4, 3)))
    part = pq.read_table(atlas.path / "items" / "part-00000.parquet")
    assert part.schema.field("vector").type == pa.list_(pa.field("element", pa.float32(), nullable=False), 3)
    assert part.schema.field("row").type == pa.int64()
    assert part.schema.field("id").type == pa.string()
    assert part.column("vector").to_pylist()[0] == [1.0, 1.0, 1.0]


@settings(max_examples=25, deadline=None)
@given(
    first=arrays(np.float32, st.tuples(st.integers(1, 40), st.just(6)), elements=st.floats(-1e6, 1e6, width=32)),
    second=arrays(np.float64, st.tuples(st.integers(1, 40), st.just(6)), elements=st.floats(-1e6, 1e6)),
    picks=st.lists(st.integers(0, 79), max_size=20),
)
def test_appends_and_row_reads_agree_with_the_arrays(tmp_path_factory, first, second, picks) -> None:
    atlas = Atlas.create(tmp_path_factory.mktemp("h") / "a.atlas", 6)
    atlas.append(first)
    atlas.append(second)
    expected = np.concatenate([first, second.astype(np.float32)])
    np.testing.assert_array_equal(atlas.vectors(), expected)
    rows = [pick % len(expected) for pick in picks]
    np.testing.assert_array_equal(atlas.vectors(rows), expected[rows])
    assert Atlas.open(atlas.path).table(["id"]).column("id").to_pylist() == [str(i) for i in range(len(expected))]


def test_rows_spanning_row_groups_and_parts_read_in_requested_order(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 2)
    big = np.arange(2 * (ROW_GROUP_ROWS + 10), dtype=np.float32).reshape(-1, 2)
    atlas.append(big)
    atlas.append(big[:5] + 0.5)
    rows = [ROW_GROUP_ROWS + 9, 3, ROW_GROUP_ROWS + 11, ROW_GROUP_ROWS, 3]
    expected = np.concatenate([big, big[:5] + 0.5])[rows]
    np.testing.assert_array_equal(atlas.vectors(rows), expected)
    with pytest.raises(ParameterError):
        atlas.vectors([atlas.n])


def test_nan_rows_are_named_and_nothing_is_written(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 3)
    atlas.append(np.zeros((2, 3)))
    bad = np.zeros((ROW_GROUP_ROWS + 20, 3))
    bad[4, 1] = np.nan
    bad[ROW_GROUP_ROWS + 7, 0] = -np.inf
    with pytest.raises(VectorError, match=r"2 vector\(s\) contain NaN or inf \(rows 4, 65543\)"):
        atlas.append(bad, label="bad.npy")
    assert Atlas.open(atlas.path).n == 2
    assert sorted(path.name for path in (atlas.path / "items").iterdir()) == ["part-00000.parquet"]


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 200),
    bad=st.lists(st.tuples(st.integers(0, 199), st.integers(0, 3), st.sampled_from([np.nan, np.inf, -np.inf]))),
)
def test_every_bad_row_is_counted_and_the_first_are_named(tmp_path_factory, rows, bad) -> None:
    vectors = np.random.default_rng(rows).normal(size=(rows, 4))
    for row, column, value in bad:
        vectors[row % rows, column] = value
    atlas = Atlas.create(tmp_path_factory.mktemp("v") / "a.atlas", 4)
    expected = sorted({row % rows for row, _, _ in bad})
    if not expected:
        atlas.append(vectors)
        assert atlas.n == rows
        return
    with pytest.raises(VectorError) as error:
        atlas.append(vectors, label="x.npy")
    shown = ", ".join(str(row) for row in expected[:5])
    assert f"x.npy: {len(expected)} vector(s) contain NaN or inf (rows {shown}" in str(error.value)
    assert Atlas.open(atlas.path).n == 0


def test_values_that_overflow_float32_are_refused(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 2)
    with pytest.raises(VectorError, match="rows 1"):
        atlas.append(np.array([[1.0, 2.0], [1e39, 0.0]]))


def test_duplicate_and_clashing_ids_are_refused(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 2)
    with pytest.raises(VectorError, match="'x'"):
        atlas.append(np.zeros((3, 2)), pa.array(["x", "y", "x"]))
    atlas.append(np.zeros((2, 2)), pa.array(["x", "y"]))
    with pytest.raises(VectorError, match="already in the Atlas"):
        atlas.append(np.zeros((1, 2)), pa.array(["y"]))
    with pytest.raises(VectorError, match="missing or empty"):
        atlas.append(np.zeros((2, 2)), pa.array(["z", ""]))
    assert Atlas.open(atlas.path).n == 2


def test_the_same_id_may_appear_once_per_frame(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 2)
    ids = pa.array(["a", "b"])
    atlas.append(np.zeros((2, 2)), ids, pa.table({"frame": [0, 0]}))
    atlas.append(np.ones((2, 2)), ids, pa.table({"frame": [1, 1]}))
    with pytest.raises(VectorError, match="'a' in frame 1"):
        atlas.append(np.ones((1, 2)), pa.array(["a"]), pa.table({"frame": [1]}))
    assert atlas.table(["frame"]).column("frame").to_pylist() == [0, 0, 1, 1]


def test_metadata_types_must_agree_across_appends(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 2)
    atlas.append(np.zeros((1, 2)), metadata=pa.table({"label": [3]}))
    atlas.append(np.zeros((1, 2)), metadata=pa.table({"label": ["4"]}))  # castable: kept as int64
    with pytest.raises(AtlasError, match="'label' is string but the Atlas holds int64"):
        atlas.append(np.zeros((1, 2)), metadata=pa.table({"label": ["four"]}))
    assert atlas.table(["label"]).column("label").to_pylist() == [3, 4]


def test_wrong_dim_and_reserved_columns_are_refused(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 2)
    with pytest.raises(VectorError, match="dim 3 but the Atlas has dim 2"):
        atlas.append(np.zeros((1, 3)))
    with pytest.raises(AtlasError, match="reserved"):
        atlas.append(np.zeros((1, 2)), metadata=pa.table({"vector": [1]}))


def test_layers_are_stored_with_params_and_replaced_atomically(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 2)
    atlas.append(np.zeros((3, 2)))
    atlas.add_layer("umap", {"x": [1.0, 2.0, 3.0], "y": [0.0, 0.0, 1.0]}, {"n_neighbors": 15})
    atlas.add_layer("umap", {"x": [3.0, 2.0, 1.0], "y": [0.0, 0.0, 1.0]}, {"n_neighbors": 30})
    reopened = Atlas.open(atlas.path)
    assert reopened.layers()["umap"]["params"] == {"n_neighbors": 30}
    assert reopened.layer("umap").column("x").to_pylist() == [3.0, 2.0, 1.0]
    assert reopened.layer("umap").column("row").to_pylist() == [0, 1, 2]
    assert len(list((atlas.path / "layers").iterdir())) == 1
    with pytest.raises(AtlasError, match="no layer 'tsne'.*layers: umap"):
        reopened.layer("tsne")
    with pytest.raises(ParameterError, match="has 2 rows"):
        atlas.add_layer("bad", {"x": [1.0, 2.0]})
    with pytest.raises(ParameterError, match="layer name"):
        atlas.add_layer("../escape", {"x": [1.0, 2.0, 3.0]})


def test_provenance_records_step_parameters_and_versions(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 2)
    atlas.record("import", {"inputs": ["x.npy"]}, command="embedscope import x.npy")
    entry = Atlas.open(atlas.path).provenance[-1]
    assert entry["step"] == "import"
    assert entry["parameters"] == {"inputs": ["x.npy"]}
    assert entry["command"] == "embedscope import x.npy"
    assert {"embedscope", "numpy", "pyarrow", "python"} <= set(entry["versions"])


def test_a_failed_transaction_leaves_the_committed_atlas(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 2)
    atlas.append(np.zeros((2, 2)))
    with pytest.raises(RuntimeError), atlas.transaction():
        atlas.append(np.ones((5, 2)))
        atlas.add_layer("half", {"x": np.zeros(7)})
        raise RuntimeError("stop")
    reopened = Atlas.open(atlas.path)
    assert reopened.n == 2 and reopened.layers() == {}
    assert len(list((atlas.path / "items").iterdir())) == 1
    assert not list((atlas.path / "layers").iterdir())


def test_building_replaces_an_existing_atlas_in_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "a.atlas"
    Atlas.create(path, 2).append(np.zeros((4, 2)))
    with pytest.raises(AtlasError, match="already exists"):
        Atlas.create(path, 2)
    with pytest.raises(RuntimeError), Atlas.building(path, 3, replace=True) as atlas:
        atlas.append(np.ones((1, 3)))
        raise RuntimeError("crash")
    assert (Atlas.open(path).n, Atlas.open(path).dim) == (4, 2)
    with Atlas.building(path, 3, replace=True) as atlas:
        atlas.append(np.ones((1, 3)))
    assert (Atlas.open(path).n, Atlas.open(path).dim) == (1, 3)
    assert len(list((path / "items").iterdir())) == 1


def test_a_failed_build_leaves_no_atlas_and_no_staging_folder(tmp_path: Path) -> None:
    with pytest.raises(VectorError), Atlas.building(tmp_path / "a.atlas", 2) as atlas:
        atlas.append(np.full((2, 2), np.nan))
    assert list(tmp_path.iterdir()) == []


def test_folders_that_are_not_atlases_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AtlasError, match="no such Atlas"):
        Atlas.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(AtlasError, match="not an Atlas"):
        Atlas.open(tmp_path / "plain")
    with pytest.raises(AtlasError, match="not an Atlas"):
        Atlas.create(tmp_path / "plain", 2, replace=True)
    damaged = Atlas.create(tmp_path / "d.atlas", 2).path
    (damaged / "atlas.json").write_text("{not json")
    with pytest.raises(AtlasError, match="damaged"):
        Atlas.open(damaged)


def test_a_second_writer_is_refused_while_one_writes(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 2)
    other = Atlas.open(atlas.path)
    with atlas.transaction():
        atlas.append(np.zeros((1, 2)))
        with pytest.raises(AtlasError, match="being written by another process"):
            with other.transaction():
                pass
    other.append(np.zeros((1, 2)))  # sees the first writer's commit
    assert Atlas.open(atlas.path).table(["id"]).column("id").to_pylist() == ["0", "1"]


def test_graphs_are_cached_reused_for_smaller_k_and_dropped_when_items_change(tmp_path: Path) -> None:
    from embedscope.maps.neighbors import knn_graph

    atlas = Atlas.create(tmp_path / "a.atlas", 4)
    vectors = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    atlas.append(vectors)
    graph = knn_graph(vectors, 15, "cosine")
    atlas.save_graph(graph, "raw")
    reopened = Atlas.open(atlas.path)
    cached = reopened.graph(10, "cosine", "raw")
    np.testing.assert_array_equal(cached.indices, graph.indices[:, :10])
    np.testing.assert_array_equal(cached.distances, graph.distances[:, :10])
    assert reopened.graph(20, "cosine", "raw") is None
    assert reopened.graph(10, "euclidean", "raw") is None
    assert reopened.graph(10, "cosine", "pca50") is None
    reopened.append(np.zeros((1, 4)))
    assert Atlas.open(atlas.path).graph(10, "cosine", "raw") is None
    assert list((atlas.path / "graph").iterdir()) == []
    with pytest.raises(ParameterError, match="does not fit"):
        reopened.save_graph(graph, "raw")


def test_a_layer_made_before_an_append_is_refused_with_how_to_remake_it(tmp_path) -> None:
    atlas = Atlas.create(tmp_path / "grown.atlas", 3)
    atlas.append(np.ones((4, 3)))
    atlas.add_layer("umap", {"x": np.arange(4.0), "y": np.arange(4.0)})
    assert Atlas.open(atlas.path).layer("umap").num_rows == 4
    atlas.append(np.zeros((2, 3)))
    with pytest.raises(AtlasError, match=r"layer 'umap' was made for 4 items .* now holds 6; make it again"):
        Atlas.open(atlas.path).layer("umap")


def test_side_tables_are_plain_parquet_replaced_in_one_commit(tmp_path: Path) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", dim=2)
    losses = pa.table({"epoch": [1, 2, 3], "train_loss": [0.9, 0.5, 0.3]})
    atlas.add_side_table("training", losses, {"source": "run-0011.h5"})
    again = Atlas.open(tmp_path / "a.atlas")
    assert again.side_table("training").equals(losses)
    entry = again.side_tables()["training"]
    assert entry["rows"] == 3 and entry["params"] == {"source": "run-0011.h5"}
    assert pq.read_table(tmp_path / "a.atlas" / entry["file"]).equals(losses)  # any Parquet reader finds it
    first = tmp_path / "a.atlas" / entry["file"]
    again.add_side_table("training", losses.slice(0, 1))
    assert Atlas.open(tmp_path / "a.atlas").side_table("training").num_rows == 1
    assert not first.exists()  # the replaced file is collected
    with pytest.raises(AtlasError, match="no side table 'confusion'.*tables: training"):
        again.side_table("confusion")
    with pytest.raises(ParameterError, match="pyarrow Table"):
        again.add_side_table("bad", {"epoch": [1]})
