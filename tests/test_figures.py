"""Figures: real files read back (size, content, format), legends and colour bars, thumbnail spacing, grids, GIFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from sklearn.datasets import make_blobs

from embedscope.errors import InputError, ParameterError
from embedscope.figures import (
    animate_rotation,
    category_colors,
    category_order,
    draw_neighbor_matrix,
    draw_neighbors,
    draw_scatter,
    draw_three_views,
    draw_thumbnail_map,
    position_colors,
    spaced_selection,
)
from embedscope.figures.thumbnail_map import READABLE_MIN_DIST

DPI = 60


def blobs(n: int = 600, dims: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    positions, labels = make_blobs(n, dims, centers=4, random_state=seed)
    return positions.astype(np.float32), labels


def thumbs(count: int, size: int = 16, rgb: bool = False, seed: int = 0) -> np.ndarray:
    images = np.random.default_rng(seed).integers(0, 256, (count, size, size), dtype=np.uint8)
    return np.repeat(images[..., None], 3, axis=-1) if rgb else images


def pixels(path: Path) -> np.ndarray:
    """The RGB pixels of an image file, checked to be a real picture: not blank, more than one colour."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    assert rgb.var() > 0
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 1
    return rgb


def squared_distances(points: np.ndarray) -> np.ndarray:
    return ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=-1)


def unit_square(positions: np.ndarray) -> np.ndarray:
    low, extent = positions.min(axis=0), np.ptp(positions, axis=0)
    return (positions - low) / np.where(extent > 0, extent, 1.0)


def test_categories_get_a_legend_in_natural_order_with_missing_last(tmp_path):
    positions, labels = blobs()
    values = np.array([f"c{label * 5}" for label in labels], dtype=object)  # c0, c5, c10, c15
    values[::7] = None
    summary = draw_scatter(positions, tmp_path / "map.png", values=values, title="blobs", dpi=DPI)
    assert summary.legend == ["c0", "c5", "c10", "c15", "missing"]
    assert not summary.colorbar and not summary.rasterised
    pixels(summary.path)


def test_numbers_get_a_colour_bar_and_no_legend(tmp_path):
    positions, _ = blobs()
    summary = draw_scatter(positions, tmp_path / "map.png", values=positions[:, 0].astype(np.float64), dpi=DPI)
    assert summary.colorbar and summary.legend == []
    pixels(summary.path)


def test_many_distinct_integers_are_numbers(tmp_path):
    positions, _ = blobs()
    summary = draw_scatter(positions, tmp_path / "map.png", values=np.arange(len(positions)), dpi=DPI)
    assert summary.colorbar and summary.legend == []


def test_image_size_follows_dpi(tmp_path):
    positions, labels = blobs()
    small = pixels(draw_scatter(positions, tmp_path / "small.png", values=labels, dpi=DPI).path)
    large = pixels(draw_scatter(positions, tmp_path / "large.png", values=labels, dpi=2 * DPI).path)
    assert abs(large.shape[0] - 2 * small.shape[0]) <= 1 and abs(large.shape[1] - 2 * small.shape[1]) <= 1


def test_no_labels_variant_has_only_points(tmp_path):
    positions, labels = blobs()
    summary = draw_scatter(positions, tmp_path / "bare.png", values=labels, labels=False, title="x", dpi=DPI)
    assert summary.legend == [] and not summary.colorbar
    rgb = pixels(summary.path)
    corners = np.stack([rgb[0, 0], rgb[0, -1], rgb[-1, 0], rgb[-1, -1]])
    assert (corners == 255).all()  # no frame, ticks or labels at the edges


@pytest.mark.parametrize("kind", ["category", "number", "none"])
def test_many_points_are_rasterised_with_the_same_key(tmp_path, kind):
    positions, labels = blobs(3000)
    values = {"category": labels, "number": positions[:, 1].astype(np.float64), "none": None}[kind]
    drawn = draw_scatter(positions, tmp_path / "points.png", values=values, dpi=DPI)
    raster = draw_scatter(positions, tmp_path / "raster.png", values=values, dpi=DPI, raster_above=1000)
    assert raster.rasterised and not drawn.rasterised
    assert (raster.legend, raster.colorbar) == (drawn.legend, drawn.colorbar)
    assert pixels(raster.path).shape == pixels(drawn.path).shape


@pytest.mark.parametrize("suffix", [".svg", ".pdf", ".webp", ".png"])
def test_every_format_is_valid_and_nothing_else_is_written(tmp_path, suffix):
    positions, labels = blobs(300)
    path = draw_scatter(positions, tmp_path / f"map{suffix}", values=labels, dpi=DPI).path
    head = path.read_bytes()[:200]
    if suffix == ".svg":
        assert head.startswith(b"<?xml") or head.startswith(b"<svg")
    elif suffix == ".pdf":
        assert head.startswith(b"%PDF")
    else:
        with Image.open(path) as image:
            assert image.format == suffix[1:].upper()
    assert [file.name for file in tmp_path.iterdir()] == [path.name]


def test_unknown_format_and_bad_input_are_refused_before_writing(tmp_path):
    positions, labels = blobs(100)
    with pytest.raises(ParameterError, match=r"\.png"):
        draw_scatter(positions, tmp_path / "map.jpg")
    with pytest.raises(ParameterError, match="one value per point"):
        draw_scatter(positions, tmp_path / "map.png", values=labels[:-1])
    broken = positions.copy()
    broken[3] = np.nan
    with pytest.raises(InputError, match="row 3"):
        draw_scatter(broken, tmp_path / "map.png")
    assert list(tmp_path.iterdir()) == []


def test_category_order_is_natural_and_ignores_missing():
    names, codes = category_order(np.array([10, 2, None, 1, float("nan"), 2], dtype=object))
    assert names == ["1", "2", "10"]
    assert codes.tolist() == [2, 1, -1, 0, -1, 1]
    names, _ = category_order(np.array(["c10", "c2", "B", "a"]))
    assert names == ["a", "B", "c2", "c10"]
    names, _ = category_order(np.array(["x", 3, 1.5], dtype=object))
    assert names == ["1.5", "3", "x"]


def test_category_colors_are_stable_distinct_and_not_grey():
    many = category_colors(300)
    assert many.dtype == np.uint8 and many.shape == (300, 3)
    assert (category_colors(7) == many[:7]).all()
    assert len(np.unique(many[:50], axis=0)) == 50
    assert (many.max(axis=1).astype(int) - many.min(axis=1) >= 40).all()


@settings(max_examples=40, deadline=None)
@given(
    positions=arrays(np.float64, st.tuples(st.integers(2, 200), st.just(2)),
                     elements=st.floats(-100, 100, allow_nan=False, width=32)),
    min_dist=st.floats(1e-4, 0.2),
    seed=st.integers(0, 3),
)
def test_spaced_selection_keeps_spacing_and_leaves_no_gap(positions, min_dist, seed):
    rows = spaced_selection(positions, min_dist=min_dist, seed=seed)
    scaled = unit_square(positions)
    kept = squared_distances(scaled[rows])
    np.fill_diagonal(kept, np.inf)
    assert (kept >= min_dist).all()
    to_kept = squared_distances(scaled)[:, rows]
    assert (to_kept.min(axis=1) < min_dist).all()  # greedy: every point left out is near a kept one


def test_automatic_min_dist_places_about_the_target():
    positions, _ = blobs(20_000, seed=1)
    for target in (40, 150):
        rows = spaced_selection(positions, target=target)
        assert abs(len(rows) - target) <= 0.3 * target
        assert len(np.unique(rows)) == len(rows)
    assert (spaced_selection(positions, target=150, seed=4) == spaced_selection(positions, target=150, seed=4)).all()
    few = spaced_selection(positions[:50], target=150)  # fewer points than the target: spacing still holds
    assert len(few) <= 50
    spread = squared_distances(unit_square(positions[:50])[few])
    np.fill_diagonal(spread, np.inf)
    assert (spread >= READABLE_MIN_DIST).all()
    with pytest.raises(ParameterError, match="min_dist"):
        spaced_selection(positions, min_dist=-1.0)


def test_thumbnail_map_with_clusters_and_pairs(tmp_path):
    positions, labels = blobs(2000)
    rows = spaced_selection(positions, target=40)
    single = draw_thumbnail_map(positions, rows, thumbs(len(rows)), tmp_path / "thumbs.png", clusters=labels,
                                dpi=DPI, title="thumbnails")
    pair = draw_thumbnail_map(positions, rows, [thumbs(len(rows)), thumbs(len(rows), rgb=True)],
                              tmp_path / "pairs.png", dpi=DPI)
    pixels(single)
    pixels(pair)
    with pytest.raises(ParameterError, match="one image per item"):
        draw_thumbnail_map(positions, rows, thumbs(len(rows) - 1), tmp_path / "bad.png")
    with pytest.raises(ParameterError, match="row numbers"):
        draw_thumbnail_map(positions, np.array([0, 5000]), thumbs(2), tmp_path / "bad.png")
    with pytest.raises(ParameterError, match="uint8"):
        draw_thumbnail_map(positions, rows, thumbs(len(rows)).astype(np.float32), tmp_path / "bad.png")
    assert sorted(file.name for file in tmp_path.iterdir()) == ["pairs.png", "thumbs.png"]


@pytest.mark.parametrize("k", [8, 5, 1])
def test_neighbor_grid_draws_any_count(tmp_path, k):
    distances = np.sort(np.random.default_rng(k).random(k))
    path = draw_neighbors(thumbs(1)[0], thumbs(k, seed=1), distances, tmp_path / "grid.png", title="item 3")
    pixels(path)


def test_neighbor_grid_is_square_for_eight(tmp_path):
    rgb = pixels(draw_neighbors(thumbs(1, rgb=True)[0], thumbs(8, rgb=True), np.linspace(0.1, 0.8, 8),
                                tmp_path / "grid.png"))
    assert 0.8 < rgb.shape[0] / rgb.shape[1] < 1.4


def test_neighbours_out_of_order_are_refused(tmp_path):
    with pytest.raises(ParameterError, match="ascending"):
        draw_neighbors(thumbs(1)[0], thumbs(3), np.array([0.1, 0.3, 0.2]), tmp_path / "grid.png")
    distances = np.array([[0.1, 0.2], [0.5, 0.4]])
    with pytest.raises(ParameterError, match="ascending"):
        draw_neighbor_matrix(thumbs(2), thumbs(4).reshape(2, 2, 16, 16), distances, tmp_path / "matrix.png")
    assert list(tmp_path.iterdir()) == []


def test_neighbor_matrix_has_a_row_per_example(tmp_path):
    distances = np.sort(np.random.default_rng(0).random((3, 4)), axis=1)
    two = pixels(draw_neighbor_matrix(thumbs(2), thumbs(8).reshape(2, 4, 16, 16), distances[:2],
                                      tmp_path / "two.png", dpi=DPI))
    three = pixels(draw_neighbor_matrix(thumbs(3), thumbs(12).reshape(3, 4, 16, 16), distances,
                                        tmp_path / "three.png", dpi=DPI))
    assert two.shape[1] == three.shape[1] and three.shape[0] > two.shape[0]


def test_three_views_of_a_3d_map(tmp_path):
    positions, labels = blobs(500, dims=3)
    for values in (labels, positions[:, 2].astype(np.float64)):
        rgb = pixels(draw_three_views(positions, tmp_path / "views.png", values=values, title="3D", dpi=DPI))
        assert rgb.shape[1] > 2.5 * rgb.shape[0]
    with pytest.raises(InputError, match=r"\(n, 3\)"):
        draw_three_views(positions[:, :2], tmp_path / "views.png")


def test_rotation_gif_has_the_asked_frames(tmp_path):
    positions, labels = blobs(300, dims=3)
    path = animate_rotation(positions, tmp_path / "turn.gif", values=labels, frames=6, dpi=40)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 6
    with pytest.raises(ParameterError, match=r"\.gif"):
        animate_rotation(positions, tmp_path / "turn.png")
    assert [file.name for file in tmp_path.iterdir()] == ["turn.gif"]


def test_position_colors_are_deterministic_and_smooth():
    positions, _ = blobs(2000)
    colors = position_colors(positions)
    assert colors.dtype == np.uint8 and colors.shape == (2000, 3)
    assert (colors == position_colors(positions.copy())).all()
    scaled = unit_square(positions)
    rng = np.random.default_rng(0)
    first, second = rng.integers(0, 2000, (2, 20_000))
    apart = np.linalg.norm(scaled[first] - scaled[second], axis=1)
    differ = np.linalg.norm(colors[first].astype(float) - colors[second].astype(float), axis=1)
    assert differ[apart < 0.05].mean() < differ[apart > 0.5].mean() / 3
    assert np.corrcoef(apart, differ)[0, 1] > 0.5
    assert position_colors(np.zeros((3, 2))).shape == (3, 3)


def test_legend_and_colour_bar_are_headed_by_the_key_title(tmp_path):
    positions, labels = blobs(300)
    draw_scatter(positions, tmp_path / "c.svg", values=labels, key_title="cluster id", dpi=DPI)
    draw_scatter(positions, tmp_path / "n.svg", values=positions[:, 0], key_title="defocus um", dpi=DPI)
    assert "cluster id" in (tmp_path / "c.svg").read_text()
    assert "defocus um" in (tmp_path / "n.svg").read_text()
    draw_scatter(positions, tmp_path / "plain.svg", values=labels, dpi=DPI)
    assert "cluster id" not in (tmp_path / "plain.svg").read_text()
