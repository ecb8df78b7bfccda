"""`embedscope thumbs` and `figures` on an Atlas of particles cropped from real MRC micrographs:
thumbnails show the particle at each x, y; every figure kind is written under prismPYP's names; bad input
gives one line and changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from embedscope import Atlas
from embedscope.datasets import write_demo_inputs

from conftest import assert_one_line_error

N = 600


@pytest.fixture(scope="module")
def particles_atlas(tmp_path_factory) -> Path:
    """The demo's inputs at 600 items: vectors, labels, micrographs and x, y; imported, thumbed and mapped."""
    from embedscope.pipeline import import_vectors, map_atlas, thumbs_atlas

    folder = tmp_path_factory.mktemp("particles")
    vectors, metadata = write_demo_inputs(folder, n=N, dim=16)
    import_vectors([vectors], folder / "p.atlas", meta=metadata, on="id")
    atlas = Atlas.open(folder / "p.atlas")
    thumbs_atlas(atlas, "micrograph", kind="particle", size=32, root=folder)
    map_atlas(atlas, "umap")
    map_atlas(atlas, "pca", dims=3, name="pca3d")
    return folder / "p.atlas"


@pytest.fixture
def atlas_copy(particles_atlas: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy.atlas"
    shutil.copytree(particles_atlas, target)
    return target


def test_thumbnails_are_crops_centred_on_each_particle(particles_atlas):
    atlas = Atlas.open(particles_atlas)
    assert atlas.thumb_kinds() == {"particle": {"shape": [32, 32], "n": N}}
    images = atlas.thumbs("particle").astype(np.float32)
    labels = np.asarray(atlas.table(["label"]).column("label").to_pylist())
    centre, rim = images[:, 10:22, 10:22].mean(axis=(1, 2)), images[:, :4, :].mean(axis=(1, 2))
    assert np.mean(centre > rim) > 0.9  # the particle sits in the middle of its crop
    means = {label: images[labels == label].mean(axis=0).ravel() for label in np.unique(labels)}
    first = images[labels == labels[0]].reshape(-1, 32 * 32)
    same = np.corrcoef(first.mean(axis=0), means[labels[0]])[0, 1]
    others = [np.corrcoef(means[labels[0]], mean)[0, 1] for label, mean in means.items() if label != labels[0]]
    assert same > max(others)  # a class's particles look alike, and unlike the other classes'


def test_thumbs_command_reports_and_records(cli, atlas_copy, particles_atlas):
    result = cli("thumbs", atlas_copy, "--from", "micrograph", "--kind", "ps", "--size", "24", "--root",
                 particles_atlas.parent)
    assert result.code == 0, result.err
    assert f"wrote {N:,} ps thumbnails (24x24, from crops)" in result.out
    atlas = Atlas.open(atlas_copy)
    assert set(atlas.thumb_kinds()) == {"particle", "ps"}
    assert atlas.provenance[-1]["step"] == "thumbs" and atlas.provenance[-1]["parameters"]["mode"] == "ps"
    shown = cli("info", atlas_copy)
    assert "thumbnails" in shown.out and "24 x 24" in shown.out and "32 x 32" in shown.out


def read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_every_figure_kind_is_written_under_prismpyp_names(cli, atlas_copy, tmp_path):
    out = tmp_path / "figures"
    result = cli("figures", atlas_copy, "--layer", "umap", "--color", "label", "--kinds",
                 "scatter,thumbnails,neighbors,matrix", "--references", 2, "--colors", "-o", out, "--format", "png")
    assert result.code == 0, result.err
    names = {path.name for path in out.iterdir()}
    assert names == {"scatter_plot_umap.png", "scatter_plot_umap_no_labels.png", "thumbnail_plot_umap_particle.png",
                     "nearest_neighbors_0.png", "nearest_neighbors_1.png", "nearest_neighbors_matrix.png"}
    for name in names:
        pixels = read(out / name)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 200 and pixels.std() > 5, name
    colours = Atlas.open(atlas_copy).layer("umap_colors")
    assert {"r", "g", "b"} <= set(colours.column_names)
    assert len(np.unique(np.column_stack([colours.column(c).to_numpy() for c in "rgb"]), axis=0)) > 50


def test_dpi_sets_the_size_and_svg_pdf_are_vector(cli, atlas_copy, tmp_path):
    sizes = {}
    for dpi in (60, 120):
        cli("figures", atlas_copy, "--layer", "umap", "-o", tmp_path / str(dpi), "--format", "png", "--dpi", dpi)
        sizes[dpi] = read(tmp_path / str(dpi) / "scatter_plot_umap.png").shape[:2]
    assert abs(sizes[120][0] / sizes[60][0] - 2) < 0.1
    for fmt, start in (("svg", b"<?xml"), ("pdf", b"%PDF")):
        assert cli("figures", atlas_copy, "--layer", "umap", "-o", tmp_path / fmt, "--format", fmt).code == 0
        assert (tmp_path / fmt / f"scatter_plot_umap.{fmt}").read_bytes().startswith(start)


def test_3d_layer_gives_three_views_and_a_rotating_gif(cli, atlas_copy, tmp_path):
    result = cli("figures", atlas_copy, "--layer", "pca3d", "--color", "score", "--animate", "-o", tmp_path)
    assert result.code == 0, result.err
    assert read(tmp_path / "scatter_plot_pca3d.webp").std() > 5
    with Image.open(tmp_path / "rotation_pca3d.gif") as gif:
        assert gif.n_frames > 10


def test_neighbours_of_given_ids_are_the_nearest_in_the_original_space(cli, atlas_copy, tmp_path):
    from embedscope.pipeline import figures_atlas

    out = tmp_path / "grids"
    result = cli("figures", atlas_copy, "--layer", "umap", "--kinds", "neighbors", "--ids", "5,17", "-o", out)
    assert result.code == 0, result.err
    assert sorted(path.name for path in out.iterdir()) == ["nearest_neighbors_0.webp", "nearest_neighbors_1.webp"]
    atlas = Atlas.open(atlas_copy)
    report = figures_atlas(atlas, "umap", kinds=("neighbors",), reference_ids=("5", "17"), output=out)
    vectors = atlas.vectors().astype(np.float64)
    for row in (5, 17):
        distances = np.linalg.norm(vectors - vectors[row], axis=1)
        distances[row] = np.inf
        assert report.neighbours[row] == list(np.argsort(distances, kind="stable")[:8])
    assert atlas.provenance[-1]["parameters"]["neighbours"]["5"] == report.neighbours[5]


def test_bad_input_gives_one_line_and_leaves_the_atlas_unchanged(cli, atlas_copy, particles_atlas, tmp_path):
    bare = tmp_path / "bare.atlas"
    with Atlas.building(bare, 2) as atlas:
        atlas.append(np.random.default_rng(0).normal(size=(30, 2)))
    cli("map", bare, "--method", "pca")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    before = (atlas_copy / "atlas.json").read_text()
    cases = [
        (["figures", atlas_copy, "--layer", "nope"], ["no layer 'nope'"]),
        (["figures", atlas_copy, "--layer", "umap", "--color", "nope"], ["no column or layer 'nope'"]),
        (["figures", bare, "--layer", "pca", "--kinds", "thumbnails"], ["no thumbnails", "embedscope thumbs"]),
        (["figures", atlas_copy, "--layer", "umap", "--kinds", "thumbnails", "--thumbs", "ps"], ["no thumbnails 'ps'"]),
        (["figures", atlas_copy, "--layer", "umap", "-o", blocker / "sub"], ["cannot write figures"]),
        (["figures", atlas_copy, "--layer", "umap", "--format", "jpg"], ["--format must be one of"]),
        (["figures", atlas_copy, "--layer", "umap", "--kinds", "pie"], ["figure kinds must be among"]),
        (["figures", atlas_copy, "--layer", "umap", "--kinds", "neighbors", "--ids", "x"], ["no item with id 'x'"]),
        (["thumbs", atlas_copy, "--from", "nope"], ["no column nope"]),
        (["thumbs", atlas_copy, "--from", "micrograph", "--root", tmp_path], ["do not exist", "--root"]),
        (["thumbs", atlas_copy, "--from", "micrograph", "--root", particles_atlas.parent, "--mode", "x"], ["mode"]),
    ]
    for args, fragments in cases:
        assert_one_line_error(cli(*args), *fragments)
    assert (atlas_copy / "atlas.json").read_text() == before
