"""Power spectra of micrographs: Welch-averaged periodograms, log-scaled, centred and limited to a resolution band.

Thon rings show how far a micrograph kept its signal; averaging many windowed tiles lowers the noise of a single
periodogram, and binning down to the band first keeps a 4k micrograph's spectrum at a few dozen small FFTs.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np
import scipy.fft
from PIL import Image

from embedscope.errors import ParameterError

BAND = (30.0, 4.0)  # Å: below 1/30 Å^-1 the central peak is flattened; 1/4 Å^-1 is the view's edge
SPECTRUM_TILE = 512
_BATCH_BYTES = 2**22  # tiles transformed at once: more spill out of the CPU cache (1.4 against 0.9 ms a tile)
_CENTRE_DIVISOR = 128  # without a pixel size, the flattened centre's radius is side / 128 pixels (at least 2)


def power_spectrum(
    image: np.ndarray,
    tile: int = SPECTRUM_TILE,
    overlap: float = 0.5,
    *,
    pixel_size: float | None = None,
    band: tuple[float, float] = BAND,
    size: int | None = None,
) -> np.ndarray:
    """log power averaged over Hann-windowed square tiles overlapping by `overlap`, zero frequency at [side // 2]^2.

    The result is (side, side) float32, side = `size` or the tile's (`tile`, or the binned image's shorter side).
    Without a pixel size it spans the whole spectrum up to Nyquist and the centre is flattened within side / 128 px.
    With `pixel_size` (Å/px) and `band` (low, high) in Å, the image is first binned by the largest whole factor
    that keeps 1/high Å^-1 below Nyquist, the view ends at 1/high Å^-1 (or Nyquist, if coarser), and frequencies
    below 1/low Å^-1 are flattened to the level around them, so the central peak no longer sets the contrast.
    Output pixel (i, j) shows frequency `spectrum_frequency(hypot(i - side // 2, j - side // 2), side,
    pixel_size, band)`: radius r is r * 2 * edge / side, edge = min(1/high, 1/(2 pixel_size)) Å^-1, or 0.5
    cycles per input pixel without a pixel size; the tile spectrum is resampled onto that grid bilinearly.
    """
    plane = as_plane(image)
    check_side("tile", tile)
    if size is not None:
        check_side("size", size)
    if not 0 <= overlap < 1:
        raise ParameterError(f"overlap {overlap!r} needs to be a fraction of a tile, at least 0 and below 1")
    check_band(pixel_size, band)
    factor = band_binning(plane.shape, pixel_size, band)
    binned = bin_image(plane, factor)
    half, side = _welch(binned, tile, overlap)
    spectrum = _centred(half, side)
    spectrum = np.log(spectrum + (spectrum.mean() * 1e-6 or 1.0)).astype(np.float32)  # floor keeps log finite
    out = size or side
    source_step = 1 / (side * (1 if pixel_size is None else pixel_size * factor))  # per tile-spectrum pixel
    spectrum = _resampled(spectrum, out, spectrum_frequency(1, out, pixel_size, band) / source_step)
    _flatten_centre(spectrum, _centre_radius(out, pixel_size, band))
    return spectrum


def spectrum_frequency(
    radius_px: float | np.ndarray, side: int, pixel_size: float | None = None, band: tuple[float, float] = BAND
) -> float | np.ndarray:
    """The spatial frequency that `power_spectrum` shows `radius_px` pixels from the centre of a side-px view.

    In Å^-1 with a pixel size, else in cycles per input pixel; used to read ring positions and to check them.
    """
    frequency = np.asarray(radius_px, dtype=np.float64) * 2 * edge_frequency(pixel_size, band) / side
    return float(frequency) if frequency.ndim == 0 else frequency


def edge_frequency(pixel_size: float | None, band: tuple[float, float] = BAND) -> float:
    """The frequency at the edge of a spectrum view: 1/high Å^-1, or Nyquist where that is coarser.

    Without a pixel size it is Nyquist, 0.5 cycles per pixel.
    """
    if pixel_size is None:
        return 0.5
    return min(1 / band[1], 1 / (2 * pixel_size))


def band_binning(shape: tuple[int, ...], pixel_size: float | None, band: tuple[float, float] = BAND) -> int:
    """The largest whole binning factor whose Nyquist still reaches 1/high Å^-1; 1 without a pixel size.

    Block-mean binning before the FFTs makes the spectrum of a 4k micrograph 4 to 16 times cheaper; an image
    smaller than one bin is refused.
    """
    if pixel_size is None:
        return 1
    factor = max(1, math.floor(band[1] / (2 * pixel_size) + 1e-9))
    if factor > min(shape):
        raise ParameterError(f"an image of shape {tuple(shape)} is smaller than one {factor}x{factor} bin, which "
                             f"pixel size {pixel_size:g} Å and band edge {band[1]:g} Å call for; check the pixel size")
    return factor


def bin_image(image: np.ndarray, factor: int) -> np.ndarray:
    """The float32 mean of each factor x factor block; rows and columns past the last whole block are dropped.

    Reads a memory-mapped image once and makes no float64 copy; factor 1 only converts to float32.
    """
    if factor == 1:
        return np.asarray(image, dtype=np.float32)
    height, width = (length // factor * factor for length in image.shape)
    rows = np.add(image[0:height:factor], image[1:height:factor], dtype=np.float32)
    for offset in range(2, factor):
        rows += image[offset:height:factor]
    binned = np.add(rows[:, 0:width:factor], rows[:, 1:width:factor])
    for offset in range(2, factor):
        binned += rows[:, offset:width:factor]
    binned *= np.float32(1 / factor**2)
    return binned


def as_plane(image: np.ndarray) -> np.ndarray:
    """The image as a 2-D array in its stored dtype (a memmap stays lazy); anything else is refused."""
    plane = np.asarray(image)
    if plane.ndim != 2 or plane.size == 0:
        raise ParameterError(f"a 2-D image is needed, not shape {plane.shape}; pass one grey plane (a movie's "
                             "frames summed)")
    return plane


def check_band(pixel_size: float | None, band: tuple[float, float]) -> None:
    """Refuse a pixel size or band that leaves no spectrum to show; one line each, before any work."""
    if pixel_size is None:
        return
    if not (isinstance(pixel_size, numbers.Real) and math.isfinite(pixel_size) and pixel_size > 0):
        raise ParameterError(f"pixel size {pixel_size!r} needs to be a positive number of Å per pixel")
    if not (len(band) == 2 and band[0] > band[1] > 0):
        raise ParameterError(f"band {band!r} needs two resolutions in Å, low then high, e.g. (30, 4)")
    if 1 / band[0] >= edge_frequency(pixel_size, band):
        raise ParameterError(f"band {band[0]:g}-{band[1]:g} Å lies beyond Nyquist ({2 * pixel_size:g} Å) at "
                             f"{pixel_size:g} Å per pixel; check the pixel size or lower the band's low limit")


def check_side(name: str, value: int) -> None:
    """Refuse a tile or picture side that is not a positive whole number of pixels."""
    if not isinstance(value, int | np.integer) or value < 1:
        raise ParameterError(f"{name} {value!r} needs to be a positive integer")


def _welch(plane: np.ndarray, tile: int, overlap: float) -> tuple[np.ndarray, int]:
    """The mean periodogram of Hann-windowed square tiles spread evenly over the plane, as rfft2's half, and the side.

    The plane's mean is removed first, so float32 FFTs keep their precision under a large offset; the window
    confines what is left of each tile's mean to the central bins, which are flattened anyway.
    """
    side = min(tile, *plane.shape)
    step = max(1, round(side * (1 - overlap)))
    tops, lefts = (np.linspace(0, length - side, (length - side) // step + 1).round().astype(int)
                   for length in plane.shape)
    corners = [(top, left) for top in tops for left in lefts]
    hann = np.hanning(side + 1)[:-1].astype(np.float32)  # periodic, as spectral estimation wants
    window = np.outer(hann, hann)
    centred = plane - np.float32(plane.mean(dtype=np.float64))
    batch = max(1, _BATCH_BYTES // (4 * side * side))
    tiles = np.empty((min(batch, len(corners)), side, side), np.float32)
    power = np.zeros((side, 2 * (side // 2 + 1)), np.float64)  # real and imaginary parts side by side
    for start in range(0, len(corners), batch):
        chosen = corners[start : start + batch]
        for windowed, (top, left) in zip(tiles, chosen):
            np.multiply(centred[top : top + side, left : left + side], window, out=windowed)
        parts = scipy.fft.rfft2(tiles[: len(chosen)]).view(np.float32)
        power += np.square(parts, out=parts).sum(axis=0)
    return (power[:, 0::2] + power[:, 1::2]) / len(corners), side


def _centred(half: np.ndarray, side: int) -> np.ndarray:
    """The full (side, side) spectrum of a real image from rfft2's half (P(-k) = P(k)), zero frequency centred."""
    full = np.empty((side, side), half.dtype)
    kept = half.shape[1]
    full[:, :kept] = half
    full[:, kept:] = half[(-np.arange(side)) % side][:, side - np.arange(kept, side)]
    return scipy.fft.fftshift(full)


def _resampled(spectrum: np.ndarray, side: int, scale: float) -> np.ndarray:
    """A centred spectrum resampled to side x side with `scale` source pixels per output pixel about the centre.

    Bilinear (widened to average when shrinking); a periodic border, as the DFT implies, keeps the box inside.
    """
    source = spectrum.shape[0]
    if side == source and abs(scale - 1) < 1e-9:
        return spectrum
    border = math.ceil(scale / 2) + 1
    left = border + source // 2 + 0.5 - (side // 2 + 0.5) * scale
    box = (left, left, left + side * scale, left + side * scale)
    padded = Image.fromarray(np.pad(spectrum, border, mode="wrap"))
    return np.array(padded.resize((side, side), Image.Resampling.BILINEAR, box=box))


def _centre_radius(side: int, pixel_size: float | None, band: tuple[float, float]) -> float:
    """The radius in output pixels inside which the spectrum is flattened: 1/low Å^-1, or side / 128 (at least 2)."""
    if pixel_size is None:
        return min(max(2, side // _CENTRE_DIVISOR), side // 4)
    return (1 / band[0]) / spectrum_frequency(1, side, pixel_size, band)


def _flatten_centre(spectrum: np.ndarray, radius: float) -> None:
    """Set the disc inside `radius` to the mean of the two-pixel ring around it, in place."""
    distance = _distances(spectrum.shape[0])
    inside = distance < radius
    ring = ~inside & (distance < radius + 2)
    if inside.any() and ring.any():
        spectrum[inside] = spectrum[ring].mean()


@functools.lru_cache(maxsize=8)
def _distances(side: int) -> np.ndarray:
    """Each pixel's distance from the centre pixel (side // 2, side // 2) of a side x side view; read-only, cached."""
    rows, columns = np.ogrid[:side, :side]
    distance = np.hypot(rows - side // 2, columns - side // 2).astype(np.float32)
    distance.flags.writeable = False
    return distance
