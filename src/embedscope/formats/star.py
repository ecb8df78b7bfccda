"""RELION STAR particle files: picked items as a `data_optics` block and a `data_particles` loop, the layout
RELION 3.1+, RELION 4/5 and Warp read.

A small writer of our own (no STAR library): names are quoted the way RELION quotes them, and
names RELION's reader would not give back whole are refused rather than silently changed.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embedscope.errors import InputError, ParameterError
from embedscope.formats.atomic_files import atomic_output
from embedscope.formats.file_checks import require_file

BLOCK = "particles"
OPTICS_BLOCK = "optics"
TOMOGRAM_LABELS = {"tomogram": "rlnTomoName", "x": "rlnCoordinateX", "y": "rlnCoordinateY", "z": "rlnCoordinateZ"}
MICROGRAPH_LABELS = {"micrograph": "rlnMicrographName", "x": "rlnCoordinateX", "y": "rlnCoordinateY"}
CLASS_LABEL = ("cluster", "rlnClassNumber")
NAME_COLUMNS = ("tomogram", "micrograph")
OPTICS_GROUP = "rlnOpticsGroup"
# Bare tokens that a STAR reader takes for syntax: comments, labels, quoted strings, reserved words.
_NEEDS_QUOTES = re.compile(r"^([_#;'\"$]|(data|loop|save|global|stop)_)", re.IGNORECASE)
# RELION splits on spaces and tabs only; a quoted token ends at its quote followed by either.
_TOKEN = re.compile(r"\"(.*?)\"(?=[ \t]|$)|'(.*?)'(?=[ \t]|$)|([^ \t]+)")


def particle_columns(available: Iterable[str]) -> list[str]:
    """The columns a STAR file is written from: tomogram, x, y, z, else micrograph, x, y.

    Raises a one-line error naming what is missing for either kind of item.
    """
    available = set(available)
    for labels in (TOMOGRAM_LABELS, MICROGRAPH_LABELS):
        if set(labels) <= available:
            return list(labels)
    lacking_3d = [column for column in TOMOGRAM_LABELS if column not in available]
    lacking_2d = [column for column in MICROGRAPH_LABELS if column not in available]
    raise ParameterError(f"a STAR file needs columns tomogram, x, y, z or micrograph, x, y; missing "
                         f"{', '.join(lacking_3d)} (tomograms) or {', '.join(lacking_2d)} (micrographs)")


def write_particles_star(path: str | os.PathLike[str], table: pa.Table, pixel_size: float | None = None) -> None:
    """Write `table` as RELION 3.1+ does: a `data_optics` block (one group) and a `data_particles` loop.

    Every row carries _rlnMicrographName (the tomogram or micrograph, as Warp and RELION 3.1 expect) and
    _rlnOpticsGroup 1; tomogram items add _rlnTomoName for RELION 4/5 and the optics group says
    _rlnImageDimensionality 3. A `cluster` column becomes _rlnClassNumber = cluster + 1 (RELION counts
    classes from 1; noise, -1, becomes 0). Coordinates are written as stored, in pixels of the tomogram or
    micrograph they were picked in; `pixel_size` (Å per pixel), when known, becomes _rlnImagePixelSize.
    Names with single spaces are double-quoted as RELION does.
    """
    columns = particle_columns(table.column_names)
    names = name_tokens(table, columns[0])
    particles = {"rlnMicrographName": names, OPTICS_GROUP: ["1"] * len(names)}
    if columns[0] == "tomogram":
        particles[TOMOGRAM_LABELS["tomogram"]] = names
    labels = {**TOMOGRAM_LABELS, **MICROGRAPH_LABELS}
    particles.update({labels[column]: number_tokens(table, column) for column in columns[1:]})
    if CLASS_LABEL[0] in table.column_names:
        particles[CLASS_LABEL[1]] = _class_tokens(table)
    write_star(path, {OPTICS_BLOCK: _optics(columns[0] == "tomogram", pixel_size), BLOCK: particles})


def write_star(path: str | os.PathLike[str], blocks: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
    """Write STAR loops atomically: for each block name, its labels (without "_") and their tokens.

    Tokens are written as given, so make them with `name_tokens` and `number_tokens`.
    """
    text = "\n".join(_loop_text(name, loop) for name, loop in blocks.items())
    with atomic_output(Path(path)) as temporary:
        temporary.write_bytes(text.encode("utf-8"))


def read_particles_star(path: str | os.PathLike[str]) -> pa.Table:
    """Read the `data_particles` loop back into our columns (tomogram/micrograph, x, y[, z], cluster).

    Reads our RELION 3.1+ files and our older single-block ones. Coordinates come back as int32 when every
    value is an integer, else float64; _rlnOpticsGroup and a _rlnMicrographName that repeats _rlnTomoName
    are dropped; labels we do not know keep their name (without the leading underscore) as string columns.
    """
    path = Path(path)
    require_file(path)
    lines = iter(path.read_text(encoding="utf-8").split("\n"))
    for line in lines:
        if line.strip(" \t\r") == f"data_{BLOCK}":
            break
    else:
        raise InputError(f"{path}: no data_{BLOCK} block; give a RELION particle STAR file")
    labels, rows = _loop(lines, path)
    values = {label: [row[position] for row in rows] for position, label in enumerate(labels)}
    values.pop(OPTICS_GROUP, None)
    if TOMOGRAM_LABELS["tomogram"] in values:
        if values.get(MICROGRAPH_LABELS["micrograph"]) == values[TOMOGRAM_LABELS["tomogram"]]:
            del values[MICROGRAPH_LABELS["micrograph"]]
    elif TOMOGRAM_LABELS["z"] in values and MICROGRAPH_LABELS["micrograph"] in values:
        values[TOMOGRAM_LABELS["tomogram"]] = values.pop(MICROGRAPH_LABELS["micrograph"])
    known = {label: column for column, label in {**TOMOGRAM_LABELS, **MICROGRAPH_LABELS}.items()}
    known[CLASS_LABEL[1]] = CLASS_LABEL[0]
    order = [TOMOGRAM_LABELS["tomogram"], MICROGRAPH_LABELS["micrograph"], *list(known)[1:4], CLASS_LABEL[1]]
    columns = {}
    for label in sorted(values, key=lambda label: order.index(label) if label in order else len(order)):
        column = known.get(label, label)
        if column in NAME_COLUMNS or column not in known.values():
            columns[column] = pa.array(values[label], pa.string())
        elif column == CLASS_LABEL[0]:
            columns[column] = pa.array(np.asarray(values[label], dtype=np.int64) - 1, pa.int32())
        else:
            columns[column] = _parsed_numbers(values[label], label, path)
    return pa.table(columns)


def name_tokens(table: pa.Table, column: str) -> list[str]:
    """The names in `column` as STAR tokens that RELION's reader gives back unchanged, or a one-line refusal."""
    values = table.column(column)
    if values.null_count:
        raise ParameterError(f"{values.null_count} item(s) have no {column} name; a STAR row needs one")
    return [_name_token(str(name)) for name in values.to_pylist()]


def number_tokens(table: pa.Table, column: str) -> list[str]:
    """The numbers in `column` as STAR tokens, each the shortest text that reads back as the same number."""
    values = table.column(column)
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise ParameterError(f"column {column!r} must hold numbers to be a STAR coordinate; it holds {values.type}")
    if values.null_count:
        raise ParameterError(f"{values.null_count} item(s) have no {column}; a STAR row needs every coordinate")
    if pa.types.is_floating(values.type) and not pc.all(pc.is_finite(values)).as_py():
        raise ParameterError(f"column {column!r} has NaN or infinite values; a STAR coordinate must be finite")
    return pc.cast(values, pa.string()).to_pylist()


def _optics(tomograms: bool, pixel_size: float | None) -> dict[str, list[str]]:
    optics = {OPTICS_GROUP: ["1"], "rlnOpticsGroupName": ["opticsGroup1"]}
    if tomograms:
        optics["rlnImageDimensionality"] = ["3"]
    if pixel_size is not None:
        if isinstance(pixel_size, bool) or not isinstance(pixel_size, (int, float)) \
                or not math.isfinite(pixel_size) or pixel_size <= 0:
            raise ParameterError(f"pixel size {pixel_size!r} is not a positive number of Å per pixel; give one")
        optics["rlnImagePixelSize"] = [repr(float(pixel_size))]
    return optics


def _loop_text(name: str, loop: Mapping[str, Sequence[str]]) -> str:
    lines = [f"data_{name}\n", "\n", "loop_\n"]
    lines += [f"_{label} #{position}\n" for position, label in enumerate(loop, start=1)]
    lines += [" ".join(row) + "\n" for row in zip(*loop.values())]
    return "".join(lines) + "\n"


def _loop(lines: Iterator[str], path: Path) -> tuple[list[str], list[list[str]]]:
    labels: list[str] = []
    rows: list[list[str]] = []
    for line in lines:
        text = line.strip(" \t\r")
        if not labels and (not text or text == "loop_"):
            continue
        if text.startswith("_") and not rows:
            labels.append(text[1:].split()[0])
            continue
        if not text or text.startswith("data_"):
            break
        row = _tokens(text)
        if len(row) != len(labels):
            raise InputError(f"{path}: a row has {len(row)} values for {len(labels)} labels: {text[:80]!r}")
        rows.append(row)
    if not labels:
        raise InputError(f"{path}: the data_{BLOCK} block has no loop_ of labels")
    return labels, rows


def _tokens(text: str) -> list[str]:
    tokens = []
    for match in _TOKEN.finditer(text):
        double, single, bare = match.groups()
        if bare is not None and bare.startswith("#"):
            break
        tokens.append(next(group for group in (double, single, bare) if group is not None))
    return tokens


def _parsed_numbers(values: list[str], label: str, path: Path) -> pa.Array:
    try:
        numbers = np.asarray(values, dtype=np.float64)
    except ValueError as error:
        raise InputError(f"{path}: _{label} holds values that are not numbers") from error
    if np.isfinite(numbers).all() and (numbers == np.round(numbers)).all() and np.abs(numbers).max(initial=0) < 2**31:
        return pa.array(numbers.astype(np.int32))
    return pa.array(numbers)


def _name_token(name: str) -> str:
    """`name` as one STAR token that RELION's reader gives back unchanged, or a one-line refusal."""
    problem = None
    if not name:
        problem = "it is empty"
    elif any(ord(character) < 32 or ord(character) == 127 for character in name):
        problem = "it has a tab, line break or control character"
    elif '"' in name:
        problem = "it has a double quote"
    elif name != name.strip(" ") or "  " in name:
        problem = "RELION drops leading or trailing spaces and merges runs of spaces"
    if problem:
        raise ParameterError(f"name {name!r} cannot be written to a STAR file ({problem}); rename it")
    return f'"{name}"' if " " in name or _NEEDS_QUOTES.match(name) else name


def _class_tokens(table: pa.Table) -> list[str]:
    values = table.column(CLASS_LABEL[0])
    if not pa.types.is_integer(values.type) or values.null_count:
        raise ParameterError("column 'cluster' must hold an integer for every item to be a RELION class number")
    return pc.cast(pc.add(pc.cast(values, pa.int64()), 1), pa.string()).to_pylist()


