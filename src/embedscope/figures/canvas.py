"""How every figure is drawn and written: one house style, Agg figures outside pyplot, atomic files.

Figures of any kind share fonts, lines and image handling, and a failed write never leaves a half file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from embedscope.errors import ParameterError
from embedscope.formats.atomic_files import atomic_output

FORMATS = (".webp", ".png", ".svg", ".svgz", ".pdf")  # .svgz: gzipped SVG, as prismPYP's --svgz writes
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
