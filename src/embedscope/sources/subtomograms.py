"""Subtomograms as CryoSiam cuts them: one masked crop per instance of a mask (or per given centre), streamed.

Per particle, only a box around it is read: the labels are expanded there (exactly as over the whole volume, since
a voxel's nearest label within `expand_labels` lies within twice that of the particle's box), measured, cut from the
tomogram, scaled, masked and padded or cropped to `patch_size`. Worker processes cut the particles, and batches
reach the caller in order (tomograms, then labels), so memory holds a few batches, never all crops.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, groupby
from operator import attrgetter
from pathlib import Path

import numpy as np
import pyarrow as pa

from embedscope.errors import InputError, ParameterError
from embedscope.formats.cryosiam_files import BBOX as BBOX_COLUMNS
from embedscope.formats.cryosiam_files import CENTROID as CENTROID_COLUMNS
from embedscope.formats.cryosiam_files import REGION_COLUMNS
from embedscope.progress import SILENT, Reporter
from embedscope.sources.instance_masks import open_instance_mask, region_boxes
from embedscope.sources.particle_shapes import convex_hull_mask, expand_labels, fit_to_patch
from embedscope.sources.patch_stream import _spawned_processes, in_parallel
from embedscope.sources.tomogram_files import open_tomogram

REGIONS_PER_TASK = 16  # particles one worker cuts per task: enough to outweigh opening the files
REGION_SCHEMA = pa.schema([(name, pa.float64() if name in CENTROID_COLUMNS else pa.int64())
                           for name in REGION_COLUMNS])


@dataclass(frozen=True)
class IntensityScaling:
    """CryoSiam's scaling of tomogram values: clip((x - minimum) / (maximum - minimum), 0, 1), then (x - mean) / std.

    The four numbers are the dataset's, from the CryoSiam config; the rule is voxelwise, so crops are scaled alone.
    """

    minimum: float
    maximum: float
    mean: float
    std: float

    def __post_init__(self) -> None:
        if not np.all(np.isfinite([self.minimum, self.maximum, self.mean, self.std])):
            raise ParameterError("intensity min, max, mean and std must be finite numbers")
        if not self.maximum > self.minimum:
            raise ParameterError(f"intensity max ({self.maximum}) must exceed min ({self.minimum})")
        if not self.std > 0:
            raise ParameterError(f"intensity std must be positive; got {self.std}")

    def apply(self, values: np.ndarray) -> np.ndarray:
        """`values` scaled in place as float32 (a float32 copy when they are not float32 already)."""
        values = values.astype(np.float32, copy=values.dtype != np.float32 or not values.flags.writeable)
        values -= self.minimum
        values /= self.maximum - self.minimum
        np.clip(values, 0, 1, out=values)
        values -= self.mean
        values /= self.std
        return values


@dataclass(frozen=True)
class CropSettings:
    """How particles become crops, by CryoSiam's config keys; checked once, here.

    masking_type: 0 none, 1 zero outside the region's convex hull, 2 zero outside the region. Size bounds count
    voxels after expansion; None or 0 means no bound (as CryoSiam). intensity None leaves values as read.
    """

    patch_size: tuple[int, int, int]
    masking_type: int = 0
    expand_labels: int = 0
    min_particle_size: int | None = None
    max_particle_size: int | None = None
    intensity: IntensityScaling | None = None

    def __post_init__(self) -> None:
        size = tuple(self.patch_size) if isinstance(self.patch_size, Sequence) else ()
        if len(size) != 3 or not all(_whole(side) and side >= 1 for side in size):
            raise ParameterError(f"patch_size must be three positive whole numbers (z, y, x); got {self.patch_size}")
        object.__setattr__(self, "patch_size", tuple(int(side) for side in size))
        if self.masking_type not in (0, 1, 2):
            raise ParameterError(f"masking_type must be 0, 1 or 2; got {self.masking_type}")
        if not (_whole(self.expand_labels) and self.expand_labels >= 0):
            raise ParameterError(f"expand_labels must be a whole number of voxels, 0 or more; got {self.expand_labels}")
        for key in ("min_particle_size", "max_particle_size"):
            bound = getattr(self, key)
            if bound is not None and not (_whole(bound) and bound >= 0):
                raise ParameterError(f"{key} must be a whole number of voxels or null; got {bound}")
        if self.min_particle_size and self.max_particle_size and self.min_particle_size > self.max_particle_size:
            raise ParameterError(f"min_particle_size ({self.min_particle_size}) exceeds max_particle_size "
                                 f"({self.max_particle_size}); no particle could be kept")
        if self.intensity is not None and not isinstance(self.intensity, IntensityScaling):
            raise ParameterError("intensity must be an IntensityScaling(minimum, maximum, mean, std) or None")

    def keeps(self, area: int) -> bool:
        """Whether a region of `area` voxels lies within the size bounds."""
        return not self.too_small(area) and not self.too_large(area)

    def too_small(self, area: int) -> bool:
        return bool(self.min_particle_size) and area < self.min_particle_size

    def too_large(self, area: int) -> bool:
        return bool(self.max_particle_size) and area > self.max_particle_size


@dataclass(frozen=True, eq=False)
class SubtomogramJob:
    """One tomogram to cut: with an instance `mask` (and optionally CryoSiam's `regions` table of it), or with
    `centres`, an (N, 3) integer array of z, y, x voxels, for crops centred there without a mask."""

    name: str
    tomogram: Path
    mask: Path | None = None
    centres: np.ndarray | None = None
    regions: pa.Table | None = None

    def __post_init__(self) -> None:
        if (self.mask is None) == (self.centres is None):
            raise ParameterError(f"{self.name}: give either an instance mask or particle centres, not "
                                 f"{'both' if self.mask is not None else 'neither'}")
        if self.regions is not None and self.mask is None:
            raise ParameterError(f"{self.name}: a regions table describes an instance mask; give the mask too")


@dataclass(frozen=True, eq=False)
class CropBatch:
    """Crops of one tomogram: float32 (n, pz, py, px), and their regions in CryoSiam's CSV columns, row by row."""

    tomogram: str
    crops: np.ndarray
    regions: pa.Table

    def __len__(self) -> int:
        return len(self.crops)


def stream_subtomograms(
    jobs: Sequence[SubtomogramJob],
    settings: CropSettings,
    batch_size: int,
    workers: int,
    reporter: Reporter = SILENT,
) -> Iterator[CropBatch]:
    """Batches of at most `batch_size` crops, jobs in order and each job's labels ascending (or its table's order).

    Every file's header is checked before work starts. `workers` processes cut particles (spawned: a script calling
    this needs the `if __name__ == "__main__":` guard); 0 cuts them here. A tomogram with no region within the size
    bounds yields nothing and gets a note.
    """
    if not (_whole(batch_size) and batch_size >= 1):
        raise ParameterError(f"batch_size must be a positive whole number; got {batch_size}")
    if not (_whole(workers) and workers >= 0):
        raise ParameterError(f"workers must be 0 (this process) or a positive number of processes; got {workers}")
    jobs = list(jobs)
    for job in jobs:
        _check_job(job, settings)
    tasks = _tasks(jobs, settings)
    if workers == 0:
        results = map(_cut_task, tasks)
    else:
        results = in_parallel(_cut_task, tasks, 2 * workers, partial(_spawned_pool, workers))
    for job_index, parts in groupby(results, key=attrgetter("job")):
        job = jobs[job_index]
        first = next(parts)
        pending: list[_Cut] = []
        sizes: list[np.ndarray] = []
        kept = 0
        with reporter.phase(f"cropping {job.name}", first.regions_in_job) as advance:
            for part in chain([first], parts):
                advance(len(part.sizes))
                sizes.append(part.sizes)
                pending.append(part)
                kept += len(part.crops)
                while sum(len(cut.crops) for cut in pending) >= batch_size:
                    batch, pending = _take(pending, batch_size)
                    yield CropBatch(job.name, *batch)
            if any(len(cut.crops) for cut in pending):
                batch, _ = _take(pending, batch_size)
                yield CropBatch(job.name, *batch)
        if not kept:
            reporter.note(_nothing_kept(job.name, np.concatenate(sizes), settings))


# --- the work one task does, in a worker process ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Task:
    """Up to REGIONS_PER_TASK particles of one job: labels and boxes (low, high: (k, 3) z, y, x), and what is known.

    `areas` and `centroids` are given for a regions table's rows and for centres; for a mask they are measured, and
    `areas` holds the voxel counts before expansion (a region already too large can be skipped unread).
    """

    job: int
    regions_in_job: int
    tomogram: Path
    mask: Path | None
    settings: CropSettings
    labels: np.ndarray
    low: np.ndarray
    high: np.ndarray
    areas: np.ndarray
    centroids: np.ndarray | None


@dataclass(eq=False)
class _Cut:
    """What a task returns: the kept crops and their CSV columns, and the size of every region it looked at."""

    job: int
    regions_in_job: int
    sizes: np.ndarray
    crops: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)


def _cut_task(task: _Task) -> _Cut:
    volume = open_tomogram(task.tomogram, order="xyz")
    settings = task.settings
    crops, rows, sizes = [], [], []
    if task.mask is None:
        for label, low, centre in zip(task.labels, task.low, task.centroids):
            crops.append(_window(volume, low, settings))
            rows.append((label, 0, low, low + settings.patch_size, centre, 0))
            sizes.append(0)
    else:
        with open_instance_mask(task.mask) as mask:
            for index, label in enumerate(task.labels):
                cut = _region(volume, mask, task, index)
                sizes.append(cut[1])
                if cut[0] is not None:
                    crops.append(cut[0])
                    rows.append((label, *cut[1:]))
    columns = {name: np.array([], dtype=REGION_SCHEMA.field(name).type.to_pandas_dtype()) for name in REGION_COLUMNS}
    if rows:
        labels, areas, lows, highs, centroids, hulls = (np.array(values) for values in zip(*rows))
        columns = {"label": labels, "area": areas,
                   **{name: values for name, values in zip(BBOX_COLUMNS, np.hstack([lows, highs]).T)},
                   **{name: values for name, values in zip(CENTROID_COLUMNS, np.asarray(centroids, float).T)},
                   "hull_area": hulls}
    stack = np.stack(crops) if crops else np.zeros((0, *settings.patch_size), dtype=np.float32)
    return _Cut(task.job, task.regions_in_job, np.array(sizes, dtype=np.int64), stack, columns)


def _region(volume: np.ndarray, mask, task: _Task, index: int) -> tuple:
    """(crop or None, area, low, high, centroid, hull_area) of one label: None when outside the size bounds."""
    settings, label = task.settings, task.labels[index]
    low, high, reach = task.low[index], task.high[index], settings.expand_labels
    measured = task.centroids is None
    if settings.too_large(task.areas[index]) or not (measured or settings.keeps(task.areas[index])):
        return None, int(task.areas[index]), low, high, None, 0  # expansion only grows a region: skip it unread
    if measured:
        reach *= 2  # the nearest label of any voxel within `reach` of the box lies within twice that
    start, stop = np.maximum(low - reach, 0), np.minimum(high + reach, volume.shape)
    labels = expand_labels(mask[_box(start, stop)], settings.expand_labels)
    region = labels == label
    if measured:
        voxels = np.nonzero(region)
        area = len(voxels[0])
        low = start + [axis.min() for axis in voxels]
        high = start + [axis.max() + 1 for axis in voxels]
        centroid = (np.array([axis.sum() for axis in voxels]) + area * start) / area
        if not settings.keeps(area):
            return None, area, low, high, centroid, 0
    else:
        area, centroid = int(task.areas[index]), task.centroids[index]
    region = region[_box(low - start, high - start)]
    crop = volume[_box(low, high)]
    crop = settings.intensity.apply(crop) if settings.intensity else crop.astype(np.float32)
    hull_area = 0
    if settings.masking_type == 1:
        hull = convex_hull_mask(region)
        hull_area = int(np.count_nonzero(hull))
        crop[~hull] = 0
    elif settings.masking_type == 2:
        crop[~region] = 0
    return fit_to_patch(crop, settings.patch_size), area, low, high, centroid, hull_area


def _window(volume: np.ndarray, low: np.ndarray, settings: CropSettings) -> np.ndarray:
    """The `patch_size` window whose corner is `low`, scaled, zero where it leaves the tomogram."""
    high = low + settings.patch_size
    start, stop = np.maximum(low, 0), np.minimum(high, volume.shape)
    patch = np.zeros(settings.patch_size, dtype=np.float32)
    if np.all(stop > start):
        values = volume[_box(start, stop)]
        values = settings.intensity.apply(values) if settings.intensity else values
        patch[_box(start - low, stop - low)] = values
    return patch


# --- the parent's side: checks, tasks, batches --------------------------------------------------------------------


def _check_job(job: SubtomogramJob, settings: CropSettings) -> None:
    """Refuse, before any work, a mask unlike its tomogram, a patch larger than it, or centres outside it."""
    shape = open_tomogram(job.tomogram, order="xyz").shape
    if any(size > side for size, side in zip(settings.patch_size, shape)):
        raise ParameterError(f"patch_size {settings.patch_size} is larger than tomogram {job.name} (z, y, x "
                             f"{shape}); use a patch_size no larger than the tomogram")
    if job.mask is not None:
        with open_instance_mask(job.mask) as mask:
            mask_shape = mask.shape
        if mask_shape != shape:
            hint = ("; it matches the tomogram transposed (x, y, z): write the mask in the tomogram's (z, y, x) order"
                    if mask_shape == shape[::-1] else "; pair each tomogram with the mask predicted from it")
            raise InputError(f"{job.name}: the mask {job.mask} has shape {mask_shape} but the tomogram {job.tomogram} "
                             f"has shape {shape}{hint}")
    if job.regions is not None:
        low, high = _table_boxes(job.regions)
        if len(low) and (np.any(low < 0) or np.any(high > shape) or np.any(high <= low)):
            raise InputError(f"{job.name}: its regions table has bounding boxes outside the {shape} tomogram or "
                             "empty; give the regions CSV written for this mask")
    if job.centres is not None:
        centres = np.asarray(job.centres)
        if centres.ndim != 2 or centres.shape[1] != 3 or centres.dtype.kind not in "iu":
            raise ParameterError(f"{job.name}: centres of shape {centres.shape} and dtype {centres.dtype} must be an "
                                 "(N, 3) integer array of z, y, x voxels")
        outside = np.any((centres < 0) | (centres >= shape), axis=1)
        if outside.any():
            z, y, x = centres[np.flatnonzero(outside)[0]]
            raise InputError(f"{job.name}: {np.count_nonzero(outside)} centres lie outside the {shape} (z, y, x) "
                             f"tomogram, e.g. z, y, x = {z}, {y}, {x}; check their binning and axis order")


def _tasks(jobs: list[SubtomogramJob], settings: CropSettings) -> Iterator[_Task]:
    """Each job's particles in tasks of REGIONS_PER_TASK, at least one (maybe empty) task per job."""
    for index, job in enumerate(jobs):
        centroids = None
        if job.centres is not None:
            centroids = np.asarray(job.centres, dtype=np.int64)
            labels = np.arange(1, len(centroids) + 1, dtype=np.int64)
            low = centroids - np.array(settings.patch_size) // 2
            high, areas = low + settings.patch_size, np.zeros(len(labels), dtype=np.int64)
            centroids = centroids.astype(np.float64)
        elif job.regions is not None:
            labels = job.regions.column("label").to_numpy()
            low, high = _table_boxes(job.regions)
            areas = np.rint(job.regions.column("area").to_numpy()).astype(np.int64)
            centroids = np.stack([job.regions.column(name).to_numpy() for name in CENTROID_COLUMNS], axis=1)
        else:
            with open_instance_mask(job.mask) as mask:
                boxes = region_boxes(mask)
            labels, low, high, areas = boxes.labels, boxes.low, boxes.high, boxes.counts
        for start in range(0, max(len(labels), 1), REGIONS_PER_TASK):
            part = slice(start, start + REGIONS_PER_TASK)
            yield _Task(index, len(labels), job.tomogram, job.mask, settings, labels[part], low[part], high[part],
                        areas[part], None if centroids is None else centroids[part])


def _take(pending: list[_Cut], count: int) -> tuple[tuple[np.ndarray, pa.Table], list[_Cut]]:
    """The first `count` crops (or all, if fewer) of the pending cuts as (crops, regions), and the cuts left over."""
    crops = np.concatenate([cut.crops for cut in pending])
    columns = {name: np.concatenate([cut.columns[name] for cut in pending]) for name in REGION_COLUMNS}
    regions = pa.table({name: pa.array(values[:count], REGION_SCHEMA.field(name).type)
                        for name, values in columns.items()}, schema=REGION_SCHEMA)
    rest = _Cut(pending[-1].job, 0, np.zeros(0, dtype=np.int64), crops[count:],
                {name: values[count:] for name, values in columns.items()})
    return (crops[:count], regions), [rest]


def _nothing_kept(name: str, sizes: np.ndarray, settings: CropSettings) -> str:
    if not len(sizes):
        return f"{name}: the mask holds no labelled region; no subtomograms from it"
    bounds = f"{settings.min_particle_size or 0}..{settings.max_particle_size or 'no limit'}"
    return (f"{name}: no region of the mask lies within min_particle_size..max_particle_size ({bounds}; sizes "
            f"{sizes.min()}..{sizes.max()} voxels after expand_labels); no subtomograms from it, widen the bounds "
            "to keep some")


def _table_boxes(regions: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    bbox = np.stack([regions.column(name).to_numpy() for name in BBOX_COLUMNS], axis=1).astype(np.int64)
    return bbox[:, :3], bbox[:, 3:]


def _box(low: np.ndarray, high: np.ndarray) -> tuple[slice, slice, slice]:
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def _spawned_pool(workers: int, _in_flight: int):
    """`workers` spawned processes, whatever number of tasks `in_parallel` keeps in flight (twice as many)."""
    return _spawned_processes(workers)


def _whole(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)
