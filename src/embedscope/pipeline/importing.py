"""Import vectors that already exist (npy, npz, pt, parquet, csv, h5) into an Atlas.

Every input is opened and every id and metadata join is checked before the first byte is written,
and all inputs land in one commit: a failed or killed import leaves the Atlas as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embedscope.atlas import Atlas, item_checks
from embedscope.errors import InputError, ParameterError, VectorError
from embedscope.formats.vector_files import VectorFile, read_ids, read_vectors
from embedscope.formats.vector_tables import read_table
from embedscope.progress import SILENT, Reporter

SHOWN = 3


@dataclass
class ImportReport:
    """What an import did: rows added per input and how the metadata join went."""

    atlas: Path
    added: int
    total: int
    dim: int
    inputs: dict[str, int] = field(default_factory=dict)
    unmatched_ids: int = 0
    unmatched_examples: list[str] = field(default_factory=list)
    unused_metadata_rows: int = 0


def import_vectors(
    inputs: Sequence[Path],
    output: Path,
    *,
    key: str | None = None,
    transpose: bool = False,
    id_column: str | None = None,
    vector_column: str | None = None,
    ids_file: Path | None = None,
    meta: Path | None = None,
    on: str | None = None,
    frames: Sequence[str] = (),
    groups: Sequence[str] = (),
    metric: str | None = None,
    append: bool = False,
    replace: bool = False,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> ImportReport:
    """Read `inputs` into the Atlas at `output` (new, appended to, or replaced) in one commit."""
    _check_options(inputs, meta, on, append, replace)
    parameters = {
        "inputs": [str(path) for path in inputs], "key": key, "transpose": transpose, "id_column": id_column,
        "vector_column": vector_column, "ids_file": ids_file and str(ids_file), "meta": meta and str(meta),
        "on": on, "frames": list(frames), "groups": list(groups), "metric": metric, "append": append,
        "replace": replace,
    }
    frame_tags = _tags(frames, len(inputs), "--frame")
    group_tags = _tags(groups, len(inputs), "--group")
    files = [
        read_vectors(Path(path), key=key, transpose=transpose, id_column=id_column, vector_column=vector_column)
        for path in inputs
    ]
    dim = _common_dim(files)
    existing = Atlas.open(output) if append else None
    if existing is not None:
        _check_fits(existing, dim, metric)
    first_row = existing.n if existing is not None else 0
    ids = _ids_per_file(files, ids_file, first_row, bool(frame_tags))
    metadata = [_tagged(file, frame_tags, group_tags, index) for index, file in enumerate(files)]
    report = ImportReport(output, sum(file.vectors.shape[0] for file in files), 0, dim)
    if meta is not None and on is not None:
        metadata = _joined(metadata, ids, read_table(meta), on, meta, report)
    _check_keys_across(ids, metadata)
    with _target(output, dim, metric, append, replace) as atlas:
        for file, file_ids, file_metadata in zip(files, ids, metadata):
            rows = file.vectors.shape[0]
            with reporter.phase(f"import {file.path.name}", rows) as advance:
                atlas.append(file.vectors, file_ids, file_metadata, label=str(file.path), advance=advance)
            report.inputs[str(file.path)] = rows
        atlas.record("import", parameters, command=command, inputs=report.inputs)
    report.total = atlas.n
    report.atlas = atlas.path
    return report


def _check_options(inputs: Sequence[Path], meta: Path | None, on: str | None, append: bool, replace: bool) -> None:
    if not inputs:
        raise ParameterError("no inputs; give one or more vector files")
    if append and replace:
        raise ParameterError("--append and --force contradict each other; choose one")
    if (meta is None) != (on is None):
        raise ParameterError("--meta FILE and --on COLUMN go together; give both")


def _tags(values: Sequence[str], count: int, option: str) -> list[str | int] | None:
    if not values:
        return None
    if len(values) != count:
        raise ParameterError(f"{option} was given {len(values)} time(s) for {count} input(s); give one per input")
    if all(_is_integer(value) for value in values):
        return [int(value) for value in values]
    return list(values)


def _is_integer(value: str) -> bool:
    return value.lstrip("-").isdigit()


def _common_dim(files: list[VectorFile]) -> int:
    dims = {str(file.path): file.vectors.shape[1] for file in files}
    if len(set(dims.values())) > 1:
        listed = ", ".join(f"{path} has dim {dim}" for path, dim in dims.items())
        raise VectorError(f"inputs differ in dimension ({listed}); import them into separate Atlases")
    return next(iter(dims.values()))


def _check_fits(atlas: Atlas, dim: int, metric: str | None) -> None:
    if atlas.dim != dim:
        raise VectorError(f"the inputs have dim {dim} but {atlas.path} has dim {atlas.dim}")
    if metric is not None and atlas.metric not in (None, metric):
        raise ParameterError(f"{atlas.path} uses metric {atlas.metric}; --metric {metric} contradicts it")


def _ids_per_file(files: list[VectorFile], ids_file: Path | None, first_row: int, framed: bool) -> list[pa.Array]:
    counts = [file.vectors.shape[0] for file in files]
    if ids_file is not None:
        ids = item_checks.as_ids(read_ids(ids_file), str(ids_file))
        if len(ids) != sum(counts):
            raise InputError(f"{ids_file} holds {len(ids)} ids but the inputs hold {sum(counts)} vectors")
        offsets = np.cumsum([0, *counts])
        return [ids.slice(start, count) for start, count in zip(offsets, counts)]
    result, row = [], first_row
    for file, count in zip(files, counts):
        if file.ids is not None:
            result.append(item_checks.as_ids(file.ids, str(file.path)))
        elif framed:
            result.append(item_checks.generated_ids(0, count))
        else:
            result.append(item_checks.generated_ids(row, row + count))
        row += count
    return result


def _tagged(
    file: VectorFile, frames: list[str | int] | None, groups: list[str | int] | None, index: int
) -> pa.Table | None:
    table = file.metadata
    rows = file.vectors.shape[0]
    for name, tags in (("frame", frames), ("group", groups)):
        if tags is None:
            continue
        if table is not None and name in table.column_names:
            raise InputError(f"{file.path} already has a {name!r} column; drop it or do not pass --{name}")
        value = tags[index] if name == "frame" else str(tags[index])
        column = pa.repeat(pa.scalar(value), rows)
        table = pa.table({name: column}) if table is None else table.append_column(name, column)
    return table


def _joined(
    metadata: list[pa.Table | None], ids: list[pa.Array], table: pa.Table, on: str, source: Path, report: ImportReport
) -> list[pa.Table | None]:
    if on not in table.column_names:
        raise InputError(f"{source} has no column {on!r} for --on; its columns are {', '.join(table.column_names)}")
    keys = pc.cast(table.column(on), pa.string()).combine_chunks()
    item_checks.check_unique(keys.drop_null(), f"{source} column {on!r}")
    extra = table.drop_columns([on])
    joined, used = [], []
    for file_metadata, file_ids in zip(metadata, ids):
        present = file_metadata.column_names if file_metadata is not None else []
        clashing = [name for name in extra.column_names if name in present]
        if clashing:
            raise InputError(f"{source} column {clashing[0]!r} is also in the vector file; rename one of them")
        positions = pc.index_in(file_ids, value_set=keys)
        unmatched = file_ids.filter(pc.is_null(positions))
        report.unmatched_ids += len(unmatched)
        report.unmatched_examples += unmatched[: SHOWN - len(report.unmatched_examples)].to_pylist()
        used.append(positions.drop_null())
        taken = extra.take(positions)
        joined.append(taken if file_metadata is None else _beside(file_metadata, taken))
    matched = report.added - report.unmatched_ids
    if matched == 0:
        examples = ", ".join(repr(key) for key in keys[:SHOWN].to_pylist())
        first = ", ".join(repr(key) for key in report.unmatched_examples)
        raise InputError(
            f"no id matched column {on!r} of {source} (ids look like {first}; {on} looks like {examples}); "
            "check --on, or set ids with --id-column / --ids"
        )
    report.unused_metadata_rows = len(table) - len(pc.unique(pa.chunked_array(used)))
    return joined


def _beside(left: pa.Table, right: pa.Table) -> pa.Table:
    for name in right.column_names:
        left = left.append_column(name, right.column(name))
    return left


def _check_keys_across(ids: list[pa.Array], metadata: list[pa.Table | None]) -> None:
    if len(ids) < 2:
        return
    frames = None
    if any(table is not None and "frame" in table.column_names for table in metadata):
        frames = pa.concat_arrays(
            [
                pc.cast(table.column("frame").combine_chunks(), pa.string())
                if table is not None and "frame" in table.column_names
                else pa.nulls(len(file_ids), pa.string())
                for table, file_ids in zip(metadata, ids)
            ]
        )
    keys = item_checks.item_keys(pa.concat_arrays(ids), frames, frames is not None)
    item_checks.check_unique(keys, "the inputs together")


@contextmanager
def _target(output: Path, dim: int, metric: str | None, append: bool, replace: bool) -> Iterator[Atlas]:
    if append:
        atlas = Atlas.open(output)
        with atlas.transaction():
            yield atlas
    else:
        with Atlas.building(output, dim, metric=metric, replace=replace) as atlas:
            yield atlas

