"""Nearest-neighbour grids: an example image beside its nearest items in embedding space, with their distances.

They show what the embedding counts as similar, the check prismPYP's `nearest_neighbors_*.webp` figures make.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from embedscope.errors import ParameterError
from embedscope.figures.canvas import figure_format, house_style, image_stack, new_figure, save_figure, show_image

TILE_INCHES = 1.5
CAPTION_INCHES = 0.3
EXAMPLE_COLOR = "#d62728"
FRAME_COLOR = "#bbbbbb"


def draw_neighbors(
    example: np.ndarray, neighbours: np.ndarray, distances: np.ndarray, path: Path, *, title: str = "",
    dpi: int = 150,
) -> Path:
    """Draw `example` (top left, framed) then its `neighbours` left to right, top to bottom, each with its distance.

    Eight neighbours make a 3x3 grid, other counts the nearest to square; distances must ascend (nearest first).
    """
    figure_format(path)
    distances = _ascending(distances, "distances")
    neighbours = image_stack(neighbours, len(distances), "neighbours")
    example = image_stack(np.asarray(example)[None], 1, "example")[0]
    columns = math.ceil(math.sqrt(len(neighbours) + 1))
    lines = math.ceil((len(neighbours) + 1) / columns)
    with house_style():
        figure = new_figure(columns * TILE_INCHES, lines * (TILE_INCHES + CAPTION_INCHES) + 0.3 * bool(title), dpi)
        tiles = figure.subplots(lines, columns, squeeze=False).ravel()
        _tile(tiles[0], example, "example", example=True)
        for axes, image, distance in zip(tiles[1:], neighbours, distances):
            _tile(axes, image, _distance_caption(distance))
        for axes in tiles[len(neighbours) + 1:]:
            axes.set_axis_off()
        if title:
            figure.suptitle(title, fontsize="medium")
        save_figure(figure, path)
    return Path(path)


def draw_neighbor_matrix(
    examples: np.ndarray, neighbours: np.ndarray, distances: np.ndarray, path: Path, *, title: str = "",
    dpi: int = 150,
) -> Path:
    """Draw one row per example: the example (framed), then its k neighbours nearest first, each with its distance.

    `neighbours` is (r, k, h, w[, 3]) and `distances` (r, k), each row ascending.
    """
    figure_format(path)
    distances = np.asarray(distances)
    if distances.ndim != 2:
        raise ParameterError(f"distances must be (examples, k); got shape {distances.shape}")
    rows = [_ascending(row, f"distances of example {index}") for index, row in enumerate(distances)]
    neighbours = np.asarray(neighbours)
    if neighbours.shape[:2] != distances.shape:
        raise ParameterError(f"neighbours has {neighbours.shape[:2]} (examples, k) but distances {distances.shape}; "
                             f"give one distance per neighbour image")
    flat = image_stack(neighbours.reshape(distances.size, *neighbours.shape[2:]), distances.size, "neighbours")
    examples = image_stack(examples, len(distances), "examples")
    count, k = distances.shape
    with house_style():
        figure = new_figure((k + 1) * TILE_INCHES, count * (TILE_INCHES + CAPTION_INCHES) + 0.3 * bool(title), dpi)
        tiles = figure.subplots(count, k + 1, squeeze=False)
        for line, (example, row) in enumerate(zip(examples, rows)):
            _tile(tiles[line, 0], example, "example", example=True)
            for column, distance in enumerate(row, start=1):
                _tile(tiles[line, column], flat[line * k + column - 1], _distance_caption(distance))
        if title:
            figure.suptitle(title, fontsize="medium")
        save_figure(figure, path)
    return Path(path)


def _ascending(distances: np.ndarray, name: str) -> np.ndarray:
    """`distances` as a 1D float array, refused unless finite and in ascending order."""
    array = np.asarray(distances, dtype=np.float64)
    if array.ndim != 1 or not np.isfinite(array).all():
        raise ParameterError(f"{name} must be a 1D array of finite numbers; got shape {array.shape}")
    if len(array) > 1 and (np.diff(array) < 0).any():
        raise ParameterError(f"{name} must be in ascending order, nearest first; sort the neighbours by distance")
    return array


def _distance_caption(distance: float) -> str:
    return f"d = {distance:.3g}"


def _tile(axes: Axes, image: np.ndarray, caption: str, *, example: bool = False) -> None:
    """One image without ticks, framed (the example in red), its caption underneath."""
    show_image(axes, image)
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(True)
        spine.set_color(EXAMPLE_COLOR if example else FRAME_COLOR)
        spine.set_linewidth(2.0 if example else 0.6)
    axes.set_xlabel(caption, fontweight="bold" if example else "normal", labelpad=3)
