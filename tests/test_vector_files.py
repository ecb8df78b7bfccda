"""Tests of reading existing vectors, ids and tables from files written here with the real libraries."""

import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from embedscope.errors import InputError, ParameterError
from embedscope.formats.torch_files import load_torch_file
from embedscope.formats.vector_files import read_ids, read_vectors
from embedscope.formats.vector_tables import read_table

FLOAT_DTYPES = [np.float16, np.float32, np.float64]
SUFFIXES = [".npy", ".npz", ".pt", ".pth", ".parquet", ".csv", ".tsv", ".h5", ".hdf5"]
QUICK = settings(max_examples=25, deadline=None)


def sample(n=6, dim=4, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(dtype)


def rows(vector_file):
    return np.asarray(vector_file.vectors[0 : vector_file.vectors.shape[0]])


def rewrite_zip(path, change):
    """Write the zip at `path` again with `change(name, data) -> data` applied to every entry."""
    with zipfile.ZipFile(path) as archive:
        entries = [(name, archive.read(name)) for name in archive.namelist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            archive.writestr(name, change(name, data))


# --- npy / npz ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_npy_round_trips_without_copying(tmp_path, dtype):
    vectors = sample(dtype=dtype)
    np.save(tmp_path / "v.npy", vectors)
    result = read_vectors(tmp_path / "v.npy")
    assert isinstance(result.vectors, np.memmap)
    assert result.vectors.dtype == dtype
    np.testing.assert_array_equal(rows(result), vectors)
    assert result.ids is None and result.metadata is None


def test_npy_transpose_and_upper_case_suffix(tmp_path):
    vectors = sample()
    with open(tmp_path / "v.NPY", "wb") as file:
        np.save(file, vectors.T)
    np.testing.assert_array_equal(rows(read_vectors(tmp_path / "v.NPY", transpose=True)), vectors)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_npz_takes_the_only_matrix(tmp_path, dtype):
    vectors = sample(dtype=dtype)
    np.savez_compressed(tmp_path / "v.npz", emb=vectors, scale=np.float32(2.0))
    result = read_vectors(tmp_path / "v.npz")
    assert result.vectors.dtype == dtype
    np.testing.assert_array_equal(rows(result), vectors)


def test_npz_several_matrices_need_a_key(tmp_path):
    np.savez(tmp_path / "v.npz", proj=sample(), pred=sample(seed=1))
    with pytest.raises(InputError, match=r"proj, pred; pass --key NAME"):
        read_vectors(tmp_path / "v.npz")
    np.testing.assert_array_equal(rows(read_vectors(tmp_path / "v.npz", key="pred")), sample(seed=1))
    with pytest.raises(InputError, match="no array 'other'"):
        read_vectors(tmp_path / "v.npz", key="other")


def test_npz_like_milopyp_gives_metadata_and_ids(tmp_path):
    n = 5
    names = np.array([f"tomo_{i % 2}" for i in range(n)])
    np.savez(
        tmp_path / "all_output_info.npz",
        proj=sample(n, 8),
        pred=sample(n, 8, seed=1),
        name=names,
        label=np.arange(n, dtype=np.int32),
        coords=np.zeros((n, 3), np.int32),
        subvol=np.zeros((n, 1, 4, 4), np.float32),
    )
    result = read_vectors(tmp_path / "all_output_info.npz", key="pred")
    assert result.metadata.column_names == ["name", "label"]
    assert result.metadata.column("name").to_pylist() == names.tolist()
    assert result.metadata.schema.field("label").type == pa.int32()
    with_ids = read_vectors(tmp_path / "all_output_info.npz", key="pred", id_column="label")
    assert with_ids.ids.to_pylist() == ["0", "1", "2", "3", "4"]
    assert with_ids.metadata.column_names == ["name"]


# --- PyTorch -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64, torch.int64])
def test_pt_tensor_round_trips(tmp_path, dtype):
    tensor = (torch.randn(6, 4) * 10).to(dtype)
    torch.save(tensor, tmp_path / "embeddings.pth")
    result = read_vectors(tmp_path / "embeddings.pth")
    assert result.vectors.dtype == tensor.numpy().dtype
    np.testing.assert_array_equal(rows(result), tensor.numpy())


def test_pt_dict_with_labels_and_nested_dict(tmp_path):
    tensor, labels = torch.randn(5, 3), torch.arange(5)
    torch.save({"embeddings": tensor, "labels": labels, "epoch": 3}, tmp_path / "d.pt")
    result = read_vectors(tmp_path / "d.pt")
    np.testing.assert_array_equal(rows(result), tensor.numpy())
    assert result.metadata.column("labels").to_pylist() == list(range(5))
    torch.save({"model": {"emb": tensor, "other": torch.randn(2, 2)}}, tmp_path / "n.pt")
    np.testing.assert_array_equal(rows(read_vectors(tmp_path / "n.pt", key="model.emb")), tensor.numpy())
    with pytest.raises(InputError, match="model.emb, model.other; pass --key"):
        read_vectors(tmp_path / "n.pt")


def test_pt_bfloat16_becomes_float32(tmp_path):
    tensor = torch.randn(4, 3).to(torch.bfloat16)
    torch.save(tensor, tmp_path / "b.pt")
    result = read_vectors(tmp_path / "b.pt")
    assert result.vectors.dtype == np.float32
    np.testing.assert_array_equal(rows(result), tensor.float().numpy())


def test_pt_non_contiguous_views_equal_torch(tmp_path):
    base = torch.randn(8, 6)
    views = {"t": base.T, "sliced": base[2:7, ::2], "param": torch.nn.Parameter(base[1:])}
    torch.save(views, tmp_path / "v.pt")
    loaded = load_torch_file(tmp_path / "v.pt")
    for name, view in views.items():
        np.testing.assert_array_equal(loaded[name], view.detach().numpy())
        assert loaded[name].flags.writeable


def test_pt_saved_on_cuda_loads_without_a_gpu(tmp_path):
    tensor = torch.randn(5, 4)
    path = tmp_path / "embeddings.pth"
    torch.save(tensor, path)
    cuda = b"X\x06\x00\x00\x00cuda:0"
    rewrite_zip(path, lambda name, data: data.replace(b"X\x03\x00\x00\x00cpu", cuda))
    with pytest.raises(RuntimeError):
        torch.load(path)
    np.testing.assert_array_equal(rows(read_vectors(path)), tensor.numpy())


def test_pt_big_endian_file(tmp_path):
    tensor = torch.randn(3, 4, dtype=torch.float64)
    path = tmp_path / "big.pt"
    torch.save(tensor, path)

    def to_big_endian(name, data):
        if name.endswith("/byteorder"):
            return b"big"
        if "/data/" in name:
            return np.frombuffer(data, "<f8").astype(">f8").tobytes()
        return data

    rewrite_zip(path, to_big_endian)
    np.testing.assert_array_equal(load_torch_file(path), tensor.numpy())


class Custom:
    pass


@pytest.mark.parametrize("payload", [{1, 2}, Custom(), {"x": np.zeros(3)}])
def test_pt_with_other_python_objects_is_refused(tmp_path, payload):
    torch.save(payload, tmp_path / "o.pt")
    with pytest.raises(InputError, match="holds Python objects other than tensors"):
        read_vectors(tmp_path / "o.pt")


def test_pt_legacy_format_needs_torch(tmp_path, monkeypatch):
    tensor = torch.randn(4, 2)
    path = tmp_path / "legacy.pt"
    torch.save({"emb": tensor}, path, _use_new_zipfile_serialization=False)
    np.testing.assert_array_equal(rows(read_vectors(path)), tensor.numpy())
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(InputError, match="re-save it with a recent torch"):
        read_vectors(path)


# --- Parquet and CSV -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("list_type", [pa.list_, pa.large_list, lambda value: pa.list_(value, 4)])
def test_parquet_list_column(tmp_path, dtype, list_type):
    vectors = sample(dtype=dtype)
    value_type = pa.from_numpy_dtype(dtype)
    column = pa.array(list(vectors), list_type(value_type))
    table = pa.table({"name": [f"m{i}" for i in range(6)], "embeddings": column, "score": np.arange(6.0)})
    pq.write_table(table, tmp_path / "v.parquet")
    result = read_vectors(tmp_path / "v.parquet", id_column="name")
    assert result.vectors.dtype == dtype
    np.testing.assert_array_equal(rows(result), vectors)
    assert result.ids.to_pylist() == [f"m{i}" for i in range(6)]
    assert result.metadata.column_names == ["score"]


def test_parquet_uneven_lists_name_the_row(tmp_path):
    pq.write_table(pa.table({"v": [[1.0, 2.0], [3.0, 4.0], [5.0]]}), tmp_path / "v.parquet")
    with pytest.raises(InputError, match="1 values in row 2 but 2 in row 0"):
        read_vectors(tmp_path / "v.parquet")


def test_parquet_per_dimension_columns_and_glob(tmp_path):
    vectors = sample(dim=3)
    columns = {f"dim_{i}": vectors[:, i] for i in range(3)}
    table = pa.table({"id": np.arange(6), **columns, "umap_x": np.zeros(6, np.float32), "group": ["a"] * 6})
    pq.write_table(table, tmp_path / "v.parquet")
    detected = read_vectors(tmp_path / "v.parquet")
    assert detected.vectors.shape == (6, 4)
    assert detected.metadata.column_names == ["id", "group"]
    result = read_vectors(tmp_path / "v.parquet", vector_column="dim_*", id_column="id")
    np.testing.assert_array_equal(rows(result), vectors)
    assert result.ids.to_pylist() == [str(i) for i in range(6)]
    assert result.metadata.column_names == ["umap_x", "group"]
    with pytest.raises(InputError, match="no id column 'name'; columns are id, dim_0"):
        read_vectors(tmp_path / "v.parquet", id_column="name")
    with pytest.raises(InputError, match="no column matches 'emb_"):
        read_vectors(tmp_path / "v.parquet", vector_column="emb_*")


def test_csv_per_dimension(tmp_path):
    vectors = sample(dim=3)
    table = pa.table({"name": list("abcdef"), **{f"x{i}": vectors[:, i] for i in range(3)}})
    pacsv.write_csv(table, tmp_path / "v.csv")
    result = read_vectors(tmp_path / "v.csv", id_column="name")
    np.testing.assert_array_equal(rows(result).astype(np.float32), vectors)
    assert result.ids.to_pylist() == list("abcdef")


@pytest.mark.parametrize(("suffix", "separator", "brackets"), [(".csv", ",", True), (".tsv", "\t", False)])
def test_text_list_column(tmp_path, suffix, separator, brackets):
    vectors = sample(dim=3)
    texts = [(", " if brackets else " ").join(repr(float(x)) for x in row) for row in vectors]
    texts = [f'"[{text}]"' if brackets else text for text in texts]
    lines = [f"id{separator}embedding"] + [f"{i}{separator}{text}" for i, text in enumerate(texts)]
    (tmp_path / f"v{suffix}").write_text("\n".join(lines) + "\n")
    result = read_vectors(tmp_path / f"v{suffix}", vector_column="embedding", id_column="id")
    assert rows(result).shape == (6, 3)
    np.testing.assert_array_equal(rows(result).astype(np.float32), vectors)


def test_text_list_column_that_is_not_numbers(tmp_path):
    (tmp_path / "v.csv").write_text('embedding\n"[1, x]"\n')
    with pytest.raises(InputError, match="not a list of numbers"):
        read_vectors(tmp_path / "v.csv", vector_column="embedding")


# --- HDF5 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_h5_lazy_rows(tmp_path, dtype):
    vectors = sample(n=20, dtype=dtype)
    with h5py.File(tmp_path / "v.h5", "w") as file:
        file["group/emb"] = vectors
        file["group/labels"] = np.arange(20)
        file["group/names"] = [f"p{i}" for i in range(20)]
        file["elsewhere"] = np.arange(20)
    result = read_vectors(tmp_path / "v.h5", id_column="names")
    assert result.vectors.shape == (20, 4) and result.vectors.dtype == dtype
    np.testing.assert_array_equal(result.vectors[3:9], vectors[3:9])
    np.testing.assert_array_equal(result.vectors[::5], vectors[::5])
    assert result.ids.to_pylist()[:2] == ["p0", "p1"]
    assert result.metadata.column_names == ["labels"]


def test_h5_transposed_like_cryosiam(tmp_path):
    vectors = sample(n=10, dim=3)
    with h5py.File(tmp_path / "TS_56_6.80Apx_embeds.h5", "w") as file:
        file["embeddings"] = vectors.T
        file["labels"] = np.arange(1, 11)
    result = read_vectors(tmp_path / "TS_56_6.80Apx_embeds.h5", transpose=True)
    assert result.vectors.shape == (10, 3)
    np.testing.assert_array_equal(result.vectors[2:5], vectors[2:5])
    np.testing.assert_array_equal(rows(result), vectors)
    assert result.metadata.column("labels").to_pylist() == list(range(1, 11))


def test_h5_several_datasets_need_a_key(tmp_path):
    with h5py.File(tmp_path / "v.hdf5", "w") as file:
        file["a"] = sample()
        file["b/c"] = sample(seed=1)
    with pytest.raises(InputError, match="a, b/c; pass --key NAME"):
        read_vectors(tmp_path / "v.hdf5")
    np.testing.assert_array_equal(rows(read_vectors(tmp_path / "v.hdf5", key="/b/c")), sample(seed=1))


# --- ids and tables ----------------------------------------------------------------------------


def test_ids_in_every_form(tmp_path):
    names = ["mic_001", "mic_002", "mic_003"]
    (tmp_path / "all_micrographs_list.micrographs").write_text("\n".join(names) + "\n\n")
    np.save(tmp_path / "ids.npy", np.array(names))
    pacsv.write_csv(pa.table({"name": names}), tmp_path / "ids.csv")
    pq.write_table(pa.table({"name": names}), tmp_path / "ids.parquet")
    for name in ["all_micrographs_list.micrographs", "ids.npy", "ids.csv", "ids.parquet"]:
        ids = read_ids(tmp_path / name)
        assert ids.type == pa.string() and ids.to_pylist() == names
    np.save(tmp_path / "numbers.npy", np.arange(3))
    assert read_ids(tmp_path / "numbers.npy").to_pylist() == ["0", "1", "2"]


def test_bad_ids_files(tmp_path):
    (tmp_path / "gap.txt").write_text("a\n\nb\n")
    with pytest.raises(InputError, match="line 2 is blank"):
        read_ids(tmp_path / "gap.txt")
    pacsv.write_csv(pa.table({"a": [1], "b": [2]}), tmp_path / "two.csv")
    with pytest.raises(InputError, match="needs one column, not a, b"):
        read_ids(tmp_path / "two.csv")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".txt", ".parquet"])
def test_metadata_tables(tmp_path, suffix):
    table = pa.table({"micrograph_name": ["a", "b"], "ctf_fit": [3.5, 4.25], "num_particles": [10, 20]})
    path = tmp_path / f"micrograph_metadata{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path, pacsv.WriteOptions(delimiter="," if suffix == ".csv" else "\t"))
    assert read_table(path).equals(table)


# --- errors ------------------------------------------------------------------------------------


def test_missing_file_and_unsupported_suffix(tmp_path):
    for read in (read_vectors, read_ids, read_table):
        with pytest.raises(InputError, match=r"nothing\.npy: no such file"):
            read(tmp_path / "nothing.npy")
    (tmp_path / "v.mrc").write_bytes(b"x")
    with pytest.raises(InputError, match="unsupported file type '.mrc'"):
        read_vectors(tmp_path / "v.mrc")


def test_options_that_do_not_apply(tmp_path):
    np.save(tmp_path / "v.npy", sample())
    with pytest.raises(ParameterError, match="--key does not apply to .npy"):
        read_vectors(tmp_path / "v.npy", key="x")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_random_bytes_are_refused(tmp_path, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(np.random.default_rng(1).bytes(300))
    with pytest.raises(InputError, match=str(path)):
        read_vectors(path)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.arange(5.0), r"shape \(5,\); vectors need shape \(n, dim\)"),
        (np.zeros((2, 2, 2)), r"shape \(2, 2, 2\)"),
        (np.array([["a", "b"]]), "not numbers"),
        (np.ones((2, 2), np.complex64), "not numbers"),
        (np.array([[1, None]], dtype=object), "cannot be read"),
    ],
)
def test_arrays_that_are_not_vectors(tmp_path, array, message):
    np.save(tmp_path / "v.npy", array)
    np.savez(tmp_path / "v.npz", v=array)
    with h5py.File(tmp_path / "v.h5", "w") as file:
        file["v"] = array.astype("S") if array.dtype.kind in "UO" else array
    for name in ("v.npy", "v.npz", "v.h5"):
        with pytest.raises(InputError, match=str(tmp_path / name)):
            read_vectors(tmp_path / name, key=None if name == "v.npy" else "v")
    with pytest.raises(InputError, match=message):
        read_vectors(tmp_path / "v.npy")


def test_truncated_h5(tmp_path):
    with h5py.File(tmp_path / "v.h5", "w") as file:
        file["v"] = sample(n=2000)
    data = (tmp_path / "v.h5").read_bytes()
    (tmp_path / "v.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="v.h5"):
        rows(read_vectors(tmp_path / "v.h5"))


# --- properties --------------------------------------------------------------------------------

finite_float32 = arrays(
    np.float32,
    st.tuples(st.integers(1, 8), st.integers(1, 6)),
    elements=st.floats(width=32, allow_nan=False, allow_infinity=False),
)


ROUND_TRIP_SUFFIXES = [".npy", ".npz", ".parquet", ".h5", ".pt"]


def write_vectors(path, vectors):
    suffix = path.suffix
    if suffix == ".npy":
        np.save(path, vectors)
    elif suffix == ".npz":
        np.savez(path, vectors=vectors, label=np.arange(len(vectors)))
    elif suffix == ".parquet":
        pq.write_table(pa.table({"v": pa.array(list(vectors), pa.list_(pa.float32()))}), path)
    elif suffix == ".h5":
        with h5py.File(path, "w") as file:
            file["v"] = vectors
    else:
        torch.save({"v": torch.from_numpy(vectors)}, path)


@QUICK
@given(vectors=finite_float32, suffix=st.sampled_from(ROUND_TRIP_SUFFIXES))
def test_any_float32_array_round_trips(tmp_path_factory, vectors, suffix):
    path = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / f"v{suffix}"
    write_vectors(path, vectors)
    result = rows(read_vectors(path))
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, vectors)


MAGIC = [b"", b"\x93NUMPY\x01\x00", b"PK\x03\x04", b"\x89HDF\r\n\x1a\n", b"PAR1", b"a,b\n", pickle.dumps(1)]


@QUICK
@given(head=st.sampled_from(MAGIC), body=st.binary(max_size=400), suffix=st.sampled_from(SUFFIXES))
def test_arbitrary_bytes_raise_only_input_error(tmp_path_factory, head, body, suffix):
    path = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / f"f{suffix}"
    path.write_bytes(head + body)
    try:
        rows(read_vectors(path))
    except InputError as error:
        assert str(path) in str(error) and "\n" not in str(error)


@QUICK
@given(vectors=finite_float32, suffix=st.sampled_from(ROUND_TRIP_SUFFIXES), data=st.data())
def test_damaged_files_raise_only_input_error(tmp_path_factory, vectors, suffix, data):
    path = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / f"v{suffix}"
    write_vectors(path, vectors)
    content = bytearray(path.read_bytes())
    cut = data.draw(st.integers(0, len(content)))
    flip = data.draw(st.integers(0, len(content) - 1))
    content[flip] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(content[:cut] if data.draw(st.booleans()) else content))
    try:
        rows(read_vectors(path))
    except InputError as error:
        assert str(path) in str(error) and "\n" not in str(error)


@QUICK
@given(flip=st.integers(0, 10_000), mask=st.integers(1, 255), cut=st.integers(0, 10_000))
def test_damaged_pickle_in_an_intact_zip_raises_only_input_error(tmp_path_factory, flip, mask, cut):
    path = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / "v.pt"
    torch.save({"a": torch.randn(3, 2), "b": {"c": torch.arange(3)[::2]}}, path)

    def damage(name, data):
        if not name.endswith("data.pkl"):
            return data
        data = bytearray(data)
        data[flip % len(data)] ^= mask
        return bytes(data[: cut % (len(data) + 1)] if cut > 5000 else data)

    rewrite_zip(path, damage)
    try:
        rows(read_vectors(path))
    except InputError as error:
        assert str(path) in str(error) and "\n" not in str(error)


def test_reading_a_pt_file_does_not_import_torch(tmp_path):
    torch.save({"emb": torch.randn(3, 2)}, tmp_path / "v.pt")
    script = (
        "import sys; from embedscope.formats.vector_files import read_vectors; "
        f"read_vectors({str(tmp_path / 'v.pt')!r}); assert 'torch' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
