"""Synthetic cryo-ET tomograms and tilt series with known particles, written as MiLoPYP's inputs.

Spheres, hollow shells, rods and dimers sit at random positions and orientations in noisy volumes, so
tests, benchmarks and the demo can check what picking, embedding and clustering recover.

Contrast: particles are denser than the ice and shown DARKER (negative values, background near 0), as
in IMOD tomograms and tilt images. MiLoPYP's picker takes maxima of wide-minus-narrow Gaussian
differences, which are positive on dark blobs, so it finds these particles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import mrcfile
import numpy as np
import pyarrow as pa
import scipy.fft

from embedscope.errors import ParameterError
from embedscope.formats.atomic_files import atomic_output
from embedscope.progress import SILENT, Reporter

CLASSES = ("sphere", "shell", "rod", "dimer")
SIZES = {"sphere": (8.0, 11.0), "shell": (10.0, 13.0), "rod": (11.0, 14.0), "dimer": (12.0, 14.0)}
WALL = 3.0  # shell wall thickness, voxels
ROD_WIDTH = 0.35  # rod radius as a fraction of its half-length
MAX_ELEVATION = 30.0  # degrees an axis may leave the x-y plane: the 3 central slices still show the shape
BORDER_XY, BORDER_Z = 30, 10  # MiLoPYP's picker ignores candidates this close to the edges
GAP = 2.0  # voxels kept free between neighbouring particles
PLACING_TRIES = 64  # candidate centres drawn at a time
PLACING_ROUNDS = 64
LIST_HEADER = "image_name\trec_path\ttilt_path\tangle_path"


def place_particles(
    shape: Sequence[int], per_class: int, classes: Sequence[str] = CLASSES, seed: int = 0
) -> pa.Table:
    """Draw `per_class` particles of each class at random non-overlapping positions inside `shape` (Z, Y, X).

    Columns: x, y, z (int32 voxel indices), class, size (radius of the particle's bounding sphere) and
    axis_x, axis_y, axis_z (unit orientation; any azimuth, within 30 degrees of the x-y plane).
    """
    depth, height, width = _checked_shape(shape)
    unknown = sorted(set(classes) - set(CLASSES))
    if unknown or not classes:
        raise ParameterError(f"unknown particle classes {unknown or '(none given)'}; choose from {', '.join(CLASSES)}")
    if per_class < 0:
        raise ParameterError(f"per_class must be 0 or more; got {per_class}")
    random = np.random.default_rng(seed)
    labels = random.permutation(np.repeat(np.asarray(classes, dtype=object), per_class))
    sizes = np.array([random.uniform(*SIZES[label]) for label in labels])
    centres = np.empty((len(labels), 3), dtype=np.int32)
    for index, size in enumerate(sizes):
        low, high = _centre_bounds(size, (width, height, depth))
        if np.any(low > high):
            need_x, need_y, need_z = 2 * low + 1
            raise ParameterError(f"a {depth}x{height}x{width} tomogram is too small for a particle of size "
                                 f"{size:.1f}; use at least {need_x} px in x and y and {need_z} slices in z")
        free = _free_spot(random, low, high, centres[:index], sizes[:index] + size + GAP)
        if free is None:
            raise ParameterError(f"could not place {len(labels)} particles without overlap in a "
                                 f"{depth}x{height}x{width} tomogram; lower per_class or enlarge the shape")
        centres[index] = free
    azimuth = random.uniform(0.0, 2 * np.pi, len(labels))
    elevation = np.radians(random.uniform(-MAX_ELEVATION, MAX_ELEVATION, len(labels)))
    axis = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    return pa.table({
        "x": centres[:, 0], "y": centres[:, 1], "z": centres[:, 2],
        "class": pa.array(labels.tolist(), pa.string()),
        "size": sizes.astype(np.float32),
        **{f"axis_{name}": values.astype(np.float32) for name, values in zip("xyz", axis)},
    })


def render_particles(shape: Sequence[int], particles: pa.Table) -> np.ndarray:
    """The particles' density as a (Z, Y, X) float32 volume: 1 inside, 0 outside, anti-aliased edges.

    Each particle is drawn in its own small box, so the cost grows with the particles, not the volume.
    """
    density = np.zeros(_checked_shape(shape), dtype=np.float32)
    columns = {name: particles.column(name).to_numpy(zero_copy_only=False) for name in particles.column_names}
    for index, label in enumerate(columns["class"]):
        centre = np.array([columns[name][index] for name in ("x", "y", "z")], dtype=np.int64)
        axis = np.array([columns[name][index] for name in ("axis_x", "axis_y", "axis_z")], dtype=np.float64)
        reach = math.ceil(float(columns["size"][index])) + 1
        offsets = np.mgrid[-reach : reach + 1, -reach : reach + 1, -reach : reach + 1]  # dz, dy, dx
        point = np.stack([offsets[2], offsets[1], offsets[0]], axis=-1).astype(np.float64)  # x, y, z order
        inside = np.clip(0.5 - _signed_distance(label, float(columns["size"][index]), axis, point), 0.0, 1.0)
        low = centre[::-1] - reach  # z, y, x
        start, stop = np.maximum(low, 0), np.minimum(low + 2 * reach + 1, density.shape)
        if np.any(stop <= start):
            continue
        box = tuple(slice(a, b) for a, b in zip(start, stop))
        cut = tuple(slice(a - o, b - o) for a, b, o in zip(start, stop, low))
        np.maximum(density[box], inside[cut].astype(np.float32), out=density[box])
    return density


def synthetic_tomogram(
    shape: Sequence[int] = (64, 192, 192),
    per_class: int = 8,
    classes: Sequence[str] = CLASSES,
    noise: float = 1.0,
    missing_wedge: float | None = 60.0,
    seed: int = 0,
) -> tuple[np.ndarray, pa.Table]:
    """A (Z, Y, X) float32 tomogram holding `per_class` particles of each class, and the particles' table.

    Values are minus the density plus Gaussian noise of std `noise`; with `missing_wedge` (degrees) the
    Fourier components outside +-missing_wedge in the x-z plane are zeroed, as a tilt range of that size leaves.
    """
    if noise < 0:
        raise ParameterError(f"noise must be 0 or more; got {noise}")
    particles = place_particles(shape, per_class, classes, seed)
    volume = render_particles(shape, particles)
    np.negative(volume, out=volume)
    random = np.random.default_rng([seed, 1])
    volume += random.standard_normal(volume.shape, dtype=np.float32) * np.float32(noise)
    if missing_wedge is not None:
        volume = remove_missing_wedge(volume, missing_wedge)
    return volume, particles


def remove_missing_wedge(volume: np.ndarray, half_angle: float) -> np.ndarray:
    """`volume` (Z, Y, X) with the Fourier components more than `half_angle` degrees from the x axis, in x-z, zeroed.

    That is what a tilt series about the y axis from -half_angle to +half_angle cannot measure.
    """
    if not 0 < half_angle <= 90:
        raise ParameterError(f"missing_wedge must be between 0 and 90 degrees (or None); got {half_angle}")
    depth, _, width = volume.shape
    spectrum = scipy.fft.rfftn(volume.astype(np.float32, copy=False))
    along_z = np.abs(scipy.fft.fftfreq(depth))[:, None, None]
    along_x = scipy.fft.rfftfreq(width)[None, None, :]
    spectrum *= along_z <= math.tan(math.radians(half_angle)) * along_x + 1e-12
    return scipy.fft.irfftn(spectrum, s=volume.shape).astype(np.float32, copy=False)


def project_tilt_series(density: np.ndarray, angles: np.ndarray, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Tilt images (n, Y, X) float32 of a (Z, Y, X) density at `angles` (degrees), dense matter dark, plus noise.

    A voxel (x, y, z) lands at column (x - X//2) cos t + ((Z - z) - Z//2) sin t + X//2 (MiLoPYP's mapping),
    shared linearly by the two nearest columns; only non-zero voxels are visited, so sparse densities are quick.
    """
    if density.ndim != 3 or noise < 0:
        raise ParameterError(f"need a (Z, Y, X) density and noise >= 0; got shape {density.shape} and noise {noise}")
    depth, height, width = density.shape
    zs, ys, xs = np.nonzero(density)
    values = density[zs, ys, xs].astype(np.float64)
    across = (xs - width // 2).astype(np.float64)
    up = ((depth - zs) - depth // 2).astype(np.float64)
    images = np.zeros((len(angles), height, width), dtype=np.float32)
    for index, angle in enumerate(np.radians(np.asarray(angles, dtype=np.float64))):
        column = across * math.cos(angle) + up * math.sin(angle) + width // 2
        left = np.floor(column)
        right_share = column - left
        left = left.astype(np.int64)
        for columns, share in ((left, 1.0 - right_share), (left + 1, right_share)):
            inside = (columns >= 0) & (columns < width)
            pixels = ys[inside] * width + columns[inside]
            summed = np.bincount(pixels, weights=values[inside] * share[inside], minlength=height * width)
            images[index] -= summed.reshape(height, width).astype(np.float32)
    if noise > 0:
        random = np.random.default_rng(seed)
        images += random.standard_normal(images.shape, dtype=np.float32) * np.float32(noise)
    return images


def tilt_angles(tilt_range: float = 60.0, tilt_step: float = 3.0) -> np.ndarray:
    """The tilt angles -tilt_range, -tilt_range + tilt_step, ..., +tilt_range in degrees (float64)."""
    if not 0 < tilt_range <= 90 or tilt_step <= 0:
        raise ParameterError(f"need 0 < tilt_range <= 90 and tilt_step > 0; got {tilt_range} and {tilt_step}")
    count = int(math.floor(2 * tilt_range / tilt_step + 1e-9)) + 1
    return -tilt_range + tilt_step * np.arange(count)


def write_demo_tomograms(
    folder: Path,
    n_tomograms: int = 2,
    shape: Sequence[int] = (64, 192, 192),
    per_class: int = 8,
    classes: Sequence[str] = CLASSES,
    noise: float = 1.0,
    missing_wedge: float | None = 60.0,
    tilt_range: float = 60.0,
    tilt_step: float = 3.0,
    voxel_size: float = 10.0,
    seed: int = 0,
    reporter: Reporter = SILENT,
) -> dict[str, Path]:
    """Write tomograms, tilt series and angles, MiLoPYP's `tomograms.txt` list and `particles.csv` (the truth).

    Per tomogram `tomo_NNN`: `.rec` (IMOD layout, thickness on the middle axis), `.mrc` tilt series and `.tlt`;
    tilt noise is `noise * sqrt(Z)`, the noise of the Z voxels a ray crosses. `particles.csv` holds tomogram, x,
    y, z, class and size (bounding radius, voxels: a pick within it lies on the particle). Returns paths by name.
    """
    if n_tomograms < 1 or not voxel_size > 0:
        raise ParameterError(f"need n_tomograms >= 1 and voxel_size > 0; got {n_tomograms} and {voxel_size}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    angles = tilt_angles(tilt_range, tilt_step)
    depth = _checked_shape(shape)[0]
    seeds = np.random.default_rng(seed).integers(2**31, size=n_tomograms)
    written: dict[str, Path] = {}
    truth = ["tomogram,x,y,z,class,size"]
    listing = [LIST_HEADER]
    with reporter.phase("writing synthetic tomograms", n_tomograms) as advance:
        for number, tomogram_seed in enumerate(seeds):
            name = f"tomo_{number:03d}"
            volume, particles = synthetic_tomogram(shape, per_class, classes, noise, missing_wedge, int(tomogram_seed))
            tilts = project_tilt_series(render_particles(shape, particles), angles, noise * math.sqrt(depth),
                                        int(tomogram_seed) + 1)
            written[f"{name}.rec"] = _save_mrc(folder / f"{name}.rec", volume.transpose(1, 0, 2), voxel_size)
            written[f"{name}.mrc"] = _save_mrc(folder / f"{name}.mrc", tilts, voxel_size, stack=True)
            written[f"{name}.tlt"] = _save_text(folder / f"{name}.tlt", [f"{angle:.2f}" for angle in angles])
            listing.append(f"{name}\t{name}.rec\t{name}.mrc\t{name}.tlt")
            rows = zip(*(particles.column(c).to_pylist() for c in ("x", "y", "z", "class", "size")))
            truth.extend(f"{name},{x},{y},{z},{label},{size:.2f}" for x, y, z, label, size in rows)
            advance(1)
    written["particles.csv"] = _save_text(folder / "particles.csv", truth)
    written["tomograms.txt"] = _save_text(folder / "tomograms.txt", listing)  # last: it names only complete files
    return written


def _checked_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    if len(shape) != 3 or min(shape) < 1:
        raise ParameterError(f"shape must be three positive sizes (Z, Y, X); got {tuple(shape)}")
    depth, height, width = (int(size) for size in shape)
    return depth, height, width


def _centre_bounds(size: float, extent: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest allowed centre (x, y, z): past the picker's borders and with the whole particle inside."""
    reach = math.ceil(size) + 1
    margin = np.array([max(BORDER_XY, reach), max(BORDER_XY, reach), max(BORDER_Z, reach)])
    return margin, np.asarray(extent) - 1 - margin


def _free_spot(
    random: np.random.Generator, low: np.ndarray, high: np.ndarray, placed: np.ndarray, reach: np.ndarray
) -> np.ndarray | None:
    """A random centre between `low` and `high` at least `reach` from every placed centre, or None if none is found."""
    for _ in range(PLACING_ROUNDS):
        tries = random.integers(low, high + 1, size=(PLACING_TRIES, 3))
        distances = np.linalg.norm(tries[:, None, :] - placed[None, :, :], axis=2)
        free = np.flatnonzero(np.all(distances >= reach, axis=1))
        if len(free):
            return tries[free[0]]
    return None


def _signed_distance(label: str, size: float, axis: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Distance (voxels) from each offset `point` (..., 3) to the particle's surface, negative inside."""
    if label == "sphere":
        return np.linalg.norm(point, axis=-1) - size
    if label == "shell":
        return np.abs(np.linalg.norm(point, axis=-1) - (size - WALL / 2)) - WALL / 2
    if label == "rod":
        radius = ROD_WIDTH * size
        along = np.clip(point @ axis, -(size - radius), size - radius)
        return np.linalg.norm(point - along[..., None] * axis, axis=-1) - radius
    half = size / 2  # dimer: two spheres of radius size/2 touching at the centre
    return np.minimum(np.linalg.norm(point - half * axis, axis=-1), np.linalg.norm(point + half * axis, axis=-1)) - half


def _save_mrc(path: Path, data: np.ndarray, voxel_size: float, stack: bool = False) -> Path:
    with atomic_output(path) as temporary, mrcfile.new(temporary, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        mrc.voxel_size = voxel_size
        if stack:
            mrc.set_image_stack()
    return path


def _save_text(path: Path, lines: Sequence[str]) -> Path:
    with atomic_output(path) as temporary:
        temporary.write_text("".join(f"{line}\n" for line in lines))
    return path


