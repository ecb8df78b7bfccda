"""Colours every figure shares: a stable palette for categories, the colour map for numbers, grey for missing.

Keeping these in one place makes a scatter, a thumbnail map and a neighbour grid of the same data read alike.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence

import colorcet
import numpy as np

NUMERIC_COLORMAP = "viridis"
MISSING_COLOR = np.array([200, 200, 200], dtype=np.uint8)
MISSING_NAME = "missing"
MIN_CHROMA = 40  # palette entries whose channels differ less than this are greys, kept for "missing"


def _distinct_palette() -> np.ndarray:
    """tab10 first, then glasbey colours chosen to differ from it and each other; greys left out."""
    rgb = np.round(np.asarray(colorcet.glasbey_category10) * 255).astype(np.uint8)
    chroma = rgb.max(axis=1).astype(int) - rgb.min(axis=1)
    return rgb[chroma >= MIN_CHROMA]


PALETTE = _distinct_palette()


def category_colors(count: int) -> np.ndarray:
    """(count, 3) uint8 colours for categories 0..count-1; category i always gets the same colour.

    The first ten are matplotlib's tab10 (without its grey, which means "missing"); beyond the palette colours repeat.
    """
    return PALETTE[np.arange(count) % len(PALETTE)]


def category_order(values: Sequence | np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct categories of `values` in natural order, and each value's index into them (-1: missing).

    Numbers sort numerically and before strings; strings sort alphabetically with digit runs as numbers
    ("c2" before "c10"). None and NaN are missing.
    """
    array = np.asarray(values)
    if array.dtype.kind == "f":
        missing = np.isnan(array)
    elif array.dtype == object:
        missing = np.fromiter((_is_missing(value) for value in array.ravel()), bool, array.size).reshape(array.shape)
    else:
        missing = np.zeros(array.shape, dtype=bool)
    present = array[~missing]
    if array.dtype == object:
        distinct = sorted(set(present.tolist()), key=_natural_key)
        lookup = {value: index for index, value in enumerate(distinct)}
        found = np.fromiter((lookup[value] for value in present.tolist()), np.int64, len(present))
    else:
        unique, inverse = np.unique(present, return_inverse=True)
        order = sorted(range(len(unique)), key=lambda index: _natural_key(unique[index].item()))
        rank = np.empty(len(unique), dtype=np.int64)
        rank[order] = np.arange(len(unique))
        distinct, found = [unique[index].item() for index in order], rank[inverse.ravel()]
    codes = np.full(array.shape, -1, dtype=np.int64)
    codes[~missing] = found
    return [_name(value) for value in distinct], codes


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, numbers.Real) and math.isnan(value))


def _natural_key(value: object) -> tuple:
    if isinstance(value, numbers.Real):
        return (0, float(value), ())
    text = value.decode() if isinstance(value, bytes) else str(value)
    parts = re.split(r"(\d+)", text)
    return (1, 0.0, tuple(int(part) if index % 2 else part.casefold() for index, part in enumerate(parts)), text)


def _name(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, float | np.floating):
        return f"{value:g}"
    return str(value)
