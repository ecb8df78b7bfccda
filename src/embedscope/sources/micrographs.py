"""Which micrographs to read, their pixels and their metadata: files, folders, globs and prismPYP's lists and CSVs.

A micrograph's name is its file name without the micrograph suffix (".mrc.gz" counts whole), the key that
prismPYP's `.micrographs` lists and `micrograph_metadata.csv` use.
"""

from __future__ import annotations

import glob
import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pyarrow as pa
import pyarrow.csv

from embedscope.errors import InputError, ParameterError
from embedscope.formats.file_checks import known_suffix, reason, require_file
from embedscope.formats.images import open_image

MICROGRAPH_SUFFIXES = (".mrc", ".mrcs", ".mrc.gz", ".mrc.bz2", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".webp")
MRC_SUFFIXES = (".mrc", ".mrcs", ".mrc.gz", ".mrc.bz2")
LIST_SUFFIXES = (".micrographs", ".txt", ".list")
KEY_COLUMNS = ("micrograph_name", "name", "micrograph", "rlnMicrographName", "image_name")
METADATA_CSV = "micrograph_metadata.csv"
PIXEL_SIZE_FILE = "pixel_size.txt"
LUMINANCE = np.array([0.299, 0.587, 0.114])  # ITU-R 601 weights, as Pillow's convert("L")
_COLOUR_FORMATS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".webp")  # in an MRC file, a last axis of 3 is pixels
_BESIDE_LIST = ("mrc", "micrographs")  # where projects keep micrographs: in the list's folder, or beside it


@dataclass(frozen=True)
class MicrographInputs:
    """The micrographs to read, in order: unique names and their files, and the listed names with no file."""

    names: list[str]
    paths: list[Path]
    missing: list[str]


@dataclass(frozen=True)
class MicrographMetadata:
    """Metadata rows in the order of the names asked for, null where the CSV has none; and what did not match.

    `table` starts with micrograph_name, then the CSV's other columns: numbers as int64 / float64, others string.
    """

    table: pa.Table
    missing: list[str]
    unused: int
    pixel_size: float | None


def micrograph_name(path: str | Path) -> str:
    """A micrograph's name: the file name without folders and without its micrograph suffix ("mics/a.mrc" -> "a")."""
    name = Path(path).name
    suffix = known_suffix(name, MICROGRAPH_SUFFIXES)
    return name[: -len(suffix)] if suffix else name


def find_micrographs(inputs: Sequence[str | Path], *, search: Sequence[Path] = ()) -> MicrographInputs:
    """The micrographs named by files, folders (natural order), globs and list files, each input in turn.

    A list keeps its order; a name without suffix is looked up with each micrograph suffix in the list's folder,
    then in `search`, then in mrc/ and micrographs/ in and beside the list's folder (a prismPYP metadata folder
    sits beside the project's mrc/), and names found nowhere are `missing`.
    Two files giving one name are refused, as is an input that yields no micrograph at all.
    """
    if isinstance(inputs, str | Path):
        inputs = [inputs]
    if not inputs:
        raise InputError("no micrographs given; name files, folders, globs or a list of micrographs")
    chosen: dict[str, Path] = {}
    missing: list[str] = []
    for given in inputs:
        paths, absent = _expand(Path(given).expanduser(), [Path(folder).expanduser() for folder in search])
        for path in paths:
            name = micrograph_name(path)
            if name in chosen:
                raise InputError(f"micrograph name {name!r} is given by both {chosen[name]} and {path}; "
                                 "rename one or leave one out")
            chosen[name] = path
        missing += absent
    return MicrographInputs(list(chosen), list(chosen.values()), missing)


def read_micrograph(path: Path) -> np.ndarray:
    """The micrograph in `path` as (h, w) float32: a movie (frames of a TIFF or MRC stack) summed over its frames,
    colour as its luminance.

    Frames are added one at a time in float32, so a memory-mapped movie is never held whole as floats.
    """
    path = Path(path)
    image = open_image(path)
    if image.ndim == 2:
        return np.array(image, dtype=np.float32)
    if image.shape[-1] == 3 and known_suffix(path, _COLOUR_FORMATS):
        return (image @ LUMINANCE).astype(np.float32)
    total = np.array(image[0], dtype=np.float32)
    for frame in image[1:]:
        total += frame
    return total


def read_name_list(path: Path) -> list[str]:
    """The micrograph names of a list file (prismPYP's `.micrographs`: one name a line), in order.

    Folders and micrograph suffixes are stripped; blank lines and lines starting with '#' are skipped.
    """
    return [micrograph_name(entry) for entry in _list_entries(Path(path))]


def read_pixel_size(folder_or_file: Path) -> float | None:
    """The pixel size in Å from a folder's pixel_size.txt (or that file itself); None when there is none."""
    source = Path(folder_or_file)
    file = source / PIXEL_SIZE_FILE if source.is_dir() else source
    if not file.is_file():
        return None
    text = file.read_text(errors="replace").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{file}: holds {text[:40]!r}, not a pixel size; write one positive number (Å per pixel)")
    return value


def header_pixel_size(path: Path) -> float | None:
    """The pixel size in Å an MRC file's header records (its voxel size along x); None when unset or not an MRC.

    EPU, SerialEM and motion-correction programs fill it in, so users without a pixel_size.txt still get a spectrum
    cut to the right resolution band.
    """
    if not any(str(path).lower().endswith(suffix) for suffix in MRC_SUFFIXES):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, header_only=True, permissive=True) as mrc:
                size = float(mrc.voxel_size.x)
    except (OSError, ValueError, EOFError):
        return None
    return round(size, 4) if math.isfinite(size) and size > 0 else None  # float32 in the header: 1.34 not 1.3400000333


def read_metadata(names: Sequence[str], source: Path | None, *, on: str | None = None) -> MicrographMetadata:
    """The metadata of each name from prismPYP's metadata folder (micrograph_metadata.csv, pixel_size.txt) or a CSV.

    Rows are joined on column `on`, else the first of KEY_COLUMNS the CSV has, after stripping folders and
    micrograph suffixes on both sides ("mics/a.mrc" matches "a"); the names asked for replace the key column (and
    any other micrograph_name column). Without a source, the table holds the names only.
    """
    names = list(names)
    if source is None:
        return MicrographMetadata(pa.table({"micrograph_name": pa.array(names, pa.string())}), [], 0, None)
    source = Path(source)
    csv_path = _metadata_csv(source)
    table = _read_csv(csv_path, on)
    key = _key_column(table, csv_path, on)
    rows: dict[str, int] = {}
    for row, value in enumerate(table[key].to_pylist()):
        if value is None:
            continue
        name = micrograph_name(value)
        if name in rows:
            raise InputError(f"{csv_path}: rows {rows[name] + 2} and {row + 2} both describe micrograph {name!r}; "
                             "keep one row per micrograph")
        rows[name] = row
    found = [rows.get(micrograph_name(name)) for name in names]
    others = table.drop_columns([column for column in table.column_names if column in (key, "micrograph_name")])
    joined = others.take(pa.array(found, pa.int64())).add_column(0, "micrograph_name", pa.array(names, pa.string()))
    missing = [name for name, row in zip(names, found) if row is None]
    unused = table.num_rows - len({row for row in found if row is not None})
    return MicrographMetadata(joined, missing, unused, read_pixel_size(source if source.is_dir() else source.parent))


def _expand(given: Path, search: list[Path]) -> tuple[list[Path], list[str]]:
    """The micrograph files one input names, and the names a list gives that were found nowhere."""
    if given.is_dir():
        return _nonempty(given, _micrograph_files(given.iterdir())), []
    if given.is_file():
        if known_suffix(given, MICROGRAPH_SUFFIXES):
            return [given], []
        if known_suffix(given, LIST_SUFFIXES):
            return _resolve_list(given, search)
        raise InputError(f"{given}: is neither a micrograph ({', '.join(MICROGRAPH_SUFFIXES)}) nor a list of them "
                         f"({', '.join(LIST_SUFFIXES)}); name micrographs, a folder, a glob or a list")
    if any(character in str(given) for character in "*?["):
        return _nonempty(given, _micrograph_files(map(Path, glob.glob(str(given), recursive=True)))), []
    raise InputError(f"{given}: no such file or folder; name micrographs, a folder, a glob or a list of names")


def _nonempty(given: Path, paths: list[Path]) -> list[Path]:
    """The paths found for an input, refusing none at all in one line."""
    if not paths:
        raise InputError(f"{given}: no micrograph files ({', '.join(MICROGRAPH_SUFFIXES)}) found; name a folder, "
                         "glob or list that holds some")
    return paths


def _micrograph_files(candidates: Iterable[Path]) -> list[Path]:
    """The files among `candidates` with a micrograph suffix, in natural order ("a2" before "a10")."""
    files = [path for path in candidates if known_suffix(path, MICROGRAPH_SUFFIXES) and path.is_file()]
    return sorted(files, key=lambda path: (_natural_key(path.name), path.name))


def _natural_key(text: str) -> list[int | str]:
    """Digit runs compared as numbers, the rest without case: "mic_2" sorts before "mic_10"."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _resolve_list(list_path: Path, search: list[Path]) -> tuple[list[Path], list[str]]:
    """The files a list names, in its order, looked up in the list's folder, `search`, then mrc/ and micrographs/
    in and beside the list's folder."""
    entries = _list_entries(list_path)
    if not entries:
        raise InputError(f"{list_path}: lists no micrographs; write one name or path a line")
    beside = [place / folder for place in (list_path.parent, list_path.parent.parent) for folder in _BESIDE_LIST]
    roots = list(dict.fromkeys([list_path.parent, *search, *beside]))
    listings: dict[Path, dict[tuple[str, str], str]] = {}
    paths, missing = [], []
    for entry in entries:
        found = _look_up(Path(entry).expanduser(), roots, listings)
        if found is None:
            missing.append(micrograph_name(entry))
        else:
            paths.append(found)
    if not paths:
        tried = ", ".join(str(root) for root in roots)
        raise InputError(f"{list_path}: no micrograph files ({', '.join(MICROGRAPH_SUFFIXES)}) found for its "
                         f"{len(entries):,} names (looked in {tried}); pass the micrograph folder to search")
    return paths, missing


def _look_up(written: Path, roots: list[Path], listings: dict[Path, dict[tuple[str, str], str]]) -> Path | None:
    """The first file a list entry names: its own suffix, or each micrograph suffix in turn, in each root in turn.

    Each folder is listed once, so ten thousand names cost ten thousand dictionary lookups, not a million stats.
    """
    suffix = known_suffix(written, MICROGRAPH_SUFFIXES)
    wanted = [(micrograph_name(written), suffix)] if suffix else [(written.name, known) for known in
                                                                  MICROGRAPH_SUFFIXES]
    folders = [written.parent] if written.is_absolute() else [root / written.parent for root in roots]
    for folder in folders:
        if folder not in listings:
            listings[folder] = _listing(folder)
        for key in wanted:
            if key in listings[folder]:
                return folder / listings[folder][key]
    return None


def _listing(folder: Path) -> dict[tuple[str, str], str]:
    """A folder's micrograph files by (name, lower-case suffix); empty for a folder that is not there."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {}
    files = {}
    for entry in entries:
        suffix = known_suffix(entry.name, MICROGRAPH_SUFFIXES)
        if suffix and entry.is_file():
            files.setdefault((micrograph_name(entry.name), suffix), entry.name)
    return files


def _list_entries(path: Path) -> list[str]:
    """A list file's entries: its stripped lines, without blank lines and '#' comments."""
    require_file(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a byte-order mark is not part of a name
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: is not a text list ({error.reason}); write one micrograph name a line") from error
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _metadata_csv(source: Path) -> Path:
    """The CSV a metadata source names: a folder's micrograph_metadata.csv, or the file itself."""
    if not source.is_dir():
        require_file(source)
        return source
    if (source / METADATA_CSV).is_file():
        return source / METADATA_CSV
    raise InputError(f"{source}: has no {METADATA_CSV}; name prismPYP's metadata folder or a CSV file")


def _read_csv(path: Path, on: str | None) -> pa.Table:
    """A metadata CSV with its possible key columns as text ("001" stays "001"), numbers as int64 / float64 and
    everything else as strings."""
    keys = {column: pa.string() for column in (*KEY_COLUMNS, *([on] if on else []))}
    try:
        table = pyarrow.csv.read_csv(path, convert_options=pyarrow.csv.ConvertOptions(column_types=keys))
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{path}: cannot be read as a CSV table ({reason(error)}); check the file") from error
    for index, field in enumerate(table.schema):
        if pa.types.is_integer(field.type):
            kind = pa.int64()
        elif pa.types.is_floating(field.type):
            kind = pa.float64()
        else:
            kind = pa.string()
        if field.type != kind:
            table = table.set_column(index, field.name, table.column(index).cast(kind))
    return table


def _key_column(table: pa.Table, path: Path, on: str | None) -> str:
    """The column to join on: `on`, else the first of KEY_COLUMNS present; else one line naming the columns."""
    columns = ", ".join(table.column_names)
    if on is not None:
        if on not in table.column_names:
            raise ParameterError(f"{path}: has no column {on!r} to join on; its columns are {columns}")
        return on
    for key in KEY_COLUMNS:
        if key in table.column_names:
            return key
    raise ParameterError(f"{path}: has none of the name columns {', '.join(KEY_COLUMNS)}; its columns are "
                         f"{columns}; name the one holding micrograph names with `on`")
