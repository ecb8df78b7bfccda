"""Checks on new items before they are written: vector shape, ids and metadata types.

Ids are unique within a frame, so a sequence Atlas holds the same id once per frame; the checks run
on whole Arrow arrays (hash-based), never row by row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embedscope.errors import AtlasError, VectorError
from embedscope.formats.vector_files import RowSource

SHOWN_KEYS = 3
FRAME = "frame"
RESERVED = ("row", "id", "vector")


def generated_ids(start: int, stop: int) -> pa.Array:
    """Ids "start" .. "stop-1" as strings, made without a Python loop."""
    return pc.cast(pa.array(np.arange(start, stop, dtype=np.int64)), pa.string())


def as_ids(values: pa.Array | pa.ChunkedArray | Sequence[str] | np.ndarray, label: str) -> pa.Array:
    """Ids as a string array (from Arrow, numpy, pandas or a list), refusing missing or empty ones."""
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        values = pa.array(values)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    ids = pc.cast(values, pa.string())
    empty = pc.or_kleene(pc.is_null(ids), pc.equal(pc.utf8_length(ids), 0)).fill_null(True)
    bad = np.flatnonzero(empty.to_numpy(zero_copy_only=False))
    if bad.size:
        raise VectorError(
            f"{label}: {bad.size} id(s) are missing or empty (rows {_first(bad)}); give every item an id"
        )
    return ids


def item_keys(ids: pa.Array, frames: pa.Array | None, sequence: bool) -> pa.Array:
    """The key that must be unique: the id, or frame and id together in a sequence Atlas."""
    if not sequence:
        return ids
    frame_text = pa.repeat("", len(ids)) if frames is None else pc.cast(frames, pa.string()).fill_null("")
    return pc.binary_join_element_wise(frame_text, ids, "\x1f")


def check_unique(keys: pa.Array, label: str) -> None:
    """Refuse keys that repeat, naming the first few."""
    counts = pc.value_counts(keys)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if len(repeated):
        raise VectorError(
            f"{label}: {len(repeated)} id(s) occur more than once ({_shown(repeated)}); "
            "ids must be unique (within a frame, for sequences)"
        )


def check_new(keys: pa.Array, existing: pa.Array, label: str) -> None:
    """Refuse keys that the Atlas already holds, naming the first few."""
    if len(existing) == 0:
        return
    clashing = keys.filter(pc.is_in(keys, value_set=existing))
    if len(clashing):
        raise VectorError(
            f"{label}: {len(clashing)} id(s) are already in the Atlas ({_shown(clashing)}); "
            "use other ids, or tag the items with a frame or group"
        )


def check_vectors_shape(vectors: RowSource, dim: int, label: str) -> int:
    """The number of vectors, after checking they are an (n, dim) array of real numbers."""
    shape = tuple(vectors.shape)
    if len(shape) != 2:
        raise VectorError(f"{label}: vectors must have shape (n, dim); got {shape}")
    if shape[1] != dim:
        raise VectorError(f"{label}: vectors have dim {shape[1]} but the Atlas has dim {dim}")
    if not (np.issubdtype(vectors.dtype, np.number) and not np.issubdtype(vectors.dtype, np.complexfloating)):
        raise VectorError(f"{label}: vectors must be real numbers; got {vectors.dtype}")
    return shape[0]


def conformed_metadata(
    metadata: pa.Table | Mapping[str, Any] | None, count: int, existing: pa.Schema | None, label: str
) -> pa.Table | None:
    """Metadata with one row per vector, no reserved names, and the Atlas's types where it has them.

    An Arrow table, a pandas DataFrame (its index dropped) or a mapping of column names to values all work.
    """
    metadata = _as_table(metadata)
    if metadata is None or metadata.num_columns == 0:
        return None
    if metadata.num_rows != count:
        raise VectorError(f"{label}: metadata has {metadata.num_rows} rows for {count} vectors")
    clashing = [name for name in metadata.column_names if name in RESERVED]
    if clashing:
        raise AtlasError(f"{label}: metadata column {clashing[0]!r} is reserved; rename it")
    columns = {}
    for name in metadata.column_names:
        column = metadata.column(name)
        if existing is not None and name in existing.names and existing.field(name).type != column.type:
            column = _cast_like(column, existing.field(name).type, name, label)
        columns[name] = column.combine_chunks()
    return pa.table(columns)


def _as_table(metadata: pa.Table | Mapping[str, Any] | None) -> pa.Table | None:
    if metadata is None or isinstance(metadata, pa.Table):
        return metadata
    try:
        if hasattr(metadata, "iloc"):  # a pandas DataFrame, without importing pandas to ask
            return pa.Table.from_pandas(metadata, preserve_index=False)
        return pa.table({name: pa.array(values) for name, values in dict(metadata).items()})
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as error:
        raise VectorError(
            f"metadata cannot be stored as columns ({error}); give one value of one type per item"
        ) from error


def _cast_like(column: pa.ChunkedArray, target: pa.DataType, name: str, label: str) -> pa.ChunkedArray:
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise AtlasError(
            f"{label}: column {name!r} is {column.type} but the Atlas holds {target}; make the types agree"
        ) from None


def _shown(keys: pa.Array) -> str:
    names = [_readable(str(key)) for key in keys[:SHOWN_KEYS].to_pylist()]
    more = ", ..." if len(keys) > SHOWN_KEYS else ""
    return ", ".join(names) + more


def _readable(key: str) -> str:
    frame, separator, item = key.rpartition("\x1f")
    return f"{item!r} in frame {frame}" if separator else repr(key)


def _first(rows: np.ndarray) -> str:
    more = ", ..." if rows.size > SHOWN_KEYS else ""
    return ", ".join(str(int(row)) for row in rows[:SHOWN_KEYS]) + more
