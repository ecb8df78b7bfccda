"""Publication figures from arrays: scatter plots, thumbnail maps, nearest-neighbour grids and 3D views.

Every function takes arrays and an output path (.webp, .png, .svg, .pdf; .gif for animations), writes that one
file atomically and knows nothing of Atlases or the command line.
"""

from embedscope.figures.neighbor_grid import draw_neighbor_matrix, draw_neighbors
from embedscope.figures.palette import NUMERIC_COLORMAP, category_colors, category_order
from embedscope.figures.position_colors import position_colors
from embedscope.figures.scatter import RASTER_ABOVE, ScatterSummary, draw_scatter
from embedscope.figures.thumbnail_map import draw_thumbnail_map, spaced_selection
from embedscope.figures.views3d import animate_rotation, draw_three_views

__all__ = [
    "NUMERIC_COLORMAP",
    "RASTER_ABOVE",
    "ScatterSummary",
    "animate_rotation",
    "category_colors",
    "category_order",
    "draw_neighbor_matrix",
    "draw_neighbors",
    "draw_scatter",
    "draw_thumbnail_map",
    "draw_three_views",
    "position_colors",
    "spaced_selection",
]
