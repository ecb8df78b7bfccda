"""The look every figure shares: colours for categories and numbers, fonts and lines, and how a figure is written.

Keeping these in one place makes a scatter, a thumbnail map and a neighbour grid of the same data read alike.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import colorcet
import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from embedscope.errors import ParameterError

NUMERIC_COLORMAP = "viridis"
MISSING_COLOR = np.array([200, 200, 200], dtype=np.uint8)
MISSING_NAME = "missing"
FORMATS = (".webp", ".png", ".svg", ".pdf")
MIN_CHROMA = 40  # palette entries whose channels differ less than this are greys, kept for "missing"
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "normal",
    "axes.labelsize": 9,
    "axes.labelcolor": "#333333",
    "axes.edgecolor": "#555555",
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "xtick.color": "#555555",
    "ytick.color": "#555555",
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 3,
    "ytick.major.size": 3,
    "legend.fontsize": 8,
    "grid.color": "#e0e0e0",
    "grid.linewidth": 0.5,
    "legend.frameon": False,
    "legend.handletextpad": 0.3,
    "legend.columnspacing": 1.0,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "pdf.fonttype": 42,  # TrueType text stays editable in illustration programs
    "svg.fonttype": "none",
}


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


def new_figure(width: float, height: float, dpi: int, *, layout: str | None = "constrained") -> Figure:
    """A white figure of `width` x `height` inches drawn by Agg, outside pyplot so nothing global holds it."""
    check_dpi(dpi)
    figure = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(figure)
    return figure


@contextmanager
def house_style() -> Iterator[None]:
    """Draw and save inside this block so every figure gets the same fonts, lines and background."""
    with matplotlib.rc_context(STYLE):
        yield


def save_figure(figure: Figure, path: Path) -> Path:
    """Write `figure` to `path` in the format its suffix names, at the figure's dpi, atomically."""
    path = Path(path)
    suffix = figure_format(path)
    figure.draw_without_rendering()  # settles the layout first, else text at the edges can be cut off
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format=suffix[1:], dpi=figure.dpi)
    return path


def figure_format(path: Path) -> str:
    """The suffix of a figure path, refused unless it is one we write."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ParameterError(f"cannot write a figure as {Path(path).name!r}; end the name in "
                             f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}")
    return suffix


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary sibling of `path` to write; it replaces `path` only when the block succeeds.

    A crash or error leaves neither a half-written figure nor the temporary file behind.
    """
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def check_dpi(dpi: int) -> None:
    """Refuse a resolution no figure can be drawn at."""
    if not 10 <= dpi <= 2400:
        raise ParameterError(f"dpi must be between 10 and 2400; got {dpi}")


def image_stack(images: np.ndarray, count: int, name: str = "images") -> np.ndarray:
    """`images` checked to be `count` uint8 grey (m, h, w) or RGB (m, h, w, 3) images."""
    stack = np.asarray(images)
    shaped = stack.ndim == 3 or (stack.ndim == 4 and stack.shape[-1] == 3)
    if not shaped or stack.dtype != np.uint8:
        raise ParameterError(f"{name} must be uint8 grey (m, h, w) or RGB (m, h, w, 3) images; "
                             f"got {stack.dtype} of shape {stack.shape}")
    if len(stack) != count:
        raise ParameterError(f"{name} holds {len(stack)} images for {count} items; give one image per item")
    return stack


def show_image(axes: Axes, image: np.ndarray, **placement) -> None:
    """Draw one uint8 image on `axes`: grey ones on a fixed black-to-white scale, so contrast reads alike."""
    grey = {"cmap": "gray", "vmin": 0, "vmax": 255} if image.ndim == 2 else {}
    axes.imshow(image, interpolation="antialiased", **grey, **placement)
