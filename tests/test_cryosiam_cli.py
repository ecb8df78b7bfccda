"""CryoSiam's documented commands and config, run under `embedscope cryosiam`, write files CryoSiam's readers take."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import starfile
import torch
import yaml

from embedscope.atlas import Atlas
from embedscope.datasets.instance_masks import write_demo_subtomograms

from conftest import assert_one_line_error

torch.set_num_threads(2)

REGION_COLUMNS = ["label", "area", *(f"bbox-{i}" for i in range(6)), "centroid-0", "centroid-1", "centroid-2",
                  "hull_area"]
STAR_COLUMNS = {"rlnLabel", "rlnArea", *(f"rlnBbox-{i}" for i in range(6)), "rlnCoordinateZ", "rlnCoordinateY",
                "rlnCoordinateX", "rlnClass", "rlnMicrographName"}
NAMES = ("TS_01", "TS_02_6.80Apx")


def seed_config(root: Path, **changes) -> dict:
    """The seed's example config with its paths moved under `root` and a network small enough for a CPU."""
    config = yaml.safe_load((Path(__file__).parent / "data" / "cryosiam_subtomo_embeddings.yaml").read_text())
    config.update(data_folder=str(root / "data" / "tomograms"), instances_mask_folder=str(root / "data" / "instances"),
                  log_dir=str(root / "run"), prediction_folder=str(root / "predictions"),
                  trained_model=str(root / "run" / "model" / "last.ckpt"))
    config["visualization"]["prediction_folder"] = str(root / "predictions" / "vis")
    config["min_particle_size"] = 300  # the seed's 10 would keep the synthetic debris
    config["parameters"]["data"]["patch_size"] = [32, 32, 32]
    config["parameters"]["network"].update(dim=64, pred_dim=16, num_filters=[8, 16, 16, 32])
    config["hyper_parameters"].update(max_epochs=2)
    config["clustering_kmeans"]["num_clusters"] = 4
    config["clustering_spectral"].update(num_clusters=6, estimate_num_clusters=True)
    config["visualization"]["3d_umap"] = True
    for key, value in changes.items():
        config[key] = value
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic tomograms and masks, a model trained 2 epochs, and the predictions of the seed's config."""
    root = tmp_path_factory.mktemp("cryosiam")
    write_demo_subtomograms(root / "data", n_tomograms=2, shape=(64, 160, 160), per_class=3, seed=3)
    write_config(root / "subtomo_embeddings.yaml", seed_config(root))
    return root


def test_seed_config_runs_all_four_commands(cli, project: Path) -> None:
    config = project / "subtomo_embeddings.yaml"
    predictions = project / "predictions"
    result = cli("train", "subtomograms", config, "-o", project / "run", "--device", "cpu", "-q")
    assert result.code == 0, result.err
    assert (project / "run" / "model" / "last.ckpt").is_file()

    result = cli("cryosiam", "simsiam_embeddings_predict", f"--config_file={config}", "-q")
    assert result.code == 0, result.err
    everything = pd.read_csv(project / "data" / "particles.csv")
    truth = everything[everything["class"] != "debris"]  # the size bound drops the debris
    assert (everything["class"] == "debris").any()
    for name in NAMES:
        with h5py.File(predictions / f"{name}_embeds.h5", "r") as file:
            embeds = file["embeddings"][()]
        with h5py.File(predictions / f"{name}_instance_labels.h5", "r") as file:
            labels = file["labels"][()]
        regions = pd.read_csv(predictions / f"{name}_instance_regions.csv")
        particles = truth[truth.tomogram == name]
        assert list(regions.columns) == REGION_COLUMNS
        assert embeds.shape == (64, len(particles)) and embeds.dtype == np.float32
        assert np.allclose(np.linalg.norm(embeds, axis=0), 1.0, atol=1e-4)  # contrastive: normalised predictions
        assert sorted(labels.tolist()) == sorted(particles.label.tolist()) == sorted(regions.label.tolist())
        assert (regions.hull_area >= regions.area).all()
    atlas = Atlas.open(predictions / "embeddings.atlas")
    assert atlas.n == len(truth) and set(atlas.table(["tomogram"]).column(0).to_pylist()) == set(NAMES)
    assert "patch" in atlas.thumb_kinds()

    result = cli("cryosiam", "simsiam_embeddings_kmeans_clustering", f"--config_file={config}", "-q")
    assert result.code == 0, result.err
    with h5py.File(predictions / "kmeans_clusters.h5", "r") as file:
        clusters, centers = file["clusters"][()], file["centers"][()]
    assert clusters.shape == (len(truth),) and set(clusters) <= {1, 2, 3, 4} and centers.shape == (4, 64)
    for name in NAMES:
        star = starfile.read(predictions / f"{name}_instance_regions_kmeans_clustered.star")
        table = pd.read_csv(predictions / f"{name}_instance_regions_kmeans_clustered.csv")
        with h5py.File(predictions / f"{name}_clusters_kmeans.h5", "r") as file:
            predicted = file["predictions"][()]
        assert STAR_COLUMNS <= set(star.columns)
        assert star.rlnClass.tolist() == table.semantic_class.tolist() == predicted.tolist()
        assert set(star.rlnMicrographName.astype(str)) == {name}
        assert np.allclose(star.rlnCoordinateZ, table["centroid-0"]) and np.allclose(star.rlnCoordinateX,
                                                                                    table["centroid-2"])
    kmeans_star = (predictions / f"{NAMES[0]}_instance_regions_kmeans_clustered.star").read_bytes()

    result = cli("cryosiam", "simsiam_embeddings_spectral_clustering", f"--config_file={config}", "-q")
    assert result.code == 0, result.err
    with h5py.File(predictions / "spectral_clusters.h5", "r") as file:
        spectral = file["clusters"][()]
    assert 2 <= len(set(spectral)) <= 6 and set(spectral) <= set(range(1, 7))
    assert (predictions / f"{NAMES[0]}_instance_regions_spectral_clustered.star").is_file()
    assert (predictions / f"{NAMES[0]}_instance_regions_kmeans_clustered.star").read_bytes() == kmeans_star

    result = cli("cryosiam", "simsiam_visualize_embeddings", f"--config_file={config}", "-q")
    assert result.code == 0, result.err
    atlas = Atlas.open(predictions / "embeddings.atlas")
    assert {"umap", "umap3d", "kmeans", "spectral"} <= set(atlas.layers())
    pictures = list((predictions / "vis").glob("*.png"))
    assert pictures and all(picture.stat().st_size > 1000 for picture in pictures)
    data = pd.read_csv(predictions / "vis" / f"{NAMES[1]}_umap_data.csv")
    assert len(data) == (truth.tomogram == NAMES[1]).sum() and {"x", "y", "label"} <= set(data.columns)

    out = project / "selection.star"
    result = cli("export", predictions / "embeddings.atlas", "--format", "star", "-o", out, "--cluster", "0",
                 "--layer", "kmeans", "-q")
    assert result.code == 0, result.err
    blocks = starfile.read(out, always_dict=True)
    particles = blocks["particles"]
    assert {"optics", "particles"} <= set(blocks)
    assert {"rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ", "rlnMicrographName",
            "rlnClassNumber"} <= set(particles.columns)
    # the layer counts clusters from 0, as every embedscope layer; RELION's class numbers (and CryoSiam's files) from 1
    assert len(particles) == (clusters == 1).sum() and set(particles.rlnClassNumber) == {1}

    # another distance makes the map again rather than reusing the euclidean one
    cosine = seed_config(project)
    cosine["visualization"]["distance"] = "cosine"
    result = cli("cryosiam", "simsiam_visualize_embeddings",
                 f"--config_file={write_config(project / 'cosine.yaml', cosine)}", "-q")
    assert result.code == 0, result.err
    assert Atlas.open(predictions / "embeddings.atlas").layers()["umap"]["params"]["metric"] == "cosine"


def test_repredicting_one_tomogram_updates_atlas_and_clusters(cli, project: Path) -> None:
    config = project / "subtomo_embeddings.yaml"
    predictions = project / "predictions"
    if not (predictions / "kmeans_clusters.h5").is_file():
        pytest.skip("needs the predictions of test_seed_config_runs_all_four_commands")
    before = Atlas.open(predictions / "embeddings.atlas").provenance[-1]["time"]
    clusters_before = (predictions / "kmeans_clusters.h5").stat().st_mtime_ns
    other = (predictions / f"{NAMES[1]}_embeds.h5").stat().st_mtime_ns
    result = cli("cryosiam", "simsiam_embeddings_predict", f"--config_file={config}", "--filename",
                 f"{NAMES[0]}.mrc", "-q")
    assert result.code == 0, result.err
    atlas = Atlas.open(predictions / "embeddings.atlas")
    assert [entry for entry in atlas.provenance if entry["step"] == "subtomogram-atlas"][-1]["time"] >= before
    assert (predictions / "kmeans_clusters.h5").stat().st_mtime_ns > clusters_before
    assert (predictions / f"{NAMES[1]}_embeds.h5").stat().st_mtime_ns == other  # the other one was left alone
    # a plain rerun finds everything up to date and rewrites nothing
    embeds = (predictions / f"{NAMES[0]}_embeds.h5").stat().st_mtime_ns
    clusters = (predictions / "kmeans_clusters.h5").stat().st_mtime_ns
    result = cli("cryosiam", "simsiam_embeddings_predict", f"--config_file={config}")
    assert result.code == 0 and "2 up to date" in result.out, result
    assert (predictions / f"{NAMES[0]}_embeds.h5").stat().st_mtime_ns == embeds
    assert (predictions / "kmeans_clusters.h5").stat().st_mtime_ns == clusters  # nothing changed to recluster


def test_misspelt_key_names_the_nearest(cli, project: Path, tmp_path: Path) -> None:
    config = seed_config(project)
    config["clustering_kmeans"]["num_cluster"] = config["clustering_kmeans"].pop("num_clusters")
    path = write_config(tmp_path / "bad.yaml", config)
    result = cli("cryosiam", "simsiam_embeddings_kmeans_clustering", f"--config_file={path}")
    assert_one_line_error(result, "clustering_kmeans.num_cluster", "clustering_kmeans.num_clusters")


def test_checkpoint_that_does_not_fit_the_config(cli, project: Path, tmp_path: Path) -> None:
    if not (project / "run" / "model" / "last.ckpt").is_file():
        pytest.skip("needs the model of test_seed_config_runs_all_four_commands")
    config = seed_config(project, prediction_folder=str(tmp_path / "out"))
    config["parameters"]["network"]["dim"] = 128
    path = write_config(tmp_path / "dim.yaml", config)
    result = cli("cryosiam", "simsiam_embeddings_predict", f"--config_file={path}")
    assert_one_line_error(result, "dim")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*_embeds.h5"))


def test_bad_masks_and_sizes(cli, project: Path, tmp_path: Path) -> None:
    if not (project / "run" / "model" / "last.ckpt").is_file():
        pytest.skip("needs the model of test_seed_config_runs_all_four_commands")
    data = tmp_path / "data"
    shutil.copytree(project / "data", data)
    config = seed_config(project, data_folder=str(data / "tomograms"), instances_mask_folder=str(data / "instances"),
                         prediction_folder=str(tmp_path / "out"))
    # one mask of the wrong shape: a one-line error naming both shapes, nothing written for it
    with h5py.File(data / "instances" / f"{NAMES[0]}_instance_preds.h5", "w") as file:
        file.create_dataset("instances", data=np.zeros((10, 20, 30), np.int32))
    path = write_config(tmp_path / "shape.yaml", config)
    result = cli("cryosiam", "simsiam_embeddings_predict", f"--config_file={path}", "--filename", f"{NAMES[0]}.mrc")
    assert_one_line_error(result, "(10, 20, 30)")
    assert not (tmp_path / "out" / f"{NAMES[0]}_embeds.h5").exists()
    # no region inside the size bounds anywhere: said per tomogram, exit 1
    path = write_config(tmp_path / "big.yaml", {**config, "min_particle_size": 10**7,
                                                 "test_files": [f"{NAMES[1]}.mrc"]})
    result = cli("cryosiam", "simsiam_embeddings_predict", f"--config_file={path}")
    assert result.code == 1 and NAMES[1] in result.err and "Traceback" not in result.err
    # a patch larger than the tomogram
    big = seed_config(project, prediction_folder=str(tmp_path / "out"))
    big["parameters"]["data"]["patch_size"] = [64, 256, 256]
    result = cli("cryosiam", "simsiam_embeddings_predict", f"--config_file={write_config(tmp_path / 'p.yaml', big)}")
    assert_one_line_error(result, "patch")


def test_star_centres_instead_of_masks(cli, project: Path, tmp_path: Path) -> None:
    if not (project / "run" / "model" / "last.ckpt").is_file():
        pytest.skip("needs the model of test_seed_config_runs_all_four_commands")
    truth = pd.read_csv(project / "data" / "particles.csv")
    truth = truth[truth["class"] != "debris"]
    star = tmp_path / "particles.star"
    optics = pd.DataFrame({"rlnOpticsGroup": [1], "rlnOpticsGroupName": ["opticsGroup1"], "rlnImagePixelSize": [10.0]})
    particles = pd.DataFrame({"rlnMicrographName": [f"{name}.tomostar" for name in truth.tomogram],
                              "rlnCoordinateX": truth.x, "rlnCoordinateY": truth.y, "rlnCoordinateZ": truth.z,
                              "rlnOpticsGroup": 1})
    starfile.write({"optics": optics, "particles": particles}, star)
    config = seed_config(project, prediction_folder=str(tmp_path / "out"), particles_star=str(star))
    path = write_config(tmp_path / "star.yaml", config)
    result = cli("cryosiam", "simsiam_embeddings_predict", f"--config_file={path}", "-q")
    assert result.code == 0, result.err
    regions = pd.read_csv(tmp_path / "out" / f"{NAMES[1]}_instance_regions.csv")
    mine = truth[truth.tomogram == NAMES[1]]
    assert len(regions) == len(mine)
    assert np.allclose(np.sort(regions["centroid-2"]), np.sort(mine.x))
    # fewer particles in the same STAR: predicted again, not taken as up to date
    starfile.write({"optics": optics, "particles": particles.iloc[::2]}, star, overwrite=True)
    result = cli("cryosiam", "simsiam_embeddings_predict", f"--config_file={path}", "-q")
    assert result.code == 0, result.err
    regions = pd.read_csv(tmp_path / "out" / f"{NAMES[1]}_instance_regions.csv")
    assert len(regions) == len(particles.iloc[::2][particles.iloc[::2].rlnMicrographName.str.startswith(NAMES[1])])
    assert Atlas.open(tmp_path / "out" / "embeddings.atlas").n == len(particles.iloc[::2])
    # a STAR without coordinates
    starfile.write({"particles": pd.DataFrame({"rlnMicrographName": ["TS_01.mrc"], "rlnAngleRot": [0.0]})}, star,
                   overwrite=True)
    result = cli("cryosiam", "simsiam_embeddings_predict", f"--config_file={path}")
    assert_one_line_error(result, "rlnCoordinate")


def test_commands_have_help(cli) -> None:
    for command in ("simsiam_embeddings_predict", "simsiam_visualize_embeddings",
                    "simsiam_embeddings_kmeans_clustering", "simsiam_embeddings_spectral_clustering"):
        result = cli("cryosiam", command, "--help")
        assert result.code == 0 and "--config_file" in result.out
