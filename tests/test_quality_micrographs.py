"""Synthetic quality micrographs: the CTF's physics, Thon rings where it puts them, classes that differ the way users
see them, and a set laid out as prismPYP's metadata folder that appears whole or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from embedscope.datasets import (
    QUALITY_CLASSES,
    ctf_2d,
    ctf_zero_frequencies,
    electron_wavelength,
    synthetic_micrograph,
    write_quality_micrographs,
)
from embedscope.errors import ParameterError
from embedscope.progress import Advance, Reporter

PIXEL = 1.5
SEEDS = (0, 1, 2)


def welch_power(image: np.ndarray, tile: int) -> np.ndarray:
    """Power spectrum averaged over non-overlapping Hann-windowed tiles, on the unshifted FFT grid, per pixel."""
    window = np.outer(np.hanning(tile), np.hanning(tile))
    rows, columns = image.shape[0] // tile, image.shape[1] // tile
    tiles = image[: rows * tile, : columns * tile].reshape(rows, tile, columns, tile).swapaxes(1, 2)
    tiles = tiles.reshape(-1, tile, tile)
    tiles = (tiles - tiles.mean(axis=(1, 2), keepdims=True)) * window
    return (np.abs(np.fft.fft2(tiles)) ** 2).mean(axis=0) / (window**2).sum()


def radial_profile(power: np.ndarray) -> np.ndarray:
    """The mean of a square spectrum over rings one frequency bin wide, from zero frequency to Nyquist."""
    side = power.shape[0]
    frequency = np.fft.fftfreq(side)
    ring = np.rint(np.hypot(frequency[:, None], frequency[None, :]) * side).astype(int).ravel()
    return (np.bincount(ring, power.ravel()) / np.bincount(ring))[: side // 2]


def excess_power(image: np.ndarray, low: float, high: float, tile: int = 128) -> tuple[float, np.ndarray]:
    """Signal power over the shot-noise floor between `low` and `high` Å: in all, and in 8 direction sectors."""
    power = welch_power(image, tile) / image.mean() - 1  # white shot noise has power equal to the mean count
    frequency = np.fft.fftfreq(tile, PIXEL)
    k = np.hypot(frequency[:, None], frequency[None, :])
    direction = np.arctan2(frequency[:, None], frequency[None, :]) % np.pi
    band = (k > 1 / low) & (k < 1 / high)
    sectors = [power[band & (np.floor(direction / (np.pi / 8)) == sector)].mean() for sector in range(8)]
    return float(power[band].mean()), np.array(sectors)


def test_the_electron_wavelength_is_relativistic() -> None:
    assert electron_wavelength(300) == pytest.approx(0.01969, abs=1e-4)
    assert electron_wavelength(200) == pytest.approx(0.02508, abs=1e-4)
    assert electron_wavelength(300) < 12.2643 / np.sqrt(300e3)  # the non-relativistic value is longer


@pytest.mark.parametrize(
    ("defocus", "side", "pixel_size"),
    [(0.8, 1024, 1.0), (1.5, 1024, 1.5), (3.0, 2048, 1.0), (0.05, 2048, 0.5)],  # the last passes Scherzer's peak
)
def test_zero_frequencies_are_where_the_ctf_changes_sign(defocus: float, side: int, pixel_size: float) -> None:
    along_x = ctf_2d(side, pixel_size, defocus)[0, : side // 2].astype(np.float64)
    step = 1 / (side * pixel_size)
    changes = (np.flatnonzero(np.sign(along_x[1:]) != np.sign(along_x[:-1])) + 0.5) * step
    zeros = ctf_zero_frequencies(defocus, 200)
    zeros = zeros[zeros < changes[-1] + step]
    assert len(zeros) == len(changes) > 3
    np.testing.assert_allclose(zeros, changes, atol=step)


def test_ctf_2d_is_the_textbook_formula() -> None:
    ctf = ctf_2d(256, 1.5, 1.5, b_factor=100.0)
    assert ctf.shape == (256, 256) and ctf.dtype == np.float32
    assert ctf[0, 0] == pytest.approx(-0.07)  # at zero frequency only amplitude contrast, with the CTF's sign
    k = np.fft.fftfreq(256, 1.5)  # along x, written out: λ 0.0196875 Å, Δz 15000 Å, Cs 2.7e7 Å, w = asin(0.07)
    chi = np.pi * 0.0196875 * 15000 * k**2 - np.pi / 2 * 2.7e7 * 0.0196875**3 * k**4
    np.testing.assert_allclose(ctf[0], -np.sin(chi + np.arcsin(0.07)) * np.exp(-100 * k**2 / 4), atol=1e-4)
    np.testing.assert_allclose(ctf[1:, 1:], ctf[:0:-1, :0:-1], atol=1e-6)  # CTF(k) = CTF(-k)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(256, 1.5), np.fft.fftfreq(256, 1.5)))
    assert (np.abs(ctf) <= np.exp(-100 * k**2 / 4) + 1e-6).all()


def test_astigmatism_moves_the_rings_along_its_angle() -> None:
    side, pixel_size = 1024, 1.0
    ctf = ctf_2d(side, pixel_size, 1.5, astigmatism_um=0.4, astigmatism_angle=90)
    step = 1 / (side * pixel_size)
    for profile, defocus in ((ctf[: side // 2, 0], 1.7), (ctf[0, : side // 2], 1.3)):  # down the rows is y, 90°
        changes = (np.flatnonzero(np.sign(profile[1:]) != np.sign(profile[:-1])) + 0.5) * step
        np.testing.assert_allclose(ctf_zero_frequencies(defocus, 5), changes[:5], atol=step)


@pytest.mark.parametrize(("defocus", "seed"), [(0.9, 0), (1.6, 1), (2.4, 2), (3.0, 3)])
def test_thon_rings_land_where_the_ctf_formula_puts_them(defocus: float, seed: int) -> None:
    image, truth = synthetic_micrograph("good", defocus_um=defocus, pixel_size=PIXEL, seed=seed)
    assert truth["defocus_um"] == defocus
    tile = 256
    profile, step = radial_profile(welch_power(image, tile)), 1 / (tile * PIXEL)
    zeros = ctf_zero_frequencies(defocus, 20)
    zeros = zeros[zeros < 1 / 6]  # out to 6 Å
    assert len(zeros) >= 4
    # Each predicted zero owns the frequencies nearer to it than to its neighbours; the spectrum's lowest point
    # there is the observed minimum.
    bounds = np.concatenate([[zeros[0] / 2], (zeros[1:] + zeros[:-1]) / 2, [1.5 * zeros[-1] - 0.5 * zeros[-2]]])
    for zero, low, high in zip(zeros, bounds[:-1], bounds[1:]):
        bins = np.arange(int(np.ceil(low / step)), int(high / step) + 1)
        minimum = bins[np.argmin(profile[bins])] * step
        assert abs(minimum - zero) <= max(0.02 * zero, step), f"minimum at {minimum:.4f}, zero at {zero:.4f} 1/Å"


def test_a_micrograph_and_its_truth_come_from_the_seed() -> None:
    image, truth = synthetic_micrograph("contamination", side=256, seed=5)
    again, same = synthetic_micrograph("contamination", side=256, seed=5)
    other, _ = synthetic_micrograph("contamination", side=256, seed=6)
    assert image.shape == (256, 256) and image.dtype == np.float32 and (image >= 0).all()
    assert np.array_equal(image, again) and truth == same and not np.array_equal(image, other)
    assert set(truth) == {"quality", "defocus_um", "ice_thickness", "drift_px", "contamination_fraction",
                          "carbon_fraction", "particles"}


def test_unknown_classes_and_bad_sizes_are_refused() -> None:
    with pytest.raises(ParameterError, match="choose one of good, thick_ice"):
        synthetic_micrograph("blurry")
    with pytest.raises(ParameterError, match="side >= 64"):
        synthetic_micrograph("good", side=32)


@pytest.fixture(scope="module")
def by_class() -> dict[str, list[tuple[np.ndarray, dict]]]:
    """Three 512-px micrographs of every class."""
    return {kind: [synthetic_micrograph(kind, side=512, seed=seed) for seed in SEEDS] for kind in QUALITY_CLASSES}


def test_empty_holes_have_the_weakest_thon_rings(by_class) -> None:
    for seed in range(len(SEEDS)):
        rings = {kind: excess_power(by_class[kind][seed][0], 40, 12)[0] for kind in QUALITY_CLASSES}
        assert min(rings, key=rings.get) == "empty_hole", rings
        assert rings["empty_hole"] < 0.5 < rings["good"]


def test_thick_ice_rings_die_early_and_its_particles_fade(by_class) -> None:
    for (thick, truth), (good, _) in zip(by_class["thick_ice"], by_class["good"]):
        assert excess_power(thick, 40, 12)[0] > 1.0  # strong low-resolution rings of the ice itself ...
        assert excess_power(thick, 8, 4)[0] < 0.2 * excess_power(good, 8, 4)[0]  # ... gone by 8 Å
        assert thick.mean() < 0.85 * good.mean()  # the thicker ice stops more of the beam
        assert truth["ice_thickness"] > 90 and truth["particles"] > 0


def test_drift_damps_the_rings_along_one_direction_only(by_class) -> None:
    for (drifted, truth), (good, _) in zip(by_class["drift"], by_class["good"]):
        drift_sectors, good_sectors = excess_power(drifted, 20, 5)[1], excess_power(good, 20, 5)[1]
        assert good_sectors.min() > 0.6 * good_sectors.max()
        assert drift_sectors.min() < 0.15 * drift_sectors.max()
        assert truth["drift_px"] >= 5


def test_contamination_is_dark_where_the_truth_says(by_class) -> None:
    for image, truth in by_class["contamination"]:
        dark = (image < 0.6 * np.median(image)).mean()
        assert 0.05 < truth["contamination_fraction"] < 0.4
        assert dark == pytest.approx(truth["contamination_fraction"], abs=0.05)
    assert all((image < 0.6 * np.median(image)).mean() < 0.01 for image, _ in by_class["good"])


def test_carbon_rings_strongly_and_lowers_the_mean(by_class) -> None:
    for (carbon, truth), (good, _) in zip(by_class["carbon_edge"], by_class["good"]):
        assert 0.05 < truth["carbon_fraction"] < 0.95
        assert excess_power(carbon, 20, 5)[0] > 2 * excess_power(good, 20, 5)[0]
        assert carbon.mean() < good.mean()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("quality") / "set"
    return write_quality_micrographs(folder, per_class=2, side=256, pixel_size=PIXEL, dtype="uint16", seed=4)


def test_the_set_holds_every_file_it_lists(written) -> None:
    assert len(written.names) == len(set(written.names)) == 2 * len(QUALITY_CLASSES)
    assert [path.stem for path in written.micrographs] == written.names
    assert all(path.is_file() for path in written.micrographs)
    metadata = written.metadata
    listed = (metadata / "all_micrographs_list.micrographs").read_text().splitlines()
    assert sorted(listed) == sorted(written.names) and listed != written.names  # each once, shuffled
    assert float((metadata / "pixel_size.txt").read_text()) == PIXEL
    for name in written.names:
        for picture in (f"{name}.webp", f"{name}_ctffit.webp"):
            with Image.open(metadata / "webp" / picture) as image:
                assert image.size == (512, 512) and image.format == "WEBP"
    assert sorted(path.name for path in written.truth.parent.iterdir()) == ["metadata", "micrographs", "truth.csv"]
    assert sorted(path.name for path in written.truth.parent.parent.iterdir()) == ["set"]  # no staging left


def test_truth_and_metadata_join_by_name_and_agree(written) -> None:
    truth = pd.read_csv(written.truth)
    metadata = pd.read_csv(written.metadata / "micrograph_metadata.csv")
    assert list(metadata.columns) == ["micrograph_name", "rel_ice_thickness", "ctf_fit", "est_resolution",
                                      "avg_motion", "num_particles", "mean_defocus"]
    assert truth["quality"].value_counts().to_dict() == dict.fromkeys(QUALITY_CLASSES, 2)
    joined = truth.merge(metadata, on="micrograph_name", validate="one_to_one")
    assert len(joined) == len(truth) and sorted(joined["micrograph_name"]) == written.names
    np.testing.assert_allclose(joined["avg_motion"], joined["drift_px"] * PIXEL, rtol=0.25)
    np.testing.assert_allclose(joined["mean_defocus"], joined["defocus_um"] * 1e4, rtol=0.1)
    assert joined["defocus_um"].between(0.8, 3.0).all()
    by_class = joined.groupby("quality")
    fit, thickness = by_class["ctf_fit"].min(), by_class["rel_ice_thickness"]
    assert min(fit["thick_ice"], fit["empty_hole"], fit["drift"]) > by_class["ctf_fit"].max()["good"]
    assert thickness.min()["thick_ice"] > thickness.max()["good"] > thickness.max()["empty_hole"]
    assert (joined.loc[joined["quality"] == "empty_hole", "particles"] == 0).all()


def test_micrographs_read_back_with_their_type_and_pixel_size(written, tmp_path: Path) -> None:
    for dtype in ("float32", "int16"):
        single = write_quality_micrographs(tmp_path / dtype, per_class=1, side=128, dtype=dtype, webp=False)
        assert not (single.metadata / "webp").exists()
        with mrcfile.open(single.micrographs[0]) as mrc:
            assert mrc.data.dtype == np.dtype(dtype) and mrc.data.shape == (128, 128)
            assert mrc.voxel_size.x == pytest.approx(1.5)
            assert (mrc.data < 0).any() == (dtype == "int16")  # int16 holds counts around their mean
    with mrcfile.open(written.micrographs[0]) as mrc:
        assert mrc.data.dtype == np.uint16 and mrc.data.min() > 0
        assert mrc.voxel_size.x == pytest.approx(PIXEL)


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    first = write_quality_micrographs(tmp_path / "a", per_class=1, side=128, seed=9)
    second = write_quality_micrographs(tmp_path / "b", per_class=1, side=128, seed=9)
    other = write_quality_micrographs(tmp_path / "c", per_class=1, side=128, seed=10)
    files = sorted(path.relative_to(tmp_path / "a") for path in (tmp_path / "a").rglob("*") if path.is_file())
    assert len(files) == 6 * 3 + 4
    for relative in files:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
    assert first.micrographs[0].read_bytes() != other.micrographs[0].read_bytes()
    assert second.names == first.names


class StopAfter(Reporter):
    """A reporter whose user gives up after `count` micrographs, as Ctrl-C would."""

    def __init__(self, count: int) -> None:
        self.count = count

    @contextmanager
    def phase(self, description: str, total: int | None) -> Iterator[Advance]:
        def advance(done: int) -> None:
            self.count -= done
            if self.count <= 0:
                raise KeyboardInterrupt

        yield advance


def test_an_interrupted_write_leaves_the_earlier_set_and_nothing_else(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    earlier = write_quality_micrographs(folder, per_class=1, side=128, seed=1)
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    with pytest.raises(KeyboardInterrupt):
        write_quality_micrographs(folder, per_class=2, side=128, seed=2, reporter=StopAfter(3))
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["set"]
    replaced = write_quality_micrographs(folder, per_class=2, side=128, seed=2)
    assert len(replaced.names) == 12 > len(earlier.names) and len(pd.read_csv(replaced.truth)) == 12


def test_a_folder_with_other_content_or_bad_arguments_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="not an empty folder or an earlier quality set"):
        write_quality_micrographs(tmp_path, per_class=1, side=128)
    with pytest.raises(ParameterError, match="dtype one of float32, uint16, int16"):
        write_quality_micrographs(tmp_path / "new", dtype="float64")
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
