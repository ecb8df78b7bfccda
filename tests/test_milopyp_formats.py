"""MiLoPYP's files: all_output_info.npz, interactive_info_parquet.gzip, Phoenix selections, training coordinates."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedscope.errors import InputError, ParameterError
from embedscope.formats.milopyp import (
    image_urls,
    read_output_info,
    read_selection_parquets,
    write_interactive_parquet,
    write_output_info,
    write_training_coords,
)

RNG = np.random.default_rng(0)


def milopyp_like_npz(path, item_names, item_coords, dim=8, bbox=6, two_d=False, **overrides):
    """An npz as simsiam_test_hm_*.py writes it: batches concatenated, np.savez uncompressed."""
    count = len(item_names)
    arrays = {
        "proj": RNG.normal(size=(count, dim)).astype(np.float32),
        "pred": RNG.normal(size=(count, dim)).astype(np.float32),
        "name": np.concatenate([list(item_names[:2]), list(item_names[2:])]),
        "coords": np.asarray(item_coords, dtype=np.int32),
        "subvol": RNG.normal(size=(count, 1, bbox, bbox)).astype(np.float32),
    }
    if two_d:
        arrays["subvols_2d"] = RNG.normal(size=(count, 1, bbox, bbox)).astype(np.float32)
    arrays.update(overrides)
    arrays = {key: value for key, value in arrays.items() if value is not None}
    np.savez(path, **arrays)
    return arrays


# ----------------------------------------------------------------------------- npz
@pytest.mark.parametrize("two_d", [False, True])
def test_output_info_has_milopyp_keys_dtypes_and_no_compression(tmp_path, two_d):
    path = tmp_path / "all_output_info.npz"
    names = ["tomo1", "tomo1", "tomo22"]
    coords = np.array([[40, 50, 60], [41, 52, 63], [100, 90, 30]], dtype=np.int64)
    patches = RNG.normal(size=(3, 1, 6, 6))
    write_output_info(path, RNG.normal(size=(3, 128)), RNG.normal(size=(3, 128)), names, coords, patches,
                      patches[:, 0] if two_d else None)
    with zipfile.ZipFile(path) as archive:
        assert [entry.compress_type for entry in archive.infolist()] == [zipfile.ZIP_STORED] * len(archive.infolist())
    data = np.load(path)
    expected = ["proj", "pred", "name", "coords", "subvol"] + (["subvols_2d"] if two_d else [])
    assert data.files == expected
    assert data["proj"].dtype == np.float32 and data["proj"].shape == (3, 128)
    assert data["pred"].dtype == np.float32
    assert data["name"].dtype == np.dtype("<U6") and data["name"].tolist() == names
    assert data["coords"].dtype == np.int32 and data["coords"].tolist() == coords.tolist()
    assert data["subvol"].dtype == np.float32 and data["subvol"].shape == (3, 1, 6, 6)
    if two_d:
        assert data["subvols_2d"].shape == (3, 1, 6, 6)


def test_reads_what_milopyp_wrote_in_2d3d_mode(tmp_path):
    path = tmp_path / "all_output_info.npz"
    written = milopyp_like_npz(path, ["a", "a", "bb", "bb"], [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1]], two_d=True)
    info = read_output_info(path)
    assert len(info) == 4
    np.testing.assert_array_equal(info.pred, written["pred"])
    np.testing.assert_array_equal(info.proj, written["proj"])
    assert info.names.tolist() == ["a", "a", "bb", "bb"]
    assert info.coords.dtype == np.int32 and info.coords[2].tolist() == [7, 8, 9]
    assert info.subvol.shape == (4, 1, 6, 6) and info.subvols_2d.shape == (4, 1, 6, 6)


def test_numeric_names_and_wide_coords_are_accepted(tmp_path):
    # pandas reads an image_name column of numbers as int64, so MiLoPYP's names become integers
    path = tmp_path / "out.npz"
    np.savez(path, pred=np.ones((2, 4), np.float32), name=np.array([10304, 10304]),
             coords=np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64))
    info = read_output_info(path)
    assert info.names.tolist() == ["10304", "10304"]
    assert info.coords.dtype == np.int32
    assert info.proj is None and info.subvol is None and info.subvols_2d is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"pred": None}, "no pred"),
        ({"coords": np.zeros((3, 3), np.int32)}, "different lengths"),
        ({"pred": np.array([[0.0, np.nan]] * 4, np.float32)}, "NaN"),
        ({"name": np.array(["a", "b", "c", "d"], dtype=object)}, "Python objects"),
        ({"coords": np.full((4, 3), 1.5)}, "integer"),
        ({"coords": np.zeros((4, 2), np.int32)}, "(N, 3)"),
        ({"subvol": np.zeros((4, 2, 6, 6), np.float32)}, "patches"),
    ],
)
def test_bad_npz_gives_one_line_input_error(tmp_path, overrides, expected):
    path = tmp_path / "bad.npz"
    milopyp_like_npz(path, ["t"] * 4, [[1, 2, 3]] * 4, **overrides)
    with pytest.raises(InputError, match="bad.npz") as error:
        read_output_info(path)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_files_that_are_not_npz_archives_are_refused(tmp_path):
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    text = tmp_path / "text.npz"
    text.write_text("not numpy")
    with pytest.raises(InputError, match="single array"):
        read_output_info(single)
    with pytest.raises(InputError, match="text.npz"):
        read_output_info(text)
    with pytest.raises(InputError, match="no such file"):
        read_output_info(tmp_path / "missing.npz")


names_strategy = st.lists(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                                  min_size=1, max_size=8), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=names_strategy, data=st.data())
def test_output_info_round_trips(tmp_path, names, data):
    count = len(names)
    coords = np.array(data.draw(st.lists(st.tuples(*[st.integers(0, 4000)] * 3), min_size=count, max_size=count)))
    pred = RNG.normal(size=(count, 5)).astype(np.float32)
    path = tmp_path / "round.npz"
    write_output_info(path, pred * 2, pred, names, coords, RNG.normal(size=(count, 4, 4)))
    info = read_output_info(path)
    assert info.names.tolist() == names
    np.testing.assert_array_equal(info.coords, coords)
    np.testing.assert_array_equal(info.pred, pred)
    np.testing.assert_array_equal(info.proj, pred * 2)
    assert info.subvol.shape == (count, 1, 4, 4) and info.subvols_2d is None


def test_writer_refuses_arrays_of_different_lengths_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "all_output_info.npz"
    path.write_bytes(b"old")
    with pytest.raises(ParameterError, match="lengths"):
        write_output_info(path, np.ones((2, 4)), np.ones((3, 4)), ["a", "b"], np.ones((2, 3), int),
                          np.ones((2, 1, 4, 4)))
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]


# ----------------------------------------------------------------------------- interactive Parquet
def milopyp_interactive_frame(names, coords, pred, labels, port=7000):
    """The DataFrame plot_2d.py builds before `to_parquet(compression='gzip')`."""
    return pd.DataFrame.from_dict({
        "name": list(np.asarray(names)),
        "coord": [[str(value) for value in list(row)] for row in np.asarray(coords, dtype=np.int32)],
        "embeddings": [list(row) for row in pred],
        "label": list(np.asarray(labels, dtype=np.int64)),
        "image": [f"http://localhost:{port}/imgs/{index}.png" for index in range(len(names))],
    })


def test_interactive_parquet_matches_what_plot_2d_writes(tmp_path):
    names = ["tomo1", "tomo1", "tomo2"]
    coords = np.array([[40, 50, 60], [41, 52, 63], [100, 90, 30]], dtype=np.int32)
    pred = RNG.normal(size=(3, 16)).astype(np.float32)
    labels = np.array([3, 0, 3])
    ours = tmp_path / "interactive_info_parquet.gzip"
    theirs = tmp_path / "theirs.gzip"
    write_interactive_parquet(ours, names, coords, pred, labels, image_urls(3))
    milopyp_interactive_frame(names, coords, pred, labels).to_parquet(theirs, compression="gzip")

    assert pq.read_schema(ours).names == ["name", "coord", "embeddings", "label", "image"]
    assert pq.ParquetFile(ours).schema.equals(pq.ParquetFile(theirs).schema)  # the same physical Parquet schema
    metadata = pq.ParquetFile(ours).metadata
    assert {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)} == {"GZIP"}
    schema = pq.read_schema(ours)
    assert schema.field("coord").type == pa.list_(pa.string())
    assert schema.field("embeddings").type.value_type == pa.float32()
    assert schema.field("label").type == pa.int64()

    mine, original = pd.read_parquet(ours), pd.read_parquet(theirs)
    assert list(mine.columns) == list(original.columns)
    assert mine["name"].tolist() == original["name"].tolist() == names
    assert [list(cell) for cell in mine["coord"]] == [list(cell) for cell in original["coord"]] == [
        ["40", "50", "60"], ["41", "52", "63"], ["100", "90", "30"]]
    np.testing.assert_array_equal(np.stack(mine["embeddings"]), np.stack(original["embeddings"]))
    assert mine["label"].tolist() == original["label"].tolist() and mine["label"].dtype == original["label"].dtype
    assert mine["image"].tolist() == original["image"].tolist()
    assert mine["image"][2] == "http://localhost:7000/imgs/2.png"


def test_interactive_parquet_refuses_mismatched_columns(tmp_path):
    with pytest.raises(ParameterError, match="image_urls 1"):
        write_interactive_parquet(tmp_path / "x.gzip", ["a", "b"], np.ones((2, 3), int), np.ones((2, 4)),
                                  np.zeros(2, int), image_urls(1))
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- selections
def phoenix_export(frame, rows, path):
    """What Phoenix's export writes: the chosen rows of the original columns, no index, default codec."""
    frame.iloc[sorted(rows)].to_parquet(path, index=False)


def test_reads_a_folder_of_phoenix_exports_in_name_order(tmp_path):
    coords = np.array([[40, 50, 60], [41, 52, 63], [100, 90, 30], [7, 8, 9]])
    frame = milopyp_interactive_frame(["t1", "t1", "t2", "t3"], coords, np.ones((4, 4), np.float32), [0, 1, 0, 1])
    folder = tmp_path / "exports"
    folder.mkdir()
    phoenix_export(frame, [2, 3], folder / "2023-10-08_19-44-41.parquet")
    phoenix_export(frame, [0], folder / "2023-10-08_19-40-00.parquet")
    (folder / "notes.txt").write_text("ignored")
    names, read = read_selection_parquets(folder)
    assert names.tolist() == ["t1", "t2", "t3"]
    assert read.dtype == np.int32 and read.tolist() == [[40, 50, 60], [100, 90, 30], [7, 8, 9]]


def test_reads_the_interactive_file_and_our_own_parquet(tmp_path):
    interactive = tmp_path / "interactive_info_parquet.gzip"
    write_interactive_parquet(interactive, ["a", "b"], np.array([[1, 2, 3], [4, 5, 6]]), np.ones((2, 3)),
                              np.zeros(2, int), image_urls(2))
    ours = tmp_path / "selection.parquet"
    pq.write_table(pa.table({"id": ["b:4:5:6"], "tomogram": ["b"], "x": pa.array([4], pa.int32()),
                             "y": pa.array([5], pa.int32()), "z": pa.array([6], pa.int32())}), ours)
    assert read_selection_parquets(interactive)[1].tolist() == [[1, 2, 3], [4, 5, 6]]
    names, coords = read_selection_parquets(ours)
    assert names.tolist() == ["b"] and coords.tolist() == [[4, 5, 6]]


def test_bad_selections_are_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no .parquet files"):
        read_selection_parquets(empty)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1]}), other)
    with pytest.raises(InputError, match="neither"):
        read_selection_parquets(other)
    fractional = tmp_path / "fractional.parquet"
    pq.write_table(pa.table({"name": ["t"], "coord": [["1.5", "2", "3"]]}), fractional)
    with pytest.raises(InputError, match="integer"):
        read_selection_parquets(fractional)
    short = tmp_path / "short.parquet"
    pq.write_table(pa.table({"name": ["t"], "coord": [["1", "2"]]}), short)
    with pytest.raises(InputError, match="exactly 3"):
        read_selection_parquets(short)
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="damaged.parquet"):
        read_selection_parquets(damaged)


# ----------------------------------------------------------------------------- training coordinates
def test_training_coords_bytes_match_interactive_to_training_coords(tmp_path):
    path = tmp_path / "training_coordinates.txt"
    write_training_coords(path, ["tomo1", "tomo1", "tomo 2"], np.array([[40, 50, 60], [40, 50, 60], [7, 8, 0]]))
    assert path.read_bytes() == (b"image_name\tx_coord\ty_coord\tz_coord\n"
                                 b"tomo1\t40\t50\t60\n"
                                 b"tomo1\t40\t50\t60\n"  # MiLoPYP keeps repeats
                                 b"tomo 2\t7\t8\t0\n")


def test_training_coords_if_double_writes_z_times_two_as_a_float(tmp_path):
    path = tmp_path / "training_coordinates.txt"
    write_training_coords(path, ["t"], np.array([[1, 2, 60]]), if_double=True)
    assert path.read_bytes() == b"image_name\tx_coord\ty_coord\tz_coord\nt\t1\t2\t120.0\n"
    write_training_coords(path, [], np.zeros((0, 3), int))
    assert path.read_bytes() == b"image_name\tx_coord\ty_coord\tz_coord\n"


def test_phoenix_selection_to_training_coords_end_to_end(tmp_path):
    coords = np.array([[40, 50, 60], [41, 52, 63], [100, 90, 31]])
    frame = milopyp_interactive_frame(["t1", "t1", "t2"], coords, np.ones((3, 4), np.float32), [0, 1, 0])
    phoenix_export(frame, [0, 2], tmp_path / "2023-10-08_19-44-41.parquet")
    names, read = read_selection_parquets(tmp_path)
    output = tmp_path / "coords.txt"
    write_training_coords(output, names, read, if_double=True)
    assert output.read_bytes() == (b"image_name\tx_coord\ty_coord\tz_coord\n"
                                   b"t1\t40\t50\t120.0\nt2\t100\t90\t62.0\n")


def test_training_coords_refuse_names_with_tabs_and_keep_the_old_file(tmp_path):
    path = tmp_path / "training_coordinates.txt"
    path.write_bytes(b"old")
    with pytest.raises(ParameterError, match="tab or line break"):
        write_training_coords(path, ["ok", "bad\tname"], np.ones((2, 3), int))
    with pytest.raises(ParameterError, match="folder"):
        write_training_coords(tmp_path / "missing" / "out.txt", ["ok"], np.ones((1, 3), int))
    assert path.read_bytes() == b"old"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["training_coordinates.txt"]
