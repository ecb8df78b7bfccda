"""What the viewer can show of an Atlas: its map layers and its columns, each a category, a number or text.

Computed once per Atlas state from `selection_table`, so the viewer names columns exactly as
`embedscope export --where` does (`<layer>_<column>` for layer columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from embedscope.atlas import Atlas
from embedscope.errors import ParameterError

MAX_CATEGORIES = 256
MAX_FRAMES = 32_767  # frame codes are int16
SAMPLE_ROWS = 65_536  # distinct values are counted on a sample first, so a column of ids is told quickly
POSITIONS = ("x", "y", "z")
FRAME = "frame"
GROUP = "group"
ID = "id"


@dataclass(frozen=True)
class Column:
    """One column the viewer offers: a category (with its sorted values), a number, or searchable text."""

    name: str
    kind: str
    categories: pa.Array | None = None

    def describe(self) -> dict[str, Any]:
        """The column as `/api/meta` lists it."""
        if self.categories is None:
            return {"type": self.kind}
        return {"type": self.kind, "categories": category_names(self.categories)}


def map_layers(atlas: Atlas) -> dict[str, dict[str, Any]]:
    """The layers with x, y (and maybe z) made for every current item, as {name: {dims, columns}}."""
    layers = {}
    for name, entry in atlas.layers().items():
        columns = entry["columns"]
        if "x" not in columns or "y" not in columns:
            continue
        if pq.read_metadata(atlas.path / entry["file"]).num_rows != atlas.n:
            continue  # made for fewer items; selection_table leaves it out too
        layers[name] = {"dims": 3 if "z" in columns else 2, "columns": list(columns)}
    return layers


def choose_layer(atlas: Atlas, layers: dict[str, dict[str, Any]], requested: str | None) -> str:
    """The layer the viewer opens on: the one asked for, else the newest 2D map layer, else the newest 3D one."""
    if requested is not None:
        if requested not in layers:
            known = ", ".join(sorted(layers)) or "none"
            raise ParameterError(f"--layer {requested!r} is not a map layer of {atlas.path} (map layers: {known})")
        return requested
    if not layers:
        raise ParameterError(f"{atlas.path} has no map layer to show; make one with `embedscope map {atlas.path}`")
    created = {name: entry["created"] for name, entry in atlas.layers().items()}
    return max(layers, key=lambda name: (layers[name]["dims"] == 2, created[name]))


def describe_columns(table: pa.Table, layers: dict[str, dict[str, Any]]) -> dict[str, Column]:
    """Every column of a selection table the viewer can colour by or search, except map positions.

    Lists, structs and binary columns are left out; `id` is always text.
    """
    positions = {f"{layer}_{axis}" for layer in layers for axis in POSITIONS}
    columns = {}
    for field in table.schema:
        if field.name == "row" or field.name in positions:
            continue
        values = _plain(table.column(field.name))
        if not _shown(values.type):
            continue
        columns[field.name] = Column(field.name, "text") if field.name == ID else _classify(field.name, values)
    return columns


def category_codes(values: pa.ChunkedArray, categories: pa.Array) -> np.ndarray:
    """Each value's index in `categories` as int16, -1 where missing."""
    codes = pc.index_in(_plain(values), value_set=categories).fill_null(-1)
    return codes.to_numpy().astype(np.int16)


def numbers(values: pa.ChunkedArray) -> np.ndarray:
    """The values as float32, NaN where missing."""
    floats = pc.cast(_plain(values), pa.float64()).fill_null(np.nan)
    return floats.to_numpy().astype(np.float32)


def distinct_sorted(values: pa.ChunkedArray, most: int) -> pa.Array | None:
    """The distinct non-missing values in ascending order, or None when there are more than `most`."""
    values = _plain(values)
    if len(pc.unique(values.slice(0, SAMPLE_ROWS)).drop_null()) > most:
        return None
    distinct = pc.unique(values).drop_null()
    if len(distinct) > most:
        return None
    return distinct.take(pc.array_sort_indices(distinct))


def category_names(categories: pa.Array) -> list[str]:
    """Category values as the strings the viewer shows ("3", "true", "t1")."""
    return pc.cast(categories, pa.string()).to_pylist()


def _classify(name: str, values: pa.ChunkedArray) -> Column:
    kind = values.type
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return Column(name, "number")
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind) or is_text(kind):
        categories = distinct_sorted(values, MAX_CATEGORIES)
        if categories is not None:
            return Column(name, "category", categories)
        return Column(name, "number" if pa.types.is_integer(kind) else "text")
    return Column(name, "text")


def _plain(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary-encoded columns (pandas categoricals) as their value type."""
    if pa.types.is_dictionary(values.type):
        return values.cast(values.type.value_type)
    return values


def _shown(kind: pa.DataType) -> bool:
    nested_or_bytes = (pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
                       or pa.types.is_fixed_size_binary(kind) or pa.types.is_null(kind))
    return not nested_or_bytes


def is_text(kind: pa.DataType) -> bool:
    """Whether an Arrow type holds strings."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)
