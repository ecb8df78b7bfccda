"""MiLoPYP's candidate picking: blobs found by a difference of Gaussians, thinned by greedy 3D suppression.

Follows cet_pick's `get_potential_coords_pyramid`, with its hard-coded constants as parameters; the filters run
slab by slab in float32, and the greedy suppression walks a grid of cells instead of a set of voxel indices.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy.ndimage import maximum_filter

from embedscope.errors import ParameterError
from embedscope.sources.preprocessing import (
    SLAB,
    check_preprocessing,
    preprocess_levels,
    slab_starts,
    smoothed_slab,
)

WIDE_VOLUME = 512  # cet_pick doubles the x-y border for tomograms wider than this in both x and y


class CandidatePicker:
    """Pick candidate particle positions in a tomogram, as MiLoPYP's exploration module does before training.

    gauss, clip: preprocessing (see `preprocessing.preprocess`); MiLoPYP's documented runs use `--gauss 0.8`
    (its opts.py default is 0, no filter). dog: the Gaussian sigmas whose consecutive differences find blobs
    (documented runs `--dog 3,5`; opts.py default 2.5,5). border_z, border_xy: slices and pixels zeroed at the
    edges; border_xy None is cet_pick's rule, 30 px, or 60 px when both x and y exceed 512. nms_size: the x-y
    window of the per-slice local-maximum test. threshold_std: candidates must exceed mean + threshold_std * std
    of the positive responses. nms_diameter: a picked point suppresses every weaker candidate within
    nms_diameter / 2 voxels (inclusive), as cet_pick's non_maximum_suppression_3d(d=14) does.
    After `pick`, `scores_` holds each pick's response and `threshold_` the cut-off used.
    """

    def __init__(
        self,
        gauss: float = 0.8,
        clip: tuple[float, float] | None = None,
        dog: tuple[float, ...] = (3.0, 5.0),
        border_z: int = 10,
        border_xy: int | None = None,
        nms_size: int = 3,
        threshold_std: float = 0.5,
        nms_diameter: float = 14.0,
        slab: int = SLAB,
    ) -> None:
        self.gauss = gauss
        self.clip = clip
        self.dog = tuple(dog)
        self.border_z = border_z
        self.border_xy = border_xy
        self.nms_size = nms_size
        self.threshold_std = threshold_std
        self.nms_diameter = nms_diameter
        self.slab = slab
        self._validate()

    def pick(self, volume: np.ndarray) -> np.ndarray:
        """Candidate positions in a raw (Z, Y, X) tomogram as (N, 3) int32 x, y, z, strongest first."""
        return self.pick_preprocessed(preprocess_levels(volume, self.gauss, self.clip, self.slab))

    def pick_preprocessed(self, volume: np.ndarray) -> np.ndarray:
        """Candidate positions in an already preprocessed (Z, Y, X) volume: levels (uint8) or values in [0, 1].

        Picking only compares filtered values, so any increasing affine scaling of the volume picks the same points.
        """
        depth, rows, columns = volume.shape
        border_xy = self._border_xy(rows, columns)
        if depth <= 2 * self.border_z or min(rows, columns) <= 2 * border_xy:
            raise ParameterError(f"the volume (x-y-z {columns} x {rows} x {depth}) is no larger than its borders "
                                 f"(border_z={self.border_z}, border_xy={border_xy} on each side); lower them")
        flat, responses = self._local_maxima(volume, border_xy)
        if len(responses) < 2:
            raise ParameterError(f"no blobs found: the difference of Gaussians (dog={self.dog}) has "
                                 f"{len(responses)} positive local maxima; change dog or lower border_xy/border_z")
        threshold = float(responses.mean(dtype=np.float64) + self.threshold_std * responses.std(dtype=np.float64,
                                                                                                 ddof=1))
        strong = responses > threshold
        if not strong.any():
            raise ParameterError(f"no candidates above mean + {self.threshold_std} std of the blob responses; "
                                 "lower threshold_std")
        flat, responses = flat[strong], responses[strong]
        order = np.argsort(-responses, kind="stable")
        flat, responses = flat[order], responses[order]
        points = np.stack(np.unravel_index(flat, volume.shape), axis=1).astype(np.int32)  # z, y, x
        keep = _greedy_suppression(points, self.nms_diameter / 2, np.array(volume.shape, dtype=np.int64))
        self.scores_ = responses[keep]
        self.threshold_ = threshold
        return np.ascontiguousarray(points[keep][:, ::-1])

    def _local_maxima(self, volume: np.ndarray, border_xy: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices and responses of the positive per-slice local maxima of the strongest DoG level."""
        depth, rows, columns = volume.shape
        indices, values = [], []
        for start in slab_starts(depth, self.slab):
            stop = min(start + self.slab, depth)
            best = None
            previous = smoothed_slab(volume, start, stop, self.dog[0])
            for sigma in self.dog[1:]:
                current = smoothed_slab(volume, start, stop, sigma)
                difference = np.subtract(current, previous, out=previous)  # wider minus narrower: dark blobs
                previous = current
                _zero_borders(difference, start, depth, self.border_z, border_xy)
                window_max = maximum_filter(difference, size=(1, self.nms_size, self.nms_size), mode="nearest")
                difference[difference != window_max] = 0
                del window_max
                best = difference if best is None else np.maximum(best, difference, out=best)
            slab_flat = np.flatnonzero(best > 0)
            values.append(best.ravel()[slab_flat])
            indices.append(slab_flat + start * rows * columns)
        return np.concatenate(indices), np.concatenate(values)

    def _border_xy(self, rows: int, columns: int) -> int:
        if self.border_xy is not None:
            return self.border_xy
        return 60 if rows > WIDE_VOLUME and columns > WIDE_VOLUME else 30

    def _validate(self) -> None:
        check_preprocessing(self.gauss, self.clip)
        if not all(isinstance(sigma, int | float | np.number) for sigma in self.dog):
            raise ParameterError(f"dog={self.dog} must be Gaussian sigmas in voxels, e.g. 3,5")
        if len(self.dog) < 2 or any(not sigma > 0 for sigma in self.dog):
            raise ParameterError(f"dog={self.dog} needs at least two positive Gaussian sigmas, e.g. 3,5")
        if list(self.dog) != sorted(set(self.dog)):
            raise ParameterError(f"dog={self.dog} must list distinct sigmas in increasing order, e.g. 3,5")
        for name in ("border_z", "border_xy"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | np.integer) and value >= 0):
                raise ParameterError(f"{name}={value} must be a whole number of voxels, 0 or more")
        if not (isinstance(self.nms_size, int | np.integer) and self.nms_size >= 1 and self.nms_size % 2 == 1):
            raise ParameterError(f"nms_size={self.nms_size} must be an odd window size in pixels, e.g. 3")
        if not math.isfinite(self.threshold_std):
            raise ParameterError(f"threshold_std={self.threshold_std} must be a finite number of standard deviations")
        if not self.nms_diameter >= 0:
            raise ParameterError(f"nms_diameter={self.nms_diameter} must be 0 or more voxels, e.g. 14")
        if not (isinstance(self.slab, int | np.integer) and self.slab >= 1):
            raise ParameterError(f"slab={self.slab} must be a positive number of slices")


def _zero_borders(block: np.ndarray, start: int, depth: int, border_z: int, border_xy: int) -> None:
    """Zero the slab's part of the volume's border: `border_z` slices at each end, `border_xy` pixels at each side."""
    slices = np.arange(start, start + len(block))
    block[(slices < border_z) | (slices >= depth - border_z)] = 0
    if border_xy:
        block[:, :border_xy] = 0
        block[:, -border_xy:] = 0
        block[:, :, :border_xy] = 0
        block[:, :, -border_xy:] = 0


@njit(cache=True)
def _greedy_suppression(points: np.ndarray, radius: float, shape: np.ndarray) -> np.ndarray:
    """Which points (z, y, x, strongest first) survive when each kept point removes all later ones within radius.

    Kept points are filed in cells of side >= radius, so a new point is compared only with the 27 nearby cells.
    """
    cell = max(1, int(math.ceil(radius)))
    cells = shape // cell + 1
    first_in_cell = np.full(cells[0] * cells[1] * cells[2], -1, dtype=np.int64)
    next_in_cell = np.full(len(points), -1, dtype=np.int64)
    keep = np.zeros(len(points), dtype=np.bool_)
    squared = radius * radius
    for index in range(len(points)):
        z, y, x = points[index, 0], points[index, 1], points[index, 2]
        cz, cy, cx = z // cell, y // cell, x // cell
        free = True
        for nz in range(max(cz - 1, 0), min(cz + 2, cells[0])):
            for ny in range(max(cy - 1, 0), min(cy + 2, cells[1])):
                for nx in range(max(cx - 1, 0), min(cx + 2, cells[2])):
                    other = first_in_cell[(nz * cells[1] + ny) * cells[2] + nx]
                    while other >= 0 and free:
                        dz, dy, dx = z - points[other, 0], y - points[other, 1], x - points[other, 2]
                        if dz * dz + dy * dy + dx * dx <= squared:
                            free = False
                        other = next_in_cell[other]
        if free:
            keep[index] = True
            home = (cz * cells[1] + cy) * cells[2] + cx
            next_in_cell[index] = first_in_cell[home]
            first_in_cell[home] = index
    return keep
