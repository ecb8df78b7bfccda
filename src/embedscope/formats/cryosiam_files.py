"""CryoSiam's subtomogram-embedding files, written so CryoSiam's own scripts (h5py, pandas, starfile) read
them, and particle centres read from RELION 3.0/3.1+/5 and Warp STAR files or a CSV list.

Users keep their CryoSiam runs and scripts: `<tomo>_embeds.h5`, `_instance_labels.h5`, `_instance_regions.csv`,
the clustering `.h5` files and the clustered CSV and STAR have CryoSiam's datasets, columns and types.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import starfile

from embedscope.errors import InputError, ParameterError, VectorError
from embedscope.formats.atomic_files import atomic_output
from embedscope.formats.file_checks import damaged, known_suffix, require_file
from embedscope.formats.star import name_tokens, write_star

BBOX = tuple(f"bbox-{axis}" for axis in range(6))  # z0, y0, x0, z1, y1, x1 (end exclusive)
CENTROID = ("centroid-0", "centroid-1", "centroid-2")  # z, y, x
REGION_COLUMNS = ("label", "area", *BBOX, *CENTROID, "hull_area")
INTEGER_COLUMNS = ("label", *BBOX)  # CryoSiam's reader parses these with int()
STAR_NAMES = {"label": "rlnLabel", "area": "rlnArea", **{column: f"rlnBbox-{column[-1]}" for column in BBOX},
              "centroid-0": "rlnCoordinateZ", "centroid-1": "rlnCoordinateY", "centroid-2": "rlnCoordinateX",
              "hull_area": "rlnHullArea", "semantic_class": "rlnClass"}
TOMOGRAM_SUFFIXES = (".mrc", ".rec", ".tomostar", ".st", ".mrcs")
PIXEL_LABELS = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
CENTRED_LABELS = ("rlnCenteredCoordinateXAngst", "rlnCenteredCoordinateYAngst", "rlnCenteredCoordinateZAngst")
NAME_LABELS = ("rlnTomoName", "rlnMicrographName")
PIXEL_SIZE_LABELS = ("rlnTomoTiltSeriesPixelSize", "rlnImagePixelSize")
CENTRED = "centred_angstrom"  # marks centres still in Å from the tomogram's centre (RELION 5)
SHOWN_COLUMNS = 12  # columns named in an error


# ----------------------------------------------------------------------------- HDF5 outputs
def write_embeds_h5(path: str | os.PathLike[str], vectors: np.ndarray) -> None:
    """Write `<tomo>_embeds.h5`: dataset `embeddings` stored transposed, (dim, N) float32, as CryoSiam does.

    CryoSiam's clustering reads it back with `f['embeddings'][()].T`.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise VectorError(f"embeddings must be an (N, dim) array of numbers; got shape {vectors.shape}")
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise VectorError(f"{bad.size} embedding(s) have NaN or infinite values (rows {bad[:5].tolist()}); "
                          "check the model and its input")
    _write_h5(path, embeddings=np.ascontiguousarray(vectors.T, dtype=np.float32))


def read_embeds_h5(path: str | os.PathLike[str]) -> np.ndarray:
    """The (N, dim) embeddings of a `<tomo>_embeds.h5`, undoing CryoSiam's (dim, N) storage."""
    return np.ascontiguousarray(_read_h5(Path(path), "embeddings", dimensions=2).T, dtype=np.float32)


def write_instance_labels_h5(path: str | os.PathLike[str], labels: np.ndarray) -> None:
    """Write `<tomo>_instance_labels.h5`: dataset `labels`, the instance label of each embedding, int64."""
    _write_h5(path, labels=_integers(labels, "labels"))


def read_instance_labels_h5(path: str | os.PathLike[str]) -> np.ndarray:
    """The instance label of each embedding from a `<tomo>_instance_labels.h5`, int64."""
    return _read_h5(Path(path), "labels", dimensions=1).astype(np.int64)


def write_cluster_centres_h5(
    path: str | os.PathLike[str], clusters: np.ndarray, centres: np.ndarray | None = None
) -> None:
    """Write `kmeans_clusters.h5` (`clusters`, `centers`) or, without centres, `spectral_clusters.h5` (`clusters`)."""
    arrays = {"clusters": _integers(clusters, "clusters")}
    if centres is not None:
        centres = np.asarray(centres, dtype=np.float64)
        if centres.ndim != 2:
            raise ParameterError(f"cluster centres must be a (k, dim) array; got shape {centres.shape}")
        arrays["centers"] = centres
    _write_h5(path, **arrays)


def write_predictions_h5(path: str | os.PathLike[str], predictions: np.ndarray) -> None:
    """Write `<tomo>_clusters_<method>.h5`: dataset `predictions`, the cluster of each region, int64."""
    _write_h5(path, predictions=_integers(predictions, "predictions"))


def _write_h5(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    with atomic_output(Path(path)) as temporary, h5py.File(temporary, "w") as file:
        for name, array in arrays.items():
            file.create_dataset(name, data=array)


def _read_h5(path: Path, dataset: str, dimensions: int) -> np.ndarray:
    require_file(path)
    try:
        with h5py.File(path, "r") as file:
            if dataset not in file:
                found = ", ".join(file.keys()) or "none"
                raise InputError(f"{path}: no dataset '{dataset}' (datasets: {found}); give a CryoSiam output file")
            array = file[dataset][()]
    except OSError as error:
        raise damaged(path, "HDF5", error) from error
    if array.ndim != dimensions:
        raise InputError(f"{path}: dataset '{dataset}' has {array.ndim} dimensions, not {dimensions}")
    return array


def _integers(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1 or not (np.issubdtype(values.dtype, np.integer) or values.size == 0):
        raise ParameterError(f"{what} must be a 1-D array of whole numbers; got {values.dtype} {values.shape}")
    return values.astype(np.int64)


# ----------------------------------------------------------------------------- region tables
def write_regions_csv(path: str | os.PathLike[str], table: pa.Table) -> None:
    """Write `<tomo>_instance_regions.csv` in CryoSiam's column order: label, area, bbox-0..5, centroid-0..2
    (z, y, x), hull_area, then any other columns; a header row, no index.

    label and bbox-* are written as whole numbers, because CryoSiam parses them with int().
    """
    _write_csv(path, _region_table(table))


def read_regions_csv(path: str | os.PathLike[str]) -> pa.Table:
    """Read a regions CSV (CryoSiam's or ours): label and bbox-* as int64, area, centroids and hull_area float64.

    hull_area may be missing, as in CryoSiam's older files; when a tomogram has this file, its rows are the regions.
    """
    path = Path(path)
    require_file(path)
    types = {column: pa.int64() if column in INTEGER_COLUMNS else pa.float64() for column in REGION_COLUMNS}
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as error:
        raise damaged(path, "a regions CSV", error) from error
    missing = [column for column in REGION_COLUMNS[:-1] if column not in table.column_names]
    if missing:
        raise InputError(f"{path}: the regions CSV lacks {', '.join(missing)}; give a CryoSiam instance_regions CSV")
    return table


def write_clustered_regions(
    csv_path: str | os.PathLike[str], star_path: str | os.PathLike[str], regions: pa.Table, classes: np.ndarray,
    tomogram: str,
) -> None:
    """Write `<tomo>_instance_regions_<method>_clustered.csv` (the regions plus `semantic_class`) and its `.star`.

    The STAR has CryoSiam's renames (centroid-0/1/2 -> rlnCoordinateZ/Y/X, bbox-* -> rlnBbox-*, label -> rlnLabel,
    area -> rlnArea, semantic_class -> rlnClass), hull_area as rlnHullArea and `tomogram` as rlnMicrographName.
    """
    classes = _integers(classes, "classes")
    if len(classes) != regions.num_rows:
        raise ParameterError(f"{len(classes)} classes for {regions.num_rows} regions; give one class per region")
    if "semantic_class" in regions.column_names:
        regions = regions.drop_columns(["semantic_class"])
    table = _region_table(regions).append_column("semantic_class", pa.array(classes))
    starred = [column for column in table.column_names if column in STAR_NAMES]
    loop = {STAR_NAMES[column]: [_cell(value) for value in table.column(column).to_pylist()] for column in starred}
    loop["rlnMicrographName"] = name_tokens(pa.table({"tomogram": [tomogram] * table.num_rows}), "tomogram")
    _write_csv(csv_path, table)
    write_star(star_path, {"": loop})


def _region_table(table: pa.Table) -> pa.Table:
    """The table in CryoSiam's column order, with label and bbox-* as int64; a one-line refusal otherwise."""
    missing = [column for column in REGION_COLUMNS if column not in table.column_names]
    if missing:
        raise ParameterError(f"a regions table needs columns {', '.join(missing)}; add them before writing")
    for column in REGION_COLUMNS:
        values = table.column(column)
        if values.null_count or not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
            raise ParameterError(f"regions column {column!r} must hold a number for every region; it holds "
                                 f"{values.type} with {values.null_count} missing")
        if pa.types.is_floating(values.type) and values.length() and not pc.all(pc.is_finite(values)).as_py():
            raise ParameterError(f"regions column {column!r} has NaN or infinite values")
    try:
        whole = {column: pc.cast(table.column(column), pa.int64()) for column in INTEGER_COLUMNS}
    except pa.ArrowInvalid as error:
        raise ParameterError("regions columns label and bbox-* must hold whole numbers") from error
    for column, values in whole.items():
        table = table.set_column(table.column_names.index(column), column, values)
    others = [column for column in table.column_names if column not in REGION_COLUMNS]
    return table.select([*REGION_COLUMNS, *others])


def _write_csv(path: str | os.PathLike[str], table: pa.Table) -> None:
    columns = [table.column(name).to_pylist() for name in table.column_names]
    with atomic_output(Path(path)) as temporary, open(temporary, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(table.column_names)
        writer.writerows([_cell(value) for value in row] for row in zip(*columns))


def _cell(value: object) -> str:
    """A value as text that reads back as the same value: floats in their shortest exact form, e.g. 12.0, 1e+16."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- particle centres
def read_particle_centres(path: Path, pixel_size: float | None = None) -> pa.Table:
    """Particle centres from a STAR (RELION 3.0, 3.1+ with optics, Warp, RELION 5) or a CSV file.

    Columns tomogram (str, known suffixes such as .mrc or .tomostar removed), x, y, z (float64, voxels, as
    stored; refinement shifts are not applied). RELION 5's rlnCenteredCoordinate*Angst stay in Å from the
    tomogram's centre, flagged by a `centred_angstrom` column and with a `pixel_size` column (`pixel_size`,
    else the optics group's); `centres_to_voxels` converts them once the tomograms' shapes are known.
    """
    path = Path(path)
    require_file(path)
    if known_suffix(path, (".csv",)):
        return _csv_centres(path)
    return _star_centres(path, pixel_size)


def centres_to_voxels(
    table: pa.Table, shape: Sequence[int] | Mapping[str, Sequence[int]], voxel_size: float | None = None
) -> pa.Table:
    """Centres in voxels: centred-Å rows become Å / voxel size + size / 2 per axis; other tables come back as given.

    `shape` is a tomogram's (z, y, x) size, or such sizes by tomogram name. `voxel_size` is the tomograms' Å per
    voxel (their MRC header's); without it the STAR's pixel size is used, which fits unbinned tomograms only.
    """
    if CENTRED not in table.column_names:
        return table
    names = table.column("tomogram").to_pylist()
    try:
        shapes = [tuple(shape[name] if isinstance(shape, Mapping) else shape) for name in names]
    except KeyError as error:
        raise ParameterError(f"no tomogram shape for {error.args[0]!r}; give the shape of every tomogram") from None
    if any(len(sizes) != 3 for sizes in shapes):
        raise ParameterError(f"a tomogram shape is three sizes (z, y, x); got {shape!r}")
    sizes = np.asarray(shapes, dtype=np.float64).reshape(len(names), 3)
    scale = table.column("pixel_size").to_numpy(zero_copy_only=False) if voxel_size is None else None
    scale = np.full(len(names), voxel_size, dtype=np.float64) if scale is None else scale.astype(np.float64)
    if not (np.isfinite(scale) & (scale > 0)).all():
        raise ParameterError("centres in Å need a voxel size; give the tomograms' Å per voxel (voxel_size)")
    columns = {"tomogram": table.column("tomogram")}
    for axis, size in zip("xyz", (sizes[:, 2], sizes[:, 1], sizes[:, 0])):
        columns[axis] = pa.array(table.column(axis).to_numpy() / scale + size / 2)
    others = [name for name in table.column_names if name not in (*columns, CENTRED, "pixel_size")]
    return pa.table({**columns, **{name: table.column(name) for name in others}})


def _star_centres(path: Path, pixel_size: float | None) -> pa.Table:
    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as error:  # starfile raises many kinds for text it cannot parse
        raise damaged(path, "a STAR file", error) from error
    loops = {name: block for name, block in blocks.items() if isinstance(block, pd.DataFrame)}
    with_centres = [name for name, block in loops.items()
                    if set(PIXEL_LABELS) <= set(block.columns) or set(CENTRED_LABELS) <= set(block.columns)]
    if not with_centres:
        found = [column for name, block in loops.items() if name != "optics" for column in block.columns]
        shown = ", ".join(found[:SHOWN_COLUMNS]) + (" ..." if len(found) > SHOWN_COLUMNS else "") or "none"
        raise InputError(f"{path}: no particle coordinates (rlnCoordinateX/Y/Z or rlnCenteredCoordinateX/Y/ZAngst); "
                         f"its columns are {shown}")
    particles = loops["particles" if "particles" in with_centres else with_centres[0]]
    label = next((label for label in NAME_LABELS if label in particles.columns), None)
    if label is None:
        raise InputError(f"{path}: no tomogram names (rlnTomoName or rlnMicrographName); add one per particle")
    columns = {"tomogram": pa.array([_tomogram_name(str(name)) for name in particles[label]], pa.string())}
    centred = not set(PIXEL_LABELS) <= set(particles.columns)
    for axis, column in zip("xyz", CENTRED_LABELS if centred else PIXEL_LABELS):
        columns[axis] = pa.array(_numbers(particles[column], column, path))
    if centred:
        columns[CENTRED] = pa.array(np.ones(len(particles), dtype=bool))
        columns["pixel_size"] = pa.array(_pixel_sizes(particles, loops.get("optics"), pixel_size), pa.float64())
    return pa.table(columns)


def _pixel_sizes(particles: pd.DataFrame, optics: pd.DataFrame | None, pixel_size: float | None) -> list:
    """Each particle's pixel size: the argument, else its optics group's, else None."""
    if pixel_size is not None:
        return [float(pixel_size)] * len(particles)
    label = next((label for label in PIXEL_SIZE_LABELS if optics is not None and label in optics.columns), None)
    if label is None:
        return [None] * len(particles)
    if len(optics) == 1 or "rlnOpticsGroup" not in optics.columns or "rlnOpticsGroup" not in particles.columns:
        return [float(optics[label].iloc[0])] * len(particles)
    by_group = dict(zip(optics["rlnOpticsGroup"].tolist(), optics[label].astype(float).tolist()))
    return [by_group.get(group) for group in particles["rlnOpticsGroup"].tolist()]


def _csv_centres(path: Path) -> pa.Table:
    with open(path, newline="", encoding="utf-8") as file:
        header = next(csv.reader(file), [])
    by_lower = {name.strip().lower(): name for name in header}
    name = by_lower.get("tomogram", by_lower.get("tomo"))
    missing = [axis for axis in "xyz" if axis not in by_lower]
    if name is None or missing:
        raise InputError(f"{path}: a centres CSV needs columns tomogram (or tomo), x, y, z; its columns are "
                         f"{', '.join(header) or 'none'}")
    chosen = [name, *(by_lower[axis] for axis in "xyz")]
    options = pacsv.ConvertOptions(include_columns=chosen, column_types={name: pa.string(),
                                   **{by_lower[axis]: pa.float64() for axis in "xyz"}})
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except pa.ArrowInvalid as error:
        raise damaged(path, "a centres CSV", error) from error
    if any(table.column(column).null_count for column in chosen):
        raise InputError(f"{path}: some rows lack a tomogram or a coordinate; fill every cell of {', '.join(chosen)}")
    names = [_tomogram_name(value) for value in table.column(name).to_pylist()]
    return pa.table({"tomogram": pa.array(names, pa.string()),
                     **{axis: table.column(by_lower[axis]) for axis in "xyz"}})


def _tomogram_name(value: str) -> str:
    """A tomogram's name as CryoSiam's outputs use it: no folder, no RELION `:mrc` hint, no known file suffix."""
    name = Path(re.sub(r":\w+$", "", value.strip())).name
    suffix = known_suffix(name, TOMOGRAM_SUFFIXES)
    return name[:-len(suffix)] if suffix else name


def _numbers(values: pd.Series, label: str, path: Path) -> np.ndarray:
    try:
        numbers = pd.to_numeric(values).to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise InputError(f"{path}: _{label} holds values that are not numbers") from error
    if not np.isfinite(numbers).all():
        raise InputError(f"{path}: _{label} has NaN or infinite values")
    return numbers
