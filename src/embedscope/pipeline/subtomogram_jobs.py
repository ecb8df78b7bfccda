"""Which tomograms a CryoSiam config names, and what to crop in each: its instance mask or its particle centres.

Files are found as CryoSiam finds them (`test_files`, else every file in `data_folder`), but a tomogram without
a mask is named in a note instead of being skipped in silence, and names with dots are kept whole.
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pyarrow as pa

from embedscope.errors import InputError
from embedscope.formats.cryosiam_config import CryoSiamConfig, tomogram_stem
from embedscope.formats.cryosiam_files import read_regions_csv
from embedscope.progress import SILENT, Reporter
from embedscope.sources.instance_masks import find_instance_mask
from embedscope.sources.subtomograms import CropSettings, IntensityScaling, SubtomogramJob
from embedscope.sources.tomogram_files import tomogram_shape


def crop_settings(config: CryoSiamConfig) -> CropSettings:
    """The crop settings a config's keys give (patch size, masking, label growth, size bounds, intensities)."""
    data = config.parameters.data
    return CropSettings(
        patch_size=tuple(data.patch_size),
        masking_type=config.masking_type,
        expand_labels=config.expand_labels,
        min_particle_size=config.min_particle_size,
        max_particle_size=config.max_particle_size,
        intensity=IntensityScaling(data.min, data.max, data.mean, data.std),
    )


def tomogram_files(config: CryoSiamConfig, filename: str | None = None) -> list[Path]:
    """The tomograms to process: `filename` alone, else `test_files` (+ `train_files`), else all in data_folder."""
    if config.data_folder is None:
        raise InputError(f"{config.path}: no data_folder; set it to the folder of the tomograms")
    folder = Path(config.data_folder)
    if not folder.is_dir():
        raise InputError(f"data_folder {folder} is not a folder; set data_folder to where the tomograms are")
    if filename:
        names = [Path(filename).name]
    else:
        available = sorted(path.name for path in folder.iterdir()
                           if path.is_file() and path.name.endswith(config.file_extension))
        names = config.embedding_files(available)
    paths = [folder / name for name in dict.fromkeys(names)]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise InputError(f"{folder}: no tomogram {', '.join(missing[:3])}; check data_folder and the file names")
    if not paths:
        raise InputError(f"{folder}: no *{config.file_extension} tomograms; check data_folder and file_extension")
    return paths


def network_keys(config: CryoSiamConfig) -> dict:
    """The `parameters.network` keys the config itself gives (absent ones are the checkpoint's to say)."""
    section = (config.raw.get("parameters") or {}).get("network") or {}
    return {key: value for key, value in section.items() if value is not None}


def subtomogram_jobs(
    config: CryoSiamConfig, filename: str | None = None, reporter: Reporter = SILENT
) -> list[SubtomogramJob]:
    """One job per tomogram with what to crop: its instance mask (+ regions CSV), or centres from a STAR/CSV.

    A tomogram with neither gets a note and is left out; the others go on.
    """
    paths = tomogram_files(config, filename)
    centres = _centres_by_tomogram(config, paths)
    jobs = []
    for path in paths:
        name = tomogram_stem(path.name, config.file_extension)
        if centres is not None:
            points = centres.get(name)
            if points is None:
                reporter.note(f"{name}: the particle list names no particle in it; left out")
                continue
            jobs.append(SubtomogramJob(name=name, tomogram=path, centres=points))
            continue
        if config.instances_mask_folder is None:
            raise InputError(f"{config.path}: no instances_mask_folder (nor particles_star / particles_csv); "
                             "set it to the folder of the instance masks")
        mask_folder = Path(config.instances_mask_folder)
        mask = find_instance_mask(mask_folder, name, config.mask_suffix)
        if mask is None:
            reporter.note(f"{name}: no instance mask {name}_instance_preds{config.mask_suffix}.h5 in {mask_folder}; "
                          "left out")
            continue
        regions = mask_folder / f"{name}_instance_regions{config.mask_suffix}.csv"
        jobs.append(SubtomogramJob(name=name, tomogram=path, mask=mask,
                                   regions=read_regions_csv(regions) if regions.is_file() else None))
    if not jobs:
        raise InputError("no tomogram has an instance mask or particles to crop; check instances_mask_folder "
                         "(or particles_star) and the tomogram names")
    return jobs


def _centres_by_tomogram(config: CryoSiamConfig, paths: list[Path]) -> dict[str, np.ndarray] | None:
    """Particle centres (z, y, x voxels, int) by tomogram name, from the config's STAR or CSV list, if any.

    RELION 5's centred-Å coordinates are placed with each tomogram's shape and its header's voxel size.
    """
    from embedscope.formats.cryosiam_files import centres_to_voxels, read_particle_centres

    source = config.particles_star or config.particles_csv
    if source is None:
        return None
    table = read_particle_centres(Path(source))
    headers = {tomogram_stem(path.name, config.file_extension): _header(path) for path in paths}
    listed = set(table.column("tomogram").to_pylist())
    shapes = {name: shape for name, (shape, _) in headers.items() if name in listed}
    sizes = {size for name, (_, size) in headers.items() if name in listed and size}
    known = pa.array([name in shapes for name in table.column("tomogram").to_pylist()])
    table = centres_to_voxels(table.filter(known), shapes, sizes.pop() if len(sizes) == 1 else None)
    names = np.asarray(table.column("tomogram").to_pylist(), dtype=object)
    points = np.column_stack([np.rint(table.column(axis).to_numpy()) for axis in ("z", "y", "x")]).astype(np.int64)
    return {str(name): points[names == name] for name in dict.fromkeys(names.tolist())}


def _header(path: Path) -> tuple[tuple[int, int, int], float | None]:
    """A tomogram's (z, y, x) shape and its header's voxel size in Å (None when the header has none)."""
    shape = tomogram_shape(path, "xyz")
    with mrcfile.open(path, mode="r", permissive=True, header_only=True) as mrc:
        size = float(mrc.voxel_size.x)
    return shape, (size if size > 0 else None)
