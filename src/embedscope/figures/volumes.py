"""Colour tomograms by their items: a grey rendering of the volume and marks painted in each item's colour.

Replaces MiLoPYP's `visualize_3dhm.py`: `grey_rgb` gives its `_rec3d.npy`, `paint` its `_hm3d_simsiam.npy`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import mrcfile
import numpy as np
from scipy.ndimage import gaussian_filter

from embedscope.errors import ParameterError

GREY_WINDOW = (-2.5, 3.0)  # MiLoPYP maps this range of a slice's standard deviations to 0..255
GREY_SMOOTHING = 0.8  # sigma (voxels) of the Gaussian MiLoPYP applies to the grey volume
MARKS = ("disc", "sphere")
CHANNELS = ("red", "green", "blue")


def grey_rgb(volume: np.ndarray) -> np.ndarray:
    """The (Z, Y, X) tomogram as (Z, Y, X, 3) uint8 grey, normalised as MiLoPYP's `_rec3d.npy` is.

    Each slice is z-scored and its [-2.5, 3] std window mapped to 0..255, twice (MiLoPYP quantises when it reads
    and again when it renders), then the volume is smoothed (sigma 0.8) in uint8, truncating as scipy does.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3 or volume.dtype.kind not in "fiub":
        raise ParameterError(f"need a (Z, Y, X) numeric tomogram; got shape {volume.shape} of {volume.dtype}")
    grey = np.empty(volume.shape, dtype=np.uint8)
    for index, section in enumerate(volume):
        values = section if section.dtype.kind == "f" else section.astype(np.float64)
        grey[index] = _window(_window(values).astype(np.float64))
    grey = gaussian_filter(grey, GREY_SMOOTHING)
    return np.repeat(grey[..., None], 3, axis=3)


def paint(
    volume_shape: Sequence[int],
    coords: np.ndarray,
    colors: np.ndarray,
    radius: int = 12,
    mark: Literal["disc", "sphere"] = "disc",
    depth: int = 2,
) -> np.ndarray:
    """A (Z, Y, X, 3) uint8 volume, black but for a mark of each point's colour; later points paint over earlier.

    "disc": MiLoPYP's mark, a filled disc of radius `radius - |dz|` on each slice within `depth` of the point;
    "sphere": a ball of `radius`. Coordinates are x, y, z; marks are clipped at the volume's edges.
    """
    shape = tuple(int(size) for size in volume_shape)
    points = np.asarray(coords)
    palette = np.asarray(colors)
    if len(shape) != 3 or min(shape) < 1:
        raise ParameterError(f"volume_shape must be three positive sizes (Z, Y, X); got {tuple(volume_shape)}")
    if points.ndim != 2 or points.shape[1] != 3 or points.dtype.kind not in "iu":
        raise ParameterError(f"coords must be (N, 3) integer x, y, z; got shape {points.shape} of {points.dtype}")
    if palette.shape != points.shape or palette.dtype != np.uint8:
        raise ParameterError(f"colors must be (N, 3) uint8 like coords {points.shape}; got {palette.shape} "
                             f"of {palette.dtype}")
    stencil = mark_stencil(radius, mark, depth)
    painted = np.zeros((*shape, 3), dtype=np.uint8)
    reach = np.array(stencil.shape) // 2
    limit = np.array(shape)
    for point, colour in zip(points[:, ::-1].astype(np.int64), palette):
        low = point - reach
        start, stop = np.maximum(low, 0), np.minimum(point + reach + 1, limit)
        if np.any(stop <= start):
            continue
        region = painted[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]]
        cut = stencil[tuple(slice(a, b) for a, b in zip(start - low, stop - low))]
        region[cut] = colour
    return painted


def mark_stencil(radius: int = 12, mark: Literal["disc", "sphere"] = "disc", depth: int = 2) -> np.ndarray:
    """The voxels one point paints, as a boolean (dz, dy, dx) box centred on it (see `paint`)."""
    if mark not in MARKS:
        raise ParameterError(f"mark must be one of {', '.join(MARKS)}; got {mark!r}")
    if radius < 0 or depth < 0:
        raise ParameterError(f"radius and depth must be 0 or more; got {radius} and {depth}")
    height = depth if mark == "disc" else radius
    dz, dy, dx = np.ogrid[-height : height + 1, -radius : radius + 1, -radius : radius + 1]
    if mark == "sphere":
        return dz**2 + dy**2 + dx**2 <= radius**2
    reach = radius - np.abs(dz)
    return (dy**2 + dx**2 <= reach**2) & (reach >= 0)


def blend(grey: np.ndarray, painted: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """`weight * grey + (1 - weight) * painted` (rounded, uint8) where a mark was painted, `grey` elsewhere.

    Blending only inside marks keeps the rest of the tomogram at full brightness; MiLoPYP's whole-volume blend
    dims it by `weight`. A voxel counts as painted when any channel is non-zero.
    """
    grey, painted = np.asarray(grey), np.asarray(painted)
    if grey.ndim == painted.ndim - 1:
        grey = grey[..., None]
    if painted.ndim != 4 or painted.shape[-1] != 3 or grey.shape[:-1] != painted.shape[:-1]:
        raise ParameterError(f"need painted (Z, Y, X, 3) and grey of the same (Z, Y, X); got {painted.shape} "
                             f"and {grey.shape}")
    if not 0.0 <= weight <= 1.0:
        raise ParameterError(f"weight must be between 0 and 1; got {weight}")
    blended = np.empty(painted.shape, dtype=np.uint8)
    for index in range(len(painted)):  # a slice at a time keeps float copies small
        background = np.broadcast_to(grey[index], painted.shape[1:]).astype(np.float32)
        marks = painted[index].astype(np.float32)
        mixed = np.rint(weight * background + (1.0 - weight) * marks)
        inside = np.any(painted[index] != 0, axis=-1, keepdims=True)
        blended[index] = np.where(inside, np.clip(mixed, 0, 255), background).astype(np.uint8)
    return blended


def write_volume_mrc(path: Path, volume: np.ndarray, voxel_size: float) -> list[Path]:
    """Write a (Z, Y, X) volume as MRC, or an RGB (Z, Y, X, 3) uint8 one as three files `<stem>_red` etc.

    RGB MRC (mode 16) is read by neither mrcfile nor ChimeraX, so colour goes into one channel per file, which
    both (and napari) open and can show additively. Floats are stored as float32, uint8 widened to uint16.
    """
    path = Path(path)
    volume = np.asarray(volume)
    if not voxel_size > 0:
        raise ParameterError(f"voxel_size must be positive; got {voxel_size}")
    if volume.ndim == 4 and volume.shape[-1] == 3 and volume.dtype == np.uint8:
        targets = [path.with_name(f"{path.stem}_{name}{path.suffix}") for name in CHANNELS]
        layers = [volume[..., channel] for channel in range(3)]
    elif volume.ndim == 3:
        targets, layers = [path], [volume]
    else:
        raise ParameterError(f"need a (Z, Y, X) volume or (Z, Y, X, 3) uint8 colours; got {volume.shape} "
                             f"of {volume.dtype}")
    temporaries = [target.with_name(f".{target.name}.tmp-{os.getpid()}") for target in targets]
    try:
        for temporary, layer in zip(temporaries, layers):
            with mrcfile.new(temporary, overwrite=True) as mrc:
                mrc.set_data(_storable(layer))
                mrc.voxel_size = voxel_size
        for temporary, target in zip(temporaries, targets):
            os.replace(temporary, target)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    return targets


def _window(section: np.ndarray) -> np.ndarray:
    """One slice z-scored and its GREY_WINDOW mapped to 0..255 (uint8); a constant slice becomes 0."""
    spread = section.std()
    if not spread > 0:
        return np.zeros(section.shape, dtype=np.uint8)
    low, high = GREY_WINDOW
    scaled = 255 * ((section - section.mean()) / spread - low) / (high - low)
    return np.round(np.clip(scaled, 0, 255)).astype(np.uint8)


def _storable(layer: np.ndarray) -> np.ndarray:
    """`layer` in a dtype MRC readers share: float32, int8/int16, or uint16 for unsigned and boolean values."""
    if layer.dtype.kind == "f":
        return np.ascontiguousarray(layer, dtype=np.float32)
    if layer.dtype.kind in "bu" and (layer.size == 0 or layer.max() <= np.iinfo(np.uint16).max):
        return np.ascontiguousarray(layer, dtype=np.uint16)
    if layer.dtype.kind == "i" and (layer.size == 0 or np.iinfo(np.int16).min <= layer.min() <= layer.max()
                                    <= np.iinfo(np.int16).max):
        return np.ascontiguousarray(layer, dtype=np.int8 if layer.dtype == np.int8 else np.int16)
    raise ParameterError(f"values of {layer.dtype} beyond 16 bits cannot be stored as MRC; convert to float32 first")
