"""Small uint8 pictures for the viewer and figures: contrast-stretched images, power spectra, crops, orthoslices.

Arrays are as `formats.images` reads them, in array order: (h, w) grey, (h, w, 3) RGB (so a (d, h, 3) array counts
as RGB) and (d, h, w) volumes indexed z, y, x. Points come the other way round, as (x, y[, z]) in pixels, the way
MiLoPYP coordinates and CryoSiam's STAR files write them; pixel (x, y, z) is `volume[z, y, x]`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from embedscope.errors import ParameterError, UserError
from embedscope.formats.images import open_image
from embedscope.progress import SILENT, Reporter
from embedscope.sources.micrograph_views import to_uint8
from embedscope.sources.micrographs import LUMINANCE
from embedscope.sources.spectra import power_spectrum

MODES = ("image", "ps", "slices")
BATCH_ROWS = 1024


def crop(image: np.ndarray, centre: Sequence[float], box: int | Sequence[int]) -> np.ndarray:
    """A float32 box around a point, zero-padded where it leaves the image; of a memmap only the box is read.

    `centre` is (x, y) for (h, w[, 3]) images or (x, y, z) for (d, h, w) volumes, and `box` one size or one per
    axis in the same x, y[, z] order; the result is in array order and pixel round(centre) sits at index box // 2.
    """
    point = np.asarray(centre, dtype=np.float64)
    if point.ndim != 1 or len(point) not in (2, 3) or not np.isfinite(point).all():
        raise ParameterError(f"a crop centre needs 2 or 3 finite numbers (x, y[, z]), not {centre}")
    if len(point) == 3 and not _is_volume(image):
        raise ParameterError(f"an (x, y, z) centre needs a (d, h, w) volume, not shape {image.shape}; give (x, y)")
    if len(point) == 2 and _is_volume(image):
        raise ParameterError(f"a volume of shape {image.shape} needs (x, y, z) centres; add the z coordinate")
    sizes = _box_sizes(box, len(point))[::-1]
    starts = np.floor(point[::-1] + 0.5).astype(np.int64) - np.array(sizes) // 2
    result = np.zeros(sizes + tuple(image.shape[len(point) :]), np.float32)
    inside, source = [], []
    for start, size, length in zip(starts, sizes, image.shape):
        low, high = max(start, 0), min(start + size, length)
        if low >= high:
            return result
        inside.append(slice(low - start, high - start))
        source.append(slice(low, high))
    result[tuple(inside)] = image[tuple(source)]
    return result


def thumbnail(image: np.ndarray, size: int = 64, mode: str = "image") -> np.ndarray:
    """A (size, size) uint8 picture, or (size, size, 3) for RGB: resized with anti-aliasing, padded to a square.

    "image" shows a 2-D image as is and a volume's central z slice, "ps" the power spectrum of that plane, and
    "slices" a volume's central slices on one scale: xy top left, zy (z across) to its right, xz (z down) below it.
    """
    _check_mode(mode)
    _check_positive("size", size)
    if mode == "slices":
        return _orthoslices(image, size)
    plane = _central_plane(image)
    if mode == "ps":
        # a thumbnail averages many spectrum bins a pixel already: tiles need not overlap, a quarter of the FFTs
        plane = power_spectrum(plane.mean(axis=-1) if plane.ndim == 3 else plane, overlap=0)
    return _square(to_uint8(_resize(plane, _fit(plane.shape[:2], size))), size)


def make_thumbnails(
    paths: Sequence[str],
    size: int = 64,
    mode: str = "image",
    centres: np.ndarray | None = None,
    box: int | Sequence[int] | None = None,
    reporter: Reporter = SILENT,
    batch: int = BATCH_ROWS,
) -> Iterator[np.ndarray]:
    """Thumbnails of many rows, yielded as uint8 batches of `batch` rows in input order; memory stays bounded.

    Without `centres` a row pictures its whole file. With (n, 2 | 3) `centres` in x, y[, z] pixels a row is a crop
    of `box` pixels (default `size`: one pixel per pixel) around its point. Each file is opened once per batch.
    The first batch sets the shape of all: (k, size, size, 3) when any of its rows is RGB, else (k, size, size);
    later rows are matched to it (grey repeated into three channels, colour turned to its luminance).
    """
    _check_mode(mode)
    _check_positive("size", size)
    _check_positive("batch", batch)
    if centres is None and box is not None:
        raise ParameterError(f"box {box} applies to crops around centres; pass centres or leave box out")
    points = None if centres is None else _check_centres(centres, len(paths))
    box = size if box is None else box
    if points is not None:
        _box_sizes(box, points.shape[1])
    return _batches(paths, size, mode, points, box, reporter, batch)


def _batches(
    paths: Sequence[str],
    size: int,
    mode: str,
    points: np.ndarray | None,
    box: int | Sequence[int],
    reporter: Reporter,
    batch: int,
) -> Iterator[np.ndarray]:
    """The batches of `make_thumbnails`, a generator of its own so that bad arguments fail at the call."""
    colour = None
    with reporter.phase("thumbnails", len(paths)) as advance:
        for start in range(0, len(paths), batch):
            rows = range(start, min(start + batch, len(paths)))
            pictures = _pictures(paths, rows, size, mode, points, box)
            colour = any(picture.ndim == 3 for picture in pictures) if colour is None else colour
            yield np.stack([_in_channels(picture, colour) for picture in pictures])
            advance(len(rows))


def _pictures(
    paths: Sequence[str], rows: range, size: int, mode: str, points: np.ndarray | None, box: int | Sequence[int]
) -> list[np.ndarray]:
    """The thumbnails of some rows in their order, the rows grouped by file so that each file is opened once."""
    groups: dict[Path, list[int]] = {}
    for row in rows:
        groups.setdefault(Path(paths[row]), []).append(row)
    pictures: dict[int, np.ndarray] = {}
    for path, group in groups.items():
        with _naming(group[0], path):
            image = open_image(path)
        if points is None:
            with _naming(group[0], path):
                pictures.update(dict.fromkeys(group, thumbnail(image, size, mode)))
        else:
            for row in group:
                with _naming(row, path):
                    pictures[row] = _crop_thumbnail(image, points[row], box, size, mode)
    return [pictures[row] for row in rows]


def _in_channels(picture: np.ndarray, colour: bool) -> np.ndarray:
    """A thumbnail in colour (grey repeated into three channels) or in grey (colour as its luminance)."""
    if colour == (picture.ndim == 3):
        return picture
    if colour:
        return np.repeat(picture[..., None], 3, axis=-1)
    return np.rint(picture @ LUMINANCE).astype(np.uint8)


def _crop_thumbnail(image: np.ndarray, point: np.ndarray, box: int | Sequence[int], size: int, mode: str) -> np.ndarray:
    """The thumbnail of a crop; for a plane mode only the crop's central z slice is read from a volume."""
    if mode == "slices" or len(point) == 2:
        return thumbnail(crop(image, point, box), size, mode)
    width, height, _ = _box_sizes(box, 3)
    return thumbnail(crop(image, point, (width, height, 1))[0], size, mode)


@contextmanager
def _naming(row: int, path: Path) -> Iterator[None]:
    """Retell a user error raised in the block so that it names the row (its index in the paths) and the file."""
    try:
        yield
    except UserError as error:
        message = str(error) if str(error).startswith(str(path)) else f"{path}: {error}"
        raise type(error)(f"row {row}: {message}") from error


def _check_centres(centres: np.ndarray, n: int) -> np.ndarray:
    """Centres as an (n, 2 | 3) float array of finite x, y[, z] pixel coordinates, one per path."""
    points = np.asarray(centres, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3) or len(points) != n:
        raise ParameterError(f"centres need shape ({n}, 2) or ({n}, 3) for x, y[, z], one per path, not {points.shape}")
    bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
    if bad.size:
        raise ParameterError(f"centres of rows {bad[:5].tolist()} are not finite; give every row x, y[, z] numbers")
    return points


def _box_sizes(box: int | Sequence[int], axes: int) -> tuple[int, ...]:
    """The crop size along each of `axes` axes, in x, y[, z] order."""
    sizes = (box,) * axes if np.ndim(box) == 0 else tuple(box)
    if len(sizes) != axes or not all(isinstance(size, int | np.integer) and size > 0 for size in sizes):
        raise ParameterError(f"box {box} needs to be one positive integer or {axes} of them (x, y[, z])")
    return tuple(int(size) for size in sizes)


def _check_mode(mode: str) -> None:
    """Refuse an unknown thumbnail mode."""
    if mode not in MODES:
        raise ParameterError(f"unknown thumbnail mode {mode!r}; use one of {', '.join(MODES)}")


def _check_positive(name: str, value: int) -> None:
    """Refuse a size that is not a positive integer."""
    if not isinstance(value, int | np.integer) or value < 1:
        raise ParameterError(f"{name} {value!r} needs to be a positive integer")


def _is_volume(image: np.ndarray) -> bool:
    """Whether an array is a (d, h, w) volume rather than a grey or RGB image."""
    return image.ndim == 3 and image.shape[-1] != 3


def _central_plane(image: np.ndarray) -> np.ndarray:
    """The image itself, or a volume's central z slice, as float32; of a memmap only that slice is read."""
    if image.ndim not in (2, 3):
        raise ParameterError(f"a thumbnail needs an (h, w), (h, w, 3) or (d, h, w) array, not shape {image.shape}")
    return np.asarray(image[image.shape[0] // 2] if _is_volume(image) else image, dtype=np.float32)


def _orthoslices(volume: np.ndarray, size: int) -> np.ndarray:
    """Central xy, zy and xz slices on one scale in an L: xy top left, zy right of it, xz below it, corner black."""
    if not _is_volume(volume):
        raise ParameterError(f"mode 'slices' needs a (d, h, w) volume, not shape {volume.shape}; use mode 'image'")
    depth, height, width = volume.shape
    scale = size / max(width + depth, height + depth)
    h, w, d = (max(1, int(length * scale)) for length in (height, width, depth))
    slices = (volume[depth // 2], volume[:, :, width // 2].T, volume[:, height // 2, :])
    panels = [_resize(np.asarray(plane, np.float32), shape) for plane, shape in zip(slices, ((h, w), (h, d), (d, w)))]
    stretched = to_uint8(np.concatenate([panel.ravel() for panel in panels]))
    xy, zy, xz = np.split(stretched, np.cumsum([panel.size for panel in panels])[:-1])
    canvas = np.zeros((h + d, w + d), np.uint8)
    canvas[:h, :w] = xy.reshape(h, w)
    canvas[:h, w:] = zy.reshape(h, d)
    canvas[h:, :w] = xz.reshape(d, w)
    return _square(canvas, size)


def _fit(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """The (h, w) that fits `shape` into a size x size square, keeping its aspect ratio."""
    scale = size / max(shape)
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _resize(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A float32 plane resampled to (h, w) by Pillow's triangle filter, which widens to average when shrinking."""
    if plane.shape[:2] == shape:
        return plane
    channels = [plane] if plane.ndim == 2 else [plane[..., channel] for channel in range(plane.shape[-1])]
    resized = [
        np.asarray(Image.fromarray(np.ascontiguousarray(channel)).resize(shape[::-1], Image.Resampling.BILINEAR))
        for channel in channels
    ]
    return resized[0] if plane.ndim == 2 else np.stack(resized, axis=-1)


def _square(picture: np.ndarray, size: int) -> np.ndarray:
    """A uint8 picture centred on a black size x size canvas."""
    canvas = np.zeros((size, size) + picture.shape[2:], np.uint8)
    top, left = (size - picture.shape[0]) // 2, (size - picture.shape[1]) // 2
    canvas[top : top + picture.shape[0], left : left + picture.shape[1]] = picture
    return canvas
