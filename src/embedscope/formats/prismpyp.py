"""prismPYP's files: `data_for_export.parquet` as `prismpyp eval2d` writes it, the selections `prismpyp intersect`
reads (prismPYP's own, Phoenix's and our viewer's exports) and `inference/embeddings.pth`.

Users keep their prismPYP runs and scripts: we read what prismPYP and its viewers wrote and write what it reads.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from embedscope.errors import InputError, ParameterError
from embedscope.formats.atomic_files import atomic_output
from embedscope.formats.file_checks import damaged, reason, require_file
from embedscope.formats.torch_files import load_torch_file

NAME = "micrograph_name"
EMBEDDINGS = "embeddings"
EXPORT_COLUMNS = ("cluster_id", "umap_fit_x", "umap_fit_y", "image_thumbnails", NAME)  # eval2d's order
NAME_SOURCES = ("url", "micrograph_id", "id")  # Phoenix's export, eval3d's patches, our viewer's selections
CLUSTER_COLUMNS = ("cluster_id", "cluster")  # prismPYP's and Phoenix's, then ours; else one `<layer>_cluster`
LAYER_CLUSTER_SUFFIX = "_cluster"
# Stripped from the end of a derived name, repeatedly: Phoenix's images, prismPYP's webp, micrograph files.
FILE_SUFFIXES = (".mrc.combined.jpg", ".combined.jpg", ".webp", ".jpg", ".png", ".mrcs", ".mrc", ".tiff", ".tif",
                 ".eer")
POWER_SPECTRUM_SUFFIXES = ("_ctffit", "_ctffind")  # the diagnostic webp beside each micrograph's
PARQUET_MAGIC = b"PAR1"
_INDEX_COLUMN = re.compile(r"__index_level_\d+__")  # pandas' to_parquet of a frame with a filtered index
SHOWN = 12  # classes or columns named in an error


@dataclass
class PrismTable:
    """One selection or export: a micrograph name and maybe a cluster per row, and the file's columns.

    `table` has a `micrograph_name` column (appended when derived) and one row per micrograph.
    """

    names: list[str]
    cluster_id: np.ndarray | None  # (N,) int64, or None when the file has no cluster column
    table: pa.Table
    cluster_column: str | None = None  # the column `cluster_id` came from

    def __len__(self) -> int:
        return len(self.names)


# ----------------------------------------------------------------------------- data_for_export.parquet
def write_export_parquet(
    path: str | os.PathLike[str],
    *,
    cluster_id: np.ndarray,
    umap_xy: np.ndarray,
    thumbnails: Sequence[str],
    names: Sequence[str],
    metadata: pa.Table | None,
    embeddings: np.ndarray,
) -> Path:
    """Write `data_for_export.parquet` with the columns, types and gzip compression of eval2d's pandas.

    Columns: cluster_id (int64, faiss's labels), umap_fit_x and umap_fit_y (float32, umap-learn's; eval3d's
    (N, 3) positions add umap_fit_z after them), image_thumbnails
    and micrograph_name (string), the metadata columns (joined by micrograph_name), embeddings (list of double: the
    float32 L2-normalised vector, as `normalize(...).tolist()` stores it); no index column. Like prismPYP's inner
    join, micrographs without a metadata row are left out of the file (prismPYP then fails on the length mismatch);
    with `metadata=None` every micrograph is written.
    """
    count = len(names)
    vectors = _normalised(embeddings)
    umap_xy = np.asarray(umap_xy, dtype=np.float32)
    labels = np.asarray(cluster_id)
    lengths = {"cluster_id": len(labels), "umap_xy": len(umap_xy), "thumbnails": len(thumbnails), "names": count,
               "embeddings": len(vectors)}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{key} {length}" for key, length in lengths.items())
        raise ParameterError(f"data_for_export needs one row per micrograph; got lengths {shown}")
    if umap_xy.ndim != 2 or umap_xy.shape[1] not in (2, 3):
        raise ParameterError(f"umap_xy must be (N, 2) or (N, 3) positions; got shape {umap_xy.shape}")
    if labels.size and labels.dtype.kind not in "iu":
        raise ParameterError(f"cluster_id must hold integer labels; got {labels.dtype}")
    positions = {f"umap_fit_{axis}": pa.array(umap_xy[:, index], pa.float32()) for index, axis in enumerate("xyz")
                 if index < umap_xy.shape[1]}
    table = pa.table({
        "cluster_id": pa.array(labels.astype(np.int64), pa.int64()),
        **positions,
        "image_thumbnails": pa.array([str(thumbnail) for thumbnail in thumbnails], pa.string()),
        NAME: pa.array([str(name) for name in names], pa.string()),
        EMBEDDINGS: _list_column(vectors),
    })
    if metadata is not None:
        table = _joined(table, metadata)
    path = Path(path)
    with atomic_output(path) as temporary:
        pq.write_table(table, temporary, compression="gzip")
    return path


def _normalised(embeddings: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm in float32, zero rows left zero, as sklearn's `normalize` does."""
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim != 2:
        raise ParameterError(f"embeddings must be an (N, D) array; got shape {vectors.shape}")
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise ParameterError(f"embeddings have NaN or infinite values in {bad.size} row(s) (first: row {bad[0]})")
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    norms[norms == 0] = 1
    return vectors / norms[:, np.newaxis]


def _list_column(vectors: np.ndarray) -> pa.Array:
    """Each row as a list of doubles, the type pandas gives a column of Python float lists."""
    offsets = pa.array(np.arange(len(vectors) + 1, dtype=np.int32) * vectors.shape[1])
    return pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1).astype(np.float64)))


def _joined(table: pa.Table, metadata: pa.Table) -> pa.Table:
    """The rows of `table` with a metadata row, in `table`'s order, with the metadata columns before embeddings."""
    if NAME not in metadata.column_names:
        raise ParameterError(f"metadata has no {NAME} column to join on (it has {_listed(metadata.column_names)})")
    extra = [name for name in metadata.column_names if name != NAME]
    clashes = [name for name in extra if name in table.column_names]
    if clashes:
        raise ParameterError(f"metadata columns {', '.join(clashes)} clash with data_for_export's own; rename them")
    keys = pc.cast(metadata.column(NAME), pa.string()).to_pylist()
    repeated = sorted(key for key, times in Counter(keys).items() if times > 1)
    if repeated:
        raise ParameterError(f"metadata has several rows for micrograph(s) {_listed(repeated)}; keep one each")
    position = {key: row for row, key in enumerate(keys)}
    names = table.column(NAME).to_pylist()
    kept = [row for row, name in enumerate(names) if name in position]
    table = table.take(pa.array(kept, pa.int64()))
    rows = metadata.take(pa.array([position[names[row]] for row in kept], pa.int64()))
    for name in extra:
        table = table.add_column(table.num_columns - 1, name, rows.column(name))
    return table


# ----------------------------------------------------------------------------- reading selections
def read_export_parquet(path: str | os.PathLike[str]) -> PrismTable:
    """Read a `data_for_export.parquet`, a Parquet prismPYP, pandas or Phoenix wrote, or our viewer's CSV/Parquet.

    Names come from `micrograph_name`, else derived from `url`, `micrograph_id` or `id` (the file name without
    folders, micrograph and webp suffixes or `_ctffit`); a name seen before drops its row, as prismPYP does for
    `micrograph_id` (one row per patch). Clusters come from `cluster_id`, `cluster` or one `<layer>_cluster` column.
    """
    path = Path(path)
    require_file(path)
    table = _read_table(path)
    table = table.drop_columns([name for name in table.column_names if _INDEX_COLUMN.fullmatch(name)])
    table = _with_names(table, path)
    names = table.column(NAME).to_pylist()
    first = np.sort(np.unique(np.asarray(names, dtype=object), return_index=True)[1]) if names else np.arange(0)
    if len(first) < len(names):
        table = table.take(pa.array(first, pa.int64()))
        names = [names[row] for row in first]
    column = _cluster_column(table.column_names, path)
    clusters = _cluster_ids(table.column(column), column, path) if column else None
    return PrismTable(names, clusters, table, column)


def _read_table(path: Path) -> pa.Table:
    """A Parquet file (found by its magic bytes, whatever its name: eval3d writes `.parquet.zip`) or a CSV file."""
    try:
        with path.open("rb") as file:
            head = file.read(len(PARQUET_MAGIC))
        if head == PARQUET_MAGIC:
            return pq.read_table(path)
        if path.suffix.lower() == ".csv":
            text_columns = {name: pa.string() for name in (NAME, *NAME_SOURCES)}
            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=text_columns))
    except (pa.ArrowException, OSError) as error:
        raise damaged(path, "CSV" if path.suffix.lower() == ".csv" else "Parquet", error) from error
    raise InputError(f"{path}: neither a Parquet file nor a .csv; give prismPYP's data_for_export.parquet or a "
                     "selection exported from the viewer")


def _with_names(table: pa.Table, path: Path) -> pa.Table:
    """`table` with a string `micrograph_name` column: its own, or one derived and appended as prismPYP does."""
    if NAME in table.column_names:
        names = _texts(table.column(NAME), NAME, path)
        return table.set_column(table.column_names.index(NAME), NAME, pa.array(names, pa.string()))
    source = next((name for name in NAME_SOURCES if name in table.column_names), None)
    if source is None:
        raise InputError(f"{path}: no {NAME}, url, micrograph_id or id column to name the micrographs (it has "
                         f"{_listed(table.column_names)}); give prismPYP's data_for_export.parquet or a selection")
    values = _texts(table.column(source), source, path)
    derived = [micrograph_name(value) for value in values]
    if "" in derived:
        raise InputError(f"{path}: {source} {values[derived.index('')]!r} names no micrograph; fix that row")
    return table.append_column(NAME, pa.array(derived, pa.string()))


def micrograph_name(value: str) -> str:
    """The micrograph a path or URL names: its last part without file suffixes or prismPYP's `_ctffit`."""
    name = value.rsplit("/", 1)[-1]
    while suffix := next((end for end in FILE_SUFFIXES if name.lower().endswith(end)), None):
        name = name[: -len(suffix)]
    spectrum = next((end for end in POWER_SPECTRUM_SUFFIXES if name.endswith(end)), None)
    return name[: -len(spectrum)] if spectrum else name


def _texts(column: pa.ChunkedArray, name: str, path: Path) -> list[str]:
    """The column's values as text; a missing or empty value is refused, as every micrograph needs a name."""
    try:
        values = pc.cast(column, pa.string()).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise InputError(f"{path}: {name!r} must hold names as text; got {column.type} ({reason(error)})") from error
    missing = sum(1 for value in values if not value)
    if missing:
        raise InputError(f"{path}: {missing} row(s) have no {name}; every micrograph needs one")
    return values


def _cluster_column(columns: list[str], path: Path) -> str | None:
    named = next((name for name in CLUSTER_COLUMNS if name in columns), None)
    if named is not None:
        return named
    layers = [name for name in columns if name.endswith(LAYER_CLUSTER_SUFFIX)]
    if len(layers) > 1:
        raise InputError(f"{path}: several cluster columns ({', '.join(layers)}); rename the one to use to "
                         "'cluster' or export the selection from one clustering layer")
    return layers[0] if layers else None


def _cluster_ids(column: pa.ChunkedArray, name: str, path: Path) -> np.ndarray:
    if column.null_count:
        raise InputError(f"{path}: {column.null_count} row(s) have no {name}; cluster every micrograph or drop them")
    try:
        return pc.cast(column, pa.int64()).to_numpy().astype(np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise InputError(f"{path}: {name!r} must hold integer cluster labels; got {column.type} "
                         f"({reason(error)})") from error


# ----------------------------------------------------------------------------- embeddings.pth
def read_embeddings_pth(path: str | os.PathLike[str]) -> np.ndarray:
    """The (N, D) float32 embeddings of prismPYP's `inference/embeddings.pth`, in its `.micrographs` order.

    Reads without torch or a GPU, so a tensor saved on `cuda:0` loads anywhere; a dict holding one tensor works too.
    """
    path = Path(path)
    require_file(path)
    loaded = load_torch_file(path)
    if isinstance(loaded, dict):
        tensors = {key: value for key, value in loaded.items() if isinstance(value, np.ndarray)}
        if len(tensors) != 1:
            raise InputError(f"{path}: holds {len(tensors)} tensors ({_listed([str(key) for key in tensors])}); "
                             "save the one (N, D) embeddings tensor with torch.save")
        loaded = next(iter(tensors.values()))
    if not isinstance(loaded, np.ndarray) or loaded.ndim != 2 or loaded.dtype.kind != "f":
        shape = f"{loaded.dtype} of shape {loaded.shape}" if isinstance(loaded, np.ndarray) else type(loaded).__name__
        raise InputError(f"{path}: must hold one (N, D) float tensor of embeddings; got {shape}")
    if len(loaded) == 0:
        raise InputError(f"{path}: holds no embeddings; run prismPYP's eval2d again")
    vectors = loaded.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise InputError(f"{path}: NaN or infinite values in {bad.size} row(s) (first: row {bad[0]}); "
                         "the model diverged, so embed the micrographs again")
    return vectors


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(str(name) for name in names[:SHOWN])
    return shown + (", ..." if len(names) > SHOWN else "")
