"""Thumbnails in the Atlas: streamed in batches of any size, read back by row in any order, replaced whole,
and refused (with nothing left on disk) when they do not fit the items."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedscope import Atlas
from embedscope.atlas.thumb_store import CHUNK_ROWS
from embedscope.errors import AtlasError, ParameterError

N = CHUNK_ROWS * 2 + 300


@pytest.fixture
def atlas(tmp_path) -> Atlas:
    created = Atlas.create(tmp_path / "t.atlas", 4)
    created.append(np.random.default_rng(0).normal(size=(N, 4)).astype(np.float32))
    return created


def images(n: int, channels: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (n, 6, 5) if channels is None else (n, 6, 5, channels)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def batches_of(array: np.ndarray, sizes: list[int]):
    start = 0
    for size in sizes:
        yield array[start : start + size]
        start += size
    if start < len(array):
        yield array[start:]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 3 * CHUNK_ROWS), max_size=6), rgb=st.booleans(), seed=st.integers(0, 99))
def test_batches_of_any_size_read_back_by_row(atlas, sizes, rgb, seed):
    expected = images(N, 3 if rgb else None, seed)
    atlas.add_thumbs("mg", batches_of(expected, sizes))
    again = Atlas.open(atlas.path)
    rows = np.random.default_rng(seed).permutation(N)[:500]
    assert np.array_equal(again.thumbs("mg", rows), expected[rows])
    assert np.array_equal(again.thumbs("mg"), expected)
    assert again.thumb_kinds()["mg"] == {"shape": list(expected.shape[1:]), "n": N}
    assert len(list((atlas.path / "thumbs").glob("*.npy"))) == -(-N // CHUNK_ROWS)  # replaced kinds are swept


def test_kinds_live_side_by_side_and_a_rewrite_replaces_one(atlas):
    atlas.add_thumbs("mg", [images(N)])
    atlas.add_thumbs("ps", [images(N, seed=1)])
    atlas.add_thumbs("mg", [images(N, seed=2)])
    assert set(atlas.thumb_kinds()) == {"mg", "ps"}
    assert np.array_equal(atlas.thumbs("mg", [5]), images(N, seed=2)[[5]])
    assert np.array_equal(atlas.thumbs("ps", [5]), images(N, seed=1)[[5]])


@pytest.mark.parametrize(
    ("batches", "message"),
    [
        (lambda: [images(N - 1)], f"got {N - 1} images for {N} items"),
        (lambda: [images(N // 2), images(N - N // 2, channels=3)], "every batch must be uint8"),
        (lambda: [images(N).astype(np.float32)], "every batch must be uint8"),
        (lambda: [np.zeros((N, 4, 4, 2), np.uint8)], "grey or"),
        (lambda: [], f"got 0 images for {N} items"),
    ],
)
def test_thumbnails_that_do_not_fit_are_refused_and_leave_nothing(atlas, batches, message):
    atlas.add_thumbs("ps", [images(N)])
    before = sorted(p.name for p in (atlas.path / "thumbs").iterdir())
    with pytest.raises(ParameterError, match=message):
        atlas.add_thumbs("mg", batches())
    assert sorted(p.name for p in (atlas.path / "thumbs").iterdir()) == before
    assert set(Atlas.open(atlas.path).thumb_kinds()) == {"ps"}


def test_missing_kind_and_rows_beyond_say_what_to_do(atlas):
    with pytest.raises(AtlasError, match="no thumbnails 'mg'.*embedscope thumbs"):
        atlas.thumbs("mg")
    atlas.add_thumbs("mg", [images(N)])
    with pytest.raises(AtlasError, match="run `embedscope thumbs` again"):
        atlas.thumbs("mg", [N])
    with pytest.raises(ParameterError, match="layer name"):
        atlas.add_thumbs("../evil", [images(N)])
