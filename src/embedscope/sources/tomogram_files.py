"""Read tomograms, tilt series and tilt angles as the shared contract's arrays: (Z, Y, X), (n, Y, X) and (n,).

MRC files are memory-mapped in permissive mode (older tools write odd headers); IMOD's `.rec` files, which keep
the thickness on the file's middle axis ("xzy"), become (Z, Y, X) views, so nothing is read until it is used.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import mrcfile
import numpy as np

from embedscope.errors import InputError, ParameterError
from embedscope.formats.file_checks import damaged, require_file

ORDERS = ("auto", "xyz", "xzy")
THIN_MIDDLE = 0.8  # "auto" reads a file as xzy when its middle axis is at most this fraction of both others
# What mrcfile and numpy raise for a file that is not a readable MRC file (short, garbled or absurd header).
_MRC_DAMAGE = (ValueError, OSError, EOFError, ArithmeticError, MemoryError, TypeError, IndexError)


def open_tomogram(path: Path, order: str = "auto") -> np.ndarray:
    """The tomogram in `path` as a read-only (Z, Y, X) view of the file, in the dtype the file stores.

    Callers that process slab by slab use this to avoid a float32 copy of the whole volume; see `read_tomogram`.
    """
    data = _open_mrc(Path(path), "a tomogram")
    if data.ndim != 3:
        raise InputError(f"{path}: holds a {data.ndim}D array of shape {data.shape}, not a volume; name a tomogram")
    return data.swapaxes(0, 1) if file_order(data.shape, order) == "xzy" else data


def read_tomogram(path: Path, order: str = "auto") -> np.ndarray:
    """The tomogram in `path` as float32 (Z, Y, X): a memory-mapped view for float32 files, else a converted copy.

    order "xyz": the file's array (mrcfile's `data`, slowest axis first) is already (Z, Y, X).
    order "xzy": the file's array is (Y, Z, X), thickness on the middle axis, as IMOD writes `.rec` files.
    order "auto": "xzy" when the file's middle axis (header ny) is at most 0.8 times each of the other two
    (ny <= 0.8 * nx and ny <= 0.8 * nz), as for a 512 x 512 x 256 IMOD reconstruction; "xyz" otherwise.
    """
    volume = open_tomogram(path, order)
    return volume if volume.dtype == np.float32 else volume.astype(np.float32)


def file_order(shape: tuple[int, ...], order: str) -> str:
    """The order, "xyz" or "xzy", that `order` means for a file whose array has `shape` (see `read_tomogram`)."""
    if order not in ORDERS:
        raise ParameterError(f"order {order!r} is not one of {', '.join(ORDERS)}; use auto unless sure")
    if order != "auto":
        return order
    outer, middle, inner = shape
    return "xzy" if middle <= THIN_MIDDLE * min(outer, inner) else "xyz"


def tomogram_shape(path: Path, order: str = "auto") -> tuple[int, int, int]:
    """The (Z, Y, X) shape of the tomogram in `path`, read from its header alone."""
    return open_tomogram(path, order).shape


def open_tilt_series(path: Path) -> np.ndarray:
    """The tilt series in `path` as a read-only (n, Y, X) view of the file, in the dtype the file stores."""
    data = _open_mrc(Path(path), "a tilt series")
    if data.ndim == 2:
        return data[np.newaxis]
    if data.ndim != 3:
        raise InputError(f"{path}: holds a {data.ndim}D array of shape {data.shape}; a tilt series is a 3D stack")
    return data


def read_tilt_series(path: Path) -> np.ndarray:
    """The tilt series in `path` as float32 (n, Y, X), one aligned tilt image per angle of its `.tlt` file."""
    stack = open_tilt_series(path)
    return stack if stack.dtype == np.float32 else stack.astype(np.float32)


def read_angles(path: Path) -> np.ndarray:
    """The tilt angles in degrees from a `.tlt` text file, one number per line (blank lines skipped), as float64."""
    path = Path(path)
    require_file(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise damaged(path, "a text file of tilt angles", error) from error
    angles = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            angle = float(line.split()[0])
        except ValueError:
            raise InputError(f"{path}, line {number}: {line.strip()[:40]!r} is not an angle; write one number "
                             "(degrees) per line") from None
        if not math.isfinite(angle):
            raise InputError(f"{path}, line {number}: angle {line.strip()} is not finite; write angles in degrees")
        angles.append(angle)
    if not angles:
        raise InputError(f"{path}: holds no tilt angles; write one angle in degrees per line")
    return np.array(angles, dtype=np.float64)


def check_tilt_series(
    rec_path: Path, tomogram_shape: tuple[int, int, int],
    tilt_path: Path, tilt_shape: tuple[int, int, int],
    angle_path: Path, angle_count: int,
) -> None:
    """Refuse a tilt series that has not one image per angle, or whose images differ in x-y size from the tomogram.

    MiLoPYP projects tomogram points into the tilt images pixel for pixel, so both must share the x-y grid.
    """
    if tilt_shape[0] != angle_count:
        raise InputError(f"{tilt_path} holds {tilt_shape[0]} tilt images but {angle_path} lists {angle_count} "
                         "angles; pair each tilt series with its own .tlt file")
    tomogram_xy, tilt_xy = tomogram_shape[1:], tilt_shape[1:]
    if tilt_xy != tomogram_xy:
        raise InputError(f"{tilt_path} has x-y size {tilt_xy[1]} x {tilt_xy[0]} but {rec_path} has "
                         f"{tomogram_xy[1]} x {tomogram_xy[0]}; use the aligned tilt series binned like the tomogram")


def _open_mrc(path: Path, what: str) -> np.ndarray:
    """The data block of an MRC file, memory-mapped read-only; one-line errors for anything unreadable."""
    require_file(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
                data = mrc.data
        except _MRC_DAMAGE as error:
            raise damaged(path, f"{what} (MRC)", error) from error
    if data is None:
        raise damaged(path, f"{what} (MRC)", caught[0].message if caught else ValueError("no data block"))
    if np.iscomplexobj(data) or data.dtype.kind not in "iuf":
        raise InputError(f"{path}: holds {data.dtype} values, not real numbers; write {what} in real space")
    if data.size == 0:
        raise InputError(f"{path}: holds an empty array of shape {data.shape}; check the file or write it again")
    return data
