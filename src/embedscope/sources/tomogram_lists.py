"""Which tomograms to read: MiLoPYP's tab-separated input list, or a folder of `.rec` / `.mrc` files.

The list has a header `image_name rec_path [tilt_path angle_path]`; paths may be absolute, relative to the list's
folder, relative to `data/` under the current folder (where MiLoPYP keeps its lists) or to the current folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embedscope.errors import InputError, ParameterError

MODES = ("3d", "2d3d")
TOMOGRAM_SUFFIXES = (".rec", ".mrc")
_COLUMNS = {"3d": ("image_name", "rec_path"), "2d3d": ("image_name", "rec_path", "tilt_path", "angle_path")}


@dataclass(frozen=True)
class TomogramEntry:
    """One tomogram to read: its name (the Atlas `tomogram` column) and its files, resolved to existing paths."""

    name: str
    rec_path: Path
    tilt_path: Path | None = None
    angle_path: Path | None = None


def read_tomogram_list(path: Path, mode: str = "3d") -> list[TomogramEntry]:
    """The entries of a MiLoPYP input list, with every file found; 3d mode needs image_name and rec_path only.

    A 2d3d list also serves 3d mode (its tilt columns are then ignored); a 3d list cannot serve 2d3d mode.
    """
    path = Path(path)
    _check_mode(mode)
    if not path.is_file():
        raise InputError(f"{path}: no such list file; name a tab-separated list with header image_name rec_path")
    rows = [(number, line) for number, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]
    if not rows:
        raise InputError(f"{path}: is empty; write a header line image_name rec_path, then one tomogram a line")
    header_number, header = rows[0]
    columns = _fields(header)
    missing = [column for column in _COLUMNS[mode] if column not in columns]
    if mode == "2d3d" and missing and "rec_path" in columns and "image_name" in columns:
        raise InputError(f"{path}: has no {' or '.join(missing)} column, which 2d3d mode needs; add the tilt series "
                         "and .tlt paths, or use 3d mode")
    if missing:
        raise InputError(f"{path}, line {header_number}: header lacks {', '.join(missing)}; it must name "
                         f"{' '.join(_COLUMNS[mode])} (tab-separated)")
    if len(rows) == 1:
        raise InputError(f"{path}: lists no tomograms under its header; add one line per tomogram")
    entries: list[TomogramEntry] = []
    seen: dict[str, int] = {}
    for number, line in rows[1:]:
        fields = _fields(line)
        if len(fields) != len(columns):
            raise InputError(f"{path}, line {number}: has {len(fields)} fields but the header names {len(columns)}; "
                             "separate fields with tabs")
        row = dict(zip(columns, fields))
        name = row["image_name"]
        if name in seen:
            raise InputError(f"{path}, lines {seen[name]} and {number}: both name tomogram {name!r}; give each "
                             "tomogram its own image_name")
        seen[name] = number
        found = {column: _find(row[column], path, number) for column in _COLUMNS[mode][1:]}
        entries.append(TomogramEntry(name, **found))
    return entries


def find_tomograms(list_or_folder: Path, mode: str = "3d") -> list[TomogramEntry]:
    """The tomograms named by a MiLoPYP list, or every `.rec` / `.mrc` file in a folder (name = file stem).

    A folder has no tilt series, so it serves 3d mode only; where `x.rec` and `x.mrc` are both there, as in
    MiLoPYP's sample data, `x.rec` is the tomogram.
    """
    source = Path(list_or_folder)
    _check_mode(mode)
    if not source.is_dir():
        return read_tomogram_list(source, mode)
    if mode == "2d3d":
        raise InputError(f"{source}: is a folder, which gives no tilt series; 2d3d mode needs a list with "
                         "tilt_path and angle_path columns")
    files = sorted(child for child in source.iterdir() if child.suffix.lower() in TOMOGRAM_SUFFIXES
                   and child.is_file())
    if not files:
        raise InputError(f"{source}: holds no .rec or .mrc files; name a folder of tomograms or a list file")
    by_name: dict[str, Path] = {}
    for file in sorted(files, key=lambda file: file.suffix.lower() != ".rec"):  # .rec first: a same-named .mrc
        if file.stem in by_name and file.suffix.lower() != ".mrc":          # beside it is its tilt series
            raise InputError(f"{source}: {by_name[file.stem].name} and {file.name} both give tomogram name "
                             f"{file.stem!r}; keep one or list them with distinct image_name")
        by_name.setdefault(file.stem, file)
    return [TomogramEntry(name, by_name[name]) for name in sorted(by_name)]


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ParameterError(f"mode {mode!r} is not one of {', '.join(MODES)}")


def _fields(line: str) -> list[str]:
    """A line's fields: tab-separated as MiLoPYP writes; split on any whitespace if the line has no tab."""
    return [field.strip() for field in line.split("\t")] if "\t" in line else line.split()


def _find(written: str, list_path: Path, line: int) -> Path:
    """The existing file a list names, trying each place MiLoPYP users keep files; else one line naming all tried."""
    candidate = Path(written).expanduser()
    if candidate.is_absolute():
        tried = [candidate]
    else:
        tried = list(dict.fromkeys([list_path.parent / candidate, Path("data") / candidate, candidate]))
    for place in tried:
        if place.is_file():
            return place
    raise InputError(f"{list_path}, line {line}: file {written!r} not found (tried {', '.join(map(str, tried))}); "
                     "fix the path in the list")
