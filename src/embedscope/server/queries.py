"""The viewer's text search through DuckDB (its SQL conditions are `pipeline.exporting.rows_where`).

DuckDB reads the Arrow table in place, in the same file-less sandbox as export's conditions.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from embedscope.pipeline.exporting import sql_sandbox


def search_rows(table: pa.Table, columns: list[str], text: str, limit: int) -> list[int]:
    """The first `limit` rows (in row order) where any of `columns` contains `text`, ignoring case."""
    if not text or not columns:
        return []
    tests = " OR ".join(f"contains(lower(CAST({quoted(name)} AS VARCHAR)), $text)" for name in columns)
    with sql_sandbox() as connection:
        connection.register("items", table)
        found = connection.execute(
            f'SELECT "row" FROM items WHERE {tests} ORDER BY "row" LIMIT $limit',
            {"text": text.lower(), "limit": limit},
        ).fetchnumpy()
    return np.asarray(found["row"], dtype=np.int64).tolist()


def quoted(name: str) -> str:
    """A column name as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'
