"""MiLoPYP's exploration files: `all_output_info.npz`, `interactive_info_parquet.gzip`, Phoenix
selections and the training-coordinates text file, read and written as MiLoPYP does.

Users keep their MiLoPYP runs and scripts: we read what MiLoPYP wrote and write what it reads.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from embedscope.errors import InputError, ParameterError
from embedscope.formats.atomic_files import atomic_output
from embedscope.formats.file_checks import damaged, reason, require_file

REQUIRED_KEYS = ("pred", "name", "coords")  # what MiLoPYP's plotting and 3D views read
OPTIONAL_KEYS = ("proj", "subvol", "subvols_2d")
TRAINING_HEADER = "image_name\tx_coord\ty_coord\tz_coord\n"
DEFAULT_IMAGE_PORT = 7000  # plot_2d.py's --host default
_NUMPY_DAMAGE = (ValueError, OSError, EOFError, SyntaxError, zipfile.BadZipFile, zlib.error)


@dataclass
class OutputInfo:
    """The arrays of one `all_output_info.npz`, checked to describe the same N items.

    `pred` is the embedding MiLoPYP plots; `subvol` and `subvols_2d` are (N, 1, bbox, bbox) patches.
    """

    pred: np.ndarray  # (N, d) float32
    names: np.ndarray  # (N,) str: the tomogram of each item
    coords: np.ndarray  # (N, 3) int32 x, y, z
    proj: np.ndarray | None = None  # (N, d) float32
    subvol: np.ndarray | None = None  # (N, 1, bbox, bbox) float32, the 3D (tomogram) patch
    subvols_2d: np.ndarray | None = None  # (N, 1, bbox, bbox) float32, the tilt patch (2d3d mode)

    def __len__(self) -> int:
        return len(self.names)


# ----------------------------------------------------------------------------- all_output_info.npz
def write_output_info(
    path: str | os.PathLike[str],
    proj: np.ndarray,
    pred: np.ndarray,
    names: Sequence[str] | np.ndarray,
    coords: np.ndarray,
    subvol: np.ndarray,
    subvols_2d: np.ndarray | None = None,
) -> None:
    """Write `all_output_info.npz` as MiLoPYP's inference does (uncompressed, same keys and dtypes).

    Keys: proj, pred (N, d) float32; name (N,) unicode; coords (N, 3) int32; subvol and, in 2d3d
    mode, subvols_2d (N, 1, bbox, bbox) float32.
    """
    arrays = {
        "proj": _float_matrix(proj, "proj"),
        "pred": _float_matrix(pred, "pred"),
        "name": np.asarray([str(name) for name in names], dtype=str),
        "coords": _coordinate_array(coords, "coords"),
        "subvol": _patches(subvol, "subvol"),
    }
    if subvols_2d is not None:
        arrays["subvols_2d"] = _patches(subvols_2d, "subvols_2d")
    lengths = {key: len(array) for key, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ParameterError(f"MiLoPYP output arrays must have one row per item; got lengths {_listed(lengths)}")
    with atomic_output(Path(path)) as temporary, open(temporary, "wb") as file:
        np.savez(file, **arrays)


def read_output_info(path: str | os.PathLike[str]) -> OutputInfo:
    """Read an `all_output_info.npz` written by MiLoPYP (3d or 2d3d mode) or by us.

    Names stored as numbers (pandas reads numeric image names as integers) become strings;
    NaN or infinite embeddings, missing keys and arrays of different lengths are refused.
    """
    path = Path(path)
    require_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except _NUMPY_DAMAGE as error:
        raise damaged(path, "a MiLoPYP .npz", error) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: holds a single array, not MiLoPYP's all_output_info.npz archive of arrays")
    with archive:
        missing = [key for key in REQUIRED_KEYS if key not in archive.files]
        if missing:
            raise InputError(f"{path}: no {', '.join(missing)} in the archive (it holds {', '.join(archive.files)}); "
                             "give the all_output_info.npz written by MiLoPYP's simsiam_test_hm_*.py")
        raw = {key: _load_key(archive, key, path) for key in REQUIRED_KEYS + OPTIONAL_KEYS if key in archive.files}
    info = OutputInfo(
        pred=_stored_matrix(raw["pred"], "pred", path),
        names=_stored_names(raw["name"], path),
        coords=_stored_coords(raw["coords"], path),
        proj=_stored_matrix(raw["proj"], "proj", path) if "proj" in raw else None,
        subvol=_stored_patches(raw["subvol"], "subvol", path) if "subvol" in raw else None,
        subvols_2d=_stored_patches(raw["subvols_2d"], "subvols_2d", path) if "subvols_2d" in raw else None,
    )
    lengths = {key: len(array) for key, array in raw.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"{path}: arrays of different lengths ({_listed(lengths)}); the file is inconsistent, "
                         "write it again with MiLoPYP's inference")
    if len(info) == 0:
        raise InputError(f"{path}: holds no items; MiLoPYP found no particles to embed")
    return info


def _load_key(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise InputError(f"{path}: {key!r} holds Python objects, which we do not unpickle; "
                             "save it as a plain numeric or unicode array") from error
        raise damaged(path, "a MiLoPYP .npz", error) from error
    except _NUMPY_DAMAGE as error:
        raise damaged(path, "a MiLoPYP .npz", error) from error


def _stored_matrix(array: np.ndarray, key: str, path: Path) -> np.ndarray:
    if array.ndim != 2 or array.dtype.kind not in "fiu":
        raise InputError(f"{path}: {key!r} must be an (N, d) numeric array; got {array.dtype} of shape {array.shape}")
    matrix = array.astype(np.float32, copy=False)
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise InputError(f"{path}: {key!r} has NaN or infinite values in {bad.size} row(s) (first: row {bad[0]}); "
                         "drop those items or run MiLoPYP's inference again")
    return matrix


def _stored_names(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim != 1:
        raise InputError(f"{path}: 'name' must be one name per item; got shape {array.shape}")
    if array.dtype.kind == "U":
        return array
    if array.dtype.kind == "S":
        try:
            return np.char.decode(array, "utf-8")
        except UnicodeDecodeError as error:
            raise InputError(f"{path}: 'name' holds bytes that are not UTF-8 ({reason(error)})") from error
    if array.dtype.kind in "iu":
        return array.astype(str)
    raise InputError(f"{path}: 'name' must hold tomogram names as text; got {array.dtype}")


def _stored_coords(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim != 2 or array.shape[1] != 3:
        raise InputError(f"{path}: 'coords' must be (N, 3) x, y, z; got shape {array.shape}")
    if array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all():
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise InputError(f"{path}: 'coords' must hold integer x, y, z; got {array.dtype} values")
    if array.size and (array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.int32).max):
        raise InputError(f"{path}: 'coords' has values beyond the int32 range; these are not voxel coordinates")
    return array.astype(np.int32, copy=False)


def _stored_patches(array: np.ndarray, key: str, path: Path) -> np.ndarray:
    if array.ndim == 3:
        array = array[:, np.newaxis]
    if array.ndim != 4 or array.shape[1] != 1 or array.dtype.kind not in "fiu":
        raise InputError(f"{path}: {key!r} must be (N, 1, bbox, bbox) patches; got {array.dtype} of shape "
                         f"{array.shape}")
    return array.astype(np.float32, copy=False)


def _float_matrix(array: np.ndarray, key: str) -> np.ndarray:
    matrix = np.asarray(array, dtype=np.float32)
    if matrix.ndim != 2:
        raise ParameterError(f"{key} must be an (N, d) array; got shape {matrix.shape}")
    return matrix


def _coordinate_array(coords: np.ndarray, key: str) -> np.ndarray:
    array = np.asarray(coords)
    if array.ndim != 2 or array.shape[1] != 3 or (array.size and array.dtype.kind not in "iu"):
        raise ParameterError(f"{key} must be (N, 3) integer x, y, z; got {array.dtype} of shape {array.shape}")
    return array.astype(np.int32)


def _patches(array: np.ndarray, key: str) -> np.ndarray:
    patches = np.asarray(array, dtype=np.float32)
    if patches.ndim == 3:
        patches = patches[:, np.newaxis]
    if patches.ndim != 4 or patches.shape[1] != 1:
        raise ParameterError(f"{key} must be (N, 1, bbox, bbox) patches; got shape {patches.shape}")
    return patches


# ----------------------------------------------------------------------------- interactive Parquet
def image_urls(count: int, port: int = DEFAULT_IMAGE_PORT) -> list[str]:
    """The `image` column plot_2d.py writes: the URL of `imgs/{i}.png` on a local http.server."""
    return [f"http://localhost:{port}/imgs/{index}.png" for index in range(count)]


def write_interactive_parquet(
    path: str | os.PathLike[str],
    names: Sequence[str] | np.ndarray,
    coords: np.ndarray,
    embeddings: np.ndarray,
    labels: np.ndarray,
    image_urls: Sequence[str],
) -> None:
    """Write `interactive_info_parquet.gzip` with the columns and types plot_2d.py's pandas writes.

    Columns: name (string), coord (list of the 3 coordinates as strings), embeddings (list of
    float32), label (int64), image (string); gzip compression, no index column.
    """
    coords = _coordinate_array(coords, "coords")
    vectors = _float_matrix(embeddings, "embeddings")
    labels = np.asarray(labels)
    count = len(coords)
    lengths = {"names": len(names), "coords": count, "embeddings": len(vectors), "labels": len(labels),
               "image_urls": len(image_urls)}
    if len(set(lengths.values())) > 1:
        raise ParameterError(f"interactive Parquet columns must have one row per item; got lengths {_listed(lengths)}")
    if labels.size and labels.dtype.kind not in "iu":
        raise ParameterError(f"labels must be integers; got {labels.dtype}")
    table = pa.table({
        "name": pa.array([str(name) for name in names], pa.string()),
        "coord": _list_column(pc.cast(pa.array(coords.reshape(-1)), pa.string()), 3, count),
        "embeddings": _list_column(pa.array(vectors.reshape(-1)), vectors.shape[1], count),
        "label": pa.array(labels.astype(np.int64), pa.int64()),
        "image": pa.array([str(url) for url in image_urls], pa.string()),
    })
    with atomic_output(Path(path)) as temporary:
        pq.write_table(table, temporary, compression="gzip")


def _list_column(values: pa.Array, width: int, count: int) -> pa.Array:
    offsets = pa.array(np.arange(count + 1, dtype=np.int32) * width)
    return pa.ListArray.from_arrays(offsets, values)


def read_selection_parquets(source: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """The tomogram names and (N, 3) int32 coordinates in one Parquet file or a folder of them.

    Reads Phoenix exports and MiLoPYP's own Parquet (columns `name` and `coord`, the coordinates as
    strings) and our exports (columns `tomogram`, `x`, `y`, `z`). A folder's `*.parquet` files are
    read in name order (Phoenix names them by time), which MiLoPYP's glob left unspecified.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(file for file in source.glob("*.parquet") if file.is_file() and not file.name.startswith("."))
        if not files:
            raise InputError(f"{source}: no .parquet files in this folder; export a selection from the viewer first")
    else:
        require_file(source)
        files = [source]
    parts = [_read_selection(file) for file in files]
    names = np.concatenate([names for names, _ in parts]).astype(str)
    return names, np.concatenate([coords for _, coords in parts])


def _read_selection(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        schema = pq.read_schema(path)
        if {"name", "coord"} <= set(schema.names):
            table = pq.read_table(path, columns=["name", "coord"])
            names, coords = table.column("name"), _coords_from_lists(table.column("coord").combine_chunks(), path)
        elif {"tomogram", "x", "y", "z"} <= set(schema.names):
            table = pq.read_table(path, columns=["tomogram", "x", "y", "z"])
            names = table.column("tomogram")
            coords = np.column_stack([_integers(table.column(axis), axis, path) for axis in "xyz"])
        else:
            raise InputError(f"{path}: has neither MiLoPYP's name and coord columns nor tomogram, x, y, z "
                             f"(it has {', '.join(schema.names)}); give a Parquet exported from the viewer")
    except (pa.ArrowException, OSError) as error:
        raise damaged(path, "Parquet", error) from error
    if names.null_count:
        raise InputError(f"{path}: {names.null_count} row(s) have no tomogram name; export the selection again")
    return np.asarray(names.to_pylist(), dtype=str), coords.astype(np.int32).reshape(-1, 3)


def _coords_from_lists(column: pa.Array, path: Path) -> np.ndarray:
    if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
        raise InputError(f"{path}: 'coord' must be a list of x, y, z per row; got {column.type}")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if column.null_count or (lengths != 3).any():
        raise InputError(f"{path}: every 'coord' must hold exactly 3 values (x, y, z); some rows do not")
    return _integers(pc.list_flatten(column), "coord", path).reshape(-1, 3)


def _integers(values: pa.Array | pa.ChunkedArray, what: str, path: Path) -> np.ndarray:
    try:
        return pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise InputError(f"{path}: {what!r} must hold integer coordinates ({reason(error)})") from error


# ----------------------------------------------------------------------------- training coordinates
def write_training_coords(
    path: str | os.PathLike[str],
    names: Sequence[str] | np.ndarray,
    coords: np.ndarray,
    if_double: bool = False,
) -> None:
    """Write the tab-separated coordinates file of interactive_to_training_coords.py, byte for byte.

    Header `image_name x_coord y_coord z_coord`; one line per item in the order given (no sorting,
    no de-duplication); `if_double` writes z times two as a float (`60` -> `120.0`), for runs whose
    tomograms MiLoPYP binned in z.
    """
    coords = _coordinate_array(coords, "coords")
    if len(names) != len(coords):
        raise ParameterError(f"training coordinates need one name per coordinate; got {len(names)} names "
                             f"and {len(coords)} coordinates")
    lines = [TRAINING_HEADER]
    for name, (x, y, z) in zip(names, coords.tolist()):
        name = str(name)
        if any(character in name for character in "\t\n\r"):
            raise ParameterError(f"tomogram name {name!r} has a tab or line break, which the tab-separated "
                                 "coordinates file cannot hold; rename the tomogram")
        depth = str(float(z) * 2) if if_double else str(z)
        lines.append(f"{name}\t{x}\t{y}\t{depth}\n")
    with atomic_output(Path(path)) as temporary:
        temporary.write_bytes("".join(lines).encode("utf-8"))


# ----------------------------------------------------------------------------- shared
def _listed(lengths: dict[str, int]) -> str:
    return ", ".join(f"{key} {length}" for key, length in lengths.items())


