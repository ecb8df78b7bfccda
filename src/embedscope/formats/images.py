"""Read pictures, micrographs, tilt series and tomograms as arrays: (h, w) grey, (h, w, 3) RGB or (d, h, w).

MRC files and uncompressed TIFFs are memory-mapped by `open_image`, so that a crop of a 2 GB tomogram reads only
its own pages; `read_image` loads the whole array as float32. Volumes keep the stored array order z, y, x.
MRC files compressed with gzip or bzip2 (".mrc.gz", ".map.bz2" ...) are decompressed into memory.
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import math
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import mrcfile
import numpy as np
import tifffile
from PIL import Image

from embedscope.errors import InputError
from embedscope.formats.file_checks import damaged, reader_for, reason

_GREY_MODES = {"L", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
_GREY_WITH_EXTRAS = {"1", "LA", "La"}  # bilevel, and grey with alpha: converted to plain grey
# What each library raises for a file it cannot decode; fuzzing (tests/test_images.py) found these.
_PILLOW_DAMAGE = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error, zlib.error)
_PILLOW_DAMAGE += (Image.DecompressionBombError,)
_TIFF_DAMAGE = (ValueError, OSError, EOFError, KeyError, IndexError, TypeError, struct.error, zlib.error)
_TIFF_DAMAGE += (AttributeError, RuntimeError, NotImplementedError, ArithmeticError, MemoryError)
_TIFF_DAMAGE += (AssertionError,)  # tifffile asserts on some damaged page headers
_MOST_INFLATION = 4096  # deflate packs at most ~1000 to 1, so a TIFF declaring more pixels than this is damaged
_SMALL_IMAGE_BYTES = 2**28
_MRC_DAMAGE = (ValueError, OSError, EOFError, ArithmeticError, MemoryError)
_MRC_SUFFIXES = (".mrc", ".mrcs", ".rec", ".st", ".map")
_DECOMPRESSORS: dict[str, Callable[[Path], BinaryIO]] = {".gz": gzip.open, ".bz2": bz2.open}
_HEADER_BYTES = 1024
_MODE_BYTES = {0: 1, 1: 2, 2: 4, 4: 8, 6: 2, 12: 2}  # MRC modes mrcfile reads: int8, int16, float32, complex64 ...
_CHUNK_BYTES = 2**24


def read_image(path: Path) -> np.ndarray:
    """The whole image, stack or volume in `path` as float32: (h, w) grey, (h, w, 3) RGB or (d, h, w).

    Alpha channels are dropped and palettes expanded; values keep their stored scale, unnormalised.
    """
    return np.array(open_image(path), dtype=np.float32)


def open_image(path: Path) -> np.ndarray:
    """The image in `path` in its stored dtype and in `read_image`'s shapes, memory-mapped where the file allows.

    MRC files and uncompressed TIFFs come back as read-only memmaps, so slicing a crop reads only those pages.
    """
    path = Path(path)
    image = reader_for(path, _READERS, "image type")(path)
    if image.size == 0:
        raise InputError(f"{path}: holds an empty image of shape {image.shape}; check the file or write it again")
    return image


def _read_pillow(path: Path) -> np.ndarray:
    """A PNG, JPEG, WebP (first frame) or TIFF decoded whole by Pillow; palettes expanded, alpha dropped."""
    try:
        with _quietly(), Image.open(path) as image:
            if image.mode in _GREY_MODES:
                return np.asarray(image)
            return np.asarray(image.convert("L" if image.mode in _GREY_WITH_EXTRAS else "RGB"))
    except _PILLOW_DAMAGE as error:
        raise damaged(path, "an image", error) from error


def _read_tiff(path: Path) -> np.ndarray:
    """A TIFF through tifffile (16-bit, float, multi-page stacks); Pillow for palettes and codecs tifffile lacks."""
    try:
        with _quietly(), tifffile.TiffFile(path) as tiff:
            series = tiff.series[0]
            if series.keyframe.photometric == tifffile.PHOTOMETRIC.PALETTE:
                return _read_pillow(path)
            return _arrange(path, _tiff_pixels(path, tiff, series), series.axes)
    except _TIFF_DAMAGE as error:
        try:
            return _read_pillow(path)
        except InputError:
            raise damaged(path, "a TIFF image", error) from error


def _tiff_pixels(path: Path, tiff: tifffile.TiffFile, series: tifffile.TiffPageSeries) -> np.ndarray:
    """The pixels of a series, memory-mapped when they lie uncompressed in one block of the file.

    A damaged header can declare billions of pixels; more than any codec could have packed into the file is refused
    before tifffile allocates them.
    """
    if series.dataoffset is not None and series.dtype is not None:
        dtype = np.dtype(tiff.byteorder + series.dtype.char)
        return np.memmap(path, dtype, "r", series.dataoffset, series.shape)
    stored = path.stat().st_size
    if series.size * series.dtype.itemsize > _MOST_INFLATION * stored + _SMALL_IMAGE_BYTES:
        shape = "x".join(map(str, series.shape))
        message = f"declares {shape} pixels, more than its {stored} bytes can hold; check the file or write it again"
        raise InputError(f"{path}: {message}")
    return series.asarray()


def _arrange(path: Path, pixels: np.ndarray, axes: str) -> np.ndarray:
    """Pixels whose axes tifffile names (YX, YXS, SYX, IYX, ZYX ...) as (h, w), (h, w, 3) or (d, h, w).

    Only views are taken, so a memmap stays lazy; samples past the third (alpha) are dropped.
    """
    if "S" in axes:
        pixels = np.moveaxis(pixels, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    kept = [size > 1 or axis in "YX" for axis, size in zip(axes, pixels.shape)]
    pixels = pixels[tuple(slice(None) if keep else 0 for keep in kept)]
    axes = "".join(axis for axis, keep in zip(axes, kept) if keep)
    if axes.endswith("S"):
        pixels = pixels[..., :3] if pixels.shape[-1] >= 3 else pixels[..., 0]
    if pixels.ndim > 3:
        raise InputError(f"{path}: holds an array with axes {axes} of shape {pixels.shape}; save one image or stack")
    return pixels


def _read_mrc(path: Path) -> np.ndarray:
    """An MRC image, stack or volume memory-mapped in permissive mode, which tolerates headers of older tools.

    A file shorter than its header declares is refused first, with both byte counts.
    """
    with open(path, "rb") as file:
        _check_length(path, file.read(_HEADER_BYTES), path.stat().st_size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with mrcfile.mmap(path, permissive=True) as mrc:
                data = mrc.data
        except _MRC_DAMAGE as error:
            raise damaged(path, "an MRC file", error) from error
    return _checked_mrc_data(path, data, caught)


def _read_compressed_mrc(path: Path) -> np.ndarray:
    """A gzip- or bzip2-compressed MRC file, decompressed into memory: no more than its header declares.

    A stream that ends early, or is not in the format its suffix names, is refused in one line.
    """
    try:
        with _DECOMPRESSORS[path.suffix.lower()](path) as stream:
            head = _read_up_to(stream, _HEADER_BYTES)
            declared = _declared_size(head)
            if declared is None:
                raise damaged(path, "an MRC file", ValueError("its header declares no known mode and shape"))
            content = head + _read_up_to(stream, declared[0] - len(head))
    except (OSError, EOFError, zlib.error) as error:
        raise InputError(f"{path}: cannot be decompressed ({reason(error)}); the file is damaged or cut short, "
                         "copy it again") from error
    _check_length(path, content, len(content), " once decompressed")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            data = mrcfile.mrcinterpreter.MrcInterpreter(io.BytesIO(content), permissive=True).data
        except _MRC_DAMAGE as error:
            raise damaged(path, "an MRC file", error) from error
    return _checked_mrc_data(path, data, caught)


def _checked_mrc_data(path: Path, data: np.ndarray | None, caught: list[warnings.WarningMessage]) -> np.ndarray:
    """MRC data as `open_image` returns it: (h, w) for one section; missing, complex or 4-D data refused."""
    if data is None:
        raise damaged(path, "an MRC file", caught[0].message if caught else ValueError("no data block"))
    if np.iscomplexobj(data):
        raise InputError(f"{path}: holds complex values (a Fourier transform); write the real-space map instead")
    if data.ndim == 4:
        raise InputError(f"{path}: holds a stack of {data.shape[0]} volumes; write one volume per file")
    return data[0] if data.ndim == 3 and data.shape[0] == 1 else data


def _check_length(path: Path, head: bytes, available: int, where: str = "") -> None:
    """Refuse an MRC file shorter than its header declares, naming both byte counts (a copy cut short)."""
    declared = _declared_size(head)
    if declared is not None and available < declared[0]:
        needed, data = declared
        raise InputError(f"{path}: cannot be read as an MRC file: it holds {available:,} bytes{where}, the header "
                         f"declares {data} data needing {needed:,}; the file is cut short, copy or write it again")


def _declared_size(head: bytes) -> tuple[int, str] | None:
    """The bytes an MRC header says its file holds, and its data in words ("4096x4096 mode-6"); None if unreadable.

    The byte order is the one in which the mode is known and the sizes positive, as mrcfile's permissive mode does.
    """
    if len(head) < _HEADER_BYTES:
        return None
    for order in "<>":
        header = np.frombuffer(head, mrcfile.dtypes.HEADER_DTYPE.newbyteorder(order), count=1)[0]
        sizes = [int(header[axis]) for axis in ("nx", "ny", "nz")]
        mode, extended = int(header["mode"]), int(header["nsymbt"])
        if mode in _MODE_BYTES and min(sizes) > 0 and extended >= 0:
            shape = "x".join(map(str, sizes if sizes[2] > 1 else sizes[:2]))
            return _HEADER_BYTES + extended + math.prod(sizes) * _MODE_BYTES[mode], f"{shape} mode-{mode}"
    return None


def _read_up_to(stream: BinaryIO, count: int) -> bytes:
    """Up to `count` bytes of a stream, read in chunks so that a header declaring terabytes allocates nothing."""
    chunks: list[bytes] = []
    while count > 0 and (chunk := stream.read(min(count, _CHUNK_BYTES))):
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


@contextmanager
def _quietly() -> Iterator[None]:
    """Mute the warnings and log lines that decoders emit about damaged files; a failure is reported in one line."""
    logger = logging.getLogger("tifffile")
    disabled, logger.disabled = logger.disabled, True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = disabled


_READERS: dict[str, Callable[[Path], np.ndarray]] = {
    ".png": _read_pillow,
    ".jpg": _read_pillow,
    ".jpeg": _read_pillow,
    ".webp": _read_pillow,
    ".tif": _read_tiff,
    ".tiff": _read_tiff,
    **dict.fromkeys(_MRC_SUFFIXES, _read_mrc),
    **{suffix + packing: _read_compressed_mrc for packing in _DECOMPRESSORS for suffix in _MRC_SUFFIXES},
}
