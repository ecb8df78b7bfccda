"""Thumbnail maps: a well-spread subset of points shown as their images on top of the whole map.

The subset is chosen as MiLoPYP and prismPYP choose it (greedy, a minimum squared distance in min-max scaled
coordinates), so their `min_dist_vis` values carry over; without one, it is found for a target count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numba
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from scipy.spatial import cKDTree

from embedscope.errors import ParameterError
from embedscope.figures.canvas import figure_format, house_style, image_stack, new_figure, save_figure, show_image
from embedscope.figures.scatter import Coloring, check_positions, color_by, key_inches, map_inches, plot_points

MAX_CELLS = 2048  # grid cells per axis for the spacing check: bounds memory when min_dist is tiny
READABLE_MIN_DIST = 1.3e-3  # MiLoPYP's default spacing: closer thumbnails cover each other
SEARCH_TOLERANCE = 0.02  # the search stops within 2% of the target count
SEARCH_STEPS = 60
MAP_INCHES = 9.0  # the longer side of the map
BACKGROUND_OPACITY = 0.5
TILE_FRACTION = (0.03, 0.1)  # a thumbnail is this fraction of the map's larger extent, at least and at most
BORDER_WIDTH = 1.2
PLAIN_BORDER = "#444444"


def spaced_selection(
    positions: np.ndarray, *, min_dist: float | None = None, target: int = 150, seed: int = 0
) -> np.ndarray:
    """Sorted rows spread over the map: points walked in a seeded random order, each kept if far from all kept.

    Far means a squared distance of at least `min_dist` in positions min-max scaled to [0, 1] per axis (MiLoPYP's
    and prismPYP's units); with `min_dist` None it is searched (bisection) so that about `target` rows are kept,
    but never below MiLoPYP's 1.3e-3, so that compact maps get fewer thumbnails rather than a pile of them.
    """
    points = _unit_square(check_positions(positions, 2))
    order = np.random.default_rng(seed).permutation(len(points))
    if min_dist is not None:
        if not 0 <= min_dist <= 2:
            raise ParameterError(f"min_dist is a squared distance in [0, 1]-scaled map units (e.g. 0.003); "
                                 f"got {min_dist:g}")
        return np.sort(_greedy(points, order, float(min_dist)))
    if target < 1:
        raise ParameterError(f"the target number of thumbnails must be at least 1; got {target}")
    readable = _greedy(points, order, READABLE_MIN_DIST)
    if len(readable) <= target:
        return np.sort(readable)
    return np.sort(_search(points, order, target))


def _unit_square(xy: np.ndarray) -> np.ndarray:
    """Each axis scaled to [0, 1]; an axis with no extent becomes 0."""
    low = xy.min(axis=0)
    extent = xy.max(axis=0) - low
    return (xy - low) / np.where(extent > 0, extent, 1.0)


def _search(points: np.ndarray, order: np.ndarray, target: int) -> np.ndarray:
    """The selection whose count is nearest `target`, by bisection on log(min_dist): fewer rows as it grows."""
    low, high = READABLE_MIN_DIST, 2.0
    best = np.empty(0, dtype=np.int64)
    for _ in range(SEARCH_STEPS):
        middle = math.sqrt(low * high)
        kept = _greedy(points, order, middle)
        if abs(len(kept) - target) < abs(len(best) - target):
            best = kept
        if abs(len(kept) - target) <= SEARCH_TOLERANCE * target or high / low < 1.0001:
            break
        low, high = (middle, high) if len(kept) > target else (low, middle)
    return best


def _greedy(points: np.ndarray, order: np.ndarray, min_dist: float) -> np.ndarray:
    """Kept rows for one `min_dist`, checking only kept points in the 3x3 grid cells around each point."""
    cell = max(math.sqrt(min_dist), 1.0 / MAX_CELLS)
    cells = min(int(1.0 / cell) + 1, MAX_CELLS + 1)
    return _greedy_on_grid(points, order, min_dist, cell, cells)


@numba.njit(cache=True)
def _greedy_on_grid(points, order, min_dist, cell, cells):  # pragma: no cover - compiled
    head = np.full((cells, cells), -1, dtype=np.int64)  # last kept point in each cell; `after` chains the rest
    after = np.full(len(points), -1, dtype=np.int64)
    kept = np.empty(len(points), dtype=np.int64)
    count = 0
    for row in order:
        x, y = points[row, 0], points[row, 1]
        column, line = min(int(x / cell), cells - 1), min(int(y / cell), cells - 1)
        free = True
        for near_column in range(max(column - 1, 0), min(column + 2, cells)):
            for near_line in range(max(line - 1, 0), min(line + 2, cells)):
                other = head[near_column, near_line]
                while free and other >= 0:
                    free = (points[other, 0] - x) ** 2 + (points[other, 1] - y) ** 2 >= min_dist
                    other = after[other]
        if free:
            after[row] = head[column, line]
            head[column, line] = row
            kept[count] = row
            count += 1
    return kept[:count]


def draw_thumbnail_map(
    positions: np.ndarray, rows: np.ndarray, images: np.ndarray | Sequence[np.ndarray], path: Path, *,
    clusters: np.ndarray | None = None, dpi: int = 150, title: str = "", key_title: str = "",
) -> Path:
    """Draw every point faintly and, centred on each of `rows`, its image (`images[i]` belongs to `rows[i]`).

    `images` is one uint8 stack, or a list of stacks shown side by side per point (a micrograph and its power
    spectrum); with `clusters`, points and thumbnail borders take the cluster colours and a legend names them.
    """
    figure_format(path)
    xy = check_positions(positions, 2)
    rows = _check_rows(rows, len(xy))
    stacks = [images] if isinstance(images, np.ndarray) else list(images)
    if not stacks:
        raise ParameterError("no thumbnail images given; pass one stack of images, or a list of stacks to pair")
    stacks = [image_stack(stack, len(rows)) for stack in stacks]
    coloring = color_by(clusters, len(xy), key_title)
    width = _tile_width(xy, rows, len(stacks))
    limits = _limits(xy, rows, width, stacks)
    box_width, box_height = map_inches(limits, MAP_INCHES)
    with house_style():
        figure = new_figure(box_width + key_inches(coloring) + 0.2, box_height + 0.4, dpi)
        axes = figure.add_subplot()
        axes.set_axis_off()
        if title:
            axes.set_title(title)
        coloring.add_key(figure, axes)
        plot_points(axes, xy, coloring, limits=limits, opacity=BACKGROUND_OPACITY)
        _place_thumbnails(axes, xy[rows], stacks, width, _border_colors(coloring, rows))
        save_figure(figure, path)
    return Path(path)


def _check_rows(rows: np.ndarray, count: int) -> np.ndarray:
    array = np.asarray(rows)
    if array.ndim != 1 or array.dtype.kind not in "iu" or (len(array) and (array.min() < 0 or array.max() >= count)):
        raise ParameterError(f"rows must be a 1D array of row numbers in 0..{count - 1}; "
                             f"pick them with spaced_selection")
    return array.astype(np.int64)


def _tile_width(xy: np.ndarray, rows: np.ndarray, panels: int) -> float:
    """Width of one thumbnail in map units: most neighbouring tiles just clear each other."""
    span = max(float(np.ptp(xy, axis=0).max()), 1e-9)
    if len(rows) < 2:
        return TILE_FRACTION[1] * span
    spacing = float(np.median(cKDTree(xy[rows]).query(xy[rows], k=2)[0][:, 1]))
    return float(np.clip(0.8 * spacing / math.sqrt(panels), TILE_FRACTION[0] * span, TILE_FRACTION[1] * span))


def _tile_height(width: float, image: np.ndarray) -> float:
    return width * image.shape[0] / image.shape[1]


def _limits(xy: np.ndarray, rows: np.ndarray, width: float, stacks: list[np.ndarray]) -> tuple:
    """The map's extent grown so that thumbnails at its edges stay whole."""
    half_width = width * len(stacks) / 2
    half_height = max(_tile_height(width, stack[0]) for stack in stacks) / 2 if len(rows) else 0.0
    low = xy.min(axis=0) - [half_width, half_height]
    high = xy.max(axis=0) + [half_width, half_height]
    margin = 0.01 * float((high - low).max())
    return (low[0] - margin, high[0] + margin), (low[1] - margin, high[1] + margin)


def _border_colors(coloring: Coloring, rows: np.ndarray) -> np.ndarray | list[str]:
    """Cluster colours for the thumbnail borders, or one dark grey when there are no clusters."""
    if coloring.codes is None:
        return [PLAIN_BORDER] * len(rows)
    return coloring.rgb()[rows]


def _place_thumbnails(
    axes: Axes, centres: np.ndarray, stacks: list[np.ndarray], width: float, borders: np.ndarray | list[str]
) -> None:
    """Each point's images side by side, centred on it, framed in its border colour."""
    for index, (x, y) in enumerate(centres):
        left = x - width * len(stacks) / 2
        height = max(_tile_height(width, stack[index]) for stack in stacks)
        for panel, stack in enumerate(stacks):
            image = stack[index]
            half = _tile_height(width, image) / 2
            start = left + panel * width
            show_image(axes, image, extent=(start, start + width, y - half, y + half), zorder=3)
        axes.add_patch(Rectangle((left, y - height / 2), width * len(stacks), height, fill=False,
                                 edgecolor=borders[index], linewidth=BORDER_WIDTH, zorder=4))
