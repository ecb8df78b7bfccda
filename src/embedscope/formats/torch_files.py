"""Read PyTorch `.pt`/`.pth` files into numpy arrays without importing torch.

Commands on vectors that exist start fast, and a tensor saved on a GPU loads on any machine
because the device recorded in the file is ignored.
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import zipfile
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from embedscope.errors import InputError
from embedscope.formats.file_checks import reason

_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[:-1]

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

# What a damaged archive or pickle raises from zipfile, pickle and numpy; turned into InputError.
# zipfile reports an encrypted member as a RuntimeError and an unknown compression as NotImplementedError.
_DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,
    NotImplementedError,
    EOFError,
    KeyError,
    IndexError,
    AttributeError,
    TypeError,
    ValueError,
    OverflowError,
    MemoryError,
    pickle.UnpicklingError,
)


class _StorageType(NamedTuple):
    """A `torch.<X>Storage` class named in the pickle, standing for its element type."""

    name: str


def load_torch_file(path: Path) -> Any:
    """Load a `torch.save` file as numpy arrays inside their dicts, lists and tuples.

    Only tensors and plain containers are unpickled; any other Python object is refused, not run.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(len(_LEGACY_MAGIC))
    except FileNotFoundError as error:
        raise InputError(f"{path}: no such file") from error
    except OSError as error:
        raise InputError(f"{path}: cannot be opened ({reason(error)}); check its permissions") from error
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    if head == _LEGACY_MAGIC:
        return _load_legacy(path)
    raise InputError(f"{path}: not a PyTorch file; save tensors with torch.save")


def _load_zip(path: Path) -> Any:
    """Unpickle `<archive>/data.pkl`, taking tensor bytes from `<archive>/data/<key>`."""
    try:
        with zipfile.ZipFile(path) as archive:
            root = _archive_root(path, archive)
            byteorder = _byteorder(archive, root)
            pickled = archive.read(f"{root}/data.pkl")
            _check_memo(pickled)
            return _TensorUnpickler(io.BytesIO(pickled), path, archive, root, byteorder).load()
    except _DAMAGE as error:
        raise InputError(
            f"{path}: damaged PyTorch file ({reason(error)}); save it again with torch.save"
        ) from error


def _check_memo(pickled: bytes) -> None:
    """Refuse memo indices larger than the pickle itself, found only in damaged files.

    The C unpickler sizes its memo by the largest index, so one bad byte could claim many gigabytes.
    """
    for opcode, argument, _ in pickletools.genops(pickled):
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(argument) > len(pickled):
            raise pickle.UnpicklingError(f"memo index {argument} is out of range")


def _archive_root(path: Path, archive: zipfile.ZipFile) -> str:
    """The archive's top folder, the one that holds `data.pkl`."""
    roots = [name[: -len("/data.pkl")] for name in archive.namelist() if name.endswith("/data.pkl")]
    top = [root for root in roots if "/" not in root]
    if len(top) != 1:
        raise InputError(f"{path}: a zip file but not a PyTorch file; save tensors with torch.save")
    return top[0]


def _byteorder(archive: zipfile.ZipFile, root: str) -> str:
    """'<' or '>' from `<archive>/byteorder`; files written before it existed are little-endian."""
    try:
        recorded = archive.read(f"{root}/byteorder")
    except KeyError:
        return "<"
    return ">" if recorded.strip() == b"big" else "<"


class _TensorUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds tensors as numpy arrays and refuses every other class."""

    def __init__(self, file: io.BytesIO, path: Path, archive: zipfile.ZipFile, root: str, byteorder: str):
        super().__init__(file)
        self._path = path
        self._archive = archive
        self._root = root
        self._byteorder = byteorder
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("collections", "OrderedDict"): collections.OrderedDict,
        }
        if (module, name) in allowed:
            return allowed[module, name]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch" and name.endswith("Storage"):
            raise InputError(
                f"{self._path}: holds tensors of type {name[: -len('Storage')]}, which embedscope "
                "does not read; convert them with tensor.float() and save again"
            )
        raise InputError(
            f"{self._path} holds Python objects other than tensors ({module}.{name}); "
            "save a tensor or a dict of tensors"
        )

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        _, storage_type, key, _location, _numel = pid
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"storage of unknown type {storage_type!r}")
        if key not in self._storages:
            self._storages[key] = self._read_storage(storage_type, str(key))
        return self._storages[key]

    def _read_storage(self, storage_type: _StorageType, key: str) -> np.ndarray:
        """One storage's elements in native byte order; bfloat16 widened to float32."""
        raw = self._archive.read(f"{self._root}/data/{key}")
        stored = np.dtype(_STORAGE_DTYPES[storage_type.name]).newbyteorder(self._byteorder)
        elements = np.frombuffer(raw, dtype=stored).astype(stored.newbyteorder("="))
        if storage_type.name == "BFloat16Storage":
            return (elements.astype(np.uint32) << 16).view(np.float32)
        return elements


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    """A copy of the tensor's elements, taken from its storage by offset, size and stride."""
    if not isinstance(storage, np.ndarray):
        raise pickle.UnpicklingError("a tensor without storage")
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or min((offset, *size, *stride)) < 0:
        raise pickle.UnpicklingError(f"a tensor with size {size} and stride {stride}")
    if 0 in size:
        return np.empty(size, dtype=storage.dtype)
    last = offset + sum((extent - 1) * step for extent, step in zip(size, stride))
    if last >= storage.size:
        raise pickle.UnpicklingError("a tensor that reaches past the end of its storage")
    strides = tuple(step * storage.itemsize for step in stride)
    return np.array(as_strided(storage[offset:], shape=size, strides=strides))


def _rebuild_parameter(data: np.ndarray, *_: Any) -> np.ndarray:
    """A `torch.nn.Parameter` is read as its data."""
    return data


def _load_legacy(path: Path) -> Any:
    """Read a pre-1.6 (non-zip) file with torch itself, when it is installed."""
    try:
        import torch
    except ImportError as error:
        raise InputError(
            f"{path}: saved in PyTorch's legacy format, which needs torch to read; "
            "re-save it with a recent torch (torch.save(torch.load(path), path))"
        ) from error
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as error:
        raise InputError(
            f"{path}: damaged PyTorch file ({reason(error)}); save it again with torch.save"
        ) from error
    return _to_numpy(loaded, torch)


def _to_numpy(value: Any, torch: Any) -> Any:
    """Tensors inside containers turned into numpy arrays, as the zip reader returns them."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    if isinstance(value, dict):
        return type(value)((key, _to_numpy(item, torch)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_to_numpy(item, torch) for item in value)
    return value
