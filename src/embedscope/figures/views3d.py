"""3D maps on paper: three fixed projections side by side, and a GIF of the map turning once around.

Points are coloured exactly as in `draw_scatter`, so a 3D map and its 2D sibling share legend and colour bar.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from embedscope.errors import ParameterError
from embedscope.figures.canvas import figure_format, house_style, new_figure, save_figure
from embedscope.figures.scatter import (
    RASTER_ABOVE,
    check_positions,
    color_by,
    frame_map,
    key_inches,
    map_limits,
    plot_points,
    point_alpha,
    point_size,
)
from embedscope.formats.atomic_files import atomic_output

VIEWS = ((0, 1), (0, 2), (1, 2))  # seen from above, from the front, from the side
AXIS_NAMES = ("dimension 1", "dimension 2", "dimension 3")
PANEL_INCHES = 3.2
ANIMATED_POINTS = 20_000  # a seeded sample of larger maps keeps each frame quick to draw
ELEVATION = 20.0
FRAME_MS = 100


def draw_three_views(
    positions: np.ndarray, path: Path, *, values: np.ndarray | None = None, title: str = "", dpi: int = 150,
    raster_above: int = RASTER_ABOVE, key_title: str = "",
) -> Path:
    """Draw a 3D map as its three axis-aligned projections (1-2, 1-3, 2-3) in one figure at `path`.

    Projections, unlike perspective views, keep distances readable and need no choice of angle.
    """
    figure_format(path)
    xyz = check_positions(positions, 3)
    coloring = color_by(values, len(xyz), key_title)
    with house_style():
        figure = new_figure(len(VIEWS) * PANEL_INCHES + key_inches(coloring), PANEL_INCHES + 0.5, dpi)
        panels = figure.subplots(1, len(VIEWS))
        if title:
            figure.suptitle(title, fontsize="medium")
        coloring.add_key(figure, list(panels))
        views = [xyz[:, list(view)] for view in VIEWS]
        for panel, view, flat in zip(panels, VIEWS, views):
            panel.set_xlabel(AXIS_NAMES[view[0]])
            panel.set_ylabel(AXIS_NAMES[view[1]])
            frame_map(panel, map_limits(flat))  # all panels framed first, so the layout is final before drawing
        for panel, flat in zip(panels, views):
            plot_points(panel, flat, coloring, raster_above=raster_above)
        save_figure(figure, path)
    return Path(path)


def animate_rotation(
    positions: np.ndarray, path: Path, *, values: np.ndarray | None = None, frames: int = 36, dpi: int = 100
) -> Path:
    """Write a looping GIF of the 3D map turning 360 degrees about its vertical axis in `frames` steps.

    Maps above ANIMATED_POINTS points show a seeded sample of them; the legend or colour bar stays still.
    """
    xyz = check_positions(positions, 3)
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ParameterError(f"a rotation is written as a GIF; end the name {path.name!r} in .gif")
    if frames < 2:
        raise ParameterError(f"a rotation needs at least 2 frames; got {frames}")
    coloring = color_by(values, len(xyz))
    shown = coloring.drawing_order()[:: math.ceil(len(xyz) / ANIMATED_POINTS)]
    with house_style():
        figure = new_figure(5.0 + key_inches(coloring), 5.0, dpi)
        axes = figure.add_subplot(projection="3d")
        axes.scatter(*xyz[shown].T, c=coloring.rgb()[shown], s=point_size(len(shown)),
                     alpha=point_alpha(len(shown)), linewidths=0, depthshade=False)
        _style_box(axes, xyz)
        coloring.add_key(figure, axes)
        figure.canvas.draw()
        figure.set_layout_engine("none")  # keep the first frame's layout, so the map does not jump as it turns
        images = [_frame(figure, axes, 360.0 * step / frames) for step in range(frames)]
    with atomic_output(path) as temporary:
        import imageio.v3 as iio

        iio.imwrite(temporary, np.stack(images), extension=".gif", duration=FRAME_MS, loop=0)
    return path


def _style_box(axes: Axes, xyz: np.ndarray) -> None:
    """Equal scale on all three axes, clear panes, and labelled axes without tick numbers."""
    extent = np.ptp(xyz, axis=0)
    axes.set_box_aspect(np.maximum(extent, extent.max() * 0.05))
    for axis, name in zip((axes.xaxis, axes.yaxis, axes.zaxis), AXIS_NAMES):
        axis.set_pane_color((1.0, 1.0, 1.0, 0.0))
        axis.set_major_formatter(NullFormatter())
        axis.label.set_text(name)
        axis.labelpad = -10


def _frame(figure: Figure, axes: Axes, azimuth: float) -> np.ndarray:
    """The figure drawn with the camera at `azimuth` degrees, as an (h, w, 3) uint8 image."""
    axes.view_init(elev=ELEVATION, azim=azimuth)
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
