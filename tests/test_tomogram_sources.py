"""Tomogram sources: MiLoPYP lists, MRC readers, preprocessing, candidate picking and patch views, on real files."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

from embedscope.errors import InputError, ParameterError
from embedscope.progress import Reporter
from embedscope.sources import (
    CandidatePicker,
    TomogramEntry,
    check_tilt_series,
    extract_at,
    find_tomograms,
    preprocess,
    preprocess_levels,
    preprocess_tilts,
    read_angles,
    read_tilt_series,
    read_tomogram,
    read_tomogram_list,
    stream_patches,
    tilt_columns,
    views_3d,
)
from embedscope.sources.candidates import _greedy_suppression

BLOBS = [(40, 40, 24), (90, 50, 20), (60, 95, 30), (100, 100, 26)]  # x, y, z


def write_mrc(path: Path, data: np.ndarray) -> Path:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
    return path


def write_rec(path: Path, volume: np.ndarray) -> Path:
    """Write a (Z, Y, X) volume as IMOD does: thickness on the file's middle axis."""
    return write_mrc(path, np.ascontiguousarray(volume.transpose(1, 0, 2)))


def blob_volume(shape=(48, 136, 136), blobs=BLOBS, seed=0) -> np.ndarray:
    """Noise with a dark Gaussian blob (sigma 3) at each x, y, z: cryo-ET particles are dark."""
    volume = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    for bx, by, bz in blobs:
        volume -= 6 * np.exp(-((x - bx) ** 2 + (y - by) ** 2 + (z - bz) ** 2) / 18).astype(np.float32)
    return volume


def write_list(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


# --- lists --------------------------------------------------------------------------------------------------------


def test_list_paths_resolve_from_the_list_folder_and_blank_lines_are_skipped(tmp_path):
    (tmp_path / "maps").mkdir()
    for name in ("a.rec", "a.ali", "a.tlt", "b.rec"):
        (tmp_path / "maps" / name).write_text("x")
    listing = write_list(tmp_path / "list.txt", [
        "image_name\trec_path\ttilt_path\tangle_path", "",
        "tomo1\tmaps/a.rec\tmaps/a.ali\tmaps/a.tlt", "",
        f"tomo2\t{tmp_path / 'maps/b.rec'}\tmaps/a.ali\tmaps/a.tlt",
    ])
    three_d = read_tomogram_list(listing, "3d")
    assert [entry.name for entry in three_d] == ["tomo1", "tomo2"]
    assert three_d[0] == TomogramEntry("tomo1", tmp_path / "maps/a.rec")
    both = read_tomogram_list(listing, "2d3d")
    assert both[1].tilt_path == tmp_path / "maps/a.ali" and both[1].angle_path == tmp_path / "maps/a.tlt"


def test_list_paths_resolve_under_data_in_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.rec").write_text("x")
    listing = write_list(tmp_path / "elsewhere.txt", ["image_name rec_path", "t t.rec"])
    (tmp_path / "sub").mkdir()
    listing = listing.rename(tmp_path / "sub" / "list.txt")
    monkeypatch.chdir(tmp_path)
    assert read_tomogram_list(listing)[0].rec_path == Path("data/t.rec")


def test_missing_file_names_the_line_and_every_path_tried(tmp_path):
    listing = write_list(tmp_path / "list.txt", ["image_name\trec_path", "t\tgone.rec"])
    with pytest.raises(InputError) as caught:
        read_tomogram_list(listing)
    message = str(caught.value)
    assert "line 2" in message and str(tmp_path / "gone.rec") in message and "data/gone.rec" in message
    assert "\n" not in message


@pytest.mark.parametrize("lines, mode, fragment", [
    (["image_name\tpath", "t\ta.rec"], "3d", "rec_path"),
    (["image_name\trec_path", "t\ta.rec", "t\ta.rec"], "3d", "lines 2 and 3"),
    (["image_name\trec_path", "t\ta.rec"], "2d3d", "tilt_path or angle_path"),
    (["image_name\trec_path", "t\ta.rec\textra"], "3d", "3 fields"),
    (["image_name\trec_path"], "3d", "no tomograms"),
])
def test_bad_lists_give_one_line_errors(tmp_path, lines, mode, fragment):
    (tmp_path / "a.rec").write_text("x")
    with pytest.raises(InputError, match=fragment) as caught:
        read_tomogram_list(write_list(tmp_path / "list.txt", lines), mode)
    assert "\n" not in str(caught.value)


def test_a_folder_of_tomograms_is_named_by_file_stems(tmp_path):
    for name in ("b.rec", "a.MRC", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert [(entry.name, entry.rec_path.name) for entry in find_tomograms(tmp_path)] == [("a", "a.MRC"),
                                                                                        ("b", "b.rec")]
    with pytest.raises(InputError, match="2d3d"):
        find_tomograms(tmp_path, "2d3d")
    (tmp_path / "a.rec").write_text("x")  # beside a same-named .mrc (its tilt series), the .rec is the tomogram
    assert [entry.rec_path.name for entry in find_tomograms(tmp_path)] == ["a.rec", "b.rec"]
    (tmp_path / "b.REC").write_text("x")
    with pytest.raises(InputError, match="both give tomogram name 'b'"):
        find_tomograms(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .rec or .mrc"):
        find_tomograms(tmp_path / "empty")


# --- files --------------------------------------------------------------------------------------------------------

SHAPES = st.tuples(st.integers(2, 9), st.integers(2, 9), st.integers(2, 9))
DTYPES = st.sampled_from([np.float32, np.int16, np.uint16, np.int8, np.float16])


@settings(max_examples=40, deadline=None)
@given(shape=SHAPES, order=st.sampled_from(["xyz", "xzy"]), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_tomograms_round_trip_through_mrcfile_in_either_order(shape, order, dtype, seed):
    volume = (np.random.default_rng(seed).normal(size=shape) * 20).astype(dtype)
    with tempfile.TemporaryDirectory() as folder:
        stored = volume if order == "xyz" else volume.transpose(1, 0, 2)
        path = write_mrc(Path(folder) / "t.rec", np.ascontiguousarray(stored))
        read = read_tomogram(path, order)
        assert read.dtype == np.float32 and read.shape == shape
        assert np.array_equal(read, volume.astype(np.float32))


@settings(max_examples=30, deadline=None)
@given(depth=st.integers(2, 8), rows=st.integers(10, 14), columns=st.integers(10, 14), xzy=st.booleans())
def test_auto_order_reads_a_thin_middle_axis_as_thickness(depth, rows, columns, xzy):
    volume = np.arange(depth * rows * columns, dtype=np.float32).reshape(depth, rows, columns)
    with tempfile.TemporaryDirectory() as folder:
        stored = volume.transpose(1, 0, 2) if xzy else volume
        read = read_tomogram(write_mrc(Path(folder) / "t.mrc", np.ascontiguousarray(stored)))
    assert np.array_equal(read, volume)  # xyz files here have their thin axis first, so auto reads them as xyz


def test_auto_order_reads_a_cube_as_xyz(tmp_path):
    volume = np.random.default_rng(0).normal(size=(6, 6, 6)).astype(np.float32)
    assert np.array_equal(read_tomogram(write_mrc(tmp_path / "cube.mrc", volume)), volume)
    with pytest.raises(ParameterError, match="order 'zyx'"):
        read_tomogram(tmp_path / "cube.mrc", "zyx")


@settings(max_examples=25, deadline=None)
@given(count=st.integers(1, 6), rows=st.integers(2, 8), columns=st.integers(2, 8),
       angles=st.lists(st.floats(-70, 70, allow_nan=False), min_size=1, max_size=9))
def test_tilt_series_and_angles_round_trip(count, rows, columns, angles):
    stack = np.random.default_rng(count).normal(size=(count, rows, columns)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        read = read_tilt_series(write_mrc(Path(folder) / "t.ali", stack))
        tlt = Path(folder) / "t.tlt"
        tlt.write_text("\n".join(f"  {angle!r}" for angle in angles) + "\n\n")
        assert np.array_equal(read, stack)
        assert read_angles(tlt).dtype == np.float64 and read_angles(tlt).tolist() == angles


@settings(max_examples=30, deadline=None)
@given(content=st.binary(min_size=0, max_size=3000))
def test_files_that_are_not_mrc_give_one_line_input_errors(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bad.rec"
        path.write_bytes(content)
        try:
            read_tomogram(path)
        except InputError as error:
            assert "\n" not in str(error) and str(path) in str(error)


@pytest.mark.parametrize("content", [b"hello\n" * 100, b"", "truncated"])
def test_corrupt_tomograms_and_tilt_series_are_refused(tmp_path, content):
    path = tmp_path / "bad.mrc"
    if content == "truncated":
        write_mrc(path, np.zeros((8, 8, 8), np.float32))
        content = path.read_bytes()[:1500]
    path.write_bytes(content)
    for reader in (read_tomogram, read_tilt_series):
        with pytest.raises(InputError, match="bad.mrc") as caught:
            reader(path)
        assert "\n" not in str(caught.value)


def test_bad_angle_files_name_the_line(tmp_path):
    (tmp_path / "a.tlt").write_text("-3.0\n0.0\nthree\n")
    with pytest.raises(InputError, match="line 3"):
        read_angles(tmp_path / "a.tlt")
    (tmp_path / "b.tlt").write_text("\n\n")
    with pytest.raises(InputError, match="no tilt angles"):
        read_angles(tmp_path / "b.tlt")


def test_tilt_series_must_match_angles_and_tomogram_size():
    rec, tilts, tlt = Path("t.rec"), Path("t.ali"), Path("t.tlt")
    check_tilt_series(rec, (30, 40, 50), tilts, (5, 40, 50), tlt, 5)
    with pytest.raises(InputError, match="t.ali holds 5 tilt images but t.tlt lists 4 angles"):
        check_tilt_series(rec, (30, 40, 50), tilts, (5, 40, 50), tlt, 4)
    with pytest.raises(InputError, match="t.ali has x-y size 52 x 40 but t.rec has 50 x 40"):
        check_tilt_series(rec, (30, 40, 50), tilts, (5, 40, 52), tlt, 5)


# --- preprocessing and picking ------------------------------------------------------------------------------------


def test_preprocessing_matches_milopyp_in_float64():
    volume = blob_volume((20, 40, 44)) * 30 + 500
    smoothed = gaussian_filter((volume - volume.mean()) / volume.std(), 0.8, output=np.float64)
    scores = (smoothed - smoothed.mean()) / smoothed.std()
    levels = np.round(np.clip(255 * (scores + 3) / 6, 0, 255))
    expected = (levels - levels.min()) / (levels.max() - levels.min())
    ours = preprocess(volume, gauss=0.8)
    assert ours.dtype == np.float32 and ours.min() == 0 and ours.max() == 1
    assert np.abs(ours - expected).max() <= 1 / 255 + 1e-6  # float32 rounding may move a voxel by one level
    assert np.mean(np.abs(ours - expected) > 1e-6) < 1e-3
    assert np.array_equal(preprocess_levels(volume, 0.8, slab=3), preprocess_levels(volume, 0.8, slab=32))


def test_unfiltered_tomograms_and_tilts_clip_at_minus_2_5_and_2():
    image = np.linspace(-4, 4, 400, dtype=np.float32).reshape(1, 20, 20)
    tilts = preprocess_tilts(image, gauss=0)
    scores = (image - image.mean()) / image.std()
    assert tilts.min() == 0 and tilts.max() == 1
    assert np.all(tilts[scores <= -2.5] == 0) and np.all(tilts[scores >= 2.0] == 1)
    assert np.array_equal(preprocess(image, gauss=0), tilts)


def test_the_picker_finds_every_planted_blob_within_2_px():
    volume = blob_volume()
    picker = CandidatePicker()
    picks = picker.pick(volume)
    assert picks.dtype == np.int32 and picks.shape[1] == 3
    for blob in BLOBS:
        assert np.min(np.linalg.norm(picks - np.array(blob), axis=1)) <= 2, blob
    strongest = picks[: len(BLOBS)]  # the blobs respond far more strongly than noise
    assert sorted(map(tuple, strongest.tolist())) == sorted(BLOBS)
    assert np.all(np.diff(picker.scores_) <= 0) and picker.threshold_ > 0
    gaps = np.linalg.norm(picks[:, None] - picks[None], axis=2)[np.triu_indices(len(picks), 1)]
    assert gaps.min() > 7  # nms_diameter 14: nothing within 7 voxels of a stronger pick
    assert np.array_equal(picker.pick_preprocessed(preprocess(volume)), picks)


@settings(max_examples=40, deadline=None)
@given(points=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)), max_size=60),
       radius=st.sampled_from([0.0, 1.0, 2.5, 7.0]))
def test_greedy_suppression_equals_the_quadratic_walk(points, radius):
    array = np.array(points, dtype=np.int32).reshape(-1, 3)
    kept: list[int] = []
    for index, point in enumerate(array):
        if all(np.sum((point - array[other]) ** 2) > radius**2 for other in kept):
            kept.append(index)
    ours = _greedy_suppression(array, radius, np.array([31, 31, 31], dtype=np.int64))
    assert np.flatnonzero(ours).tolist() == kept


@pytest.mark.parametrize("settings_, volume_shape, fragment", [
    ({"threshold_std": 1e6}, (48, 136, 136), "threshold_std"),
    ({}, (18, 136, 136), "border_z=10"),
    ({"border_xy": 70}, (48, 136, 136), "border_xy=70"),
])
def test_nothing_to_pick_says_which_parameter_to_change(settings_, volume_shape, fragment):
    with pytest.raises(ParameterError, match=fragment):
        CandidatePicker(**settings_).pick(blob_volume(volume_shape))


@pytest.mark.parametrize("settings_, fragment", [
    ({"dog": (5, 3)}, "dog"), ({"dog": (3,)}, "dog"), ({"dog": ("3", "5")}, "dog"), ({"nms_size": 2}, "nms_size"),
    ({"border_z": -1}, "border_z"), ({"gauss": -1.0}, "gauss"), ({"clip": (3, -3)}, "clip"),
])
def test_bad_picker_parameters_are_refused(settings_, fragment):
    with pytest.raises(ParameterError, match=fragment):
        CandidatePicker(**settings_).pick(blob_volume((24, 70, 70)))


# --- patches ------------------------------------------------------------------------------------------------------


def test_3d_views_sum_three_slices_scale_to_0_1_and_drop_edge_points():
    volume = np.random.default_rng(1).integers(0, 256, size=(10, 40, 40)).astype(np.uint8)
    volume[:, :12, 28:] = 7  # a blank corner: a view there is constant and cannot be scaled
    coords = np.array([[20, 20, 5], [3, 20, 5], [20, 20, 0], [20, 20, 9], [34, 6, 5]], dtype=np.int32)
    views, kept = views_3d(volume, coords, bbox=8)
    assert kept.tolist() == [True, False, False, False, False] and views.shape == (1, 8, 8)
    expected = volume[4:7, 16:24, 16:24].sum(axis=0, dtype=np.float64)
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    assert np.allclose(views[0], expected, atol=1e-6)
    wide, _ = views_3d(volume, coords[:1], bbox=8, margin=3)
    centre = wide[0, 3:11, 3:11]
    assert wide.shape == (1, 14, 14)
    assert np.allclose((centre - centre.min()) / (centre.max() - centre.min()), views[0], atol=1e-6)


def test_tilt_columns_follow_milopyp_projection():
    coords = np.array([[10, 5, 3], [60, 7, 40], [0, 0, 0]], dtype=np.int32)
    angles = np.array([-20.0, -3.0, 0.0, 17.5])
    width, depth = 64, 48
    expected = [[int((x - width // 2) * math.cos(t * math.pi / 180) + ((depth - z) - depth // 2)
                     * math.sin(t * math.pi / 180) + width // 2) for x, _, z in coords] for t in angles]
    assert tilt_columns(coords, angles, width, depth).tolist() == expected


def project(volume: np.ndarray, angles: np.ndarray, point: tuple[int, int, int], decoys_beyond_20=True) -> np.ndarray:
    """A tilt series of noise with a bright dot where the contract's formula puts `point` (x, y, z) in each tilt.

    With `decoys_beyond_20`, tilts steeper than 20 degrees get their dot elsewhere: 2d3d views must ignore them.
    """
    depth, rows, columns = volume.shape
    tilts = np.random.default_rng(3).normal(size=(len(angles), rows, columns)).astype(np.float32)
    x, y, z = point
    for index, angle in enumerate(angles):
        radians = angle * math.pi / 180
        column = int((x - columns // 2) * math.cos(radians) + ((depth - z) - depth // 2) * math.sin(radians)
                     + columns // 2)
        if decoys_beyond_20 and abs(angle) > 20:
            column = 10
        tilts[index, y - 1 : y + 2, column - 1 : column + 2] += 40
    return tilts


def write_2d3d(folder: Path, name: str, volume: np.ndarray, angles: np.ndarray, tilts: np.ndarray) -> TomogramEntry:
    rec = write_rec(folder / f"{name}.rec", volume)
    ali = write_mrc(folder / f"{name}.ali", tilts)
    tlt = folder / f"{name}.tlt"
    tlt.write_text("\n".join(f"{angle:.2f}" for angle in angles) + "\n")
    return TomogramEntry(name, rec, ali, tlt)


def test_a_2d3d_view_of_a_projected_point_peaks_at_its_centre(tmp_path):
    volume = np.random.default_rng(2).normal(size=(40, 64, 96)).astype(np.float32)
    angles = np.arange(-60, 61, 3, dtype=np.float64)
    point = (55, 30, 8)  # far from the middle slice, so the projection moves with the tilt
    entry = write_2d3d(tmp_path, "t", volume, angles, project(volume, angles, point))
    batch = extract_at(entry, np.array([point]), bbox=16, mode="2d3d", gauss=0.8)
    assert batch.views2d.shape == (1, 16, 16) and batch.dropped == 0
    view = batch.views2d[0]
    assert view[8, 8] == view.max() == 1 and np.median(view) < 0.5
    rows, columns = np.nonzero(view > 0.8)  # the bright peak, centred on the point (box 16: centre pixel 8, 8)
    assert abs(rows.mean() - 8) <= 0.5 and abs(columns.mean() - 8) <= 0.5 and len(rows) < 40
    assert batch.views3d.shape == (1, 16, 16) and batch.coords.tolist() == [list(point)]
    near = np.abs(angles) <= 20  # the sum uses only these tilts, each preprocessed on its own
    images = preprocess_tilts(read_tilt_series(entry.tilt_path)[near], 0.8)
    columns = tilt_columns(np.array([point]), angles[near], 96, 40)[:, 0]
    total = sum(image[22:38, column - 8 : column + 8] for image, column in zip(images, columns))
    assert np.allclose(view, (total - total.min()) / (total.max() - total.min()), atol=1e-5)


def test_streaming_picks_and_cuts_each_tomogram_in_order(tmp_path):
    angles = np.arange(-30, 31, 10, dtype=np.float64)
    entries = []
    for index in range(3):
        volume = blob_volume(seed=index)
        entries.append(write_2d3d(tmp_path, f"t{index}", volume, angles, project(volume, angles, BLOBS[0], False)))
    listing = write_list(tmp_path / "list.txt", ["image_name\trec_path\ttilt_path\tangle_path"] + [
        f"{e.name}\t{e.rec_path.name}\t{e.tilt_path.name}\t{e.angle_path.name}" for e in entries])
    notes: list[str] = []

    class Notes(Reporter):
        def note(self, message: str) -> None:
            notes.append(message)

    batches = list(stream_patches(read_tomogram_list(listing, "2d3d"), CandidatePicker(), 20, "2d3d",
                                  margin=2, workers=2, reporter=Notes()))
    assert [batch.name for batch in batches] == ["t0", "t1", "t2"]
    for batch in batches:
        assert batch.coords.dtype == np.int32 and len(batch.coords) >= len(BLOBS)
        assert batch.views3d.shape == batch.views2d.shape == (len(batch.coords), 24, 24)
        assert batch.views3d.dtype == np.float32 and batch.views3d.min() == 0 and batch.views3d.max() == 1
    assert len(notes) == 3 and notes[0].startswith("t0: ")
    again = next(stream_patches(read_tomogram_list(listing, "3d"), CandidatePicker(), 20, "3d", dtype="uint8"))
    assert again.views2d is None and again.views3d.dtype == np.uint8
    assert set(map(tuple, batches[0].coords.tolist())) <= set(map(tuple, again.coords.tolist()))
    plain = extract_at(entries[0], again.coords, 20, "3d")
    assert np.array_equal(again.views3d, np.rint(plain.views3d * 255).astype(np.uint8))


def test_bad_requests_fail_before_any_tomogram_is_read(tmp_path):
    volume = blob_volume((24, 70, 70))
    angles = np.array([-10.0, 0.0, 10.0])
    good = write_2d3d(tmp_path, "good", volume, angles, project(volume, angles, (35, 35, 12)))
    short = TomogramEntry("short", good.rec_path, good.tilt_path, write_list(tmp_path / "s.tlt", ["0", "5"]))
    picker = CandidatePicker()
    with pytest.raises(ParameterError, match="bbox=80"):
        next(stream_patches([good], picker, 80, "3d"))
    with pytest.raises(InputError, match="holds 3 tilt images but .*s.tlt lists 2 angles"):
        next(stream_patches([good, short], picker, 16, "2d3d"))
    with pytest.raises(InputError, match="no tilt series"):
        next(stream_patches([TomogramEntry("bare", good.rec_path)], picker, 16, "2d3d"))
    with pytest.raises(ParameterError, match="mode"):
        next(stream_patches([good], picker, 16, "3D"))
    with pytest.raises(ParameterError, match="dtype"):
        next(stream_patches([good], picker, 16, "3d", dtype="float64"))
    with pytest.raises(ParameterError, match="workers"):
        next(stream_patches([good], picker, 16, "3d", workers=0))
    with pytest.raises(InputError, match="outside the tomogram"):
        extract_at(good, np.array([[35, 35, 30]]), 16, "3d")
    constant = TomogramEntry("flat", write_rec(tmp_path / "flat.rec", np.ones((24, 70, 70), np.float32)))
    with pytest.raises(InputError, match="flat .*constant"):
        next(stream_patches([constant], picker, 16, "3d"))
