"""What the micrograph encoders see: a real-space view and a power-spectrum view, both square uint8 pictures.

Views come from micrograph files (binned once, then downsampled and transformed), or from the webp pictures a
prismPYP / nextPYP project already holds; many files are turned into views in parallel processes, in order.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from embedscope.errors import InputError, ParameterError, UserError
from embedscope.progress import SILENT, Reporter
from embedscope.sources.micrographs import read_micrograph
from embedscope.sources.patch_stream import in_parallel
from embedscope.sources.spectra import (
    BAND,
    as_plane,
    band_binning,
    bin_image,
    check_band,
    check_side,
    power_spectrum,
    spectrum_frequency,
)

__all__ = [
    "WORKING_SIZE",
    "MicrographViews",
    "downsample",
    "micrograph_views",
    "power_spectrum",
    "robust_normalise",
    "spectrum_frequency",
    "stream_views",
    "to_uint8",
    "views_from_webp",
]

WORKING_SIZE = 512
_FLAT = 1e-6  # a micrograph whose values span less than this fraction of their magnitude has no contrast


@dataclass(frozen=True)
class MicrographViews:
    """A micrograph's two (size, size) uint8 views, its original (h, w), and whether it had (near) no contrast."""

    image: np.ndarray
    spectrum: np.ndarray
    shape: tuple[int, int]
    flat: bool


def downsample(image: np.ndarray, size: int) -> np.ndarray:
    """A (size, size) float32 picture: the longest side resampled to `size`, the other centred on the image's mean.

    Anti-aliased: block means by a whole factor down to at most twice `size`, then Pillow's Lanczos filter, which
    widens to average when shrinking; padding rather than cropping keeps every part of a non-square micrograph.
    """
    plane = as_plane(image)
    check_side("size", size)
    small = bin_image(plane, max(1, max(plane.shape) // (2 * size)))
    scale = size / max(small.shape)
    height, width = (max(1, round(length * scale)) for length in small.shape)
    if (height, width) != small.shape:
        small = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.LANCZOS))
    canvas = np.full((size, size), small.mean(), np.float32)
    top, left = (size - height) // 2, (size - width) // 2
    canvas[top : top + height, left : left + width] = small
    return canvas


def robust_normalise(image: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """float32 values in [0, 1]: the `low` and `high` percentiles map to 0 and 1 and values beyond them saturate.

    Hot pixels and dead pixels then do not set the contrast; a constant image is 0.5 and NaN is 0.
    """
    if not 0 <= low < high <= 100:
        raise ParameterError(f"percentiles low={low} and high={high} need 0 <= low < high <= 100; pass e.g. 1 and 99")
    values = np.asarray(image, dtype=np.float32)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full(values.shape, 0.5, np.float32)
    bottom, top = np.percentile(finite, [low, high])
    if top <= bottom:  # most pixels share one value: stretch over the full range instead
        bottom, top = finite.min(), finite.max()
    if top <= bottom:
        return np.full(values.shape, 0.5, np.float32)
    scaled = (np.nan_to_num(values, nan=bottom, posinf=top, neginf=bottom) - bottom) / np.float32(top - bottom)
    return np.clip(scaled, 0, 1).astype(np.float32)


def to_uint8(image: np.ndarray, low: float = 1, high: float = 99) -> np.ndarray:
    """Values stretched so that the `low` and `high` percentiles map to 0 and 255; hot pixels saturate.

    RGB channels share one stretch, keeping colour balance; a constant image is mid-grey and NaN is black.
    """
    return np.rint(robust_normalise(image, low, high) * 255).astype(np.uint8)


def micrograph_views(
    image: np.ndarray,
    *,
    size: int = WORKING_SIZE,
    pixel_size: float | None = None,
    band: tuple[float, float] = BAND,
) -> MicrographViews:
    """The real-space and power-spectrum views of one (h, w) micrograph, both from one binning of it.

    The binning is the one `power_spectrum` makes for `pixel_size` and `band`; non-finite pixels take the mean of
    the rest. A micrograph with (near) no contrast gives mid-grey views and flat=True.
    """
    plane = as_plane(image)
    check_side("size", size)
    check_band(pixel_size, band)
    factor = band_binning(plane.shape, pixel_size, band)
    binned = _finite(bin_image(plane, factor))
    real = downsample(binned, size)
    if _is_flat(real):
        grey = np.full((size, size), 128, np.uint8)
        return MicrographViews(grey, grey.copy(), plane.shape, True)
    binned_size = None if pixel_size is None else pixel_size * factor
    spectrum = power_spectrum(binned, pixel_size=binned_size, band=band, size=size)
    return MicrographViews(to_uint8(real), to_uint8(spectrum), plane.shape, False)


def views_from_webp(webp_folder: Path, name: str, size: int = WORKING_SIZE) -> MicrographViews:
    """The views prismPYP trains on, from its webp folder: <name>.webp, and <name>_ctffit.webp's top half turned
    through 180 degrees below itself (a point reflection), the full centro-symmetric spectrum.

    Both are resampled to size x size and stretched as micrograph views are; `shape` is the webp's own.
    """
    real_path, fit_path = (Path(webp_folder) / f"{name}{ending}.webp" for ending in ("", "_ctffit"))
    for path in (real_path, fit_path):
        if not path.is_file():
            raise InputError(f"{path}: no such file; a prismPYP webp folder holds {name}.webp and "
                             f"{name}_ctffit.webp for micrograph {name}, or compute views from the micrograph")
    real, fit = read_micrograph(real_path), read_micrograph(fit_path)
    if fit.shape[0] < 2:
        raise InputError(f"{fit_path}: is {fit.shape[0]}x{fit.shape[1]} px, too small to hold a power spectrum")
    top = fit[: fit.shape[0] // 2]
    spectrum = np.concatenate([top, top[::-1, ::-1]])
    flat = _is_flat(real)
    return MicrographViews(to_uint8(downsample(real, size)), to_uint8(downsample(spectrum, size)), real.shape, flat)


def stream_views(
    paths: Sequence[Path],
    *,
    size: int = WORKING_SIZE,
    pixel_size: float | None = None,
    band: tuple[float, float] = BAND,
    workers: int = 2,
    reporter: Reporter = SILENT,
) -> Iterator[tuple[int, MicrographViews | UserError]]:
    """(index, views) for each file in input order, made in `workers` spawned processes (0: in this process).

    At most `workers` files are in flight, so memory stays bounded; a file that cannot be read or viewed yields
    its UserError, naming it, in place of views, and the stream goes on. Scripts need the `__main__` guard.
    """
    if not (isinstance(workers, int) and workers >= 0):
        raise ParameterError(f"workers={workers!r} must be a whole number of processes, 0 to work in this one")
    check_side("size", size)
    check_band(pixel_size, band)
    view = partial(_views_of_file, size=size, pixel_size=pixel_size, band=band)
    return _stream([Path(path) for path in paths], view, workers, reporter)


def _stream(
    paths: list[Path], view: Callable[[Path], MicrographViews | UserError], workers: int, reporter: Reporter
) -> Iterator[tuple[int, MicrographViews | UserError]]:
    """The generator behind `stream_views`, apart so that bad arguments fail at the call."""
    spawned = partial(ProcessPoolExecutor, mp_context=multiprocessing.get_context("spawn"))
    results = map(view, paths) if workers == 0 else in_parallel(view, paths, workers, spawned)
    with reporter.phase("micrograph views", len(paths)) as advance:
        for index, result in enumerate(results):
            advance(1)
            yield index, result


def _views_of_file(
    path: Path, size: int, pixel_size: float | None, band: tuple[float, float]
) -> MicrographViews | UserError:
    """One file's views, or the UserError that says, naming the file, why there are none."""
    try:
        return micrograph_views(read_micrograph(path), size=size, pixel_size=pixel_size, band=band)
    except UserError as error:
        return error if str(path) in str(error) else type(error)(f"{path}: {error}")


def _finite(image: np.ndarray) -> np.ndarray:
    """The image with NaN and inf pixels (dead or masked areas) set to the mean of the finite ones."""
    finite = np.isfinite(image)
    if finite.all():
        return image
    return np.where(finite, image, image[finite].mean() if finite.any() else 0).astype(np.float32)


def _is_flat(image: np.ndarray) -> bool:
    """Whether an image's values span (almost) nothing compared with their size: no contrast to show."""
    low, high = float(image.min()), float(image.max())
    return high - low <= _FLAT * max(abs(low), abs(high))


