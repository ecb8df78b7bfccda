"""The Atlas: a directory of Parquet items, derived layers and a manifest that any tool can read.

Every write adds new immutable files and then commits by renaming a new `atlas.json` into place,
so readers and crashed writers only ever see whole states.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedscope.atlas import graph_store, item_checks, thumb_store
from embedscope.atlas.locking import writer_lock
from embedscope.atlas.manifest import METRICS, Manifest, read_manifest, sync_directory, write_manifest
from embedscope.atlas.parts import RowSource, read_part_vectors, read_rows_vectors, vector_type, write_parts
from embedscope.atlas.staging import new_staging_folder
from embedscope.errors import AtlasError, ParameterError, VectorError

if TYPE_CHECKING:
    from embedscope.maps.neighbors import KnnGraph

FOLDERS = ("items", "layers", "graph", "thumbs")
LAYER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class Atlas:
    """An embedding Atlas on disk: items with vectors and metadata, layers, and provenance.

    Make one with `Atlas.create` or `Atlas.building`, read one with `Atlas.open`.
    """

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self._manifest = manifest
        self._depth = 0
        self._new_files: list[Path] = []

    # ----------------------------------------------------------------- making and opening
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Atlas:
        """Open an existing Atlas for reading and appending."""
        path = Path(path)
        return cls(path, read_manifest(path))

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], dim: int, *, metric: str | None = None, replace: bool = False
    ) -> Atlas:
        """Create an empty Atlas of `dim`-dimensional vectors (atomically) and return it."""
        with cls.building(path, dim, metric=metric, replace=replace) as atlas:
            pass
        return atlas

    @classmethod
    @contextmanager
    def building(
        cls, path: str | os.PathLike[str], dim: int, *, metric: str | None = None, replace: bool = False
    ) -> Iterator[Atlas]:
        """Build an Atlas inside the block; it appears at `path` whole, or not at all.

        A new Atlas is built in a hidden sibling folder and renamed into place; replacing an
        existing one commits the new content in one manifest write.
        """
        path = Path(path)
        _check_shape(dim, metric)
        if path.exists():
            if not replace:
                raise AtlasError(f"{path} already exists: append to it or replace it (--append / --force)")
            atlas = cls.open(path)
            with atlas.transaction():
                atlas._manifest = Manifest(dim=dim, metric=metric, next_part=atlas._manifest.next_part)
                yield atlas
            return
        staging = new_staging_folder(path, FOLDERS)
        atlas = cls(staging, Manifest(dim=dim, metric=metric))
        try:
            write_manifest(staging, atlas._manifest)
            with atlas.transaction():
                yield atlas
            os.rename(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        sync_directory(path.parent)
        atlas.path = path

    # ----------------------------------------------------------------- description
    @property
    def n(self) -> int:
        """Number of items."""
        return self._manifest.n

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        return self._manifest.dim

    @property
    def metric(self) -> str | None:
        """The distance the vectors are meant for ("cosine" or "euclidean"), if known."""
        return self._manifest.metric

    @property
    def provenance(self) -> list[dict[str, Any]]:
        """Every step that wrote to the Atlas, oldest first."""
        return json.loads(json.dumps(self._manifest.provenance))

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"Atlas({str(self.path)!r}, n={self.n}, dim={self.dim})"

    def schema(self) -> pa.Schema:
        """The item columns and their types, unified over all parts."""
        schemas = [pq.read_schema(self.path / part["file"]) for part in self._manifest.parts]
        if not schemas:
            return pa.schema([("row", pa.int64()), ("id", pa.string()), ("vector", vector_type(self.dim))])
        return pa.unify_schemas(schemas, promote_options="permissive")

    def size_on_disk(self) -> int:
        """Bytes used by the files the manifest names, plus the manifest."""
        files = [self.path / name for name in self._manifest.referenced_files()] + [self.path / "atlas.json"]
        return sum(file.stat().st_size for file in files if file.exists())

    # ----------------------------------------------------------------- items
    def append(
        self,
        vectors: RowSource,
        ids: pa.Array | Sequence[str] | np.ndarray | None = None,
        metadata: pa.Table | Mapping[str, Any] | None = None,
        *,
        label: str = "vectors",
        advance: Callable[[int], None] | None = None,
    ) -> range:
        """Add items; return their rows. Ids default to the row numbers as strings.

        Ids and metadata may be Arrow, numpy, pandas or plain lists and dicts (columns by name).

        Everything is checked before the new rows become visible: shape, NaN/inf (named by row
        of `label`), missing or repeated ids, and metadata types that clash with the Atlas.
        """
        count = item_checks.check_vectors_shape(vectors, self.dim, label)
        with self.transaction():
            first = self.n
            ids = item_checks.generated_ids(first, first + count) if ids is None else item_checks.as_ids(ids, label)
            existing = self.schema() if self._manifest.parts else None
            metadata = item_checks.conformed_metadata(metadata, count, existing, label)
            if len(ids) != count:
                raise VectorError(f"{label}: {len(ids)} ids for {count} vectors; give one id per vector")
            self._check_keys(ids, metadata, label)
            entries = write_parts(
                self.path, self._manifest.next_part, first, vectors, ids, metadata, label, advance or _ignore
            )
            self._new_files += [self.path / entry["file"] for entry in entries]
            self._manifest.parts += entries
            self._manifest.next_part += len(entries)
            self._manifest.n += count
            self._manifest.graphs = {}  # graphs of the old items no longer hold
        return range(first, first + count)

    def vectors(self, rows: np.ndarray | list[int] | None = None) -> np.ndarray:
        """The vectors as a float32 (n, dim) array, or those of `rows` in the order given."""
        if rows is None:
            return read_part_vectors(self.path, self._manifest.parts, self.dim, self.n)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n):
            raise ParameterError(f"rows must lie in 0..{self.n - 1}; got {rows.min()}..{rows.max()}")
        return read_rows_vectors(self.path, self._manifest.parts, self.dim, rows)

    def table(self, columns: list[str] | None = None) -> pa.Table:
        """Item columns as one Arrow table in row order; all but `vector` unless named."""
        schema = self.schema()
        if columns is None:
            columns = [name for name in schema.names if name != "vector"]
        missing = [name for name in columns if name not in schema.names]
        if missing:
            raise AtlasError(f"no column {', '.join(missing)} in {self.path}; columns are {', '.join(schema.names)}")
        if not self._manifest.parts:
            return schema.empty_table().select(columns)
        tables = []
        for part in self._manifest.parts:
            part_path = self.path / part["file"]
            present = [name for name in columns if name in pq.read_schema(part_path).names]
            tables.append(pq.read_table(part_path, columns=present))
        table = pa.concat_tables(tables, promote_options="permissive")
        return table.select(columns)

    # ----------------------------------------------------------------- layers
    def add_layer(
        self, name: str, columns: Mapping[str, Any] | pa.Table, params: Mapping[str, Any] | None = None
    ) -> None:
        """Store row-aligned derived columns (a projection, a clustering) with their parameters."""
        check_layer_name(name)
        table = columns if isinstance(columns, pa.Table) else pa.table(dict(columns))
        if table.num_rows != self.n:
            raise ParameterError(f"layer {name!r} has {table.num_rows} rows but the Atlas has {self.n} items")
        if "row" in table.column_names:
            raise ParameterError(f"layer {name!r} must not have a column named 'row'; it is added for you")
        params = json.loads(json.dumps(dict(params or {})))
        row = pa.array(np.arange(self.n, dtype=np.int64))
        with self.transaction():
            file = graph_store.free_name(self.path, "layers", name, ".parquet")
            temporary = self.path / f"{file}.tmp-{os.getpid()}"
            self._new_files.append(temporary)
            pq.write_table(table.add_column(0, "row", row), temporary, compression="zstd")
            os.replace(temporary, self.path / file)
            self._new_files.append(self.path / file)
            self._manifest.layers[name] = {
                "file": file,
                "columns": table.column_names,
                "params": params,
                "created": _now(),
            }

    def layer(self, name: str) -> pa.Table:
        """The columns of layer `name`, row-aligned with the items (with a `row` column)."""
        entry = self._manifest.layers.get(name)
        if entry is None:
            known = ", ".join(sorted(self._manifest.layers)) or "none yet"
            raise AtlasError(f"no layer {name!r} in {self.path} (layers: {known}); make one with `embedscope map`")
        table = pq.read_table(self.path / entry["file"])
        if table.num_rows != self.n:
            raise AtlasError(f"layer {name!r} was made for {table.num_rows:,} items but {self.path} now holds "
                             f"{self.n:,}; make it again (e.g. `embedscope map {self.path} --name {name}`)")
        return table

    def layers(self) -> dict[str, dict[str, Any]]:
        """Every layer's columns, parameters and creation time, by name."""
        return json.loads(json.dumps(self._manifest.layers))

    # ----------------------------------------------------------------- side tables
    def add_side_table(self, name: str, table: pa.Table, params: Mapping[str, Any] | None = None) -> None:
        """Store a table that is not row-aligned (a training's losses per epoch, its confusion matrices) as
        `tables/<name>.parquet`, so any Parquet reader finds it; a name written again is replaced."""
        check_layer_name(name)
        if not isinstance(table, pa.Table):
            raise ParameterError(f"side table {name!r} must be a pyarrow Table; got {type(table).__name__}")
        params = json.loads(json.dumps(dict(params or {})))
        with self.transaction():
            file = graph_store.free_name(self.path, "tables", name, ".parquet")
            (self.path / "tables").mkdir(exist_ok=True)
            temporary = self.path / f"{file}.tmp-{os.getpid()}"
            self._new_files.append(temporary)
            pq.write_table(table, temporary, compression="zstd")
            os.replace(temporary, self.path / file)
            self._new_files.append(self.path / file)
            self._manifest.tables[name] = {"file": file, "rows": table.num_rows, "columns": table.column_names,
                                           "params": params, "created": _now()}

    def side_table(self, name: str) -> pa.Table:
        """The side table `name` as stored."""
        entry = self._manifest.tables.get(name)
        if entry is None:
            known = ", ".join(sorted(self._manifest.tables)) or "none"
            raise AtlasError(f"no side table {name!r} in {self.path} (tables: {known})")
        return pq.read_table(self.path / entry["file"])

    def side_tables(self) -> dict[str, dict[str, Any]]:
        """Every side table's file, row count, columns and parameters, by name."""
        return json.loads(json.dumps(self._manifest.tables))

    # ----------------------------------------------------------------- neighbour graphs
    def save_graph(self, graph: KnnGraph, space: str) -> None:
        """Cache a kNN graph of every item, computed in `space` ("raw" or a reduction's name)."""
        if len(graph.indices) != self.n:
            raise ParameterError(f"a graph of {len(graph.indices)} items does not fit an Atlas of {self.n}")
        key = graph_store.graph_key(graph.metric, space, graph.k)
        with self.transaction():
            entry = graph_store.write_graph(self.path, key, graph, space)
            self._new_files += [self.path / name for name in entry["files"].values()]
            self._manifest.graphs[key] = entry

    def graph(self, k: int, metric: str, space: str) -> KnnGraph | None:
        """A cached graph with at least k neighbours in that metric and space, cut to k; else None."""
        entry = graph_store.best_cached(self._manifest.graphs, metric, space, k)
        return None if entry is None else graph_store.read_graph(self.path, entry, k)

    # ----------------------------------------------------------------- thumbnails
    def add_thumbs(self, kind: str, batches: Iterable[np.ndarray]) -> None:
        """Store one small uint8 image per item under `kind` (e.g. mg, ps), streamed in row-order batches.

        A kind written again replaces the old images in the same commit.
        """
        check_layer_name(kind)
        with self.transaction():
            entry = thumb_store.write_thumbs(self.path, kind, batches, self.n)
            self._new_files += [self.path / name for name in entry["files"]]
            self._manifest.thumbs[kind] = entry

    def thumbs(self, kind: str, rows: np.ndarray | list[int] | None = None) -> np.ndarray:
        """The `kind` thumbnails of `rows` (all when None), uint8 (rows, height, width[, 3])."""
        entry = self._manifest.thumbs.get(kind)
        if entry is None:
            known = ", ".join(sorted(self._manifest.thumbs)) or "none yet"
            raise AtlasError(f"no thumbnails {kind!r} in {self.path} (kinds: {known}); make them with "
                             f"`embedscope thumbs {self.path} --from COLUMN --kind {kind}`")
        return thumb_store.read_thumbs(self.path, kind, entry, None if rows is None else np.asarray(rows))

    def thumb_kinds(self) -> dict[str, dict[str, Any]]:
        """Each thumbnail kind's image shape and item count, by name."""
        return {kind: {"shape": entry["shape"], "n": entry["n"]} for kind, entry in self._manifest.thumbs.items()}

    # ----------------------------------------------------------------- provenance
    def record(
        self, step: str, parameters: Mapping[str, Any], *, command: str | None = None, **extra: Any
    ) -> None:
        """Add a provenance entry: the step, its parameters, the command line and package versions."""
        entry = {
            "step": step,
            "parameters": json.loads(json.dumps(dict(parameters), default=str)),
            "command": command,
            "versions": _versions(),
            "time": _now(),
            **extra,
        }
        with self.transaction():
            self._manifest.provenance.append(entry)

    # ----------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one commit; on an error nothing in the block becomes visible."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with writer_lock(self.path):
            self._manifest = read_manifest(self.path)
            committed = self._manifest.copy()
            self._depth, self._new_files = 1, []
            try:
                yield
                write_manifest(self.path, self._manifest)
            except BaseException:
                for file in self._new_files:
                    file.unlink(missing_ok=True)
                self._manifest = committed
                raise
            finally:
                self._depth = 0
            self._collect_garbage()

    def _collect_garbage(self) -> None:
        keep = self._manifest.referenced_files()
        for folder in ("items", "layers", "graph", "thumbs", "tables"):
            for file in (self.path / folder).glob("*"):
                if f"{folder}/{file.name}" not in keep:
                    file.unlink(missing_ok=True)
        for file in self.path.glob(".atlas.json.tmp-*"):
            file.unlink(missing_ok=True)

    # ----------------------------------------------------------------- checks
    def _check_keys(self, ids: pa.Array, metadata: pa.Table | None, label: str) -> None:
        frames = _frames(metadata)
        existing = self.table(["id", item_checks.FRAME] if item_checks.FRAME in self.schema().names else ["id"])
        sequence = frames is not None or item_checks.FRAME in existing.column_names
        keys = item_checks.item_keys(ids, frames, sequence)
        item_checks.check_unique(keys, label)
        old_keys = item_checks.item_keys(existing.column("id").combine_chunks(), _frames(existing), sequence)
        item_checks.check_new(keys, old_keys, label)


def _frames(table: pa.Table | None) -> pa.Array | None:
    if table is None or item_checks.FRAME not in table.column_names:
        return None
    return table.column(item_checks.FRAME).combine_chunks()


def as_atlas(atlas: Atlas | str | os.PathLike[str]) -> Atlas:
    """The Atlas given, or the one at the path given, so steps take either."""
    return atlas if isinstance(atlas, Atlas) else Atlas.open(atlas)


def check_layer_name(name: str) -> None:
    """Refuse layer names that are not safe file names (so a step can fail before it computes)."""
    if not LAYER_NAME.match(name):
        raise ParameterError(f"layer name {name!r} must be letters, digits, '_', '.', '-' (at most 64)")


def _check_shape(dim: int, metric: str | None) -> None:
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ParameterError(f"dim must be a positive integer; got {dim!r}")
    if metric is not None and metric not in METRICS:
        raise ParameterError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")


def _versions() -> dict[str, str]:
    from embedscope import __version__

    return {
        "embedscope": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ignore(_: int) -> None:
    return None
