"""A colour for every item from where it lies on a 2D map (MiLoPYP's all_colors.npy), for painting volumes.

Hue turns with the angle around the map's centre and lightness and chroma change with the distance from it, in
the perceptual OKLab space: nearby items get similar colours, distant ones clearly different colours.
"""

from __future__ import annotations

import numpy as np

from embedscope.figures.scatter import check_positions

CENTRE_LIGHTNESS = 0.85
EDGE_LIGHTNESS = 0.6
EDGE_CHROMA = 0.17
GAMUT_STEPS = 16
OKLAB_TO_LMS = np.array([[1.0, 0.3963377774, 0.2158037573],
                         [1.0, -0.1055613458, -0.0638541728],
                         [1.0, -0.0894841775, -1.2914855480]])
LMS_TO_RGB = np.array([[4.0767416621, -3.3077115913, 0.2309699292],
                       [-1.2684380046, 2.6097574011, -0.3413193965],
                       [-0.0041960863, -0.7034186147, 1.7076147010]])


def position_colors(positions: np.ndarray) -> np.ndarray:
    """(n, 3) uint8 sRGB colours of `positions` (n, 2), min-max scaled so the map spans the whole colour wheel.

    The centre is a light grey; colours too vivid for sRGB lose chroma, never hue. The same positions always
    give the same colours.
    """
    xy = check_positions(positions, 2)
    low, extent = xy.min(axis=0), np.ptp(xy, axis=0)
    centred = 2 * (xy - low) / np.where(extent > 0, extent, 1.0) - 1  # each axis in [-1, 1]
    centred[:, extent == 0] = 0.0
    radius = np.hypot(centred[:, 0], centred[:, 1]) / np.sqrt(2)
    angle = np.arctan2(centred[:, 1], centred[:, 0])
    lightness = CENTRE_LIGHTNESS + (EDGE_LIGHTNESS - CENTRE_LIGHTNESS) * radius
    chroma = EDGE_CHROMA * np.sqrt(radius)
    linear = _in_gamut(lightness, chroma, angle)
    return np.round(_encode(linear) * 255).astype(np.uint8)


def _in_gamut(lightness: np.ndarray, chroma: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Linear sRGB of the OKLCh colours; where one falls outside sRGB, the most chroma that fits (bisection).

    Searching for the largest chroma, rather than clipping channels, keeps hue and keeps neighbours' colours smooth.
    """
    low, high = np.zeros_like(chroma), np.ones_like(chroma)
    low[_fits(lightness, chroma, angle)] = 1.0
    for _ in range(GAMUT_STEPS):
        middle = (low + high) / 2
        fits = _fits(lightness, chroma * middle, angle)
        low, high = np.where(fits, middle, low), np.where(fits, high, middle)
    return np.clip(_oklch_to_linear(lightness, chroma * low, angle), 0.0, 1.0)


def _fits(lightness: np.ndarray, chroma: np.ndarray, angle: np.ndarray) -> np.ndarray:
    linear = _oklch_to_linear(lightness, chroma, angle)
    return ((linear >= 0) & (linear <= 1)).all(axis=1)


def _oklch_to_linear(lightness: np.ndarray, chroma: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """OKLCh (lightness, chroma, hue angle) to linear sRGB."""
    a, b = chroma * np.cos(angle), chroma * np.sin(angle)
    lms = np.column_stack([lightness, a, b]) @ OKLAB_TO_LMS.T
    return (lms**3) @ LMS_TO_RGB.T


def _encode(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve: linear light to display values."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
