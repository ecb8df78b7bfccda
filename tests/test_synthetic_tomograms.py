"""Synthetic tomograms: files MiLoPYP can read, particles where the truth says, tilts where the contract maps them."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedscope.datasets import project_tilt_series, synthetic_tomogram, write_demo_tomograms
from embedscope.datasets.tomograms import CLASSES, remove_missing_wedge, tilt_angles
from embedscope.errors import ParameterError

SHAPE = (48, 128, 128)


def read_truth(folder: Path) -> list[dict[str, str]]:
    header, *rows = (folder / "particles.csv").read_text().splitlines()
    return [dict(zip(header.split(","), row.split(","))) for row in rows]


def contract_column(x: int, z: int, angle: float, width: int, depth: int) -> int:
    """The contract's x_t (MiLoPYP's convert_tomo_to_tilt), written out independently."""
    t = math.radians(angle)
    return int((x - width // 2) * math.cos(t) + ((depth - z) - depth // 2) * math.sin(t) + width // 2)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tomograms")
    write_demo_tomograms(folder, n_tomograms=2, shape=SHAPE, per_class=2, noise=1.0, voxel_size=7.5, seed=3)
    return folder


def test_list_names_every_file_relative_to_its_folder(demo: Path) -> None:
    header, *rows = (demo / "tomograms.txt").read_text().splitlines()
    assert header.split("\t") == ["image_name", "rec_path", "tilt_path", "angle_path"]
    assert [row.split("\t")[0] for row in rows] == ["tomo_000", "tomo_001"]
    for row in rows:
        for relative in row.split("\t")[1:]:
            assert not Path(relative).is_absolute() and (demo / relative).is_file()
    assert not list(demo.glob(".*tmp-*"))


def test_rec_round_trips_with_thickness_on_the_middle_axis(demo: Path) -> None:
    with mrcfile.open(demo / "tomo_000.rec") as mrc:
        assert mrc.data.dtype == np.float32
        assert mrc.data.shape == (SHAPE[1], SHAPE[0], SHAPE[2])  # (Y, Z, X)
        assert mrc.voxel_size.x == pytest.approx(7.5) and mrc.voxel_size.z == pytest.approx(7.5)
        assert (int(mrc.header.nx), int(mrc.header.ny), int(mrc.header.nz)) == (SHAPE[2], SHAPE[0], SHAPE[1])


def test_tilt_series_and_angles_match(demo: Path) -> None:
    lines = (demo / "tomo_001.tlt").read_text().splitlines()
    assert lines[0] == "-60.00" and lines[-1] == "60.00" and len(lines) == 41
    assert [float(line) for line in lines] == pytest.approx(list(tilt_angles(60, 3)))
    with mrcfile.open(demo / "tomo_001.mrc") as mrc:
        assert mrc.data.shape == (41, SHAPE[1], SHAPE[2]) and mrc.data.dtype == np.float32
        assert mrc.header.ispg == 0  # an image stack, as IMOD writes tilt series


def test_particles_are_darker_than_the_background_where_the_truth_puts_them(demo: Path) -> None:
    truth = read_truth(demo)
    assert Counter(row["class"] for row in truth) == {name: 4 for name in CLASSES}
    for name in ("tomo_000", "tomo_001"):
        with mrcfile.open(demo / f"{name}.rec") as mrc:
            volume = mrc.data.transpose(1, 0, 2)
        zz, yy, xx = np.indices(volume.shape)
        occupied = np.zeros(volume.shape, dtype=bool)
        for row in (row for row in truth if row["tomogram"] == name):
            x, y, z, size = int(row["x"]), int(row["y"]), int(row["z"]), float(row["size"])
            assert 30 <= x < SHAPE[2] - 30 and 30 <= y < SHAPE[1] - 30 and 10 <= z < SHAPE[0] - 10
            ball = (xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2 <= size**2
            occupied |= ball
            assert volume[ball].mean() < -0.05, row  # each class fills over a tenth of its ball; noise here ~0.015
        assert abs(volume[~occupied].mean()) < 0.03


def test_single_particle_tilt_series_peaks_at_the_contract_column(tmp_path: Path) -> None:
    shape = (64, 96, 160)
    write_demo_tomograms(tmp_path, n_tomograms=1, shape=shape, per_class=1, classes=("sphere",), noise=0.0,
                         missing_wedge=None, tilt_range=60, tilt_step=15, seed=5)
    (row,) = read_truth(tmp_path)
    x, y, z = int(row["x"]), int(row["y"]), int(row["z"])
    assert abs(z - shape[0] // 2) > 5  # off the tilt axis, so the sin term moves it
    angles = [float(line) for line in (tmp_path / "tomo_000.tlt").read_text().split()]
    with mrcfile.open(tmp_path / "tomo_000.mrc") as mrc:
        tilts = mrc.data.copy()
    columns = []
    for image, angle in zip(tilts, angles):
        expected = contract_column(x, z, angle, shape[2], shape[0])
        darkness = -image[y]
        centre = (darkness * np.arange(shape[2])).sum() / darkness.sum()
        assert abs(centre - expected) <= 1, angle  # int() truncates, so within one column
        assert abs(int(np.argmin(image[y])) - expected) <= float(row["size"]), angle
        assert abs((-image).sum(axis=1).argmax() - y) <= 1
        columns.append(expected)
    assert len(set(columns)) >= 5  # the angles really move the particle


@settings(max_examples=60, deadline=None)
@given(
    x=st.integers(0, 47), y=st.integers(0, 7), z=st.integers(0, 19),
    angle=st.floats(-70, 70, allow_nan=False), value=st.floats(0.1, 5.0),
)
def test_a_voxel_projects_to_the_contract_column_with_its_mass(x: int, y: int, z: int, angle: float,
                                                                value: float) -> None:
    density = np.zeros((20, 8, 48), dtype=np.float32)
    density[z, y, x] = value
    (image,) = project_tilt_series(density, np.array([angle]))
    t = math.radians(angle)
    exact = (x - 24) * math.cos(t) + ((20 - z) - 10) * math.sin(t) + 24
    if 1 <= exact <= 46:
        assert image.sum() == pytest.approx(-value, rel=1e-5)
        assert np.count_nonzero(image[np.arange(8) != y]) == 0
        centroid = (image[y] * np.arange(48)).sum() / image[y].sum()
        assert centroid == pytest.approx(exact, abs=1e-3)
        assert abs(int(np.argmin(image[y])) - contract_column(x, z, angle, 48, 20)) <= 1


def test_tilt_noise_has_the_requested_spread() -> None:
    images = project_tilt_series(np.zeros((8, 64, 64), dtype=np.float32), np.array([0.0, 30.0]), noise=2.0, seed=1)
    assert images.dtype == np.float32 and images.std() == pytest.approx(2.0, rel=0.05)


def test_classes_come_in_the_requested_numbers_without_overlap() -> None:
    volume, particles = synthetic_tomogram(SHAPE, per_class=3, classes=("sphere", "rod"), noise=0.5, seed=2)
    assert volume.shape == SHAPE and volume.dtype == np.float32
    assert Counter(particles.column("class").to_pylist()) == {"sphere": 3, "rod": 3}
    centres = np.stack([particles.column(name).to_numpy() for name in "xyz"], axis=1).astype(float)
    sizes = particles.column("size").to_numpy()
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2) - sizes[:, None] - sizes[None]
    assert np.all(gaps[~np.eye(len(sizes), dtype=bool)] >= 0)
    axes = np.stack([particles.column(f"axis_{name}").to_numpy() for name in "xyz"], axis=1)
    assert np.allclose(np.linalg.norm(axes, axis=1), 1, atol=1e-5) and np.all(np.abs(axes[:, 2]) <= 0.51)


def test_same_seed_same_tomogram_other_seed_other() -> None:
    first, _ = synthetic_tomogram(SHAPE, per_class=1, seed=4)
    again, _ = synthetic_tomogram(SHAPE, per_class=1, seed=4)
    other, _ = synthetic_tomogram(SHAPE, per_class=1, seed=5)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_missing_wedge_zeroes_only_the_unmeasured_directions() -> None:
    noise = np.random.default_rng(0).standard_normal((32, 4, 32)).astype(np.float32)
    spectrum = np.abs(np.fft.fft(np.fft.fft(remove_missing_wedge(noise, 45.0), axis=0), axis=2))
    kz = np.abs(np.fft.fftfreq(32))[:, None, None]
    kx = np.abs(np.fft.fftfreq(32))[None, None, :]
    original = np.abs(np.fft.fft(np.fft.fft(noise, axis=0), axis=2))
    assert np.all(spectrum[np.broadcast_to(kz > kx + 1e-9, spectrum.shape)] < 1e-3)
    kept = np.broadcast_to(kz <= kx, spectrum.shape)
    assert np.allclose(spectrum[kept], original[kept], rtol=1e-3, atol=1e-3)


def test_impossible_requests_say_what_to_change() -> None:
    with pytest.raises(ParameterError, match="per_class"):
        synthetic_tomogram(SHAPE, per_class=200)
    with pytest.raises(ParameterError, match="classes"):
        synthetic_tomogram(SHAPE, classes=("cube",))
    with pytest.raises(ParameterError, match="too small"):
        synthetic_tomogram((16, 64, 64))
    with pytest.raises(ParameterError, match="tilt_step"):
        tilt_angles(60, 0)
