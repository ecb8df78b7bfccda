"""Cut MiLoPYP's two views of each candidate: a tomogram patch (3d) and a sum of tilt-image patches (2d3d).

3d view: the sum of slices z-1..z+1 around the point. 2d view: the sum of the patches at the point's projection
into each tilt image within +-20 degrees. Each view is min-max scaled to [0, 1] on its own, as cet_pick does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from embedscope.errors import ParameterError

TILT_LIMIT = 20.0  # degrees: MiLoPYP's 2d3d views use tilts within +-20
DTYPES = ("float32", "uint8")


@dataclass
class PatchBatch:
    """One tomogram's candidates and their views; `dropped` counts points that gave no full, non-constant view."""

    name: str
    coords: np.ndarray
    views3d: np.ndarray
    views2d: np.ndarray | None
    dropped: int = 0


def patch_side(bbox: int, margin: int = 0) -> int:
    """The side S of a view: the box plus a margin on each side, from which a trainer can crop shifted boxes."""
    return bbox + 2 * margin


def check_patch_size(bbox: int, margin: int, slices: int, shape: tuple[int, int, int], name: str) -> None:
    """Refuse a box (with margin) that cannot fit in a (Z, Y, X) tomogram, naming the parameters to change."""
    if not (isinstance(bbox, int | np.integer) and bbox >= 1):
        raise ParameterError(f"bbox={bbox} must be a positive whole number of pixels, e.g. 36")
    if not (isinstance(margin, int | np.integer) and margin >= 0):
        raise ParameterError(f"margin={margin} must be a whole number of pixels, 0 or more")
    if not (isinstance(slices, int | np.integer) and slices >= 1 and slices % 2 == 1):
        raise ParameterError(f"slices={slices} must be an odd number of slices to sum, e.g. 3")
    depth, rows, columns = shape
    side = patch_side(bbox, margin)
    if side > min(rows, columns) or slices > depth:
        raise ParameterError(f"bbox={bbox} with margin={margin} ({side} px) is larger than tomogram {name} "
                             f"(x-y-z {columns} x {rows} x {depth}); lower bbox or margin")


def views_3d(volume: np.ndarray, coords: np.ndarray, bbox: int, margin: int = 0,
             slices: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The 3d view of each point in a preprocessed (Z, Y, X) volume, and which points gave one.

    A view is the sum of `slices` slices centred on z, S x S around (x, y), scaled to [0, 1] as float32 (M, S, S).
    Points whose patch would cross the volume's edge, or whose patch is constant, are left out.
    """
    depth, rows, columns = volume.shape
    side, half = patch_side(bbox, margin), slices // 2
    x, y, z = _corners(coords, bbox, margin)
    inside = (z >= half) & (z + half < depth) & (y >= 0) & (y + side <= rows) & (x >= 0) & (x + side <= columns)
    chosen = np.flatnonzero(inside)
    views = np.empty((len(chosen), side, side), dtype=np.float32)
    first, row, column = z[chosen] - half, y[chosen], x[chosen]
    varied = _slice_views(volume, first, row, column, np.lexsort((column, row, first)), slices, views)
    kept = inside.copy()
    kept[chosen[~varied]] = False
    return (views if varied.all() else views[varied]), kept


def views_2d(tilts: np.ndarray, angles: np.ndarray, coords: np.ndarray, depth: int, bbox: int,
             margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 2d view of each point: the sum of its patches in preprocessed tilt images (n, Y, X), and who gave one.

    Pass the tilts with |angle| <= 20 degrees (`used_tilts`). A tilt whose projected patch falls outside the image
    is skipped for that point (cet_pick skips slightly earlier, once x_t is within bbox // 1.8 of an edge); a point
    with no usable tilt, or a constant sum, is left out, as in cet_pick.
    """
    rows, columns = tilts.shape[1:]
    side = patch_side(bbox, margin)
    x, y, _ = _corners(coords, bbox, margin)
    corners = tilt_columns(coords, angles, columns, depth) - (bbox // 2 + margin)
    fits = (corners >= 0) & (corners + side <= columns) & ((y >= 0) & (y + side <= rows))[np.newaxis]
    views = np.empty((len(x), side, side), dtype=np.float32)
    kept = _tilt_views(tilts, corners, fits, y, views)
    return (views if kept.all() else views[kept]), kept


def tilt_columns(coords: np.ndarray, angles: np.ndarray, width: int, depth: int) -> np.ndarray:
    """The column x_t of each point in each tilt image, (n_tilts, N) int64; the row stays y.

    MiLoPYP's convert_tomo_to_tilt: x_t = int((x - W//2) cos t + ((D - z) - D//2) sin t + W//2), truncated to 0.
    """
    radians = (np.asarray(angles, dtype=np.float64) * np.pi / 180)[:, np.newaxis]  # cet_pick's order of operations
    x = coords[:, 0].astype(np.float64) - width // 2
    height = (depth - coords[:, 2].astype(np.float64)) - depth // 2
    return np.trunc(x * np.cos(radians) + height * np.sin(radians) + width // 2).astype(np.int64)


def used_tilts(angles: np.ndarray) -> np.ndarray:
    """Indices of the tilts MiLoPYP's 2d3d views use: angles within +-20 degrees, limits included."""
    return np.flatnonzero((angles >= -TILT_LIMIT) & (angles <= TILT_LIMIT))


def as_dtype(views: np.ndarray, dtype: str) -> np.ndarray:
    """Views in [0, 1] as float32, or as uint8 = round(255 * value)."""
    if dtype not in DTYPES:
        raise ParameterError(f"dtype={dtype!r} is not one of {', '.join(DTYPES)}")
    if dtype == "float32":
        return views
    return np.rint(views * np.float32(255)).astype(np.uint8)


@njit(cache=True, nogil=True)
def _slice_views(volume: np.ndarray, first: np.ndarray, row: np.ndarray, column: np.ndarray, visit: np.ndarray,
                 slices: int, out: np.ndarray) -> np.ndarray:
    """out[i] = the sum of `slices` slices from first[i] in the (S, S) square at row[i], column[i], scaled to [0, 1].

    Returns which sums were not constant. Points are visited in `visit` order (sorted by position), so
    overlapping patches share cached memory; each sum is built in a small buffer that stays in cache.
    """
    side = out.shape[1]
    total = np.empty((side, side), dtype=np.float32)
    varied = np.zeros(len(first), dtype=np.bool_)
    for index in visit:
        bottom, top, left = first[index], row[index], column[index]
        for r in range(side):
            for c in range(side):
                value = np.float32(0)
                for s in range(slices):
                    value += np.float32(volume[bottom + s, top + r, left + c])
                total[r, c] = value
        varied[index] = _scale_into(total, out[index])
    return varied


@njit(cache=True, nogil=True)
def _tilt_views(tilts: np.ndarray, corners: np.ndarray, fits: np.ndarray, row: np.ndarray,
                out: np.ndarray) -> np.ndarray:
    """out[i] = the sum of each tilt's (S, S) square at row[i], corners[t, i] where fits[t, i], scaled to [0, 1].

    Returns which points had at least one fitting tilt and a sum that was not constant.
    """
    side = out.shape[1]
    total = np.empty((side, side), dtype=np.float32)
    kept = np.zeros(out.shape[0], dtype=np.bool_)
    for index in range(out.shape[0]):
        total[:] = 0
        used = False
        for tilt in range(len(tilts)):
            if fits[tilt, index]:
                used = True
                top, left = row[index], corners[tilt, index]
                for r in range(side):
                    for c in range(side):
                        total[r, c] += tilts[tilt, top + r, left + c]
        kept[index] = used and _scale_into(total, out[index])
    return kept


@njit(cache=True, nogil=True)
def _scale_into(total: np.ndarray, target: np.ndarray) -> bool:
    """Write `total` min-max scaled to [0, 1] into `target`, as cet_pick scales each patch; False if constant."""
    low, high = total[0, 0], total[0, 0]
    for r in range(total.shape[0]):  # explicit loops: numba's array min() and max() are several times slower
        for c in range(total.shape[1]):
            low, high = min(low, total[r, c]), max(high, total[r, c])
    if not high > low:
        return False
    spread = high - low
    for r in range(total.shape[0]):
        for c in range(total.shape[1]):
            target[r, c] = (total[r, c] - low) / spread
    return True


def _corners(coords: np.ndarray, bbox: int, margin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each view's first column and row (x, y) and its centre slice z, as int64 arrays."""
    coords = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
    offset = bbox // 2 + margin
    return coords[:, 0] - offset, coords[:, 1] - offset, coords[:, 2]
