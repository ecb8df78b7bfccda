"""Figures: arrays -> pictures. Scatter plots, thumbnail maps, nearest-neighbour grids, 3D views, and tomogram
volumes painted by cluster or map colour.

Every function takes arrays and an output path (.webp, .png, .svg, .pdf; .gif for animations; .mrc or .npy for
volumes), writes that file atomically and knows nothing of Atlases or the command line.
"""

from embedscope.figures.neighbor_grid import draw_neighbor_matrix, draw_neighbors
from embedscope.figures.palette import NUMERIC_COLORMAP, category_colors, category_order
from embedscope.figures.position_colors import position_colors
from embedscope.figures.scatter import RASTER_ABOVE, ScatterSummary, draw_scatter
from embedscope.figures.thumbnail_map import draw_thumbnail_map, spaced_selection
from embedscope.figures.views3d import animate_rotation, draw_three_views
from embedscope.figures.volumes import blend, grey_rgb, mark_stencil, paint, write_volume_mrc

__all__ = [
    "NUMERIC_COLORMAP",
    "RASTER_ABOVE",
    "ScatterSummary",
    "animate_rotation",
    "blend",
    "category_colors",
    "category_order",
    "draw_neighbor_matrix",
    "draw_neighbors",
    "draw_scatter",
    "draw_thumbnail_map",
    "draw_three_views",
    "grey_rgb",
    "mark_stencil",
    "paint",
    "position_colors",
    "spaced_selection",
    "write_volume_mrc",
]
