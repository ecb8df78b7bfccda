"""The viewer's filters through DuckDB: a SQL condition over the selection table, and a text search.

DuckDB reads the Arrow table in place; the connection cannot touch files, so a condition typed in
the browser can only read the items.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import numpy as np
import pyarrow as pa

from embedscope.errors import ParameterError
from embedscope.formats.file_checks import reason

SHOWN_CHARACTERS = 80


def rows_where(table: pa.Table, where: str) -> np.ndarray:
    """The sorted rows (int64) of `table` where the DuckDB condition holds, as `embedscope export --where` picks."""
    if not where.strip():
        raise ParameterError("the condition is empty; give a SQL condition such as \"kmeans_cluster = 3\"")
    with sandbox() as connection:
        connection.register("items", table)
        try:
            result = connection.table("items").filter(where).project('"row"').fetchnumpy()
        except duckdb.Error as error:
            shown = where if len(where) <= SHOWN_CHARACTERS else where[:SHOWN_CHARACTERS] + "..."
            raise ParameterError(f"the condition {shown!r} failed: {reason(error)}") from error
    return np.sort(np.asarray(result["row"], dtype=np.int64))


def search_rows(table: pa.Table, columns: list[str], text: str, limit: int) -> list[int]:
    """The first `limit` rows (in row order) where any of `columns` contains `text`, ignoring case."""
    if not text or not columns:
        return []
    tests = " OR ".join(f"contains(lower(CAST({quoted(name)} AS VARCHAR)), $text)" for name in columns)
    with sandbox() as connection:
        connection.register("items", table)
        found = connection.execute(
            f'SELECT "row" FROM items WHERE {tests} ORDER BY "row" LIMIT $limit',
            {"text": text.lower(), "limit": limit},
        ).fetchnumpy()
    return np.asarray(found["row"], dtype=np.int64).tolist()


def quoted(name: str) -> str:
    """A column name as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def sandbox() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection that cannot read or write files, nor be told to."""
    connection = duckdb.connect(":memory:")
    try:
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        yield connection
    finally:
        connection.close()
