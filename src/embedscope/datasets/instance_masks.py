"""Synthetic tomograms with CryoSiam instance masks, for the subtomogram workflow's tests, benchmarks and demo.

Each particle of `datasets.tomograms` gets its own label; some pairs touch (distinct labels in contact, so label
expansion must split the gap between them), and specks of debris (1-3 voxels, no density) get labels that a size
bound should drop. The truth, `particles.csv`, names each label's class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
from scipy import ndimage

from embedscope.datasets.tomograms import (
    CLASSES,
    GAP,
    _checked_shape,
    _save_mrc,
    _save_text,
    _signed_distance,
    place_particles,
    render_particles,
)
from embedscope.errors import ParameterError
from embedscope.formats.atomic_files import atomic_output
from embedscope.progress import SILENT, Reporter

DEBRIS = "debris"
DEBRIS_CLEARANCE = 10.0  # voxels between debris and any particle's bounding sphere: expansions never meet
DIRECTIONS_TRIED = 8  # directions tried to put one particle against another


def synthetic_instance_mask(shape: Sequence[int], particles: pa.Table) -> np.ndarray:
    """A (Z, Y, X) label volume: row i of `particles` is label i + 1, on the voxels where its signed distance < 0.

    Rows of class "debris" cover `size` voxels (1-3) along x from their centre. Where two particles meet, the
    earlier row keeps the contested voxels. uint16 when the labels fit, else int32.
    """
    labels = np.zeros(_checked_shape(shape), dtype=np.uint16 if len(particles) < 2**16 else np.int32)
    for index, row in enumerate(particles.to_pylist()):
        centre = np.array([row["z"], row["y"], row["x"]], dtype=np.int64)
        if row["class"] == DEBRIS:
            for step in range(int(row["size"])):
                labels[tuple(centre + [0, 0, step])] = index + 1
            continue
        inside, low = _particle_voxels(row)
        start, stop = np.maximum(low, 0), np.minimum(low + inside.shape, labels.shape)
        box = tuple(slice(a, b) for a, b in zip(start, stop))
        cut = inside[tuple(slice(a - o, b - o) for a, b, o in zip(start, stop, low))]
        labels[box][cut & (labels[box] == 0)] = index + 1
    return labels


def write_demo_subtomograms(
    folder: Path,
    n_tomograms: int = 2,
    shape: Sequence[int] = (64, 160, 160),
    per_class: int = 6,
    classes: Sequence[str] = CLASSES,
    noise: float = 0.6,
    touching_pairs: int = 2,
    debris: int = 8,
    voxel_size: float = 10.0,
    seed: int = 0,
    reporter: Reporter = SILENT,
) -> dict[str, Path]:
    """Write `tomograms/<name>.mrc` (float32 in [0, 1], background near 0.5, particles darker), the CryoSiam masks
    `instances/<name>_instance_preds.h5` and `particles.csv` (tomogram, label, class, x, y, z); return paths by key.

    The second tomogram's name holds a dot (`TS_02_6.80Apx`), as real ones do, to keep readers from cutting it.
    """
    if n_tomograms < 1 or not voxel_size > 0 or noise < 0 or touching_pairs < 0 or debris < 0:
        raise ParameterError(f"need n_tomograms >= 1, voxel_size > 0 and noise, touching_pairs, debris >= 0; got "
                             f"{n_tomograms}, {voxel_size}, {noise}, {touching_pairs}, {debris}")
    folder = Path(folder)
    for sub in ("tomograms", "instances"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    shape = _checked_shape(shape)
    seeds = np.random.default_rng(seed).integers(2**31, size=n_tomograms)
    written: dict[str, Path] = {}
    truth = ["tomogram,label,class,x,y,z"]
    with reporter.phase("writing synthetic subtomogram inputs", n_tomograms) as advance:
        for number, tomogram_seed in enumerate(seeds, start=1):
            name = f"TS_{number:02d}" + ("_6.80Apx" if number == 2 else "")
            random = np.random.default_rng([int(tomogram_seed), 1])
            particles = place_particles(shape, per_class, classes, int(tomogram_seed))
            particles = _put_in_contact(particles, touching_pairs, shape, random)
            everything = pa.concat_tables([particles, _scatter_debris(particles, debris, shape, random)])
            volume = -render_particles(shape, particles)
            volume += random.standard_normal(shape, dtype=np.float32) * np.float32(noise)
            volume = np.clip(0.5 + 0.25 * volume, 0.0, 1.0)
            written[f"tomograms/{name}.mrc"] = _save_mrc(folder / "tomograms" / f"{name}.mrc", volume, voxel_size)
            mask_path = folder / "instances" / f"{name}_instance_preds.h5"
            with atomic_output(mask_path) as temporary, h5py.File(temporary, "w") as h5:
                h5.create_dataset("instances", data=synthetic_instance_mask(shape, everything))
            written[f"instances/{name}_instance_preds.h5"] = mask_path
            rows = zip(*(everything.column(c).to_pylist() for c in ("class", "x", "y", "z")))
            truth.extend(f"{name},{label},{kind},{x},{y},{z}" for label, (kind, x, y, z) in enumerate(rows, start=1))
            advance(1)
    written["particles.csv"] = _save_text(folder / "particles.csv", truth)
    return written


def _particle_voxels(row: dict) -> tuple[np.ndarray, np.ndarray]:
    """A particle's voxels (signed distance < 0) as a boolean box, and the box's low corner (z, y, x)."""
    reach = math.ceil(row["size"]) + 1
    offsets = np.mgrid[-reach : reach + 1, -reach : reach + 1, -reach : reach + 1]  # dz, dy, dx
    point = np.stack([offsets[2], offsets[1], offsets[0]], axis=-1).astype(np.float64)  # x, y, z order
    axis = np.array([row["axis_x"], row["axis_y"], row["axis_z"]], dtype=np.float64)
    inside = _signed_distance(row["class"], float(row["size"]), axis, point) < 0
    return inside, np.array([row["z"], row["y"], row["x"]], dtype=np.int64) - reach


def _put_in_contact(particles: pa.Table, pairs: int, shape: tuple[int, int, int],
                    random: np.random.Generator) -> pa.Table:
    """`particles` with `pairs` of them moved against another: their voxels touch, and nothing else comes near."""
    if 2 * pairs > len(particles):
        raise ParameterError(f"touching_pairs={pairs} needs {2 * pairs} particles but there are {len(particles)}; "
                             "lower touching_pairs or raise per_class")
    rows = particles.to_pylist()
    centres = np.array([[row["x"], row["y"], row["z"]] for row in rows], dtype=np.int64)
    sizes = np.array([row["size"] for row in rows])
    extent = np.array(shape[::-1])  # x, y, z
    free = list(random.permutation(len(rows)))
    for _ in range(pairs):
        for first, second in ((a, b) for a in free for b in free if a != b):
            reach = math.ceil(sizes[second]) + 1
            others = np.setdiff1d(np.arange(len(rows)), [first, second])
            for angle in random.uniform(0, 2 * np.pi, DIRECTIONS_TRIED):
                shift = _contact_shift(rows[first], rows[second], np.array([math.cos(angle), math.sin(angle), 0.0]))
                centre = centres[first] + shift
                clear = np.linalg.norm(centres[others] - centre, axis=1) >= sizes[others] + sizes[second] + GAP
                if np.all(centre >= reach) and np.all(centre < extent - reach) and np.all(clear):
                    break
            else:
                continue
            break
        else:
            depth, height, width = shape
            raise ParameterError(f"could not place {pairs} touching pairs in a {depth}x{height}x{width} tomogram; "
                                 "lower touching_pairs or per_class, or enlarge the shape")
        centres[second] = centre
        rows[second].update(x=int(centre[0]), y=int(centre[1]), z=int(centre[2]))
        free.remove(first)
        free.remove(second)
    return pa.Table.from_pylist(rows, schema=particles.schema)


def _contact_shift(first: dict, second: dict, direction: np.ndarray) -> np.ndarray:
    """The x, y, z offset along `direction` (x, y, z) at which `second`'s voxels first touch `first`'s, coming in."""
    inside, _ = _particle_voxels({**first, "x": 0, "y": 0, "z": 0})
    near = ndimage.binary_dilation(np.pad(inside, 1))  # voxels of `first` and their face neighbours
    centre = np.array(near.shape) // 2
    voxels = np.argwhere(_particle_voxels({**second, "x": 0, "y": 0, "z": 0})[0]) - (math.ceil(second["size"]) + 1)
    distance = math.ceil(first["size"] + second["size"]) + 2  # bounding spheres apart: no contact yet
    while True:  # coming in from outside, the outer surfaces always meet before the centres do
        shift = np.rint(distance * direction).astype(np.int64)  # x, y, z
        at = voxels + centre + shift[::-1]
        within = np.all((at >= 0) & (at < near.shape), axis=1)
        if near[tuple(at[within].T)].any():
            return shift
        distance -= 1


def _scatter_debris(particles: pa.Table, count: int, shape: tuple[int, int, int],
                    random: np.random.Generator) -> pa.Table:
    """`count` debris rows (1-3 voxels along x) well away from every particle and from each other."""
    depth, height, width = shape
    centres = np.array([particles.column(axis).to_pylist() for axis in "xyz"], dtype=np.float64).T.reshape(-1, 3)
    reach = particles.column("size").to_numpy().astype(np.float64) + DEBRIS_CLEARANCE
    placed: list[np.ndarray] = []
    for _ in range(count * 200):
        if len(placed) == count:
            break
        spot = random.integers([4, 4, 4], [width - 7, height - 4, depth - 4])
        far = np.all(np.linalg.norm(centres - spot, axis=1) >= reach)
        if far and all(np.linalg.norm(spot - other) >= DEBRIS_CLEARANCE for other in placed):
            placed.append(spot)
    if len(placed) < count:
        raise ParameterError(f"could not place {count} specks of debris away from the particles; lower debris")
    spots = np.array(placed, dtype=np.int32).reshape(-1, 3)
    return pa.table({
        "x": spots[:, 0], "y": spots[:, 1], "z": spots[:, 2],
        "class": pa.array([DEBRIS] * count, pa.string()),
        "size": random.integers(1, 4, count).astype(np.float32),
        **{f"axis_{axis}": np.full(count, float(axis == "x"), dtype=np.float32) for axis in "xyz"},
    }, schema=particles.schema)
