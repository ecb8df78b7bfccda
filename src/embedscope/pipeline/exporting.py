"""`export`: write a selection of an Atlas's items (by ids, clusters or a SQL condition) as MiLoPYP
training coordinates, a RELION STAR file, CSV or Parquet (and JSON, for the viewer's given rows).

The selection itself (`select_rows`) is shared with the viewer, so both pick the same items.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from embedscope.atlas import Atlas, as_atlas
from embedscope.errors import AtlasError, InputError, ParameterError
from embedscope.formats.atomic_files import atomic_output
from embedscope.formats.file_checks import reason, require_file
from embedscope.formats.milopyp import write_training_coords
from embedscope.formats.star import particle_columns, write_particles_star
from embedscope.progress import SILENT, Reporter

FORMATS = ("milopyp-coords", "star", "csv", "parquet", "json")
ROW_FORMATS = FORMATS
TABLE_FORMATS = ("csv", "parquet", "json")
COORDINATE_COLUMNS = ("tomogram", "x", "y", "z")
CLUSTER = "cluster"
SHOWN_CONDITION = 80  # characters of a failed condition quoted in its error
SHOWN = 5  # unknown ids or clusters named in an error


@dataclass
class ExportReport:
    """What `export` wrote: how many items, where, in which format, chosen how, with which columns."""

    count: int
    output: Path
    format: str
    selection: str
    columns: list[str] = field(default_factory=list)
    seconds: float = 0.0


def export_selection(
    atlas: Atlas | str | os.PathLike[str],
    *,
    ids_file: str | os.PathLike[str] | None = None,
    clusters: Sequence[int] | None = None,
    cluster_layer: str | None = None,
    where: str | None = None,
    fmt: str,
    output: str | os.PathLike[str],
    if_double: bool = False,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> ExportReport:
    """Select items with exactly one of `ids_file`, `clusters` or `where` and write them as `fmt`.

    milopyp-coords and star write coordinates (columns tomogram, x, y, z; star also micrograph, x, y)
    with _rlnClassNumber when clusters are involved; csv and parquet write id, the item metadata and
    every layer's columns named as in `selection_table`. The output file is replaced whole or not at
    all. `command` is accepted for symmetry with the writing steps; a read-only export records nothing.
    """
    started = time.perf_counter()
    if fmt not in FORMATS:
        raise ParameterError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if if_double and fmt != "milopyp-coords":
        raise ParameterError("--if-double doubles MiLoPYP's z and applies to --format milopyp-coords only")
    output = Path(output)
    atlas = as_atlas(atlas)
    ids = _read_ids(Path(ids_file)) if ids_file is not None else None
    with_classes = clusters is not None or cluster_layer is not None
    if with_classes:
        cluster_layer = cluster_layer or default_cluster_layer(atlas)
    needed = _needed_columns(atlas, fmt)  # before selecting, so a format that cannot work fails first
    rows = select_rows(atlas, ids=ids, clusters=clusters, cluster_layer=cluster_layer, where=where,
                       reporter=reporter)
    selection = _described(ids_file, clusters, cluster_layer, where)
    labels = _cluster_labels(atlas, cluster_layer)[rows] if with_classes and fmt == "star" else None
    columns = _write_rows(atlas, rows, fmt, output, needed, labels=labels, if_double=if_double, reporter=reporter)
    return ExportReport(len(rows), output, fmt, selection, columns, round(time.perf_counter() - started, 3))


def export_rows(
    atlas: Atlas,
    rows: np.ndarray | Sequence[int],
    fmt: str,
    output: str | os.PathLike[str],
    *,
    table: pa.Table | None = None,
    reporter: Reporter = SILENT,
) -> ExportReport:
    """Write the items at `rows` as `fmt` (an export format or json): the viewer's export of a selection.

    Each row is written once, in Atlas order, with the same columns as `export_selection`; json holds
    the csv columns as an array of objects. `table` is the Atlas's `selection_table` when the caller
    holds it already, so a large Atlas is not read again.
    """
    started = time.perf_counter()
    if fmt not in ROW_FORMATS:
        raise ParameterError(f"unknown export format {fmt!r}; use one of {', '.join(ROW_FORMATS)}")
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if rows.size == 0:
        raise ParameterError("nothing is selected; select at least one item to export")
    if rows[0] < 0 or rows[-1] >= atlas.n:
        raise ParameterError(f"rows must lie in 0..{atlas.n - 1}; got {rows[0]}..{rows[-1]}")
    output = Path(output)
    needed = _needed_columns(atlas, fmt)
    columns = _write_rows(atlas, rows, fmt, output, needed, table=table, reporter=reporter)
    return ExportReport(len(rows), output, fmt, f"{len(rows):,} chosen rows", columns,
                        round(time.perf_counter() - started, 3))


def _write_rows(
    atlas: Atlas,
    rows: np.ndarray,
    fmt: str,
    output: Path,
    needed: list[str],
    *,
    table: pa.Table | None = None,
    labels: np.ndarray | None = None,
    if_double: bool = False,
    reporter: Reporter = SILENT,
) -> list[str]:
    """Write the items at `rows` as `fmt` (star with class numbers when `labels` are given); return the columns."""
    with reporter.phase(f"writing {len(rows):,} items as {fmt}", len(rows)) as advance:
        if fmt in TABLE_FORMATS:
            table = selection_table(atlas, reporter) if table is None else table
            chosen = _without_row(table.take(pa.array(rows)))
            _write_table(chosen, output, fmt)
        else:
            chosen = (atlas.table(needed) if table is None else table.select(needed)).take(pa.array(rows))
            if fmt == "milopyp-coords":
                coords = np.column_stack([_integers(chosen.column(axis), axis) for axis in "xyz"])
                write_training_coords(output, chosen.column("tomogram").to_pylist(), coords, if_double=if_double)
            else:
                if labels is not None:
                    chosen = chosen.append_column(CLUSTER, pa.array(labels, pa.int32()))
                write_particles_star(output, chosen)
        advance(len(rows))
    return chosen.column_names


def select_rows(
    atlas: Atlas,
    ids: Iterable[str] | None = None,
    clusters: Sequence[int] | None = None,
    cluster_layer: str | None = None,
    where: str | None = None,
    reporter: Reporter = SILENT,
) -> np.ndarray:
    """The rows (sorted int64) of the items picked by exactly one of `ids`, `clusters` or `where`.

    `clusters` are labels in `cluster_layer`'s `cluster` column (default: the newest layer that has
    one); `where` is a DuckDB SQL condition over `selection_table` (item columns such as `id`,
    `tomogram`, `x`, and layer columns such as `umap_x`, `kmeans_cluster`), run where it cannot
    read or write files. An empty result is an error.
    """
    chosen = [name for name, value in (("ids", ids), ("clusters", clusters), ("where", where)) if value is not None]
    if len(chosen) != 1:
        raise ParameterError("choose the items with exactly one of --ids, --cluster or --where"
                             + (f" (got {', '.join(chosen)})" if chosen else ""))
    if ids is not None:
        rows, what = _rows_with_ids(atlas, list(ids)), "the given ids"
    elif clusters is not None:
        if not len(clusters):
            raise ParameterError("--cluster needs at least one cluster label")
        cluster_layer = cluster_layer or default_cluster_layer(atlas)
        rows, what = _rows_in_clusters(atlas, list(clusters), cluster_layer), f"clusters in layer {cluster_layer!r}"
    else:
        rows, what = _rows_where(atlas, where, reporter), f"--where {where!r}"
    if rows.size == 0:
        raise ParameterError(f"the selection is empty: no item of {atlas.path} matches {what}")
    return rows


def selection_table(atlas: Atlas, reporter: Reporter = SILENT) -> pa.Table:
    """The items' columns (row, id, metadata; not the vectors) and every layer's columns, one row per item.

    A layer's columns are named `<layer>_<column>`, e.g. `umap_x`, `umap_y`, `kmeans_cluster`; in
    SQL, quote names with `-` or `.` ("umap-2d_x"). A layer made for fewer items than the Atlas now
    holds is left out, with a note.
    """
    table = atlas.table()
    for name, entry in atlas.layers().items():
        try:
            layer = atlas.layer(name)
        except AtlasError as error:
            reporter.note(f"left out layer {name!r}: {error}")
            continue
        for column in entry["columns"]:
            joined = f"{name}_{column}"
            if joined in table.column_names:
                raise AtlasError(f"column {joined!r} of layer {name!r} clashes with an item column of the same "
                                 f"name in {atlas.path}; store the layer under another name")
            table = table.append_column(joined, layer.column(column))
    return table


def default_cluster_layer(atlas: Atlas) -> str:
    """The most recently made layer with a `cluster` column, for `--cluster` without `--cluster-layer`."""
    layers = [(entry["created"], order, name) for order, (name, entry) in enumerate(atlas.layers().items())
              if CLUSTER in entry["columns"]]
    if not layers:
        raise ParameterError(f"no layer of {atlas.path} has clusters; make one with `embedscope cluster {atlas.path}`")
    return max(layers)[2]


def _rows_with_ids(atlas: Atlas, ids: list[str]) -> np.ndarray:
    wanted = pa.array(ids, pa.string())
    known = atlas.table(["id"]).column("id").combine_chunks()
    unknown = pc.filter(wanted, pc.invert(pc.is_in(wanted, value_set=known))).unique().to_pylist()
    if unknown:
        shown = ", ".join(repr(item) for item in unknown[:SHOWN]) + (", ..." if len(unknown) > SHOWN else "")
        raise ParameterError(f"{len(unknown)} id(s) are not in {atlas.path}: {shown}; check the ids")
    return np.flatnonzero(pc.is_in(known, value_set=wanted).to_numpy(zero_copy_only=False)).astype(np.int64)


def _rows_in_clusters(atlas: Atlas, clusters: list[int], layer: str) -> np.ndarray:
    labels = _cluster_labels(atlas, layer)
    present = np.unique(labels)
    unknown = sorted(set(clusters) - set(present.tolist()))
    if unknown:
        shown = ", ".join(str(label) for label in unknown[:SHOWN])
        have = ", ".join(str(label) for label in present) if present.size <= 12 else f"{present[0]}..{present[-1]}"
        raise ParameterError(f"no cluster {shown} in layer {layer!r}; its clusters are {have}")
    return np.flatnonzero(np.isin(labels, clusters)).astype(np.int64)


def _cluster_labels(atlas: Atlas, layer: str) -> np.ndarray:
    table = atlas.layer(layer)
    if CLUSTER not in table.column_names:
        columns = ", ".join(name for name in table.column_names if name != "row")
        raise ParameterError(f"layer {layer!r} has no cluster column (it has {columns}); give a clustering layer")
    return table.column(CLUSTER).to_numpy()


def _rows_where(atlas: Atlas, where: str, reporter: Reporter) -> np.ndarray:
    return rows_where(selection_table(atlas, reporter), where, "--where")


def rows_where(table: pa.Table, where: str, name: str = "the condition") -> np.ndarray:
    """The sorted rows (int64) of a selection table where the DuckDB condition holds; `name` heads errors.

    `embedscope export --where` and the viewer's filter both come here, so they pick the same items.
    """
    if not where.strip():
        raise ParameterError(f"{name} is empty; give a SQL condition such as \"kmeans_cluster = 3\"")
    with sql_sandbox() as connection:
        connection.register("items", table)
        try:
            result = connection.table("items").filter(where).project('"row"').fetchnumpy()
        except duckdb.Error as error:
            shown = where if len(where) <= SHOWN_CONDITION else where[:SHOWN_CONDITION] + "..."
            raise ParameterError(f"{name} {shown!r} failed: {reason(error)}") from error
    return np.sort(np.asarray(result["row"], dtype=np.int64))


@contextmanager
def sql_sandbox() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB that cannot touch files, nor be told to, so a condition can only read the items."""
    connection = duckdb.connect(":memory:")
    try:
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        yield connection
    finally:
        connection.close()


def _read_ids(path: Path) -> list[str]:
    require_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({reason(error)}); write one id per line") from error
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise InputError(f"{path}: lists no ids; write one item id per line")
    return ids


def _needed_columns(atlas: Atlas, fmt: str) -> list[str]:
    available = atlas.schema().names
    if fmt == "star":
        return particle_columns(available)
    if fmt == "milopyp-coords":
        missing = [column for column in COORDINATE_COLUMNS if column not in available]
        if missing:
            raise ParameterError(f"--format milopyp-coords needs columns tomogram, x, y, z; {atlas.path} lacks "
                                 f"{', '.join(missing)} (export as csv or parquet instead)")
        return list(COORDINATE_COLUMNS)
    return []


def _integers(column: pa.ChunkedArray, name: str) -> np.ndarray:
    if column.null_count:
        raise ParameterError(f"{column.null_count} selected item(s) have no {name}; MiLoPYP needs every coordinate")
    try:
        return pc.cast(column, pa.int64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ParameterError(f"column {name!r} must hold integer coordinates ({reason(error)})") from error


def _without_row(table: pa.Table) -> pa.Table:
    table = table.drop_columns(["row"])
    return table.select(["id"] + [name for name in table.column_names if name != "id"])


def _write_table(table: pa.Table, output: Path, fmt: str) -> None:
    if fmt == "csv":
        nested = [field.name for field in table.schema if pa.types.is_nested(field.type)]
        if nested:
            raise ParameterError(f"columns {', '.join(nested)} hold lists, which CSV cannot; use --format parquet")
    with atomic_output(output) as temporary:
        if fmt == "csv":
            pacsv.write_csv(table, temporary)
        elif fmt == "json":
            _write_json(table, temporary)
        else:
            pq.write_table(table, temporary)


def _write_json(table: pa.Table, path: Path) -> None:
    """Write `table` as a JSON array of objects (NaN as null, which JSON has no other word for)."""
    for index, name in enumerate(table.column_names):
        column = table.column(index)
        if pa.types.is_floating(column.type):
            table = table.set_column(index, name, pc.if_else(pc.is_nan(column), None, column))
    connection = duckdb.connect(":memory:")
    try:
        connection.register("items", table)
        target = str(path).replace("'", "''")
        connection.execute(f"COPY items TO '{target}' (FORMAT json, ARRAY true)")
    finally:
        connection.close()


def _described(ids_file: object, clusters: Sequence[int] | None, layer: str | None, where: str | None) -> str:
    if ids_file is not None:
        return f"ids in {ids_file}"
    if clusters is not None:
        return f"clusters {', '.join(str(label) for label in clusters)} of layer {layer!r}"
    return f"where {where}"


