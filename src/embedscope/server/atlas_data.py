"""What the viewer's endpoints read from an Atlas: the catalogue, points, columns, items, filters and exports.

One `AtlasState` holds a committed state of the Atlas and small caches for it; `AtlasData` opens a new
state whenever `atlas.json` changes, so a `map` or `cluster` run while viewing shows after a reload.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embedscope.atlas import Atlas
from embedscope.atlas.manifest import sync_directory
from embedscope.errors import ParameterError
from embedscope.pipeline.exporting import export_rows, rows_where, selection_table
from embedscope.server import catalogue
from embedscope.server.arrow_responses import arrow_stream
from embedscope.server.neighbor_search import NeighborSearch
from embedscope.server.queries import search_rows
from embedscope.server.thumb_images import ThumbImages

SELECTIONS = "selections"
EXTENSIONS = {"milopyp-coords": ".txt", "star": ".star", "csv": ".csv", "parquet": ".parquet", "json": ".json"}
CACHED_LAYERS = 4
CACHED_COLUMNS = 16
_naming = threading.Lock()


class AtlasState:
    """One committed state of an Atlas as the viewer shows it; its caches live exactly as long as the state."""

    def __init__(self, path: Path, layer: str | None) -> None:
        self.atlas = Atlas.open(path)
        self.table = selection_table(self.atlas)
        self.layers = catalogue.map_layers(self.atlas)
        self.default_layer = catalogue.choose_layer(self.atlas, self.layers, layer)
        self.columns = catalogue.describe_columns(self.table, self.layers)
        self.frames = self._tags(catalogue.FRAME)
        self.groups = self._tags(catalogue.GROUP)
        self.thumbs = ThumbImages(self.atlas)
        self.neighbors = NeighborSearch(self.atlas)
        self.points = lru_cache(maxsize=CACHED_LAYERS)(self._points)
        self.column_stream = lru_cache(maxsize=CACHED_COLUMNS)(self._column_stream)
        self.codes = lru_cache(maxsize=CACHED_COLUMNS)(self._codes)

    @property
    def n(self) -> int:
        """Number of items."""
        return self.atlas.n

    def meta(self, *, static: bool = False) -> dict[str, Any]:
        """The description `/api/meta` gives: size, layers, columns, thumbnails, frames and groups."""
        return {
            "n": self.atlas.n,
            "dim": self.atlas.dim,
            "metric": self.atlas.metric,
            "default_layer": self.default_layer,
            "layers": self.layers,
            "columns": {name: column.describe() for name, column in self.columns.items()},
            "thumbs": {kind: {"shape": entry["shape"]} for kind, entry in self.atlas.thumb_kinds().items()},
            "frames": None if self.frames is None else catalogue.category_names(self.frames),
            "groups": None if self.groups is None else catalogue.category_names(self.groups),
            "static": static,
        }

    def _points(self, layer: str) -> bytes:
        """x, y[, z] of a map layer as float32, with frame and track codes in a sequence Atlas."""
        table = self.atlas.layer(layer)
        axes = catalogue.POSITIONS[: self.layers[layer]["dims"]]
        columns = {axis: catalogue.numbers(table.column(axis)) for axis in axes}
        if self.frames is not None:
            columns["frame"] = catalogue.category_codes(self.table.column(catalogue.FRAME), self.frames)
            ids = pc.dictionary_encode(self.table.column(catalogue.ID).combine_chunks())
            columns["track"] = ids.indices.to_numpy().astype(np.int32)
        return arrow_stream(columns)

    def _column_stream(self, name: str) -> bytes:
        """A category column's int16 codes or a number column's float32 values, as `values`."""
        column = self.columns[name]
        if column.kind == "text":
            raise ParameterError(f"column {name!r} holds text, which can be searched but not drawn")
        values = self._codes(name) if column.kind == "category" else catalogue.numbers(self.table.column(name))
        return arrow_stream({"values": values})

    def _codes(self, name: str) -> np.ndarray:
        return catalogue.category_codes(self.table.column(name), self.columns[name].categories)

    def items(self, rows: list[int]) -> list[dict[str, Any]]:
        """Row, id and every catalogue column of the given rows, in the order given, ready for JSON."""
        names = ["row", catalogue.ID] + [name for name in self.columns if name != catalogue.ID]
        return json_ready(self.table.select(names).take(pa.array(rows, pa.int64()))).to_pylist()

    def search(self, text: str, limit: int) -> list[int]:
        """Rows whose id or any category or text column contains `text`, ignoring case."""
        names = [name for name, column in self.columns.items() if column.kind != "number"]
        return search_rows(self.table.select(["row", *names]), names, text, limit)

    def query(self, where: str) -> np.ndarray:
        """Rows where a SQL condition over the selection table holds, as `embedscope export --where`."""
        return rows_where(self.table, where)

    def counts(self, name: str, rows: np.ndarray) -> dict[str, int]:
        """How many of `rows` fall in each category of a category column (categories with none left out)."""
        column = self.columns[name]
        if column.kind != "category":
            raise ParameterError(f"column {name!r} is not a category column; counts need one such as a cluster")
        codes = self._codes(name)[rows]
        tally = np.bincount(codes[codes >= 0], minlength=len(column.categories))
        names = catalogue.category_names(column.categories)
        return {names[code]: int(tally[code]) for code in np.flatnonzero(tally)}

    def export(self, rows: np.ndarray, fmt: str) -> Path:
        """Write the rows as `fmt` into the Atlas's `selections/` folder; return the file written."""
        if fmt not in EXTENSIONS:
            raise ParameterError(f"unknown export format {fmt!r}; use one of {', '.join(EXTENSIONS)}")
        folder = self.atlas.path / SELECTIONS
        folder.mkdir(exist_ok=True)
        with _naming:
            output = _free_selection_name(folder, len(np.unique(rows)), EXTENSIONS[fmt])
            export_rows(self.atlas, rows, fmt, output, table=self.table)
        sync_directory(folder)
        return output

    def _tags(self, name: str) -> pa.Array | None:
        """The sorted distinct values of an item column such as frame or group, if the Atlas has it."""
        if name not in self.table.column_names:
            return None
        return catalogue.distinct_sorted(self.table.column(name), catalogue.MAX_FRAMES)


class AtlasData:
    """The viewer's way into an Atlas on disk: its current state, opened again whenever `atlas.json` changes."""

    def __init__(self, path: str | os.PathLike[str], layer: str | None = None) -> None:
        self.path = Path(path)
        self.layer = layer
        self._lock = threading.Lock()
        self._signature: tuple[int, ...] | None = None
        self._state: AtlasState | None = None
        self.current()

    def current(self) -> AtlasState:
        """The state the Atlas is in now (a cached one while `atlas.json` is unchanged)."""
        signature = _signature(self.path / "atlas.json")
        with self._lock:
            if self._state is None or signature != self._signature:
                self._state, self._signature = AtlasState(self.path, self.layer), signature
            return self._state


def json_ready(table: pa.Table) -> pa.Table:
    """The table with NaN as null and dates, times and decimals as text, so every value has a JSON form."""
    for index, name in enumerate(table.column_names):
        column = table.column(index)
        kind = column.type
        if pa.types.is_floating(kind):
            table = table.set_column(index, name, pc.if_else(pc.is_nan(column), None, column))
        elif not (pa.types.is_integer(kind) or pa.types.is_boolean(kind) or catalogue.is_text(kind)):
            table = table.set_column(index, name, pc.cast(column, pa.string()))
    return table


def _free_selection_name(folder: Path, count: int, extension: str) -> Path:
    """`<UTC stamp>-<count><extension>` in `folder`, with `-2`, `-3`... added if the name is taken."""
    stem = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{count}"
    candidate, version = folder / f"{stem}{extension}", 1
    while candidate.exists():
        version += 1
        candidate = folder / f"{stem}-{version}{extension}"
    return candidate


def _signature(manifest: Path) -> tuple[int, ...] | None:
    try:
        stat = manifest.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
