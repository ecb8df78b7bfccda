"""Painting tomograms: MiLoPYP's grey rendering, marks of the right colour on the right voxels, MRC files."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

from embedscope.errors import ParameterError
from embedscope.figures.volumes import blend, grey_rgb, paint, write_volume_mrc

RED, GREEN = np.array([255, 0, 0], np.uint8), np.array([0, 200, 30], np.uint8)


def reference_paint(shape, coords, colors, radius, mark, depth) -> np.ndarray:
    """The rule written voxel by voxel: each point in turn colours every voxel its mark covers."""
    painted = np.zeros((*shape, 3), np.uint8)
    for (px, py, pz), colour in zip(coords, colors):
        for z in range(shape[0]):
            for y in range(shape[1]):
                for x in range(shape[2]):
                    dz, dy, dx = z - pz, y - py, x - px
                    if mark == "sphere":
                        inside = dx * dx + dy * dy + dz * dz <= radius * radius
                    else:
                        reach = radius - abs(dz)
                        inside = abs(dz) <= depth and reach >= 0 and dx * dx + dy * dy <= reach * reach
                    if inside:
                        painted[z, y, x] = colour
    return painted


def milopyp_grey(volume: np.ndarray) -> np.ndarray:
    """visualize_3dhm.py's chain as it runs: load_rec's normalisations, then get_3d_hm's (without cv2)."""
    def quantize(values):
        return np.round(np.clip(255 * (values + 2.5) / 5.5, 0, 255)).astype(np.uint8)

    slices = np.zeros(volume.shape)
    for index, section in enumerate(volume):
        once = quantize((section - section.mean()) / section.std()).astype(np.float32)
        slices[index] = (once - once.min()) / (once.max() - once.min())
    slices = (slices - slices.min()) / (slices.max() - slices.min())
    slices = (slices - slices.mean()) / slices.std()
    rgb = np.zeros((*volume.shape, 3), np.uint8)
    for index in range(len(volume)):
        section = slices[index].copy()
        section -= section.mean()
        section /= section.std()
        grey = quantize(section)
        rgb[index] = np.dstack((grey, grey, grey))
    return gaussian_filter(rgb, sigma=0.8)


def test_disc_follows_milopyps_rule() -> None:
    painted = paint((9, 40, 40), np.array([[20, 18, 4]]), RED[None], radius=12, mark="disc", depth=2)
    assert painted.dtype == np.uint8 and painted.shape == (9, 40, 40, 3)
    for dz, reach in ((0, 12), (1, 11), (-1, 11), (2, 10), (-2, 10)):
        row = painted[4 + dz, 18, :, 0]
        assert np.flatnonzero(row).tolist() == list(range(20 - reach, 20 + reach + 1)), dz
        assert painted[4 + dz, 18 - reach, 20].tolist() == RED.tolist()
        assert not painted[4 + dz, 18 - reach - 1, 20].any()
    assert not painted[[0, 1, 7, 8]].any()


def test_sphere_is_a_true_ball() -> None:
    painted = paint((30, 30, 30), np.array([[15, 14, 13]]), GREEN[None], radius=6, mark="sphere")
    filled = painted.any(axis=-1)
    zz, yy, xx = np.indices(filled.shape)
    assert np.array_equal(filled, (xx - 15) ** 2 + (yy - 14) ** 2 + (zz - 13) ** 2 <= 36)
    assert painted[19, 14, 15].tolist() == GREEN.tolist() and not painted[20, 14, 15].any()
    assert np.all(painted[filled] == GREEN)


def test_marks_at_and_beyond_the_edges_are_clipped() -> None:
    shape = (6, 12, 14)
    coords = np.array([[0, 0, 0], [13, 11, 5], [16, 5, 2], [-3, 6, 7], [6, 6, 40]])
    colors = np.arange(15, dtype=np.uint8).reshape(5, 3) + 1
    for mark in ("disc", "sphere"):
        painted = paint(shape, coords, colors, radius=4, mark=mark, depth=2)
        assert np.array_equal(painted, reference_paint(shape, coords, colors, 4, mark, 2))
        assert painted[0, 0, 0].tolist() == colors[0].tolist() and painted[5, 11, 13].tolist() == colors[1].tolist()
        assert painted[2, 5, 13].tolist() == colors[2].tolist()  # a point outside reaches in
    assert painted[5, 6, 0].tolist() == colors[3].tolist()  # the ball of a point below the last slice


def test_later_points_paint_over_earlier_ones() -> None:
    painted = paint((5, 20, 20), np.array([[8, 10, 2], [11, 10, 2]]), np.stack([RED, GREEN]), radius=4)
    assert painted[2, 10, 10].tolist() == GREEN.tolist() and painted[2, 10, 5].tolist() == RED.tolist()


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    shape=st.tuples(st.integers(1, 7), st.integers(1, 12), st.integers(1, 12)),
    radius=st.integers(0, 5),
    depth=st.integers(0, 3),
    mark=st.sampled_from(["disc", "sphere"]),
)
def test_paint_matches_the_voxel_by_voxel_rule(data, shape, radius, depth, mark) -> None:
    count = data.draw(st.integers(0, 6))
    coords = np.array(
        [[data.draw(st.integers(-3, shape[2] + 2)), data.draw(st.integers(-3, shape[1] + 2)),
          data.draw(st.integers(-3, shape[0] + 2))] for _ in range(count)], dtype=np.int32
    ).reshape(count, 3)
    colors = np.random.default_rng(count).integers(1, 256, size=(count, 3)).astype(np.uint8)
    painted = paint(shape, coords, colors, radius=radius, mark=mark, depth=depth)
    assert painted.tobytes() == reference_paint(shape, coords, colors, radius, mark, depth).tobytes()


def test_paint_refuses_what_it_cannot_draw() -> None:
    with pytest.raises(ParameterError, match="colors"):
        paint((4, 4, 4), np.zeros((2, 3), int), np.zeros((2, 3), float))
    with pytest.raises(ParameterError, match="coords"):
        paint((4, 4, 4), np.zeros((2, 2), int), np.zeros((2, 2), np.uint8))
    with pytest.raises(ParameterError, match="mark"):
        paint((4, 4, 4), np.zeros((1, 3), int), np.zeros((1, 3), np.uint8), mark="cube")


def test_grey_is_byte_identical_to_milopyps_rec3d() -> None:
    random = np.random.default_rng(0)
    for scale, offset in ((0.3, -4.0), (8.0, 100.0)):
        volume = (random.standard_normal((6, 30, 40)) * scale + offset).astype(np.float32)
        volume[2, 5:15, 5:25] -= 5 * scale
        grey = grey_rgb(volume)
        assert grey.dtype == np.uint8 and grey.shape == (6, 30, 40, 3)
        assert grey.tobytes() == milopyp_grey(volume).tobytes()
        assert np.array_equal(grey[..., 0], grey[..., 2])


def test_grey_survives_a_constant_slice() -> None:
    volume = np.random.default_rng(1).standard_normal((5, 16, 16)).astype(np.float32)
    volume[0] = 3.0
    grey = grey_rgb(volume)
    assert grey[0, 8, 8, 0] < grey[2].mean() / 2  # an empty slice renders dark, not as NaN garbage


def test_blend_mixes_only_where_painted() -> None:
    grey = np.full((2, 4, 4, 3), 100, np.uint8)
    painted = np.zeros_like(grey)
    painted[1, 2, 3] = RED
    blended = blend(grey, painted, weight=0.25)
    assert blended[1, 2, 3].tolist() == [216, 25, 25]  # 0.25 * 100 + 0.75 * (255, 0, 0), rounded
    untouched = np.ones(grey.shape[:3], bool)
    untouched[1, 2, 3] = False
    assert np.all(blended[untouched] == 100)
    assert np.array_equal(blend(grey[..., 0], painted, 0.25), blended)  # single-channel grey broadcasts
    with pytest.raises(ParameterError, match="weight"):
        blend(grey, painted, 1.5)


def test_scalar_volume_round_trips_as_mrc(tmp_path: Path) -> None:
    volume = np.random.default_rng(2).standard_normal((4, 6, 8))
    (path,) = write_volume_mrc(tmp_path / "score.mrc", volume, voxel_size=12.5)
    with mrcfile.open(path) as mrc:
        assert mrc.data.shape == (4, 6, 8) and mrc.data.dtype == np.float32
        assert np.allclose(mrc.data, volume.astype(np.float32)) and mrc.voxel_size.x == pytest.approx(12.5)
    assert sorted(item.name for item in tmp_path.iterdir()) == ["score.mrc"]


def test_rgb_volume_becomes_one_file_per_channel(tmp_path: Path) -> None:
    painted = paint((3, 10, 10), np.array([[5, 5, 1]]), np.array([[250, 7, 0]], np.uint8), radius=3)
    paths = write_volume_mrc(tmp_path / "colours.mrc", painted, voxel_size=4.0)
    assert [path.name for path in paths] == ["colours_red.mrc", "colours_green.mrc", "colours_blue.mrc"]
    for channel, path in enumerate(paths):
        with mrcfile.open(path) as mrc:
            assert mrc.data.dtype == np.uint16 and np.array_equal(mrc.data, painted[..., channel])
    assert sorted(item.name for item in tmp_path.iterdir()) == sorted(path.name for path in paths)
    with pytest.raises(ParameterError, match="volume"):
        write_volume_mrc(tmp_path / "flat.mrc", np.zeros((4, 4)), voxel_size=1.0)
    with pytest.raises(ParameterError, match="16 bits"):
        write_volume_mrc(tmp_path / "labels.mrc", np.full((2, 2, 2), 70000), voxel_size=1.0)
