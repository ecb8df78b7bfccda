"""Scatter plots of 2D maps coloured by a category or a number, drawn as points or, for millions, as an image.

The colouring (`color_by`) and the point drawing (`plot_points`) are shared with the 3D views and thumbnail maps,
so the same values get the same colours, legend and colour bar in every figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.ndimage import uniform_filter

from embedscope.errors import InputError, ParameterError
from embedscope.figures.canvas import figure_format, house_style, new_figure, save_figure
from embedscope.figures.palette import MISSING_COLOR, MISSING_NAME, NUMERIC_COLORMAP, category_colors, category_order

RASTER_ABOVE = 200_000
MAX_CATEGORIES = 60  # integers with more distinct values are numbers; more categories get no legend
LEGEND_ROWS = 20
VECTOR_POINTS = 20_000  # above this, points inside an svg or pdf are stored as one image
MAP_INCHES = 6.0  # the longer side of a scatter plot's map
MIN_RASTER_ALPHA = 0.5
ORDER_SEED = 0


@dataclass(frozen=True)
class ScatterSummary:
    """What a scatter plot shows: its file, its legend entries in order, and how the points were drawn."""

    path: Path
    legend: list[str]
    rasterised: bool
    colorbar: bool


@dataclass(frozen=True, eq=False)
class Coloring:
    """How points get colours: one colour for all, a colour per category, or a colour map over numbers.

    `codes` index `names` (-1: missing, drawn grey); `numbers` are NaN where missing.
    """

    count: int
    codes: np.ndarray | None = None
    names: tuple[str, ...] = ()
    title: str = ""
    numbers: np.ndarray | None = None

    @cached_property
    def missing(self) -> np.ndarray:
        """True for each point without a value."""
        if self.codes is not None:
            return self.codes < 0
        if self.numbers is not None:
            return np.isnan(self.numbers)
        return np.zeros(self.count, dtype=bool)

    @property
    def legend(self) -> list[str]:
        """Legend entries in order: each category, then "missing" when some are; none for numbers or too many."""
        if self.codes is None or len(self.names) > MAX_CATEGORIES:
            return []
        return [*self.names, MISSING_NAME] if self.missing.any() else list(self.names)

    def rgb(self) -> np.ndarray:
        """(count, 3) float colours in [0, 1], one per point."""
        if self.codes is not None:
            return self._category_table()[self.codes]
        if self.numbers is not None:
            return self.colormap()(self.norm()(self.numbers))[:, :3]
        return np.broadcast_to(category_colors(1)[0] / 255.0, (self.count, 3))

    def _category_table(self) -> np.ndarray:
        """Category colours as floats with the missing grey last, where code -1 picks it."""
        return np.vstack([category_colors(len(self.names)), MISSING_COLOR]) / 255.0

    def colormap(self) -> Colormap:
        """The numeric colour map, with missing values grey."""
        return matplotlib.colormaps[NUMERIC_COLORMAP].with_extremes(bad=MISSING_COLOR / 255.0)

    def norm(self) -> Normalize:
        """Numbers from their smallest to their largest value onto the colour map."""
        present = self.numbers[~self.missing]
        if len(present) == 0:
            return Normalize(0.0, 1.0)
        return Normalize(float(present.min()), float(present.max()))

    def add_key(self, figure: Figure, axes: Axes | list[Axes]) -> bool:
        """Put the legend or colour bar right of `axes`; True when it is a colour bar."""
        if self.numbers is not None:
            bar = figure.colorbar(ScalarMappable(self.norm(), self.colormap()), ax=axes, shrink=0.6, aspect=30,
                                  pad=0.02)
            bar.outline.set_visible(False)
            bar.set_label(self.title)
            return True
        if self.legend:
            colors = self._category_table()
            handles = [Line2D([], [], marker="o", linestyle="", markersize=6, markeredgewidth=0,
                              markerfacecolor=colors[min(index, len(colors) - 1)], label=name)
                       for index, name in enumerate(self.legend)]
            figure.legend(handles=handles, loc="outside right upper", ncols=legend_columns(len(handles)),
                          title=self.title or None)
        return False

    def drawing_order(self) -> np.ndarray:
        """Missing points first (underneath), the rest in a seeded shuffle so no category hides another."""
        order = np.random.default_rng(ORDER_SEED).permutation(self.count)
        return np.concatenate([order[self.missing[order]], order[~self.missing[order]]])


def color_by(values: np.ndarray | None, count: int, title: str = "") -> Coloring:
    """The colouring of `count` points by `values`, its key headed `title`; None colours every point alike.

    Floats are numbers; strings, objects and integers with at most MAX_CATEGORIES distinct values are categories.
    """
    if values is None:
        return Coloring(count)
    array = np.asarray(values)
    if array.shape != (count,):
        raise ParameterError(f"values has shape {array.shape} for {count} points; give one value per point")
    numeric = array.dtype.kind == "f" or (array.dtype.kind in "iu" and len(np.unique(array)) > MAX_CATEGORIES)
    if numeric:
        return Coloring(count, numbers=array.astype(np.float64), title=title)
    names, codes = category_order(array)
    return Coloring(count, codes=codes, names=tuple(names), title=title)


def legend_columns(entries: int) -> int:
    """Columns so that a legend is at most LEGEND_ROWS entries tall."""
    return max(1, math.ceil(entries / LEGEND_ROWS))


def check_positions(positions: np.ndarray, dims: int) -> np.ndarray:
    """`positions` as a finite (n, dims) float array, at least one row."""
    array = np.asarray(positions)
    if array.ndim != 2 or array.shape[1] != dims or len(array) == 0:
        raise InputError(f"positions must be an (n, {dims}) array of map coordinates with n >= 1; "
                         f"got shape {array.shape}")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise InputError(f"{int(bad.sum())} positions are NaN or infinite (first row {int(np.argmax(bad))}); "
                         f"drop those rows before drawing")
    return array.astype(np.float64, copy=False)


def map_limits(xy: np.ndarray, pad: float = 0.03) -> tuple[tuple[float, float], tuple[float, float]]:
    """x and y limits around the points with a margin of `pad` times the larger extent on every side."""
    low, high = xy.min(axis=0), xy.max(axis=0)
    margin = max(float((high - low).max()), 1e-9) * pad
    return (low[0] - margin, high[0] + margin), (low[1] - margin, high[1] + margin)


def map_inches(limits: tuple[tuple[float, float], tuple[float, float]], longer: float) -> tuple[float, float]:
    """Width and height in inches of a map showing `limits` at equal scale, its longer side `longer` inches.

    Very long or tall maps are drawn no more than twice as long as wide, with white space along the short side.
    """
    (x0, x1), (y0, y1) = limits
    aspect = float(np.clip((y1 - y0) / (x1 - x0), 0.5, 2.0))
    return (longer, longer * aspect) if aspect <= 1 else (longer / aspect, longer)


def frame_map(axes: Axes, limits: tuple[tuple[float, float], tuple[float, float]]) -> None:
    """Show `limits` on `axes` with one data unit as long across as up, as a map should be."""
    axes.set_xlim(*limits[0])
    axes.set_ylim(*limits[1])
    axes.set_aspect("equal", adjustable="box")


def point_size(count: int) -> float:
    """Marker area in points^2: large for a few points, about a pixel for hundreds of thousands."""
    return float(np.clip(300.0 / count**0.54, 0.3, 30.0))


def point_alpha(count: int) -> float:
    """Opacity: nearly solid for a few points, see-through for many so density shows."""
    return float(np.clip(0.9 - 0.1 * math.log10(max(count, 1) / 100), 0.45, 0.9))


def plot_points(
    axes: Axes, xy: np.ndarray, coloring: Coloring, *, limits: tuple | None = None, opacity: float = 1.0,
    raster_above: int = RASTER_ABOVE,
) -> bool:
    """Draw `xy` on `axes` at equal scale within `limits`; True when drawn as a datashader image.

    Call it after legends and colour bars are placed: the image is rendered at the axes' final pixel size.
    """
    (x0, x1), (y0, y1) = limits = limits or map_limits(xy)
    frame_map(axes, limits)
    if len(xy) > raster_above:
        rgba = _raster(axes, xy, coloring, opacity)
        axes.imshow(rgba, extent=(x0, x1, y0, y1), origin="upper", interpolation="nearest", zorder=1)
        return True
    order = coloring.drawing_order()
    axes.scatter(xy[order, 0], xy[order, 1], c=coloring.rgb()[order], s=point_size(len(xy)),
                 alpha=point_alpha(len(xy)) * opacity, linewidths=0, rasterized=len(xy) > VECTOR_POINTS, zorder=1)
    return False


def _raster(axes: Axes, xy: np.ndarray, coloring: Coloring, opacity: float) -> np.ndarray:
    """The points as an RGBA image the size of `axes` in pixels: mean colour per pixel, opacity by density.

    Numbers are averaged before the colour map, so a pixel's colour matches the colour bar. Where there are
    fewer points than pixels, each point covers 3x3 pixels so that sparse parts stay visible.
    """
    import datashader
    import pandas as pd

    axes.figure.canvas.draw()  # settles the layout, so the axes have their final size
    box = axes.get_window_extent()
    width, height = max(round(box.width), 1), max(round(box.height), 1)
    canvas = datashader.Canvas(plot_width=width, plot_height=height, x_range=axes.get_xlim(),
                               y_range=axes.get_ylim())
    channels = coloring.numbers[:, None] if coloring.numbers is not None else coloring.rgb()
    names = [f"channel{index}" for index in range(channels.shape[1])]
    frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], **dict(zip(names, channels.T))})
    sums = {name: datashader.sum(name) for name in names}
    summary = canvas.points(frame, "x", "y", datashader.summary(count=datashader.count(),
                                                                valued=datashader.count(names[0]), **sums))
    counts, valued = summary["count"].values.astype(np.float64), summary["valued"].values.astype(np.float64)
    totals = np.nan_to_num(np.stack([summary[name].values for name in names], axis=-1))
    if len(xy) < width * height:
        counts, valued = uniform_filter(counts, 3), uniform_filter(valued, 3)
        totals = uniform_filter(totals, (3, 3, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = totals / valued[..., None]
    if coloring.numbers is not None:
        rgb = coloring.colormap()(coloring.norm()(np.ma.masked_invalid(means[..., 0])))[..., :3]
    else:
        rgb = np.nan_to_num(means)
    density = np.log1p(counts) / max(math.log1p(counts.max()), 1e-9)
    alpha = np.where(counts > 1e-9, MIN_RASTER_ALPHA + (1 - MIN_RASTER_ALPHA) * density, 0.0) * opacity
    rgba = np.concatenate([rgb, alpha[..., None]], axis=-1)
    return np.round(np.clip(rgba[::-1], 0, 1) * 255).astype(np.uint8)  # datashader's first row is the lowest y


def draw_scatter(
    positions: np.ndarray, path: Path, *, values: np.ndarray | None = None, title: str = "", labels: bool = True,
    axis_labels: tuple[str, str] = ("dimension 1", "dimension 2"), dpi: int = 150,
    raster_above: int = RASTER_ABOVE, key_title: str = "",
) -> ScatterSummary:
    """Draw a 2D map coloured by `values` (legend or colour bar headed `key_title`) to `path`; above
    `raster_above` points as a datashader image.

    `labels=False` leaves only the points: no title, legend, colour bar, ticks or axis labels.
    """
    figure_format(path)
    xy = check_positions(positions, 2)
    coloring = color_by(values, len(xy), key_title)
    limits = map_limits(xy)
    width, height = map_inches(limits, MAP_INCHES)
    with house_style():
        if labels:
            figure = new_figure(width + 0.7 + key_inches(coloring), height + 0.7, dpi)
            axes = figure.add_subplot()
            axes.set_title(title)
            axes.set_xlabel(axis_labels[0])
            axes.set_ylabel(axis_labels[1])
            colorbar = coloring.add_key(figure, axes)
            legend = coloring.legend
        else:
            figure = new_figure(width, height, dpi, layout=None)
            axes = figure.add_axes((0, 0, 1, 1))
            axes.set_axis_off()
            colorbar, legend = False, []
        rasterised = plot_points(axes, xy, coloring, limits=limits, raster_above=raster_above)
        save_figure(figure, path)
    return ScatterSummary(Path(path), legend, rasterised, colorbar)


def key_inches(coloring: Coloring) -> float:
    """Width the legend or colour bar needs beside a map, from its columns and longest entry."""
    if coloring.numbers is not None:
        return 1.0
    if not coloring.legend:
        return 0.0
    return legend_columns(len(coloring.legend)) * (0.35 + 0.065 * max(map(len, coloring.legend)))
