"""`export`: selections by ids, clusters and SQL, written as MiLoPYP coordinates, STAR, CSV and Parquet."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from embedscope.atlas import Atlas
from embedscope.errors import AtlasError, InputError, ParameterError
from embedscope.formats.milopyp import read_selection_parquets
from embedscope.formats.star import read_particles_star
from embedscope.pipeline.exporting import default_cluster_layer, export_selection, select_rows, selection_table
from embedscope.progress import Reporter

TOMOGRAMS = ["t1", "t1", "t1", "t2", "t2", "t2"]
XYZ = [[40, 50, 60], [41, 52, 63], [90, 91, 30], [10, 11, 12], [13, 14, 15], [16, 17, 18]]
HEADER = b"image_name\tx_coord\ty_coord\tz_coord\n"


class NoteTaker(Reporter):
    """Keeps the notes a step gives."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


def item_ids() -> list[str]:
    return [f"{tomogram}:{x}:{y}:{z}" for tomogram, (x, y, z) in zip(TOMOGRAMS, XYZ)]


@pytest.fixture
def atlas_path(tmp_path):
    path = tmp_path / "tomos.atlas"
    atlas = Atlas.create(path, 4)
    xyz = np.array(XYZ, dtype=np.int32)
    metadata = pa.table({"tomogram": TOMOGRAMS, "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})
    atlas.append(np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32), pa.array(item_ids()), metadata)
    atlas.add_layer("umap", {"x": np.linspace(0, 1, 6, dtype=np.float32), "y": np.zeros(6, np.float32)})
    atlas.add_layer("kmeans", {"cluster": np.array([0, 1, 0, 2, 2, 1], np.int32)})
    atlas.add_layer("leiden-2", {"cluster": np.array([5, 5, 5, 7, 7, 7], np.int32)})
    return path


@pytest.fixture
def output(tmp_path):
    """An output file that already exists, to show failures leave it alone."""
    path = tmp_path / "out.txt"
    path.write_bytes(b"previous export")
    return path


def test_ids_to_milopyp_training_coordinates(tmp_path, atlas_path, output):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"{item_ids()[3]}\n\n  {item_ids()[0]}  \n{item_ids()[3]}\n")
    report = export_selection(atlas_path, ids_file=ids_file, fmt="milopyp-coords", output=output)
    assert report.count == 2 and report.output == output and report.format == "milopyp-coords"
    assert output.read_bytes() == HEADER + b"t1\t40\t50\t60\nt2\t10\t11\t12\n"  # Atlas order, each item once
    export_selection(atlas_path, ids_file=ids_file, fmt="milopyp-coords", output=output, if_double=True)
    assert output.read_bytes() == HEADER + b"t1\t40\t50\t120.0\nt2\t10\t11\t24.0\n"


def test_clusters_to_star_use_the_newest_cluster_layer_by_default(atlas_path, tmp_path):
    atlas = Atlas.open(atlas_path)
    assert default_cluster_layer(atlas) == "leiden-2"
    star = tmp_path / "particles.star"
    report = export_selection(atlas_path, clusters=[7], fmt="star", output=star)
    assert report.count == 3 and "leiden-2" in report.selection
    table = read_particles_star(star)
    assert table.column_names == ["tomogram", "x", "y", "z", "cluster"]
    assert table.column("z").to_pylist() == [12, 15, 18]
    assert table.column("cluster").to_pylist() == [7, 7, 7]
    assert "t2 10 11 12 8\n" in star.read_text()  # RELION class numbers count from 1

    export_selection(atlas_path, clusters=[0, 2], cluster_layer="kmeans", fmt="star", output=star)
    table = read_particles_star(star)
    assert table.column("x").to_pylist() == [40, 90, 10, 13]
    assert table.column("cluster").to_pylist() == [0, 0, 2, 2]


def test_where_to_csv_has_id_first_then_metadata_then_layer_columns(atlas_path, tmp_path):
    path = tmp_path / "selection.csv"
    report = export_selection(atlas_path, where="umap_x > 0.5 AND tomogram = 't2'", fmt="csv", output=path)
    table = pacsv.read_csv(path)
    assert report.count == 3
    assert table.column_names == ["id", "tomogram", "x", "y", "z", "umap_x", "umap_y", "kmeans_cluster",
                                  "leiden-2_cluster"]
    assert table.column("id").to_pylist() == item_ids()[3:]
    assert table.column("kmeans_cluster").to_pylist() == [2, 2, 1]


def test_where_to_parquet_keeps_types_and_reads_as_a_selection(atlas_path, tmp_path):
    path = tmp_path / "selection.parquet"
    export_selection(atlas_path, where='"leiden-2_cluster" = 5 AND "row" <> 1', fmt="parquet", output=path)
    table = pq.read_table(path)
    assert table.schema.field("x").type == pa.int32() and table.schema.field("umap_x").type == pa.float32()
    assert table.column("id").to_pylist() == [item_ids()[0], item_ids()[2]]
    names, coords = read_selection_parquets(path)
    assert names.tolist() == ["t1", "t1"] and coords.tolist() == [XYZ[0], XYZ[2]]


def test_select_rows_returns_sorted_rows_for_each_kind_of_selection(atlas_path):
    atlas = Atlas.open(atlas_path)
    by_ids = select_rows(atlas, ids=[item_ids()[5], item_ids()[1]])
    assert by_ids.dtype == np.int64 and by_ids.tolist() == [1, 5]
    assert select_rows(atlas, clusters=[1], cluster_layer="kmeans").tolist() == [1, 5]
    assert select_rows(atlas, where="z = 18 OR regexp_matches(id, '^t1:41')").tolist() == [1, 5]


def test_selection_table_leaves_out_stale_layers_with_a_note(atlas_path):
    atlas = Atlas.open(atlas_path)
    metadata = pa.table({"tomogram": ["t3"], "x": pa.array([1], pa.int32()), "y": pa.array([2], pa.int32()),
                         "z": pa.array([3], pa.int32())})
    atlas.append(np.zeros((1, 4), np.float32), pa.array(["t3:1:2:3"]), metadata)
    atlas.add_layer("fresh", {"cluster": np.arange(7, dtype=np.int32)})
    notes = NoteTaker()
    table = selection_table(atlas, notes)
    assert table.num_rows == 7 and "fresh_cluster" in table.column_names and "umap_x" not in table.column_names
    assert len(notes.notes) == 3 and "umap" in notes.notes[0]
    assert select_rows(atlas, where="fresh_cluster = 6").tolist() == [6]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({}, ParameterError, "exactly one of"),
        ({"clusters": [1], "where": "x > 1"}, ParameterError, r"got clusters, where"),
        ({"clusters": []}, ParameterError, "at least one"),
        ({"clusters": [9, 5]}, ParameterError, r"no cluster 9 in layer 'leiden-2'; its clusters are 5, 7"),
        ({"clusters": [1], "cluster_layer": "umap"}, ParameterError, "no cluster column"),
        ({"clusters": [1], "cluster_layer": "nope"}, AtlasError, "no layer 'nope'"),
        ({"where": "nonsense_column > 1"}, ParameterError, "Binder Error: Referenced column"),
        ({"where": "x >"}, ParameterError, "Parser Error"),
        ({"where": "true) UNION ALL SELECT 99 --"}, ParameterError, "Parser Error"),
        ({"where": "EXISTS (SELECT * FROM read_csv('/etc/hostname'))"}, ParameterError, "Permission Error"),
        ({"where": "  "}, ParameterError, "--where is empty"),
        ({"where": "x > 1000"}, ParameterError, "the selection is empty"),
        ({"where": "x > 1", "fmt": "xml"}, ParameterError, "unknown export format 'xml'"),
        ({"where": "x > 1", "fmt": "csv", "if_double": True}, ParameterError, "milopyp-coords only"),
    ],
)
def test_bad_requests_raise_one_line_errors_and_keep_the_old_output(atlas_path, output, arguments, error, message):
    arguments = {"fmt": "milopyp-coords", **arguments}
    with pytest.raises(error, match=message) as raised:
        export_selection(atlas_path, output=output, **arguments)
    assert "\n" not in str(raised.value)
    assert output.read_bytes() == b"previous export"
    assert sorted(item.name for item in output.parent.iterdir()) == ["out.txt", "tomos.atlas"]


def test_unknown_ids_are_named_up_to_five(tmp_path, atlas_path, output):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join([item_ids()[0]] + [f"ghost{index}" for index in range(7)]))
    with pytest.raises(ParameterError, match=r"7 id\(s\) are not in .*'ghost0', 'ghost1', 'ghost2', 'ghost3', "
                                             r"'ghost4', \.\.\.;"):
        export_selection(atlas_path, ids_file=ids_file, fmt="csv", output=output)
    ids_file.write_text("\n \n")
    with pytest.raises(InputError, match="lists no ids"):
        export_selection(atlas_path, ids_file=ids_file, fmt="csv", output=output)
    with pytest.raises(InputError, match="no such file"):
        export_selection(atlas_path, ids_file=tmp_path / "missing.txt", fmt="csv", output=output)
    assert output.read_bytes() == b"previous export"


def test_coordinate_formats_name_the_missing_columns(tmp_path, output):
    path = tmp_path / "plain.atlas"
    atlas = Atlas.create(path, 2)
    atlas.append(np.ones((2, 2), np.float32), metadata=pa.table({"tomogram": ["a", "b"], "x": [1, 2]}))
    with pytest.raises(ParameterError, match="lacks y, z"):
        export_selection(path, where="true", fmt="milopyp-coords", output=output)
    with pytest.raises(ParameterError, match=r"missing y, z \(tomograms\) or micrograph, y \(micrographs\)"):
        export_selection(path, where="true", fmt="star", output=output)
    with pytest.raises(ParameterError, match="no layer of .* has clusters"):
        export_selection(path, clusters=[0], fmt="csv", output=output)
    assert output.read_bytes() == b"previous export"


def test_output_in_a_missing_folder_is_refused(atlas_path, tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        export_selection(atlas_path, where="true", fmt="parquet", output=tmp_path / "nowhere" / "s.parquet")
