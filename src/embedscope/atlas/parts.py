"""Item part files: stream validated rows into Parquet and read vectors back without per-row work.

Vectors are stored as fixed_size_list<float32>[dim], uncompressed and without dictionaries, so a
read is a flat copy of the pages; the other columns are compressed with zstd.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedscope.atlas.parquet_pages import read_float_column
from embedscope.errors import AtlasError, VectorError
from embedscope.formats.vector_files import RowSource

ROW_GROUP_ROWS = 65_536
PART_BYTES = 512 * 2**20
PAGE_BYTES = 16 * 2**20
SHOWN_BAD_ROWS = 5



def part_name(number: int) -> str:
    """The file name of part `number`, relative to the Atlas."""
    return f"items/part-{number:05d}.parquet"


def vector_type(dim: int) -> pa.DataType:
    """The Arrow type of the vector column: a fixed-size list of non-null float32."""
    return pa.list_(pa.field("element", pa.float32(), nullable=False), dim)


def write_parts(
    atlas_path: Path,
    first_part: int,
    first_row: int,
    vectors: RowSource,
    ids: pa.Array,
    metadata: pa.Table | None,
    label: str,
    advance: Callable[[int], None],
) -> list[dict[str, Any]]:
    """Write rows into new part files and return their manifest entries (not yet committed).

    Vectors are cast to float32 and checked chunk by chunk; a NaN or inf anywhere removes the
    files written so far and raises, naming the first bad rows of `label` and their count.
    """
    n, dim = vectors.shape
    rows_per_part = max(ROW_GROUP_ROWS, PART_BYTES // (4 * dim) // ROW_GROUP_ROWS * ROW_GROUP_ROWS)
    entries: list[dict[str, Any]] = []
    written: list[Path] = []
    try:
        for start in range(0, n, rows_per_part):
            stop = min(n, start + rows_per_part)
            number = first_part + len(entries)
            final = atlas_path / part_name(number)
            temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
            written.append(temporary)
            _write_one_part(temporary, first_row + start, vectors, ids, metadata, start, stop, advance)
            os.replace(temporary, final)
            written[-1] = final
            entries.append({"file": part_name(number), "rows": stop - start, "first_row": first_row + start})
    except _BadRows as bad:
        for path in written:
            path.unlink(missing_ok=True)
        rows = bad.rows + _bad_rows_after(vectors, bad.stop)
        shown = ", ".join(str(row) for row in rows[:SHOWN_BAD_ROWS])
        more = ", ..." if len(rows) > SHOWN_BAD_ROWS else ""
        raise VectorError(
            f"{label}: {len(rows)} vector(s) contain NaN or inf (rows {shown}{more}); "
            "fix or drop those rows before importing"
        ) from None
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return entries


class _BadRows(Exception):
    def __init__(self, rows: list[int], stop: int) -> None:
        self.rows, self.stop = rows, stop


def _write_one_part(
    path: Path,
    first_row: int,
    vectors: RowSource,
    ids: pa.Array,
    metadata: pa.Table | None,
    start: int,
    stop: int,
    advance: Callable[[int], None],
) -> None:
    writer: pq.ParquetWriter | None = None
    try:
        for chunk_start in range(start, stop, ROW_GROUP_ROWS):
            chunk_stop = min(stop, chunk_start + ROW_GROUP_ROWS)
            block = _finite_float32(vectors[chunk_start:chunk_stop], chunk_start)
            table = _chunk_table(first_row + chunk_start - start, block, ids, metadata, chunk_start, chunk_stop)
            if writer is None:
                writer = _open_writer(path, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            advance(chunk_stop - chunk_start)
    finally:
        if writer is not None:
            writer.close()


def _open_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    others = [name for name in schema.names if name != "vector"]
    compression = {name: "zstd" for name in others} | {"vector": "none"}
    return pq.ParquetWriter(
        path,
        schema,
        compression=compression,
        use_dictionary=others,
        write_statistics=others,
        data_page_size=PAGE_BYTES,
    )


def _chunk_table(
    first_row: int,
    block: np.ndarray,
    ids: pa.Array,
    metadata: pa.Table | None,
    start: int,
    stop: int,
) -> pa.Table:
    count, dim = block.shape
    columns: dict[str, pa.Array] = {
        "row": pa.array(np.arange(first_row, first_row + count, dtype=np.int64)),
        "id": ids[start:stop],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), type=vector_type(dim)),
    }
    if metadata is not None:
        for name in metadata.column_names:
            columns[name] = metadata.column(name).slice(start, stop - start)
    return pa.table(columns)


def _finite_float32(rows: np.ndarray, offset: int) -> np.ndarray:
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        block = np.ascontiguousarray(rows, dtype=np.float32)
    # A float64 row sum cannot overflow for float32 values, so it is non-finite only for NaN/inf.
    sums = np.add.reduce(block, axis=1, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(sums))
    if bad.size:
        raise _BadRows([offset + int(row) for row in bad], offset + len(block))
    return block


def _bad_rows_after(vectors: RowSource, start: int) -> list[int]:
    rows: list[int] = []
    for chunk_start in range(start, vectors.shape[0], ROW_GROUP_ROWS):
        block = np.asarray(vectors[chunk_start : chunk_start + ROW_GROUP_ROWS], dtype=np.float32)
        rows.extend(chunk_start + np.flatnonzero(~np.isfinite(block).all(axis=1)))
    return [int(row) for row in rows]


def read_part_vectors(atlas_path: Path, parts: list[dict[str, Any]], dim: int, n: int) -> np.ndarray:
    """Every vector of the Atlas as one (n, dim) float32 array, each part read straight into it."""
    out = np.empty((n, dim), dtype=np.float32)
    for part in parts:
        start = part["first_row"]
        _read_groups(atlas_path / part["file"], dim, out[start : start + part["rows"]], None)
    return out


def read_rows_vectors(
    atlas_path: Path, parts: list[dict[str, Any]], dim: int, rows: np.ndarray
) -> np.ndarray:
    """The vectors of the given rows, in the given order, reading only the row groups that hold them."""
    out = np.empty((len(rows), dim), dtype=np.float32)
    starts = np.array([part["first_row"] for part in parts], dtype=np.int64)
    owner = np.searchsorted(starts, rows, side="right") - 1
    for index in np.unique(owner):
        part = parts[index]
        wanted = np.flatnonzero(owner == index)
        local = rows[wanted] - part["first_row"]
        out[wanted] = _part_rows(atlas_path / part["file"], dim, local)
    return out


def _part_rows(path: Path, dim: int, local: np.ndarray) -> np.ndarray:
    metadata = _open_part(path).metadata
    sizes = np.array([metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)])
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    owner = np.searchsorted(bounds, local, side="right") - 1
    groups = np.unique(owner)
    block = np.empty((int(sizes[groups].sum()), dim), dtype=np.float32)
    _read_groups(path, dim, block, groups.tolist())
    group_offsets = np.cumsum(np.concatenate([[0], sizes[groups][:-1]]))
    position = np.searchsorted(groups, owner)
    return block[group_offsets[position] + local - bounds[owner]]


def _read_groups(path: Path, dim: int, out: np.ndarray, groups: list[int] | None) -> None:
    """Fill `out` with the vectors of row groups `groups` (all if None): from the pages, else via Arrow."""
    parquet = _open_part(path)
    column = next(i for i in range(len(parquet.schema)) if parquet.schema.column(i).path.startswith("vector."))
    if read_float_column(parquet, path, column, out, groups):
        return
    groups = list(range(parquet.num_row_groups)) if groups is None else groups
    table = parquet.read_row_groups(groups, columns=["vector"], use_threads=True)
    position = 0
    for chunk in table.column("vector").chunks:
        values = chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
        out[position : position + len(values)] = values
        position += len(values)


def _open_part(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise AtlasError(f"{path} is missing or damaged ({error}); rebuild the Atlas") from error
