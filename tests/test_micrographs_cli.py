"""`train micrographs`, `embed micrographs` and `embedscope prismpyp ...` on synthetic micrographs, via the real CLI.

The seed's three eval2d commands run verbatim (in a folder laid out as its docs assume), and what they write is
read back the way prismPYP's users read it: pandas on the Parquet, torch on embeddings.pth.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import torch

from embedscope.atlas import Atlas
from embedscope.datasets import write_quality_micrographs

from conftest import assert_one_line_error

torch.set_num_threads(2)
TINY = ("--arch", "resnet18", "--dim", 32, "--pred-dim", 16, "--epochs", 2, "--batch-size", 8, "--input-size", 64,
        "--quiet")
PRISMPYP_TINY = ("--arch", "resnet18", "--dim", "32", "--pred-dim", "16", "--epochs", "1", "--batch-size", "8",
                 "--workers", "2", "--seed", "3", "--dist-url", "tcp://localhost:10001")


@pytest.fixture(scope="module")
def micrographs(tmp_path_factory: pytest.TempPathFactory):
    """Four synthetic micrographs of each artefact class, 384 px, with prismPYP's metadata folder."""
    return write_quality_micrographs(tmp_path_factory.mktemp("mics"), per_class=4, side=384, seed=1)


@pytest.fixture(scope="module")
def trained(micrographs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real-domain model trained for two epochs on the MRC files."""
    from embedscope.cli.main import app
    from embedscope.cli.runner import run_app

    run = tmp_path_factory.mktemp("run") / "real"
    with pytest.raises(SystemExit) as exit_:
        run_app(app, ["train", "micrographs", str(micrographs.micrographs[0].parent), "-o", str(run),
                      "--metadata", str(micrographs.metadata), *map(str, TINY)])
    assert exit_.value.code == 0
    return run


def test_training_keeps_prismpyps_checkpoints(trained: Path) -> None:
    checkpoints = {path.name for path in (trained / "checkpoints").iterdir()}
    assert {"model_best.pth.tar", "model_last.pth.tar", "model_lowest_collapse.pth.tar"} <= checkpoints
    saved = torch.load(trained / "checkpoints" / "model_last.pth.tar")  # as prismPYP's eval2d and train load it
    assert saved["epoch"] == 2 and saved["arch"] == "resnet18" and "optimizer" in saved
    assert any(key.startswith("module.backbone.4.0.conv1") for key in saved["state_dict"])
    assert len((trained / "views" / "names.txt").read_text().splitlines()) == 24


def test_training_refuses_to_overwrite_a_run(cli, micrographs, trained: Path) -> None:
    before = (trained / "checkpoints" / "model_last.pth.tar").read_bytes()
    result = cli("train", "micrographs", micrographs.micrographs[0].parent, "-o", trained, *TINY)
    assert_one_line_error(result, "--resume")
    assert (trained / "checkpoints" / "model_last.pth.tar").read_bytes() == before


def test_embed_writes_an_atlas_with_names_metadata_and_thumbnails(cli, micrographs, trained: Path,
                                                                  tmp_path: Path) -> None:
    atlas_path = tmp_path / "m.atlas"
    result = cli("embed", "micrographs", micrographs.metadata / "all_micrographs_list.micrographs",
                 "--model", trained / "checkpoints" / "model_best.pth.tar", "--metadata", micrographs.metadata,
                 "--search", micrographs.micrographs[0].parent, "-o", atlas_path, "--embeddings-pth",
                 tmp_path / "embeddings.pth", "--batch-size", 5, "-q")
    assert result.code == 0, result.err
    atlas = Atlas.open(atlas_path)
    listed = (micrographs.metadata / "all_micrographs_list.micrographs").read_text().split()
    table = atlas.table(["id", "micrograph_name", "rel_ice_thickness", "height"])
    assert table.column("id").to_pylist() == listed  # the list's order is kept
    assert atlas.dim == 32 and atlas.metric == "cosine"
    assert table.column("height").to_pylist() == [384] * 24
    truth = pd.read_csv(micrographs.metadata / "micrograph_metadata.csv").set_index("micrograph_name")
    assert np.allclose(table.column("rel_ice_thickness").to_numpy(), truth.loc[listed, "rel_ice_thickness"])
    assert atlas.thumbs("mg", [0]).shape == atlas.thumbs("ps", [0]).shape == (1, 128, 128)
    saved = torch.load(tmp_path / "embeddings.pth", map_location="cpu")
    np.testing.assert_allclose(saved.numpy(), atlas.vectors(), rtol=1e-6)


def test_a_killed_embedding_resumes_where_it_stopped(micrographs, trained: Path, tmp_path: Path) -> None:
    atlas_path = tmp_path / "r.atlas"
    command = [sys.executable, "-m", "embedscope", "embed", "micrographs", str(micrographs.micrographs[0].parent),
               "--model", str(trained / "checkpoints" / "model_best.pth.tar"), "-o", str(atlas_path),
               "--save-every", "2", "--batch-size", "2", "--workers", "0", "-q"]
    process = subprocess.Popen(command)
    progress = tmp_path / ".r.atlas.embedding"
    deadline = time.monotonic() + 120
    while not list(progress.glob("chunk-*.npz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not atlas_path.exists()  # the Atlas appears whole or not at all
    assert 1 <= len(list(progress.glob("chunk-*.npz"))) < 12
    finished = subprocess.run(command[:-1], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert finished.returncode == 0, finished.stderr
    assert "resuming:" in finished.stderr
    resumed = Atlas.open(atlas_path)
    fresh = tmp_path / "fresh.atlas"
    again = subprocess.run([*command[:9], str(fresh), *command[10:]], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert resumed.table(["id"]).equals(Atlas.open(fresh).table(["id"]))
    np.testing.assert_allclose(resumed.vectors(), Atlas.open(fresh).vectors(), atol=1e-5)
    assert not progress.exists()


def test_unreadable_and_blank_micrographs_are_left_out_with_a_warning(cli, micrographs, trained: Path,
                                                                      tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in micrographs.micrographs[:5]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.mrc").write_bytes(micrographs.micrographs[5].read_bytes()[:3000])
    with mrcfile.new(folder / "blank.mrc") as mrc:
        mrc.set_data(np.zeros((256, 256), np.float32))
    result = cli("embed", "micrographs", folder, "--model", trained / "checkpoints" / "model_best.pth.tar",
                 "-o", tmp_path / "mixed.atlas")
    assert result.code == 0, result.err
    assert "broken.mrc" in result.err and "blank" in result.err
    assert "2 sizes" in result.err and "resampled to 512 px" in result.err  # one note for mixed sizes
    assert Atlas.open(tmp_path / "mixed.atlas").n == 5
    assert "2 left out" in result.out


def test_nothing_readable_is_one_error_and_writes_nothing(cli, trained: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.mrc").write_bytes(b"\0" * 100)
    result = cli("embed", "micrographs", folder, "--model", trained / "checkpoints" / "model_best.pth.tar",
                 "-o", tmp_path / "bad.atlas", "-q")
    assert_one_line_error(result, "could be read")
    assert not (tmp_path / "bad.atlas").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(cli("embed", "micrographs", empty, "--model", trained / "checkpoints" /
                              "model_best.pth.tar", "-o", tmp_path / "e.atlas"), "empty")


def test_a_checkpoint_of_another_architecture_names_the_keys(cli, micrographs, trained: Path, tmp_path: Path) -> None:
    saved = torch.load(trained / "checkpoints" / "model_best.pth.tar", map_location="cpu", weights_only=False)
    saved["state_dict"] = {key: value for key, value in saved["state_dict"].items() if ".1.conv2" not in key}
    torch.save(saved, tmp_path / "damaged.pth.tar")
    result = cli("embed", "micrographs", micrographs.micrographs[0].parent, "--model", tmp_path / "damaged.pth.tar",
                 "-o", tmp_path / "x.atlas")
    assert_one_line_error(result, "conv2")
    assert not (tmp_path / "x.atlas").exists()


@pytest.fixture(scope="module")
def prismpyp_folder(micrographs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder as prismPYP's docs assume: metadata/ and output_dir/{real,fft} trained by `prismpyp train`."""
    from embedscope.cli.main import app
    from embedscope.cli.runner import run_app

    folder = tmp_path_factory.mktemp("prismpyp")
    os.symlink(micrographs.metadata, folder / "metadata")
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        for domain, extra in (("real", []), ("fft", ["--use-fft"])):
            with pytest.raises(SystemExit) as exit_:
                run_app(app, ["prismpyp", "train", "--output-path", f"output_dir/{domain}", "--metadata-path",
                              "metadata", *PRISMPYP_TINY, *extra, "-q"])
            assert exit_.value.code == 0
    finally:
        os.chdir(cwd)
    return folder


SEED_EVAL2D = [
    "prismpyp eval2d --evaluate --output-path output_dir/real --metadata-path metadata "
    "--feature-extractor-weights output_dir/real/checkpoints/model_best.pth.tar --n-clusters 10 --num-neighbors 10",
    "prismpyp eval2d --evaluate --output-path output_dir/fft --metadata-path metadata "
    "--feature-extractor-weights output_dir/fft/checkpoints/model_best.pth.tar --n-clusters 10 --num-neighbors 10 "
    "--use-fft",
    "prismpyp eval2d --evaluate --output-path output_dir/real --metadata-path metadata "
    "--embedding-path output_dir/real/inference/embeddings.pth "
    "--feature-extractor-weights output_dir/real/checkpoints/model_best.pth.tar --n-clusters 10 --num-neighbors 10",
]


@pytest.fixture(scope="module")
def evaluated(prismpyp_folder: Path) -> Path:
    """The folder after the seed's three eval2d commands, run verbatim (each must succeed)."""
    from embedscope.cli.main import app
    from embedscope.cli.runner import run_app

    cwd = Path.cwd()
    os.chdir(prismpyp_folder)
    try:
        for line in SEED_EVAL2D:
            with pytest.raises(SystemExit) as exit_:
                run_app(app, [*line.split(), "-q"])
            assert exit_.value.code == 0, line
    finally:
        os.chdir(cwd)
    return prismpyp_folder


def test_the_seeds_eval2d_commands_write_prismpyps_files(evaluated: Path) -> None:
    prismpyp_folder = evaluated
    for domain, kind in (("real", "mg"), ("fft", "ps")):
        inference = prismpyp_folder / "output_dir" / domain / "inference"
        written = {path.name for path in inference.iterdir()}
        assert {"embeddings.pth", "data_for_export.parquet", "scatter_plot_PCA.webp", "scatter_plot_UMAP.webp",
                "scatter_plot_UMAP_no_labels.webp", "thumbnail_plot_umap_mg.webp", "thumbnail_plot_umap_ps.webp",
                "nearest_neighbors_1.webp", "nearest_neighbors_matrix.webp", "embeddings.atlas"} <= written, written
        table = pd.read_parquet(inference / "data_for_export.parquet")
        assert list(table.columns[:5]) == ["cluster_id", "umap_fit_x", "umap_fit_y", "image_thumbnails",
                                           "micrograph_name"]
        assert table.columns[-1] == "embeddings" and "rel_ice_thickness" in table.columns
        assert len(table) == 24 and table["cluster_id"].nunique() <= 10
        assert np.allclose(np.linalg.norm(np.stack(table["embeddings"].to_numpy()), axis=1), 1, atol=1e-5)
        vectors = torch.load(inference / "embeddings.pth", map_location="cpu")
        assert tuple(vectors.shape) == (24, 32)
        assert kind in Atlas.open(inference / "embeddings.atlas").thumb_kinds()


def test_intersect_and_eval3d(cli, evaluated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(evaluated)
    real = pd.read_parquet("output_dir/real/inference/data_for_export.parquet")
    fft = pd.read_parquet("output_dir/fft/inference/data_for_export.parquet")
    good_real, good_fft = sorted(real["cluster_id"].unique())[:4], sorted(fft["cluster_id"].unique())[:4]
    result = cli("prismpyp", "intersect", "--real-parquet-file", "output_dir/real/inference/data_for_export.parquet",
                 "--fft-parquet-file", "output_dir/fft/inference/data_for_export.parquet",
                 "--good-real-classes", *map(int, good_real), "--good-fft-classes", *map(int, good_fft),
                 "--output-folder", "selected", "--link-type", "soft", "--webp-path", "metadata/webp")
    assert result.code == 0, result.err
    expected = set(real[real["cluster_id"].isin(good_real)]["micrograph_name"]) & \
        set(fft[fft["cluster_id"].isin(good_fft)]["micrograph_name"])
    common = [line.removesuffix(".webp") for line in Path("selected/files_in_common.txt").read_text().split()]
    assert set(common) == expected
    assert len(pd.read_parquet("selected/intersection.parquet")) == len(expected)
    assert all((Path("selected/files") / f"{name}.webp").is_symlink() for name in common)

    result = cli("prismpyp", "eval3d", "--evaluate", "--output-path", "output_dir/real", "--metadata-path",
                 "metadata", "--embedding-path", "output_dir/real/inference/embeddings.pth", "--n-clusters", "5",
                 "--num-neighbors", "8", "--no-serve", "--multiprocessing-distributed")
    assert result.code == 0, result.err
    assert "ignored" in result.err
    atlas = Atlas.open("output_dir/real/inference/embeddings.atlas")
    assert {"x", "y", "z"} <= set(atlas.layer("umap3d").column_names)
    assert "umap_fit_z" in pd.read_parquet("output_dir/real/inference/data_for_export.parquet").columns


def test_prismpyp_bad_input(cli, evaluated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(evaluated)
    assert_one_line_error(cli("prismpyp", "eval2d", "--evaluate", "--output-path", tmp_path / "o",
                              "--metadata-path", tmp_path / "nowhere", "--embedding-path",
                              "output_dir/real/inference/embeddings.pth"), "metadata folder")
    assert_one_line_error(cli("prismpyp", "eval2d", "--evaluate", "--output-path", tmp_path / "o",
                              "--metadata-path", "metadata"), "--feature-extractor-weights")
    assert_one_line_error(cli("prismpyp", "eval2d", "--evaluate", "--output-path", tmp_path / "o",
                              "--metadata-path", "metadata", "--embedding-path",
                              "output_dir/real/inference/embeddings.pth", "--n-clusters", "500"), "--n-clusters")
    assert_one_line_error(cli("prismpyp", "eval2d", "--output-path", tmp_path / "o", "--metadata-path", "metadata",
                              "--feature-extractor-weights", "output_dir/fft/checkpoints/model_best.pth.tar",
                              "--n-clusters", "4"),
                          "--use-fft")
