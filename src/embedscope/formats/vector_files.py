"""Read vectors that already exist (npy, npz, PyTorch, Parquet, CSV, HDF5) with their ids and metadata.

Vectors keep their stored dtype and large arrays stay on disk (memory-mapped or read lazily),
so callers cast to float32 chunk by chunk.
"""

from __future__ import annotations

import posixpath
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError
from typing import Protocol

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embedscope.errors import InputError, ParameterError
from embedscope.formats.file_checks import damaged, reader_for, reason, require_file
from embedscope.formats.torch_files import load_torch_file
from embedscope.formats.vector_tables import read_arrow_table, vectors_from_table

_VECTOR_KINDS = "fiu"  # floats, signed and unsigned integers
_COLUMN_KINDS = "biufUS"
# What numpy and zipfile raise for a damaged .npy or .npz: a bad header surfaces as a SyntaxError,
# an encrypted member as a RuntimeError, an unknown compression as NotImplementedError.
_NUMPY_DAMAGE = (ValueError, OSError, EOFError, SyntaxError, TokenError, RuntimeError, NotImplementedError)
_NUMPY_DAMAGE += (zipfile.BadZipFile, zlib.error)
_H5_DAMAGE = (OSError, RuntimeError, KeyError, UnicodeDecodeError)

Entries = dict[str, tuple[tuple[int, ...], np.dtype]]  # name -> (shape, dtype) of arrays in a file


class RowSource(Protocol):
    """Rows of an (n, dim) array that can be read a slice at a time."""

    @property
    def shape(self) -> tuple[int, int]: ...

    @property
    def dtype(self) -> np.dtype: ...

    def __getitem__(self, rows: slice) -> np.ndarray: ...


@dataclass
class VectorFile:
    """Vectors read from one file, with the ids and metadata columns it carried."""

    vectors: RowSource
    ids: pa.Array | None
    metadata: pa.Table | None
    path: Path


class H5Rows:
    """Rows of an HDF5 dataset, read on demand so that a file larger than memory is never loaded.

    Holds the open `h5py.File`; `transpose=True` reads a (dim, n) dataset column-wise as rows.
    """

    def __init__(self, file: h5py.File, dataset: h5py.Dataset, transpose: bool = False):
        self.file = file
        self.dataset = dataset
        self.transpose = transpose
        first, second = dataset.shape
        self.shape = (second, first) if transpose else (first, second)
        self.dtype = dataset.dtype

    def __getitem__(self, rows: slice) -> np.ndarray:
        try:
            return self.dataset[:, rows].T if self.transpose else self.dataset[rows]
        except _H5_DAMAGE as error:
            raise damaged(Path(self.file.filename), "HDF5", error) from error


def read_vectors(
    path: Path,
    *,
    key: str | None = None,
    transpose: bool = False,
    id_column: str | None = None,
    vector_column: str | None = None,
) -> VectorFile:
    """Read the vectors in one file, choosing the reader by suffix.

    `key` picks an array or dataset, `transpose` reads a (dim, n) array, `id_column` names the ids
    and `vector_column` names a list column or a glob of per-dimension columns.
    """
    path = Path(path)
    reader, accepted = reader_for(path, _FORMATS, "file type")
    suffix = path.suffix.lower()
    options = {"key": key, "transpose": transpose, "id_column": id_column, "vector_column": vector_column}
    unused = [name for name, value in options.items() if value and name not in accepted]
    if unused:
        flags = ", ".join("--" + name.replace("_", "-") for name in unused)
        raise ParameterError(f"{flags} does not apply to {suffix} files; leave it out for {path}")
    return reader(path, **{name: options[name] for name in accepted})


def read_ids(path: Path) -> pa.Array:
    """Read ids, one per row: a text file with one id a line, a 1-D .npy, or a one-column table.

    Ids are returned as strings so that they join with the ids of an Atlas.
    """
    path = Path(path)
    require_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        ids = _npy_ids(path)
    elif suffix in (".csv", ".tsv", ".parquet"):
        table = read_arrow_table(path)
        if table.num_columns != 1:
            names = ", ".join(table.column_names)
            raise InputError(f"{path}: an ids table needs one column, not {names}; keep only the ids")
        ids = table.column(0)
    else:
        ids = _text_ids(path)
    return _as_strings(path, ids)


def _read_npy(path: Path, transpose: bool) -> VectorFile:
    """A .npy memory-mapped, so that only the rows asked for are read."""
    try:
        vectors = np.load(path, mmap_mode="r")
    except ValueError:  # object arrays and empty arrays cannot be memory-mapped
        vectors = _load_npy(path)
    except _NUMPY_DAMAGE as error:
        raise damaged(path, "a .npy array", error) from error
    if isinstance(vectors, np.lib.npyio.NpzFile):
        vectors.close()
        raise InputError(f"{path}: holds an archive of arrays, not one array; rename it to .npz")
    _check_vectors(path, "the array", vectors.shape, vectors.dtype)
    return VectorFile(vectors.T if transpose else vectors, None, None, path)


def _load_npy(path: Path) -> np.ndarray:
    """A .npy read whole, never unpickling Python objects."""
    try:
        return np.load(path)
    except _NUMPY_DAMAGE as error:
        raise damaged(path, "a .npy array of numbers", error) from error


def _read_npz(path: Path, key: str | None, transpose: bool, id_column: str | None) -> VectorFile:
    """The chosen array of a .npz; other 1-D arrays of the same length become metadata."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name[: -len(".npy")]: name for name in archive.namelist() if name.endswith(".npy")}
            entries = {name: _npy_header(archive, member) for name, member in members.items()}

            def load(name: str) -> np.ndarray:
                with archive.open(members[name]) as member:
                    return np.lib.format.read_array(member, allow_pickle=False)

            return _from_arrays(path, entries, load, key, transpose, id_column)
    except _NUMPY_DAMAGE as error:
        raise damaged(path, "a .npz archive", error) from error


def _npy_header(archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array in a .npz, read without loading its data."""
    with archive.open(member) as file:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(file)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(file)
    return shape, dtype


def _read_torch(path: Path, key: str | None, transpose: bool, id_column: str | None) -> VectorFile:
    """A tensor, or the chosen tensor of a (nested) dict; other 1-D tensors become metadata."""
    loaded = load_torch_file(path)
    if isinstance(loaded, np.ndarray):
        loaded = {"tensor": loaded}
    if not isinstance(loaded, dict):
        kind = type(loaded).__name__
        raise InputError(f"{path}: holds a {kind}, not a tensor; save a tensor or a dict of tensors")
    arrays = _flatten(loaded)
    entries = {name: (array.shape, array.dtype) for name, array in arrays.items()}
    return _from_arrays(path, entries, arrays.__getitem__, key, transpose, id_column)


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """The arrays of nested dicts under dotted names such as `model.embeddings`."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            arrays.update(_flatten(value, f"{prefix}{name}."))
        elif isinstance(value, np.ndarray):
            arrays[f"{prefix}{name}"] = value
    return arrays


def _from_arrays(
    path: Path,
    entries: Entries,
    load: Callable[[str], np.ndarray],
    key: str | None,
    transpose: bool,
    id_column: str | None,
) -> VectorFile:
    """Vectors from named arrays (npz, PyTorch dicts), with 1-D arrays of length n as columns."""
    name = _pick_key(path, entries, key, "array")
    _check_vectors(path, f"array {name!r}", *entries[name])
    vectors = load(name)
    vectors = vectors.T if transpose else vectors
    n = vectors.shape[0]
    beside = [other for other, (shape, dtype) in entries.items() if other != name and shape == (n,)]
    columns = {other: _column(load(other)) for other in beside if entries[other][1].kind in _COLUMN_KINDS}
    ids, table = _split_ids(path, pa.table(columns), id_column)
    return _vector_file(path, vectors, ids, table)


def _read_h5(path: Path, key: str | None, transpose: bool, id_column: str | None) -> VectorFile:
    """A 2-D HDF5 dataset read lazily; 1-D datasets of length n in its group become metadata."""
    try:
        file = h5py.File(path, "r")
    except _H5_DAMAGE as error:
        raise damaged(path, "HDF5", error) from error
    try:
        return _h5_vectors(path, file, key, transpose, id_column)
    except _H5_DAMAGE as error:
        file.close()
        raise damaged(path, "HDF5", error) from error
    except BaseException:
        file.close()
        raise


def _h5_vectors(
    path: Path, file: h5py.File, key: str | None, transpose: bool, id_column: str | None
) -> VectorFile:
    """The chosen dataset of an open HDF5 file, with its group's 1-D datasets as columns."""
    datasets: dict[str, h5py.Dataset] = {}

    def collect(name: str, item: h5py.HLObject) -> None:
        if isinstance(item, h5py.Dataset):
            datasets[name] = item

    file.visititems(collect)
    entries = {name: (dataset.shape, dataset.dtype) for name, dataset in datasets.items()}
    name = _pick_key(path, entries, key and key.strip("/"), "dataset")
    _check_vectors(path, f"dataset {name!r}", *entries[name])
    rows = H5Rows(file, datasets[name], transpose)
    group = posixpath.dirname(name)
    beside = {
        posixpath.basename(other): _h5_column(dataset)
        for other, dataset in datasets.items()
        if other != name and posixpath.dirname(other) == group and dataset.shape == (rows.shape[0],)
    }
    columns = {other: column for other, column in beside.items() if column is not None}
    ids, table = _split_ids(path, pa.table(columns), id_column)
    return _vector_file(path, rows, ids, table)


def _h5_column(dataset: h5py.Dataset) -> pa.Array | None:
    """A 1-D dataset as a column: strings decoded, numbers as stored, anything else skipped."""
    if h5py.check_string_dtype(dataset.dtype) is not None:
        return pa.array(dataset.asstr()[()].tolist(), pa.string())
    if dataset.dtype.kind in _COLUMN_KINDS:
        return _column(dataset[()])
    return None


def _read_tabular(path: Path, id_column: str | None, vector_column: str | None) -> VectorFile:
    """Vectors from one list column or one column per dimension; the other columns are metadata."""
    ids, table = _split_ids(path, read_arrow_table(path), id_column)
    vectors, metadata = vectors_from_table(path, table, vector_column)
    return _vector_file(path, vectors, ids, metadata)


def _npy_ids(path: Path) -> pa.Array:
    """Ids from a 1-D .npy of strings or integers."""
    ids = _load_npy(path)
    if ids.ndim != 1 or ids.dtype.kind not in _COLUMN_KINDS:
        raise InputError(f"{path}: ids need a 1-D array of strings or numbers, not {ids.dtype} {ids.shape}")
    return _column(ids)


def _text_ids(path: Path) -> pa.Array:
    """Ids from a text file, one a line; blank lines at the end are ignored, blank lines inside are not."""
    try:
        lines = path.read_text(encoding="utf-8-sig").rstrip().splitlines()
    except (UnicodeDecodeError, OSError) as error:
        raise damaged(path, "UTF-8 text with one id a line", error) from error
    ids = pc.utf8_trim_whitespace(pa.array(lines, pa.string()))
    if len(ids) == 0:
        raise InputError(f"{path}: holds no ids; write one id a line")
    blank = np.flatnonzero(pc.equal(ids, "").to_numpy(zero_copy_only=False))
    if blank.size:
        raise InputError(f"{path}: line {blank[0] + 1} is blank; write one id on every line")
    return ids


def _split_ids(path: Path, table: pa.Table, id_column: str | None) -> tuple[pa.Array | None, pa.Table]:
    """The id column as strings, and the table without it."""
    if id_column is None:
        return None, table
    if id_column not in table.column_names:
        available = ", ".join(table.column_names) or "none"
        raise InputError(f"{path}: no id column {id_column!r}; columns are {available}")
    return _as_strings(path, table.column(id_column)), table.drop_columns([id_column])


def _as_strings(path: Path, ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Ids cast to one string array."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    try:
        return ids.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        message = f"{path}: ids of type {ids.type} are not text ({reason(error)}); write ids as strings"
        raise InputError(message) from error


def _pick_key(path: Path, entries: Entries, key: str | None, what: str) -> str:
    """The named entry, or else the only 2-D numeric one."""
    names = ", ".join(entries) or "none"
    if key is not None:
        if key not in entries:
            raise InputError(f"{path}: no {what} {key!r}; {what}s are {names}; pass --key NAME")
        return key
    matrices = [
        name for name, (shape, dtype) in entries.items() if len(shape) == 2 and dtype.kind in _VECTOR_KINDS
    ]
    if len(matrices) != 1:
        count = "no" if not matrices else "several"
        raise InputError(f"{path}: {count} 2-D numeric {what}s among {names}; pass --key NAME")
    return matrices[0]


def _check_vectors(path: Path, label: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse arrays that are not an (n, dim) array of numbers."""
    if dtype.kind not in _VECTOR_KINDS:
        raise InputError(f"{path}: {label} holds {dtype}, not numbers; vectors must be floats or integers")
    if len(shape) != 2:
        raise InputError(f"{path}: {label} has shape {tuple(shape)}; vectors need shape (n, dim)")


def _vector_file(path: Path, vectors: RowSource, ids: pa.Array | None, table: pa.Table) -> VectorFile:
    """A VectorFile whose metadata is None when no columns are left."""
    return VectorFile(vectors, ids, table if table.num_columns else None, path)


def _column(values: np.ndarray) -> pa.Array:
    """A 1-D numpy array as an Arrow column, in native byte order."""
    return pa.array(values.astype(values.dtype.newbyteorder("="), copy=False))



_ARRAY_OPTIONS = ("key", "transpose", "id_column")
_TABLE_OPTIONS = ("id_column", "vector_column")
# suffix -> (reader, the options of read_vectors that apply to it)
_FORMATS: dict[str, tuple[Callable[..., VectorFile], tuple[str, ...]]] = {
    ".npy": (_read_npy, ("transpose",)),
    ".npz": (_read_npz, _ARRAY_OPTIONS),
    ".pt": (_read_torch, _ARRAY_OPTIONS),
    ".pth": (_read_torch, _ARRAY_OPTIONS),
    ".h5": (_read_h5, _ARRAY_OPTIONS),
    ".hdf5": (_read_h5, _ARRAY_OPTIONS),
    ".parquet": (_read_tabular, _TABLE_OPTIONS),
    ".csv": (_read_tabular, _TABLE_OPTIONS),
    ".tsv": (_read_tabular, _TABLE_OPTIONS),
}
