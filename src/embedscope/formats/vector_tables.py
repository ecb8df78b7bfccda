"""Vectors stored in tables (Parquet, CSV, TSV): one list column, or one column per dimension.

Columns are located by name, glob or type, and list columns become (n, dim) arrays without a loop
over rows; every other column is metadata.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from embedscope.errors import InputError
from embedscope.formats.file_checks import damaged, reason, require_file

TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}


def vectors_from_table(path: Path, table: pa.Table, vector_column: str | None) -> tuple[np.ndarray, pa.Table]:
    """The (n, dim) vectors of a table and the table without their columns."""
    names = _vector_columns(path, table, vector_column)
    if len(names) == 1 and not _is_number(table.schema.field(names[0]).type):
        vectors = _list_matrix(path, names[0], table.column(names[0]))
    else:
        vectors = _per_dimension(path, table, names)
    return vectors, table.drop_columns(names)


def read_table(path: Path) -> pa.Table:
    """Read a metadata table from .csv, .tsv/.txt (tab-separated) or .parquet.

    Columns keep the types Arrow infers; rows are joined to items by an id column, not by order.
    """
    path = Path(path)
    require_file(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_DELIMITERS and suffix != ".parquet":
        raise InputError(f"{path}: unsupported table type {suffix!r}; use .csv, .tsv, .txt or .parquet")
    return read_arrow_table(path)


def _vector_columns(path: Path, table: pa.Table, vector_column: str | None) -> list[str]:
    """The names of the vector columns: as named or matched by a glob, else detected."""
    available = ", ".join(table.column_names) or "none"
    if vector_column in table.column_names:
        return [vector_column]
    if vector_column is not None:
        names = [name for name in table.column_names if fnmatch.fnmatchcase(name, vector_column)]
        if not names:
            raise InputError(f"{path}: no column matches {vector_column!r}; columns are {available}")
        return names
    lists = [field.name for field in table.schema if _is_number_list(field.type)]
    if len(lists) == 1:
        return lists
    if len(lists) > 1:
        raise InputError(f"{path}: several list columns ({', '.join(lists)}); pass --vector-column NAME")
    floats = [field.name for field in table.schema if pa.types.is_floating(field.type)]
    if not floats:
        raise InputError(
            f"{path}: no vector columns among {available}; pass --vector-column NAME or a glob like 'dim_*'"
        )
    return floats


def _list_matrix(path: Path, name: str, column: pa.ChunkedArray) -> np.ndarray:
    """An (n, dim) array from a list column (or a text column of numbers), without a loop over rows."""
    array = column.combine_chunks()
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        array = _parse_number_lists(path, name, array)
    if not _is_number_list(array.type):
        raise InputError(f"{path}: column {name!r} holds {array.type}, not numbers; name the vector column")
    if len(array) == 0:
        raise InputError(f"{path}: column {name!r} has no rows; write at least one vector")
    if array.null_count:
        row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(f"{path}: column {name!r} is empty in row {row}; every row needs a vector")
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    uneven = np.flatnonzero(lengths != lengths[0])
    if uneven.size:
        row = int(uneven[0])
        raise InputError(
            f"{path}: column {name!r} has {lengths[row]} values in row {row} but {lengths[0]} in row 0; "
            "all vectors need the same length"
        )
    values = pc.list_flatten(array).to_numpy(zero_copy_only=False)
    return values.reshape(len(array), int(lengths[0]))


def _parse_number_lists(path: Path, name: str, text: pa.Array) -> pa.Array:
    """Text such as "[0.1, 0.2]" or "0.1 0.2" in every row, parsed to a list<float64> column."""
    parts = pc.split_pattern_regex(pc.utf8_trim(text, "[] \t"), r"[,\s]+")
    try:
        return parts.cast(pa.list_(pa.float64()))
    except pa.ArrowInvalid as error:
        raise InputError(
            f"{path}: column {name!r} holds text that is not a list of numbers ({reason(error)}); "
            "write vectors as '[0.1, 0.2, ...]' or '0.1 0.2 ...'"
        ) from error


def _per_dimension(path: Path, table: pa.Table, names: list[str]) -> np.ndarray:
    """An (n, dim) array from one numeric column per dimension, in the given order."""
    wrong = [name for name in names if not _is_number(table.schema.field(name).type)]
    if wrong:
        wrong_names = ", ".join(wrong)
        raise InputError(f"{path}: vector columns {wrong_names} do not hold numbers; choose numeric columns")
    return np.column_stack([table.column(name).to_numpy() for name in names])


def read_arrow_table(path: Path) -> pa.Table:
    """A Parquet, CSV or tab-separated file read with pyarrow."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.read_table(path)
        else:
            options = pacsv.ParseOptions(delimiter=TABLE_DELIMITERS[suffix])
            table = pacsv.read_csv(path, parse_options=options)
        table.column_names  # noqa: B018 -- names are decoded lazily; a bad one must fail here
    except (pa.ArrowException, OSError, UnicodeDecodeError) as error:
        raise damaged(path, f"a {suffix} table", error) from error
    return table


def _is_number_list(kind: pa.DataType) -> bool:
    lists = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    return lists and _is_number(kind.value_type)


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_floating(kind) or pa.types.is_integer(kind)
