"""MiLoPYP's preprocessing of tomograms and tilt images, computed slab by slab in float32.

z-score, Gaussian filter, z-score, clip, round to 256 levels, rescale to [0, 1] (cet_pick's loader). The volume is
kept as its levels (uint8), a quarter of float32 and an eighth of cet_pick's float64, and rescaled where needed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from embedscope.errors import InputError, ParameterError

FILTERED_CLIP = (-3.0, 3.0)  # cet_pick clips a Gaussian-filtered tomogram to 3 standard deviations
DEFAULT_CLIP = (-2.5, 2.0)  # cet_pick's clip for tilt images, and for tomograms when gauss is 0
TOP_LEVEL = 255
SLAB = 32  # slices filtered at a time: bounds the float32 working memory to a few slabs
TRUNCATE = 4.0  # scipy's default Gaussian support, in standard deviations


def default_clip(gauss: float) -> tuple[float, float]:
    """cet_pick's clip range for a tomogram: [-3, 3] after a Gaussian filter, [-2.5, 2] without one."""
    return FILTERED_CLIP if gauss > 0 else DEFAULT_CLIP


def preprocess(volume: np.ndarray, gauss: float = 0.8, clip: tuple[float, float] | None = None) -> np.ndarray:
    """A (Z, Y, X) tomogram preprocessed as MiLoPYP does, as float32 in [0, 1].

    z-score, Gaussian filter of sigma `gauss` (none if 0), z-score, clip to `clip` standard deviations (None:
    `default_clip(gauss)`), round to 256 levels, then rescale the levels present to [0, 1].
    """
    return rescale(preprocess_levels(volume, gauss, clip))


def preprocess_levels(volume: np.ndarray, gauss: float = 0.8, clip: tuple[float, float] | None = None,
                      slab: int = SLAB) -> np.ndarray:
    """`preprocess` before its final rescale: the volume's 256 levels as uint8 (Z, Y, X), built a slab at a time.

    `volume` may be any real dtype and a memory-mapped view; it is read twice, never converted whole. The first
    z-score is left out: the filter is linear with weights summing to one, so the second z-score undoes it.
    """
    low, high = check_preprocessing(gauss, clip)
    count, mean, spread = 0, 0.0, 0.0  # running count, mean and sum of squared deviations (Chan et al.)
    for _, smoothed in _smoothed_slabs(volume, gauss, slab):
        slab_mean = float(smoothed.mean(dtype=np.float64))
        smoothed -= np.float32(slab_mean)
        slab_spread = float(np.square(smoothed, out=smoothed).sum(dtype=np.float64))
        total = count + smoothed.size
        spread += slab_spread + (slab_mean - mean) ** 2 * count * smoothed.size / total
        mean += (slab_mean - mean) * smoothed.size / total
        count = total
    std = (spread / count) ** 0.5
    if not np.isfinite(std):
        raise InputError("the tomogram holds NaN or infinite values; check the file or write it again")
    if not std > 0:
        raise InputError(f"the tomogram is constant (every voxel {mean:g}), so it shows nothing; check the file")
    levels = np.empty(volume.shape, dtype=np.uint8)
    for start, smoothed in _smoothed_slabs(volume, gauss, slab):
        smoothed -= np.float32(mean)
        smoothed /= np.float32(std)
        levels[start : start + len(smoothed)] = quantize(smoothed, low, high)
    return levels


def quantize(scores: np.ndarray, low: float, high: float) -> np.ndarray:
    """z-scores clipped to [low, high] and rounded to levels 0..255, as cet_pick's `quantize` does."""
    scaled = np.float32(TOP_LEVEL / (high - low)) * (scores - np.float32(low))
    return np.rint(np.clip(scaled, 0, TOP_LEVEL, out=scaled), out=scaled).astype(np.uint8)


def rescale(levels: np.ndarray) -> np.ndarray:
    """Levels (or any values) min-max rescaled to float32 in [0, 1]; zeros where all are equal."""
    low, high = levels.min(), levels.max()
    scale = np.float32(1.0 / (float(high) - float(low))) if high > low else np.float32(0.0)
    return (levels.astype(np.float32) - np.float32(low)) * scale


def preprocess_tilts(tilts: np.ndarray, gauss: float = 0.8, clip: tuple[float, float] = DEFAULT_CLIP) -> np.ndarray:
    """Each tilt image preprocessed on its own as MiLoPYP does, as float32 (n, Y, X) in [0, 1].

    z-score, 2D Gaussian of sigma `gauss` (none if 0), z-score, clip to [-2.5, 2] and round to 256 levels, rescale.
    """
    low, high = check_preprocessing(gauss, clip)
    images = np.empty(tilts.shape, dtype=np.float32)
    for index, tilt in enumerate(tilts):
        image = np.array(tilt, dtype=np.float32)
        if gauss > 0:
            image = gaussian_filter(image, gauss)
        spread = image.std(dtype=np.float64)
        scores = (image - np.float32(image.mean(dtype=np.float64))) / np.float32(spread if spread > 0 else 1.0)
        images[index] = rescale(quantize(scores, low, high))
    return images


def gaussian_radius(sigma: float) -> int:
    """How many pixels either side a scipy Gaussian of `sigma` reaches."""
    return int(TRUNCATE * float(sigma) + 0.5)


def smoothed_slab(volume: np.ndarray, start: int, stop: int, sigma: float) -> np.ndarray:
    """Slices start..stop of `volume` Gaussian-filtered in 3D as float32, equal to those of the whole filtered volume.

    The z pass reads `gaussian_radius(sigma)` slices beyond the slab (fewer at the volume's ends, where scipy
    reflects); the y and x passes then run on the slab's own slices, in scipy's axis order.
    """
    if sigma <= 0:
        return np.array(volume[start:stop], dtype=np.float32)
    reach = gaussian_radius(sigma)
    first, last = max(0, start - reach), min(volume.shape[0], stop + reach)
    block = np.array(volume[first:last], dtype=np.float32)
    gaussian_filter1d(block, sigma, axis=0, truncate=TRUNCATE, output=block)  # in place: lines are independent
    smoothed = gaussian_filter1d(block[start - first : stop - first], sigma, axis=1, truncate=TRUNCATE,
                                 output=np.empty((stop - start, *volume.shape[1:]), dtype=np.float32))
    return gaussian_filter1d(smoothed, sigma, axis=2, truncate=TRUNCATE, output=smoothed)


def slab_starts(depth: int, slab: int = SLAB) -> range:
    """The first slice of each slab of `slab` slices covering `depth` slices."""
    return range(0, depth, max(1, slab))


def _smoothed_slabs(volume: np.ndarray, sigma: float, slab: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in slab_starts(volume.shape[0], slab):
        yield start, smoothed_slab(volume, start, min(start + slab, volume.shape[0]), sigma)


def check_preprocessing(gauss: float, clip: tuple[float, float] | None) -> tuple[float, float]:
    """The clip range that `gauss` and `clip` give, after refusing a negative sigma or an empty range."""
    if not gauss >= 0:
        raise ParameterError(f"gauss={gauss} must be 0 (no filter) or a positive Gaussian sigma in pixels")
    low, high = default_clip(gauss) if clip is None else clip
    if not low < high:
        raise ParameterError(f"clip={clip} must be (low, high) with low < high, in standard deviations")
    return float(low), float(high)
