"""`train tomograms`, `embed tomograms`, `paint` and `export` on synthetic tomograms, through the real CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import mrcfile
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from embedscope.atlas import Atlas

from conftest import assert_one_line_error

torch.set_num_threads(2)
TINY = ("--epochs", 2, "--batch-size", 16, "--width", 8, "--bbox", 32, "--quiet")


@pytest.fixture(scope="module")
def trained(tomogram_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 3d-mode model trained for two epochs."""
    from embedscope.cli.main import app
    from embedscope.cli.runner import run_app

    run = tmp_path_factory.mktemp("run") / "explore"
    with pytest.raises(SystemExit) as exit_:
        run_app(app, ["train", "tomograms", str(tomogram_set / "tomograms.txt"), "-o", str(run), *map(str, TINY),
                      "--save-every", "1"])
    assert exit_.value.code == 0
    return run


def test_training_writes_milopyp_run_files(trained: Path) -> None:
    written = {path.name for path in trained.iterdir()}
    assert {"opts.txt", "log.txt", "model_last.pth", "model_1.pth", "model_2.pth"} <= written
    log = (trained / "log.txt").read_text().splitlines()
    assert len(log) == 2 and "loss" in log[0]
    assert "bbox" in (trained / "opts.txt").read_text()


def test_embed_then_paint_and_export(cli, tomogram_set: Path, trained: Path, tmp_path: Path) -> None:
    atlas_path = tmp_path / "t.atlas"
    result = cli("embed", "tomograms", tomogram_set / "tomograms.txt", "--model", trained / "model_last.pth",
                 "-o", atlas_path, "--npz", tmp_path / "all_output_info.npz", "-q")
    assert result.code == 0, result.err
    atlas = Atlas.open(atlas_path)
    table = atlas.table(["id", "tomogram", "x", "y", "z"])
    assert atlas.dim == 128 and atlas.n > 4
    assert set(table.column("tomogram").to_pylist()) == {"tomo_000", "tomo_001"}
    first = table.slice(0, 1).to_pylist()[0]
    assert first["id"] == f"{first['tomogram']}:{first['x']}:{first['y']}:{first['z']}"
    assert atlas.thumbs("patch", [0]).shape == (1, 32, 32)
    with np.load(tmp_path / "all_output_info.npz") as npz:
        assert npz["pred"].shape == (atlas.n, 128)
        np.testing.assert_allclose(npz["pred"], atlas.vectors())

    assert cli("cluster", atlas_path, "--method", "kmeans", "--k", 3, "-q").code == 0
    painted = tmp_path / "painted"
    result = cli("paint", atlas_path, "--tomograms", tomogram_set / "tomograms.txt", "--color-by", "kmeans",
                 "-o", painted, "--format", "mrc", "--blend", 0.5, "--radius", 6, "-q")
    assert result.code == 0, result.err
    with mrcfile.open(painted / "tomo_000_labels.mrc") as mrc:
        labels = mrc.data
    assert labels.shape == (64, 160, 160)
    rows = np.flatnonzero(np.array(table.column("tomogram").to_pylist()) == "tomo_000")
    codes = Atlas.open(atlas_path).layer("kmeans").column("cluster").to_numpy()
    x, y, z = (table.column(axis).to_numpy()[rows[-1]] for axis in "xyz")
    assert labels[z, y, x] == codes[rows[-1]] + 1  # the last point painted wins its own centre
    assert (painted / "tomo_001_blend_red.mrc").exists()

    chosen = int(codes[0])
    out = tmp_path / "coords.txt"
    assert cli("export", atlas_path, "--cluster", chosen, "--format", "milopyp-coords", "-o", out, "-q").code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "image_name\tx_coord\ty_coord\tz_coord"
    assert len(lines) - 1 == int(np.count_nonzero(codes == chosen))
    sql = tmp_path / "deep.parquet"
    assert cli("export", atlas_path, "--where", "z >= 30", "--format", "parquet", "-o", sql, "-q").code == 0
    exported = pq.read_table(sql)
    assert exported.num_rows == int(np.count_nonzero(table.column("z").to_numpy() >= 30))
    assert "kmeans_cluster" in exported.column_names


def test_2d3d_embedding_keeps_tilt_views(cli, tomogram_set: Path, tmp_path: Path) -> None:
    run = tmp_path / "run2d3d"
    result = cli("train", "tomograms", tomogram_set / "tomograms.txt", "-o", run, "--mode", "2d3d", *TINY)
    assert result.code == 0, result.err
    result = cli("embed", "tomograms", tomogram_set / "tomograms.txt", "--model", run / "model_last.pth",
                 "-o", tmp_path / "t.atlas", "-q")
    assert result.code == 0, result.err
    atlas = Atlas.open(tmp_path / "t.atlas")
    assert set(atlas.thumb_kinds()) == {"patch", "tilt"}
    assert atlas.provenance[-1]["parameters"]["mode"] == "2d3d"


def _copy(tomogram_set: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(tomogram_set, folder)
    return folder


def test_bad_inputs_fail_in_one_line(cli, tomogram_set: Path, trained: Path, tmp_path: Path) -> None:
    data = _copy(tomogram_set, tmp_path)
    listing = data / "tomograms.txt"
    model = trained / "model_last.pth"

    def fails(*args, expect: str) -> None:
        result = cli(*args, "-q")
        assert_one_line_error(result, expect)

    fails("embed", "tomograms", data / "nothing.txt", "--model", model, "-o", tmp_path / "a.atlas",
          expect="no such list file")
    fails("embed", "tomograms", listing, "--model", model, "-o", tmp_path / "a.atlas", "--bbox", 400,
          expect="bbox")
    fails("embed", "tomograms", listing, "--model", model, "-o", tmp_path / "a.atlas", "--threshold-std", 50,
          expect="threshold_std")
    fails("train", "tomograms", listing, "-o", tmp_path / "r", "--arch", "simsiam2d3d_18", "--mode", "3d",
          expect="2d3d")
    fails("train", "tomograms", listing, "-o", tmp_path / "r", "--batch-size", 100000, "--width", 8,
          expect="--batch_size")
    assert not (tmp_path / "a.atlas").exists()

    angles = data / "tomo_001.tlt"
    angles.write_text("\n".join(angles.read_text().splitlines()[:-3]) + "\n")
    fails("embed", "tomograms", listing, "--model", model, "-o", tmp_path / "a.atlas", "--mode", "2d3d",
          expect="--arch simsiam2d3d_18")
    fails("train", "tomograms", listing, "-o", tmp_path / "r", "--mode", "2d3d", expect="tomo_001.tlt")
    (data / "tomo_000.rec").unlink()
    fails("embed", "tomograms", listing, "--model", model, "-o", tmp_path / "a.atlas", expect="tomo_000.rec")


def test_a_trained_run_is_kept_without_resume_or_force(cli, tomogram_set: Path, trained: Path) -> None:
    before = (trained / "model_last.pth").read_bytes()
    result = cli("train", "tomograms", tomogram_set / "tomograms.txt", "-o", trained, *TINY)
    assert_one_line_error(result, "--resume", "--force")
    assert (trained / "model_last.pth").read_bytes() == before
    assert len((trained / "log.txt").read_text().splitlines()) == 2


def test_existing_atlas_is_kept_without_force(cli, tomogram_set: Path, trained: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.atlas"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    result = cli("embed", "tomograms", tomogram_set / "tomograms.txt", "--model", trained / "model_last.pth",
                 "-o", target)
    assert_one_line_error(result, "--force")
    assert (target / "keep.txt").read_text() == "mine"


def test_paint_refuses_points_outside_the_volume(cli, tomogram_set: Path, tmp_path: Path) -> None:
    from embedscope.pipeline.tomogram_atlas import write_tomogram_atlas

    atlas_path = tmp_path / "far.atlas"
    coords = np.array([[10, 10, 10], [500, 20, 20]], dtype=np.int32)
    write_tomogram_atlas(atlas_path, np.eye(2, 4, dtype=np.float32), ["tomo_000"] * 2, coords, None,
                         step="test", parameters={})
    result = cli("paint", atlas_path, "--tomograms", tomogram_set / "tomograms.txt", "--color-by", "tomogram",
                 "-o", tmp_path / "p")
    assert_one_line_error(result, "outside the tomogram")
