"""MiLoPYP's documented command lines, run under `embedscope milopyp`, write MiLoPYP's files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from conftest import assert_one_line_error

torch.set_num_threads(2)


@pytest.fixture
def project(tomogram_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A MiLoPYP working folder: the list in data/, tomograms in sample_data/, run from its root."""
    shutil.copytree(tomogram_set, tmp_path / "sample_data")
    (tmp_path / "data").mkdir()
    listing = (tomogram_set / "tomograms.txt").read_text().splitlines()
    rows = [listing[0]] + ["\t".join(f"sample_data/{field}" if index else field
                                     for index, field in enumerate(line.split("\t"))) for line in listing[1:]]
    (tmp_path / "data" / "sample_train_explore_img.txt").write_text("\n\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("task, arch", [("simsiam3d", "simsiam2d_18"), ("simsiam2d3d", "simsiam2d3d_18")])
def test_documented_commands_write_milopyp_files(cli, project: Path, task: str, arch: str) -> None:
    run = project / "exp" / task / "test_sample"
    train = (f"milopyp train {task} --num_epochs 2 --exp_id test_sample --bbox 36 --dataset {task} --arch {arch} "
             "--lr 1e-3 --train_img_txt sample_train_explore_img.txt --batch_size 16 --val_intervals 1 --save_all "
             "--gauss 0.8 --dog 3,5 --width 8 -q")
    result = cli(*train.split())
    assert result.code == 0, result.err
    assert {"opts.txt", "log.txt", "model_1.pth", "model_2.pth", "model_last.pth"} <= {p.name for p in run.iterdir()}

    test = (f"milopyp test {task} --exp_id test_sample --bbox 36 --dataset {task} --arch {arch} "
            f"--test_img_txt sample_train_explore_img.txt --load_model exp/{task}/test_sample/model_2.pth "
            "--gauss 0.8 --dog 3,5 -q")
    result = cli(*test.split())
    assert result.code == 0, result.err
    with np.load(run / "all_output_info.npz") as npz:
        keys = set(npz.files)
        proj, pred, names, coords, subvol = (npz[key] for key in ("proj", "pred", "name", "coords", "subvol"))
        tilt = npz["subvols_2d"] if "subvols_2d" in keys else None
    n = len(pred)
    assert keys == {"proj", "pred", "name", "coords", "subvol"} | ({"subvols_2d"} if task == "simsiam2d3d" else set())
    assert proj.dtype == pred.dtype == np.float32 and pred.shape == proj.shape == (n, 128)
    assert names.dtype.kind == "U" and set(names) == {"tomo_000", "tomo_001"}
    assert coords.dtype == np.int32 and coords.shape == (n, 3)
    assert subvol.dtype == np.float32 and subvol.shape == (n, 1, 36, 36)
    if tilt is not None:
        assert tilt.shape == (n, 1, 36, 36) and tilt.dtype == np.float32

    plot = (f"milopyp plot2d --input exp/{task}/test_sample/all_output_info.npz --n_cluster 3 --num_neighbor 10 "
            f"--mode umap --path exp/{task}/test_sample/ --min_dist_vis 1.3e-3 -q")
    result = cli(*plot.split())
    assert result.code == 0, result.err
    for name in ("2d_visualization_out.webp", "2d_visualization_labels.webp", "embeddings.atlas"):
        assert (run / name).exists()
    colors = np.load(run / "all_colors.npy")
    assert colors.shape == (n, 3) and colors.dtype == np.uint8
    assert len(list((run / "imgs").glob("*.png"))) == n
    frame = pd.read_parquet(run / "interactive_info_parquet.gzip")
    assert list(frame.columns) == ["name", "coord", "embeddings", "label", "image"]
    assert frame["label"].dtype == np.int64 and frame["label"].nunique() <= 3
    assert list(frame["coord"][0]) == [str(value) for value in coords[0]]
    np.testing.assert_allclose(np.stack(frame["embeddings"]), pred)
    assert frame["image"][5] == "http://localhost:7000/imgs/5.png"

    heat = (f"milopyp visualize3d --input exp/{task}/test_sample/all_output_info.npz "
            f"--color exp/{task}/test_sample/all_colors.npy --dir_simsiam exp/{task}/test_sample/ "
            "--rec_dir sample_data/ -q")
    result = cli(*heat.split())
    assert result.code == 0, result.err
    grey, hot = np.load(run / "tomo_000_rec3d.npy"), np.load(run / "tomo_000_hm3d_simsiam.npy")
    assert grey.shape == hot.shape == (64, 160, 160, 3) and hot.dtype == np.uint8
    x, y, z = coords[list(names).index("tomo_000")]
    assert hot[z, y, x].any()

    selection = frame[frame["label"] == frame["label"][0]]
    export = project / "exported"
    export.mkdir()
    selection.to_parquet(export / "2023-10-08_19-44-41.parquet")
    result = cli("milopyp", "coords", "--input", export, "--output", "training_coordinates.txt", "--if_double")
    assert result.code == 0, result.err
    lines = (project / "training_coordinates.txt").read_text().splitlines()
    assert lines[0] == "image_name\tx_coord\ty_coord\tz_coord"
    first = selection.iloc[0]
    assert lines[1] == f"{first['name']}\t{first['coord'][0]}\t{first['coord'][1]}\t{float(first['coord'][2]) * 2}"
    assert len(lines) == len(selection) + 1


def test_compat_errors_are_one_line(cli, project: Path) -> None:
    result = cli("milopyp", "train", "simsiam2d3d", "--dataset", "simsiam3d", "--train_img_txt",
                 "sample_train_explore_img.txt")
    assert_one_line_error(result, "--dataset simsiam2d3d")
    result = cli("milopyp", "test", "simsiam3d", "--test_img_txt", "sample_train_explore_img.txt",
                 "--load_model", "exp/none.pth")
    assert_one_line_error(result, "exp/none.pth")
    result = cli("milopyp", "plot2d", "--input", "missing.npz", "--n_cluster", 3, "--num_neighbor", 10,
                 "--path", "out")
    assert_one_line_error(result, "missing.npz")
    assert not Path("out").exists()


def test_plot2d_reads_an_npz_written_by_milopyp(cli, tmp_path: Path) -> None:
    """MiLoPYP's own npz: numeric image names (int64, as pandas read them), no proj, normalised patches."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 128)) * 4
    pred = np.concatenate([centre + rng.normal(size=(40, 128)) for centre in centres]).astype(np.float32)
    names = np.repeat(np.array([10304, 10305, 10306]), 40)
    coords = rng.integers(20, 200, size=(120, 3)).astype(np.int32)
    subvol = rng.normal(size=(120, 1, 36, 36)).astype(np.float32)
    np.savez(tmp_path / "all_output_info.npz", pred=pred, name=names, coords=coords, subvol=subvol)
    out = tmp_path / "plots"
    result = cli("milopyp", "plot2d", "--input", tmp_path / "all_output_info.npz", "--n_cluster", 3,
                 "--num_neighbor", 15, "--mode", "tsne", "--path", out, "--save_out_img", 0, "-q")
    assert result.code == 0, result.err
    frame = pd.read_parquet(out / "interactive_info_parquet.gzip")
    assert frame["name"].tolist()[:2] == ["10304", "10304"]
    assert not (out / "imgs").exists()
    assert adjusted_rand_score(np.repeat([0, 1, 2], 40), frame["label"]) > 0.9
