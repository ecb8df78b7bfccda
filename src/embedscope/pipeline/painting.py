"""Paint each item's colour back into its tomogram: grey volumes, colour marks, blends and label maps.

`paint_atlas` joins items to tomograms by name and colours by a layer or column; `paint_npz` is MiLoPYP's
`visualize_3dhm.py`, which joins colours to points by row order, so it checks the counts first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from embedscope.atlas import Atlas, as_atlas
from embedscope.errors import AtlasError, InputError, ParameterError
from embedscope.formats.atomic_files import atomic_output
from embedscope.progress import SILENT, Reporter
from embedscope.sources import TomogramEntry, find_tomograms, read_tomogram

FORMATS = ("npy", "mrc")
NEEDED_COLUMNS = ("tomogram", "x", "y", "z")


@dataclass
class PaintReport:
    """The files written per tomogram, and tomograms that had no points."""

    files: list[Path] = field(default_factory=list)
    painted: dict[str, int] = field(default_factory=dict)
    without_points: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Marks:
    """How points are drawn: MiLoPYP's shrinking discs over +-depth slices, or balls."""

    radius: int = 12
    mark: str = "disc"
    depth: int = 2


def paint_atlas(
    atlas: Atlas | str | os.PathLike[str],
    tomograms: Path,
    color_by: str,
    output: Path,
    *,
    fmt: str = "npy",
    marks: Marks | None = None,
    blend: float | None = None,
    order: str = "auto",
    voxel_size: float = 1.0,
    reporter: Reporter = SILENT,
) -> PaintReport:
    """Per tomogram: `<name>_grey`, `<name>_painted`, with `blend` a `<name>_blend`, and for categories a
    `<name>_labels` volume (category + 1, 0 = unpainted), as .npy or .mrc files in `output`."""
    atlas = as_atlas(atlas)
    started = time.perf_counter()
    _check_options(fmt, blend)
    table = _points(atlas)
    colors, codes = item_colors(atlas, color_by)
    entries = {entry.name: entry for entry in find_tomograms(tomograms)}
    names = np.asarray(table.column("tomogram").to_pylist(), dtype=object)
    missing = sorted(set(names) - set(entries))
    if missing:
        raise InputError(f"no tomogram file for {', '.join(missing[:5])} in {tomograms}; name the list or folder "
                         "that holds the tomograms these items came from")
    coords = np.column_stack([table.column(axis).to_numpy() for axis in "xyz"]).astype(np.int64)
    output.mkdir(parents=True, exist_ok=True)
    report = PaintReport()
    with reporter.phase("painting tomograms", len(entries)) as advance:
        for name, entry in entries.items():
            rows = np.flatnonzero(names == name)
            if not len(rows):
                report.without_points.append(name)
            else:
                stems = {"grey": f"{name}_grey", "painted": f"{name}_painted", "blend": f"{name}_blend",
                         "labels": f"{name}_labels"}
                report.files += _paint_one(entry, coords[rows], colors[rows], None if codes is None else codes[rows],
                                           output, stems, fmt, marks or Marks(), blend, order, voxel_size)
                report.painted[name] = len(rows)
            advance(1)
    report.seconds = time.perf_counter() - started
    return report


def paint_npz(
    npz: Path, colors_file: Path, output: Path, rec_dir: Path, *, marks: Marks | None = None, order: str = "auto",
    reporter: Reporter = SILENT,
) -> PaintReport:
    """MiLoPYP's 3D heat maps: `<name>_rec3d.npy` and `<name>_hm3d_simsiam.npy` (Z, Y, X, 3) uint8 per tomogram."""
    from embedscope.formats.milopyp import read_output_info

    started = time.perf_counter()
    info = read_output_info(npz)
    colors = _colors_file(colors_file, len(info))
    names = np.asarray(info.names, dtype=object)
    entries = {entry.name: entry for entry in find_tomograms(rec_dir)}
    missing = sorted(set(names) - set(entries))
    if missing:
        raise InputError(f"no {missing[0]}.rec (or .mrc) in {rec_dir}; --rec_dir must hold the tomograms of {npz}")
    output.mkdir(parents=True, exist_ok=True)
    report = PaintReport()
    present = list(dict.fromkeys(names))
    with reporter.phase("painting tomograms", len(present)) as advance:
        for name in present:
            rows = np.flatnonzero(names == name)
            stems = {"grey": f"{name}_rec3d", "painted": f"{name}_hm3d_simsiam"}
            report.files += _paint_one(entries[name], info.coords[rows].astype(np.int64), colors[rows], None, output,
                                       stems, "npy", marks or Marks(), None, order, 1.0)
            report.painted[name] = len(rows)
            advance(1)
    report.seconds = time.perf_counter() - started
    return report


def item_colors(atlas: Atlas, color_by: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, 3) uint8 colours, and category codes when the colouring is categorical (else None).

    A layer of r, g, b is used as is; a map layer (x, y) gets MiLoPYP's colours of map position; a
    clustering layer or an item column gets the figures' palette, numbers the figures' colour map.
    """
    from embedscope.figures import category_colors, position_colors
    from embedscope.figures.palette import MISSING_COLOR
    from embedscope.figures.scatter import color_by as coloring_of

    if color_by in atlas.layers():
        table = atlas.layer(color_by)
        columns = table.column_names
        if {"r", "g", "b"} <= set(columns):
            return np.column_stack([table.column(c).to_numpy() for c in "rgb"]).astype(np.uint8), None
        if "cluster" not in columns and {"x", "y"} <= set(columns):
            xy = np.column_stack([table.column("x").to_numpy(), table.column("y").to_numpy()])
            return position_colors(xy), None
        values = _values(table.column("cluster" if "cluster" in columns else columns[-1]))
    elif color_by in atlas.schema().names and color_by not in ("vector", "row"):
        values = _values(atlas.table([color_by]).column(color_by))
    else:
        raise AtlasError(f"no layer or column {color_by!r} in {atlas.path} to colour by; layers: "
                         f"{', '.join(atlas.layers()) or 'none'}")
    coloring = coloring_of(values, len(values))
    if coloring.codes is None:
        return np.rint(coloring.rgb() * 255).astype(np.uint8), None
    colors = category_colors(len(coloring.names))[np.maximum(coloring.codes, 0)]
    colors[coloring.codes < 0] = MISSING_COLOR
    return colors, coloring.codes


def _values(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        return column.to_numpy()
    return np.asarray(column.to_pylist(), dtype=object)


def _check_options(fmt: str, blend: float | None) -> None:
    if fmt not in FORMATS:
        raise ParameterError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if blend is not None and not 0 <= blend <= 1:
        raise ParameterError(f"--blend is the weight of the grey tomogram, between 0 and 1; got {blend}")


def _points(atlas: Atlas) -> pa.Table:
    names = atlas.schema().names
    missing = [column for column in NEEDED_COLUMNS if column not in names]
    if missing:
        raise AtlasError(f"{atlas.path} has no {', '.join(missing)} column; painting needs items with a tomogram "
                         "name and x, y, z (made by `embedscope embed tomograms` or `milopyp test`)")
    return atlas.table(list(NEEDED_COLUMNS))


def _colors_file(path: Path, count: int) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the all_colors.npy that `milopyp plot2d` wrote")
    try:
        colors = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(f"{path}: not a readable .npy file ({error}); write it again with `milopyp plot2d`") \
            from error
    if colors.ndim != 2 or colors.shape[1] < 3 or len(colors) != count:
        raise InputError(f"{path}: holds colours of shape {colors.shape} but the npz has {count} points; use the "
                         "all_colors.npy written from this same npz")
    return np.clip(np.rint(colors[:, :3]), 0, 255).astype(np.uint8)


def _paint_one(entry: TomogramEntry, coords: np.ndarray, colors: np.ndarray, codes: np.ndarray | None,
               output: Path, stems: dict[str, str], fmt: str, marks: Marks, blend: float | None, order: str,
               voxel_size: float) -> list[Path]:
    from embedscope.figures.volumes import blend as blended
    from embedscope.figures.volumes import grey_rgb, paint, write_volume_mrc

    volume = read_tomogram(entry.rec_path, order)
    bounds = np.array(volume.shape[::-1])
    outside = (coords < 0).any(axis=1) | (coords >= bounds).any(axis=1)
    if outside.any():
        x, y, z = coords[np.flatnonzero(outside)[0]]
        raise InputError(f"{entry.name}: {np.count_nonzero(outside)} points lie outside the tomogram (x-y-z "
                         f"{' x '.join(map(str, bounds))}), e.g. ({x}, {y}, {z}); were they picked on a binned "
                         "volume? check --order and the binning")
    grey = grey_rgb(volume)
    del volume
    painted = paint(grey.shape[:3], coords, colors, marks.radius, marks.mark, marks.depth)
    volumes: dict[str, np.ndarray] = {"grey": grey, "painted": painted}
    if blend is not None:
        volumes["blend"] = blended(grey, painted, blend)
    if codes is not None:
        volumes["labels"] = _labels(grey.shape[:3], coords, codes, marks)
    files = []
    for key, array in volumes.items():
        if key in stems:
            files += list(_write(array, output / stems[key], fmt, voxel_size, write_volume_mrc))
    return files


def _labels(shape: tuple[int, ...], coords: np.ndarray, codes: np.ndarray, marks: Marks) -> np.ndarray:
    """A (Z, Y, X) uint16 map of category + 1 under each mark (0 elsewhere), for ChimeraX and napari labels.

    The label is painted as two bytes of a colour (low, high) and read back, so marks match the colour volume.
    """
    from embedscope.figures.volumes import paint

    label = (codes.astype(np.int64) + 1).clip(0, 65535)
    as_bytes = np.column_stack([label & 255, label >> 8, np.zeros_like(label)]).astype(np.uint8)
    painted = paint(shape, coords, as_bytes, marks.radius, marks.mark, marks.depth)
    return painted[..., 0].astype(np.uint16) | (painted[..., 1].astype(np.uint16) << 8)


def _write(array: np.ndarray, stem: Path, fmt: str, voxel_size: float, write_mrc) -> Iterator[Path]:
    if fmt == "mrc":
        yield from write_mrc(stem.with_name(f"{stem.name}.mrc"), array, voxel_size)
        return
    path = stem.with_name(f"{stem.name}.npy")
    with atomic_output(path) as temporary, open(temporary, "wb") as file:
        np.save(file, array)
    yield path
