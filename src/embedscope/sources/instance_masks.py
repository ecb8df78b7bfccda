"""Instance masks: (Z, Y, X) integer volumes where each particle's voxels hold its label and 0 is background.

CryoSiam writes them as `<tomogram>_instance_preds.h5` (dataset `instances`); label MRC files work too. Masks are
read box by box (h5py reads slabs, MRC files are memory-mapped), so a large mask never sits whole in memory.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import mrcfile
import numpy as np
from scipy import ndimage

from embedscope.errors import InputError
from embedscope.formats.file_checks import damaged, reader_for
from embedscope.progress import SILENT, Reporter

INSTANCE_DATASET = "instances"
SLAB = 16  # z slices read at a time when scanning a mask
_MRC_DAMAGE = (ValueError, OSError, EOFError, ArithmeticError, MemoryError, TypeError, IndexError)


class MaskVolume:
    """An opened instance mask: `mask[z0:z1, y0:y1, x0:x1]` reads just that box as a numpy array.

    Use it as a context manager (or call `close`); `shape` is (Z, Y, X) and `dtype` an integer type.
    """

    def __init__(self, path: Path, data: h5py.Dataset | np.ndarray, handle: h5py.File | None = None) -> None:
        self.path, self._data, self._handle = path, data, handle
        self.shape: tuple[int, int, int] = tuple(int(size) for size in data.shape)
        self.dtype = np.dtype(data.dtype)

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(self._data[box])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

    def __enter__(self) -> MaskVolume:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_instance_mask(path: Path) -> MaskVolume:
    """The instance mask in an `.h5` file (dataset `instances`) or a label `.mrc`/`.rec` file, opened for box reads.

    Refuses, in one line, a missing file, an HDF5 file without `instances`, non-integer labels and non-3D arrays.
    """
    path = Path(path)
    opener = reader_for(path, {".h5": _open_h5, ".hdf5": _open_h5, ".mrc": _open_mrc, ".rec": _open_mrc},
                        "instance mask type")
    mask = opener(path)
    problem = None
    if len(mask.shape) != 3:
        problem = f"holds a {len(mask.shape)}D array of shape {mask.shape}; an instance mask is a (Z, Y, X) volume"
    elif mask.dtype.kind not in "iu":
        problem = (f"holds {mask.dtype} values; an instance mask holds integer labels (0 = background), so write "
                   "it as integers")
    if problem:
        mask.close()
        raise InputError(f"{path}: {problem}")
    return mask


def read_instance_mask(path: Path) -> np.ndarray:
    """The whole instance mask in `path` as a (Z, Y, X) integer array; prefer `open_instance_mask` for large masks."""
    with open_instance_mask(path) as mask:
        return mask[:, :, :]


def find_instance_mask(folder: Path, tomogram_name: str, suffix: str = "") -> Path | None:
    """The mask of `tomogram_name` in `folder`: `<name>_instance_preds<suffix>.h5`, then `.mrc` of that name, then
    `<name>.mrc` or `<name>.rec` when it holds integers; None when there is none. Names keep all their dots."""
    folder = Path(folder)
    for candidate in (f"{tomogram_name}_instance_preds{suffix}.h5", f"{tomogram_name}_instance_preds{suffix}.mrc"):
        if (folder / candidate).is_file():
            return folder / candidate
    for extension in (".mrc", ".rec"):
        candidate = folder / f"{tomogram_name}{extension}"
        if candidate.is_file() and _mrc_holds_integers(candidate):
            return candidate
    return None


@dataclass(frozen=True, eq=False)
class RegionBoxes:
    """Each label's bounding box and voxel count, labels ascending: `low`/`high` are (n, 3) z, y, x, high exclusive.

    What the crops need before any crop is read: a few numbers per particle, found in one pass over the mask.
    """

    labels: np.ndarray
    low: np.ndarray
    high: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def region_boxes(mask: MaskVolume | np.ndarray, reporter: Reporter = SILENT, slab: int = SLAB) -> RegionBoxes:
    """The bounding box and voxel count of every label in `mask`, read `slab` z slices at a time.

    Memory stays at one slab plus a few numbers per label, whatever the mask's size.
    """
    depth = mask.shape[0]
    counts = np.zeros(1, dtype=np.int64)
    low = np.zeros((1, 3), dtype=np.int64)
    high = np.zeros((1, 3), dtype=np.int64)
    with reporter.phase("finding regions", depth) as advance:
        for start in range(0, depth, slab):
            block = np.asarray(mask[start : start + slab, :, :])
            if block.dtype.kind == "i" and block.size and block.min() < 0:
                raise InputError(f"{getattr(mask, 'path', 'the mask')}: holds negative labels; labels are 0 "
                                 "(background) or positive")
            if block.dtype.itemsize > 4 or block.dtype == np.uint32:
                block = block.astype(np.int64)
            found = np.bincount(block.ravel())
            if len(found) > len(counts):
                grow = len(found) - len(counts)
                counts = np.concatenate([counts, np.zeros(grow, dtype=np.int64)])
                low = np.concatenate([low, np.full((grow, 3), np.iinfo(np.int64).max)])
                high = np.concatenate([high, np.zeros((grow, 3), dtype=np.int64)])
            counts[: len(found)] += found
            objects = ndimage.find_objects(block)
            for label in np.flatnonzero(found[1:]) + 1:
                box = objects[label - 1]
                corner = np.array([box[0].start + start, box[1].start, box[2].start])
                np.minimum(low[label], corner, out=low[label])
                np.maximum(high[label], [box[0].stop + start, box[1].stop, box[2].stop], out=high[label])
            advance(block.shape[0])
    labels = np.flatnonzero(counts[1:]) + 1
    return RegionBoxes(labels.astype(np.int64), low[labels], high[labels], counts[labels])


def _open_h5(path: Path) -> MaskVolume:
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise damaged(path, "an HDF5 instance mask", error) from error
    data = handle.get(INSTANCE_DATASET)
    if not isinstance(data, h5py.Dataset):
        names: list[str] = []
        handle.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        handle.close()
        present = ", ".join(names) if names else "none"
        raise InputError(f"{path}: has no dataset '{INSTANCE_DATASET}' (datasets: {present}); give the instance "
                         f"mask CryoSiam writes, with its labels in '{INSTANCE_DATASET}'")
    return MaskVolume(path, data, handle)


def _open_mrc(path: Path) -> MaskVolume:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
                data = mrc.data
        except _MRC_DAMAGE as error:
            raise damaged(path, "an instance mask (MRC)", error) from error
    if data is None:
        raise damaged(path, "an instance mask (MRC)", ValueError("no data block"))
    return MaskVolume(path, data)


def _mrc_holds_integers(path: Path) -> bool:
    """Whether an MRC file's header says it stores integers (modes 0, 1 and 6), as a label volume does."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, header_only=True, permissive=True) as mrc:
                return mrcfile.utils.dtype_from_mode(mrc.header.mode).kind in "iu"
    except (*_MRC_DAMAGE, KeyError):
        return False
