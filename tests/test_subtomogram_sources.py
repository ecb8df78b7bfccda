"""Subtomogram sources: instance masks read box by box, and crops cut the CryoSiam way, streamed from workers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import mrcfile
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from embedscope.datasets import write_demo_subtomograms
from embedscope.errors import InputError, ParameterError
from embedscope.formats.cryosiam_files import REGION_COLUMNS, read_regions_csv
from embedscope.progress import Reporter
from embedscope.sources import (
    CropSettings,
    IntensityScaling,
    SubtomogramJob,
    find_instance_mask,
    fit_to_patch,
    open_instance_mask,
    read_instance_mask,
    region_boxes,
    stream_subtomograms,
)

_spec = importlib.util.spec_from_file_location(
    "cryosiam_crops", Path(__file__).parents[1] / "benchmarks" / "cryosiam_crops.py")
cryosiam_crops = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cryosiam_crops)

NAMES = ("TS_01", "TS_02_6.80Apx")
SCALING = IntensityScaling(0.0, 1.0, 0.5, 0.2)


class Notes(Reporter):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("subtomograms")
    write_demo_subtomograms(folder)
    return folder


def jobs_of(folder: Path, names=NAMES) -> list[SubtomogramJob]:
    return [SubtomogramJob(name, folder / "tomograms" / f"{name}.mrc",
                           folder / "instances" / f"{name}_instance_preds.h5") for name in names]


def truth(folder: Path, name: str) -> dict[int, str]:
    table = pacsv.read_csv(folder / "particles.csv").to_pylist()
    return {row["label"]: row["class"] for row in table if row["tomogram"] == name}


def streamed(jobs, crop_settings, batch_size=8, workers=0, reporter=None):
    batches = list(stream_subtomograms(jobs, crop_settings, batch_size, workers, reporter or Reporter()))
    return batches


def joined(batches, name=None) -> tuple[np.ndarray, pa.Table]:
    chosen = [batch for batch in batches if name is None or batch.tomogram == name]
    return np.concatenate([batch.crops for batch in chosen]), pa.concat_tables([batch.regions for batch in chosen])


def write_pair(folder: Path, tomogram: np.ndarray, mask: np.ndarray, name: str = "t") -> SubtomogramJob:
    with mrcfile.new(folder / f"{name}.mrc", overwrite=True) as mrc:
        mrc.set_data(tomogram.astype(np.float32))
    with h5py.File(folder / f"{name}_instance_preds.h5", "w") as h5:
        h5.create_dataset("instances", data=mask)
    return SubtomogramJob(name, folder / f"{name}.mrc", folder / f"{name}_instance_preds.h5")


# --- the synthetic inputs and the mask readers --------------------------------------------------------------------


def test_demo_writes_cryosiam_inputs_with_touching_particles_and_debris(demo):
    for name in NAMES:
        mask = read_instance_mask(demo / "instances" / f"{name}_instance_preds.h5")
        assert mask.shape == mrcfile.read(demo / "tomograms" / f"{name}.mrc").shape == (64, 160, 160)
        classes = truth(demo, name)
        assert sorted(np.unique(mask)[1:]) == sorted(classes)
        counts = np.bincount(mask.ravel())
        debris = [label for label, kind in classes.items() if kind == "debris"]
        assert len(debris) == 8 and all(1 <= counts[label] <= 3 for label in debris)
        touching = {(label, int(other)) for label in classes
                    for other in np.unique(mask[ndimage.binary_dilation(mask == label)]) if other not in (0, label)}
        assert len(touching) >= 4  # two pairs, seen from both sides
    tomogram = mrcfile.read(demo / "tomograms" / "TS_01.mrc")
    assert tomogram.dtype == np.float32 and 0 <= tomogram.min() and tomogram.max() <= 1
    assert abs(np.median(tomogram) - 0.5) < 0.05


def test_region_boxes_match_a_whole_volume_measure(demo):
    path = demo / "instances" / "TS_01_instance_preds.h5"
    mask = read_instance_mask(path)
    with open_instance_mask(path) as opened:
        boxes = region_boxes(opened, slab=7)
    objects = ndimage.find_objects(mask)
    assert list(boxes.labels) == [index + 1 for index, box in enumerate(objects) if box is not None]
    assert list(boxes.counts) == list(np.bincount(mask.ravel())[boxes.labels])
    for label, low, high in zip(boxes.labels, boxes.low, boxes.high):
        assert [(part.start, part.stop) for part in objects[label - 1]] == list(zip(low, high))


def test_find_instance_mask_keeps_dotted_names_and_takes_integer_mrc_files(tmp_path):
    assert find_instance_mask(tmp_path, "TS_56_6.80Apx") is None
    with mrcfile.new(tmp_path / "TS_56_6.80Apx.mrc") as mrc:  # a float tomogram is not a mask
        mrc.set_data(np.zeros((4, 4, 4), dtype=np.float32))
    assert find_instance_mask(tmp_path, "TS_56_6.80Apx") is None
    with mrcfile.new(tmp_path / "TS_56_6.80Apx.rec") as mrc:
        mrc.set_data(np.ones((4, 4, 4), dtype=np.int16))
    assert find_instance_mask(tmp_path, "TS_56_6.80Apx") == tmp_path / "TS_56_6.80Apx.rec"
    assert read_instance_mask(tmp_path / "TS_56_6.80Apx.rec").sum() == 64
    with h5py.File(tmp_path / "TS_56_6.80Apx_instance_preds_min-1_max-2.h5", "w") as h5:
        h5.create_dataset("instances", data=np.ones((4, 4, 4), dtype=np.uint16))
    assert find_instance_mask(tmp_path, "TS_56_6.80Apx", "_min-1_max-2").name.startswith("TS_56_6.80Apx_instance")


def test_masks_without_instances_or_with_floats_are_refused_in_one_line(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        h5.create_dataset("labels", data=np.zeros((2, 2, 2), dtype=np.int32))
        h5.create_dataset("group/other", data=np.zeros(3))
    with pytest.raises(InputError, match=r"no dataset 'instances' \(datasets: group/other, labels\)") as error:
        open_instance_mask(tmp_path / "a.h5")
    assert "\n" not in str(error.value)
    with h5py.File(tmp_path / "b.h5", "w") as h5:
        h5.create_dataset("instances", data=np.zeros((2, 2, 2), dtype=np.float32))
    with pytest.raises(InputError, match="float32 values; an instance mask holds integer labels"):
        open_instance_mask(tmp_path / "b.h5")
    with h5py.File(tmp_path / "c.h5", "w") as h5:
        h5.create_dataset("instances", data=np.zeros((2, 2), dtype=np.int32))
    with pytest.raises(InputError, match="2D array"):
        open_instance_mask(tmp_path / "c.h5")
    with pytest.raises(InputError, match="no such file"):
        open_instance_mask(tmp_path / "missing.h5")


names = st.sampled_from(["bbox-0", "bbox-1", "bbox-2", "bbox-3", "bbox-4", "bbox-5", "area", "label"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 500), st.floats(0, 1e6, allow_nan=False),
                               st.floats(-1e3, 1e3, allow_nan=False)), max_size=20),
       extra=st.booleans())
def test_regions_csv_reads_cryosiam_columns_with_their_types(tmp_path, rows, extra):
    header = [*REGION_COLUMNS[:-1], *(["hull_area"] if extra else [])]
    lines = [",".join(header)]
    for label, corner, area, centroid in rows:
        lines.append(",".join([str(label), repr(area), *[str(corner + (axis >= 3)) for axis in range(6)],
                               *[repr(centroid)] * 3, *(["7.0"] if extra else [])]))
    path = tmp_path / "TS_1.5_instance_regions.csv"
    path.write_text("\n".join(lines) + "\n")
    table = read_regions_csv(path)
    assert table.column_names == header and table.num_rows == len(rows)
    assert table.schema.field("label").type == pa.int64() and table.schema.field("bbox-3").type == pa.int64()
    assert table.schema.field("area").type == pa.float64() and table.schema.field("centroid-0").type == pa.float64()
    assert table.column("label").to_pylist() == [row[0] for row in rows]
    assert table.column("centroid-2").to_pylist() == [row[3] for row in rows]


def test_a_regions_csv_without_cryosiam_columns_is_refused(tmp_path):
    (tmp_path / "r.csv").write_text("label,area,bbox-0\n1,2.0,3\n")
    with pytest.raises(InputError, match=r"lacks bbox-1, .*centroid-2; give a CryoSiam instance_regions CSV"):
        read_regions_csv(tmp_path / "r.csv")


# --- crops ---------------------------------------------------------------------------------------------------------


def test_crops_agree_with_the_cryosiam_way(demo):
    for masking in (0, 1, 2):
        crop_settings = CropSettings((32, 28, 36), masking, 3, 300, 6000, SCALING)
        crops, regions = joined(streamed(jobs_of(demo, NAMES[:1]), crop_settings))
        tomogram = mrcfile.read(demo / "tomograms" / "TS_01.mrc")
        mask = read_instance_mask(demo / "instances" / "TS_01_instance_preds.h5")
        their_crops, their_regions = cryosiam_crops.crop_like_cryosiam(tomogram, mask, crop_settings)
        assert regions.column_names == list(REGION_COLUMNS)
        for name in REGION_COLUMNS:
            ours, theirs = regions.column(name).to_numpy(), their_regions.column(name).to_numpy()
            assert np.allclose(ours, theirs) if "centroid" in name else np.array_equal(ours, theirs), name
        assert np.array_equal(crops, np.stack(their_crops))


def test_expansion_splits_touching_particles_as_over_the_whole_volume(demo):
    mask = read_instance_mask(demo / "instances" / "TS_01_instance_preds.h5")
    expanded = cryosiam_crops.whole_volume_expansion(mask, 3)
    _, regions = joined(streamed(jobs_of(demo, NAMES[:1]), CropSettings((16, 16, 16), expand_labels=3)))
    labels = regions.column("label").to_numpy()
    assert np.array_equal(regions.column("area").to_numpy(), np.bincount(expanded.ravel())[labels])
    pairs = [(label, other) for label in labels
             for other in np.unique(mask[ndimage.binary_dilation(mask == label)]) if other not in (0, label)]
    assert pairs  # the touching particles are among the regions compared
    assert np.all(regions.column("area").to_numpy() >= np.bincount(mask.ravel())[labels])


def test_size_bounds_drop_the_debris_and_keep_every_particle(demo):
    crop_settings = CropSettings((24, 24, 24), expand_labels=3, min_particle_size=300)
    batches = streamed(jobs_of(demo), crop_settings)
    for name in NAMES:
        _, regions = joined(batches, name)
        particles = sorted(label for label, kind in truth(demo, name).items() if kind != "debris")
        assert regions.column("label").to_pylist() == particles
        assert min(regions.column("area").to_pylist()) >= 900
    _, everything = joined(streamed(jobs_of(demo), CropSettings((24, 24, 24), expand_labels=3)), NAMES[0])
    debris_areas = [area for label, area in zip(everything.column("label").to_pylist(),
                                                everything.column("area").to_pylist())
                    if truth(demo, NAMES[0])[label] == "debris"]
    assert len(debris_areas) == 8 and max(debris_areas) <= 200


def test_masking_zeroes_outside_the_region_or_its_hull(tmp_path):
    mask = np.zeros((12, 12, 12), dtype=np.uint8)
    mask[3:9, 4, 4] = 1  # an L: its hull is the triangle between the arms
    mask[3, 4, 4:10] = 1
    tomogram = np.full(mask.shape, 2.0)
    job = write_pair(tmp_path, tomogram, mask)
    region = mask[3:9, 4:5, 4:10] == 1
    crops, hull_areas = {}, {}
    for masking in (0, 1, 2):
        batch = streamed([job], CropSettings((6, 1, 6), masking))[0]
        crops[masking] = batch.crops[0]
        hull_areas[masking] = batch.regions.column("hull_area")[0].as_py()
        area = batch.regions.column("area")[0].as_py()
    assert hull_areas[0] == hull_areas[2] == 0
    hull_area = hull_areas[1]
    assert np.all(crops[0] == 2)
    assert np.array_equal(crops[2] != 0, region)
    hull = crops[1] != 0
    assert np.all(hull[region]) and hull.sum() == hull_area > area == region.sum()
    assert hull[0, 0, 0] and hull[2, 0, 2] and not hull[5, 0, 5]  # inside the triangle's corner, not its far corner


def test_crops_are_scaled_float32_and_placed_as_monai_pads_and_crops(tmp_path):
    random = np.random.default_rng(3)
    tomogram = random.normal(0.5, 0.4, (20, 20, 20))
    mask = np.zeros(tomogram.shape, dtype=np.int32)
    mask[5:10, 4:12, 6:9] = 4  # a box 5 x 8 x 3
    job = write_pair(tmp_path, tomogram, mask)
    batch = streamed([job], CropSettings((7, 6, 3), intensity=IntensityScaling(0.2, 0.9, 0.4, 0.25)))[0]
    values = tomogram.astype(np.float32)[5:10, 4:12, 6:9].astype(np.float64)
    expected = (np.clip((values - 0.2) / 0.7, 0, 1) - 0.4) / 0.25
    assert batch.crops.dtype == np.float32 and batch.crops.shape == (1, 7, 6, 3)
    # z: 5 -> 7 pads 1 before, 1 after; y: 8 -> 6 starts at 8 // 2 - 6 // 2 = 1; x kept
    assert np.all(batch.crops[0, 0] == 0) and np.all(batch.crops[0, 6] == 0)
    assert np.allclose(batch.crops[0, 1:6], expected[:, 1:7], atol=1e-6)
    assert batch.regions.column("bbox-1")[0].as_py() == 4 and batch.regions.column("bbox-4")[0].as_py() == 12


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(*[st.integers(1, 9)] * 3), size=st.tuples(*[st.integers(1, 9)] * 3))
def test_fit_to_patch_pads_then_centre_crops_like_monai(shape, size):
    crop = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) + 1
    padded = np.pad(crop, [((max(s - d, 0)) // 2, max(s - d, 0) - max(s - d, 0) // 2) for d, s in zip(shape, size)])
    starts = [d // 2 - s // 2 for d, s in zip(padded.shape, size)]
    expected = padded[tuple(slice(a, a + s) for a, s in zip(starts, size))]
    assert np.array_equal(fit_to_patch(crop, size), expected)


def test_workers_give_the_same_batches_as_one_process(demo):
    crop_settings = CropSettings((20, 20, 20), 1, 2, 300, None, SCALING)
    alone, spread = streamed(jobs_of(demo), crop_settings, 7, 0), streamed(jobs_of(demo), crop_settings, 7, 2)
    assert [(batch.tomogram, len(batch)) for batch in alone] == [(batch.tomogram, len(batch)) for batch in spread]
    assert max(len(batch) for batch in alone) == 7
    for one, other in zip(alone, spread):
        assert np.array_equal(one.crops, other.crops) and one.regions.equals(other.regions)


@pytest.mark.parametrize("size", [(5, 5, 5), (6, 4, 7)])
def test_centre_crops_are_truly_centred_and_zero_padded_at_the_border(tmp_path, size):
    tomogram = np.full((16, 18, 20), 0.5)
    centres = np.array([[8, 9, 10], [0, 17, 1], [15, 0, 19]])
    tomogram[tuple(centres.T)] = 1.0
    with mrcfile.new(tmp_path / "t.mrc") as mrc:
        mrc.set_data(tomogram.astype(np.float32))
    job = SubtomogramJob("t", tmp_path / "t.mrc", centres=centres)
    batch = streamed([job], CropSettings(size))[0]
    middle = tuple(side // 2 for side in size)
    for crop, centre in zip(batch.crops, centres):
        assert crop[middle] == 1.0 and np.count_nonzero(crop == 1.0) == 1
        low = centre - np.array(size) // 2
        inside = tuple(slice(max(-a, 0), min(s, d - a)) for a, s, d in zip(low, size, tomogram.shape))
        assert np.count_nonzero(crop) == crop[inside].size  # zero exactly where the window leaves the tomogram
    assert batch.regions.column("label").to_pylist() == [1, 2, 3]
    assert batch.regions.column("centroid-1").to_pylist() == [9.0, 17.0, 0.0]
    assert batch.regions.column("bbox-0").to_pylist() == list(centres[:, 0] - size[0] // 2)
    assert set(batch.regions.column("area").to_pylist()) == {0}


def test_a_mask_shaped_unlike_its_tomogram_is_refused_naming_both_shapes(tmp_path):
    job = write_pair(tmp_path, np.zeros((4, 5, 6)), np.zeros((6, 5, 4), dtype=np.int32))
    with pytest.raises(InputError, match=r"shape \(6, 5, 4\) but the tomogram .* \(4, 5, 6\); it matches the "
                                         r"tomogram transposed") as error:
        streamed([job], CropSettings((2, 2, 2)))
    assert "\n" not in str(error.value)


def test_a_patch_larger_than_the_tomogram_is_refused(tmp_path):
    job = write_pair(tmp_path, np.zeros((4, 5, 6)), np.zeros((4, 5, 6), dtype=np.int32))
    with pytest.raises(ParameterError, match=r"patch_size \(8, 2, 2\) is larger than tomogram t"):
        streamed([job], CropSettings((8, 2, 2)))


def test_an_all_debris_mask_gets_a_note_and_the_stream_goes_on(tmp_path, demo):
    mask = np.zeros((20, 20, 20), dtype=np.uint16)
    mask[5, 5, 5], mask[12, 12, 12:14] = 1, 2
    debris_job = write_pair(tmp_path, np.zeros(mask.shape), mask, "debris_only")
    notes = Notes()
    batches = streamed([debris_job, *jobs_of(demo, NAMES[1:])], CropSettings((8, 8, 8), 0, 1, 300), 100,
                       reporter=notes)
    assert {batch.tomogram for batch in batches} == {NAMES[1]}
    assert len(notes.notes) == 1 and notes.notes[0].startswith("debris_only: no region of the mask lies within "
                                                               "min_particle_size..max_particle_size (300..")
    assert "sizes 7..12" in notes.notes[0]


def test_settings_are_refused_with_the_cryosiam_key_named():
    with pytest.raises(ParameterError, match="masking_type must be 0, 1 or 2; got 3"):
        CropSettings((8, 8, 8), masking_type=3)
    with pytest.raises(ParameterError, match="patch_size"):
        CropSettings((8, 8))
    with pytest.raises(ParameterError, match="expand_labels"):
        CropSettings((8, 8, 8), expand_labels=-1)
    with pytest.raises(ParameterError, match="min_particle_size .* exceeds max_particle_size"):
        CropSettings((8, 8, 8), min_particle_size=10, max_particle_size=5)
    with pytest.raises(ParameterError, match="std must be positive"):
        IntensityScaling(0, 1, 0, 0)
    with pytest.raises(ParameterError, match="max .* must exceed min"):
        IntensityScaling(1, 1, 0, 1)


def test_a_regions_table_gives_the_rows_to_crop(demo, tmp_path):
    crop_settings = CropSettings((24, 24, 24), 2, 3, 300)
    _, regions = joined(streamed(jobs_of(demo, NAMES[:1]), crop_settings))
    chosen = regions.slice(2, 3)
    pacsv.write_csv(chosen.drop_columns(["hull_area"]), tmp_path / "TS_01_instance_regions.csv")
    table = read_regions_csv(tmp_path / "TS_01_instance_regions.csv")
    job = jobs_of(demo, NAMES[:1])[0]
    with_table = SubtomogramJob(job.name, job.tomogram, job.mask, regions=table)
    crops, again = joined(streamed([with_table], crop_settings))
    assert again.equals(chosen)
    full, _ = joined(streamed([job], crop_settings))
    assert np.array_equal(crops, full[2:5])
