"""Item keys: ids are unique within a frame, so a sequence Atlas holds the same id once per frame.

Checks run on whole Arrow arrays (hash-based), before anything is written.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embedscope.errors import VectorError

SHOWN_KEYS = 3
FRAME = "frame"


def generated_ids(start: int, stop: int) -> pa.Array:
    """Ids "start" .. "stop-1" as strings, made without a Python loop."""
    return pc.cast(pa.array(np.arange(start, stop, dtype=np.int64)), pa.string())


def as_ids(values: pa.Array | pa.ChunkedArray, label: str) -> pa.Array:
    """Ids as a string array, refusing missing or empty ones."""
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
