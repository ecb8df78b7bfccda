"""The page-level float reader agrees with Arrow's reader, or declines and lets Arrow read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedscope import Atlas
from embedscope.atlas.parquet_pages import read_float_column


def vector_table(array: np.ndarray, nullable: bool) -> pa.Table:
    kind = pa.list_(pa.field("element", pa.float32(), nullable=nullable), array.shape[1])
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1)), type=kind)
    return pa.table({"row": np.arange(len(array)), "vector": vectors})


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 300),
    dim=st.integers(1, 40),
    row_group=st.integers(1, 128),
    page=st.sampled_from([64, 1024, 1 << 20]),
    version=st.sampled_from(["1.0", "2.0"]),
    compression=st.sampled_from(["none", "zstd", "snappy"]),
    dictionary=st.booleans(),
    nullable=st.booleans(),
    statistics=st.booleans(),
)
def test_pages_agree_with_arrow_or_decline(
    tmp_path_factory, rows, dim, row_group, page, version, compression, dictionary, nullable, statistics
) -> None:
    array = np.random.default_rng(rows * dim).normal(size=(rows, dim)).astype(np.float32)
    path = tmp_path_factory.mktemp("p") / "part.parquet"
    pq.write_table(
        vector_table(array, nullable), path, row_group_size=row_group, data_page_size=page,
        data_page_version=version, compression=compression, use_dictionary=dictionary,
        write_statistics=statistics,
    )
    out = np.full_like(array, np.nan)
    parquet = pq.ParquetFile(path)
    used = read_float_column(parquet, path, 1, out)
    if used:
        np.testing.assert_array_equal(out, array)
    plain = compression == "none" and not dictionary
    assert used or not plain, "plain uncompressed pages must take the fast path"


def test_a_subset_of_row_groups_reads_in_order(tmp_path: Path) -> None:
    array = np.arange(60, dtype=np.float32).reshape(20, 3)
    path = tmp_path / "part.parquet"
    pq.write_table(vector_table(array, False), path, row_group_size=4, use_dictionary=False, compression="none")
    out = np.empty((8, 3), np.float32)
    assert read_float_column(pq.ParquetFile(path), path, 1, out, [1, 3])
    np.testing.assert_array_equal(out, np.concatenate([array[4:8], array[12:16]]))


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_atlas_parts_rewritten_by_another_tool_still_read(tmp_path: Path, compression: str) -> None:
    atlas = Atlas.create(tmp_path / "a.atlas", 5)
    array = np.random.default_rng(0).normal(size=(70_000, 5)).astype(np.float32)
    atlas.append(array)
    part = atlas.path / "items" / "part-00000.parquet"
    pq.write_table(pq.read_table(part), part, compression=compression, row_group_size=30_000)
    np.testing.assert_array_equal(atlas.vectors(), array)
    rows = [69_999, 0, 30_001]
    np.testing.assert_array_equal(atlas.vectors(rows), array[rows])
