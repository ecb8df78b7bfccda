"""CryoSiam's config and files: the documented example config, refusals naming the key, and outputs read back
the way CryoSiam's own scripts read them (h5py, pandas, csv, starfile); particle centres from STAR and CSV."""

from __future__ import annotations

import csv
import string
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import starfile
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedscope.errors import InputError, ParameterError, VectorError
from embedscope.formats.cryosiam_config import read_cryosiam_config, tomogram_stem
from embedscope.formats.cryosiam_files import (
    centres_to_voxels,
    read_embeds_h5,
    read_instance_labels_h5,
    read_particle_centres,
    read_regions_csv,
    write_cluster_centres_h5,
    write_clustered_regions,
    write_embeds_h5,
    write_instance_labels_h5,
    write_predictions_h5,
    write_regions_csv,
)
from embedscope.formats.star import write_particles_star

FIXTURES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# The example of CryoSiam's documentation (seeds/cryosiam-subtomo-embeddings.md), verbatim.
SEED_YAML = (Path(__file__).parent / "data" / "cryosiam_subtomo_embeddings.yaml").read_text()

# Every key, written out independently of the reader: CryoSiam's reference tables plus the training keys,
# CryoSiam's own test-config keys and embedscope's extras.
ALL_KEYS = [
    "data_folder", "instances_mask_folder", "log_dir", "prediction_folder", "trained_model", "contrastive",
    "file_extension", "test_files", "train_files", "clustering_files", "visualization_files", "min_particle_size",
    "max_particle_size", "masking_type", "expand_labels", "instances", "instances.min_center_distance",
    "instances.max_center_distance", "clustering_kmeans", "clustering_kmeans.num_clusters",
    "clustering_kmeans.visualization", "clustering_spectral", "clustering_spectral.num_clusters",
    "clustering_spectral.estimate_num_clusters", "clustering_spectral.visualization", "visualization",
    "visualization.prediction_folder", "visualization.distance", "visualization.pca_components",
    "visualization.visualization_suffix", "visualization.visualize_umap", "visualization.3d_umap",
    "visualization.visualize_3d_mask", "visualization.3d_mask_extension", "parameters", "parameters.gpu_devices",
    "parameters.data", "parameters.data.patch_size", "parameters.data.patch_overlap", "parameters.data.min",
    "parameters.data.max", "parameters.data.mean", "parameters.data.std", "parameters.network",
    "parameters.network.spatial_dims", "parameters.network.in_channels", "parameters.network.dim",
    "parameters.network.pred_dim", "parameters.network.block_type", "parameters.network.num_layers",
    "parameters.network.num_filters", "parameters.network.no_max_pool", "hyper_parameters",
    "hyper_parameters.batch_size", "hyper_parameters.max_epochs", "hyper_parameters.learning_rate",
    "hyper_parameters.weight_decay", "hyper_parameters.seed", "seed", "particles_star", "particles_csv", "workers",
]
SECTIONS = ["", *(key for key in ALL_KEYS if any(other.startswith(key + ".") for other in ALL_KEYS))]


def seed_config() -> dict:
    return yaml.safe_load(SEED_YAML)


def write_config(tmp_path: Path, mapping: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(mapping))
    return path


def with_key(mapping: dict, dotted: str, value: object) -> dict:
    """`mapping` with `dotted` set to `value`, creating sections on the way."""
    *sections, last = dotted.split(".")
    level = mapping
    for section in sections:
        if not isinstance(level.get(section), dict):
            level[section] = {}
        level = level[section]
    level[last] = value
    return mapping


def refused(path: Path, error: type = ParameterError) -> str:
    with pytest.raises(error) as caught:
        read_cryosiam_config(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- the config
def test_the_documented_example_parses_with_its_values(tmp_path):
    path = tmp_path / "subtomo_embeddings.yaml"
    path.write_text(SEED_YAML)
    config = read_cryosiam_config(path)
    assert config.path == path and config.raw == seed_config()
    assert config.data_folder == Path("/scratch/stojanov/dataset1/predictions/denoised")
    assert config.instances_mask_folder == Path("/scratch/stojanov/dataset1/predictions/instances")
    assert config.log_dir == Path("/scratch/stojanov/dataset1")
    assert config.prediction_folder == Path("/scratch/stojanov/dataset1/predictions/subtomo_embeds")
    assert config.trained_model == Path(
        "/g/zaugg/stojanov/simulated_datasets/final_models/simsiam_contrastive/version_1/model/last.ckpt")
    assert config.contrastive is True and config.file_extension == ".mrc"
    assert config.test_files is config.clustering_files is config.visualization_files is config.train_files is None
    assert (config.min_particle_size, config.max_particle_size) == (10, None)
    assert (config.masking_type, config.expand_labels) == (1, 3)
    assert config.instances is None and config.mask_suffix == ""
    assert (config.clustering_kmeans.num_clusters, config.clustering_kmeans.visualization) == (6, True)
    spectral = config.clustering_spectral
    assert (spectral.num_clusters, spectral.estimate_num_clusters, spectral.visualization) == (6, False, True)
    shown = config.visualization
    assert shown.prediction_folder == Path("/scratch/stojanov/dataset1/predictions/subtomo_embeds/vis")
    assert (shown.distance, shown.pca_components, shown.visualization_suffix) == ("euclidean", None,
                                                                                 "instance_regions.csv")
    assert (shown.visualize_umap, shown.umap_3d) == (True, False)
    assert config.parameters.gpu_devices == 0
    data = config.parameters.data
    assert (data.patch_size, data.patch_overlap, data.min, data.max, data.mean, data.std) == ((64, 64, 64), None,
                                                                                              0, 1, 0, 1)
    network = config.parameters.network
    assert config.network is network
    assert (network.spatial_dims, network.in_channels, network.dim) == (3, 1, 1024)
    assert config.hyper_parameters.batch_size == 10
    assert (config.seed, config.particles_star, config.particles_csv, config.workers) == (0, None, None, 2)


def test_absent_keys_take_cryosiams_defaults(tmp_path):
    config = read_cryosiam_config(write_config(tmp_path, {"prediction_folder": "out"}))
    assert config.prediction_folder == Path("out")  # relative paths stay relative: CryoSiam uses the working dir
    assert config.trained_model is None and config.data_folder is None
    assert (config.contrastive, config.file_extension, config.masking_type, config.expand_labels) == (False, ".mrc",
                                                                                                      0, 1)
    assert config.visualization.distance == "euclidean"
    assert config.visualization.visualization_suffix == "instance_regions.csv"
    assert config.hyper_parameters.batch_size == 10 and config.parameters.data.patch_size == (64, 64, 64)
    assert config.hyper_parameters.max_epochs is None and config.network.pred_dim is None

    config = read_cryosiam_config(write_config(tmp_path, {"prediction_folder": "out", "log_dir": "runs/simsiam",
                                                          "trained_model": None, "clustering_kmeans": None}))
    assert config.trained_model == Path("runs/simsiam/model/last.ckpt")
    assert config.clustering_kmeans.num_clusters == 4


def test_cryosiams_own_test_config_and_training_keys_are_accepted(tmp_path):
    mapping = seed_config()
    mapping["visualization"].update({"visualize_3d_mask": True, "3d_mask_extension": ".h5"})
    mapping["visualization"].pop("distance")
    mapping["train_files"] = ["TS_02.mrc", "TS_01.mrc"]
    mapping["test_files"] = ["TS_01.mrc"]
    mapping["instances"] = {"min_center_distance": 5, "max_center_distance": 20.0}
    mapping["parameters"]["network"].update({"pred_dim": 512, "block_type": "bottleneck", "num_layers": [3, 4, 6, 3],
                                             "num_filters": [64, 128, 256, 512], "no_max_pool": False})
    mapping["parameters"]["gpu_devices"] = [0, 1]
    mapping["hyper_parameters"].update({"max_epochs": 100, "learning_rate": 0.05, "weight_decay": 0, "seed": 3})
    mapping.update({"seed": 7, "particles_star": "picks/particles.star", "workers": 0})
    config = read_cryosiam_config(write_config(tmp_path, mapping))
    assert config.visualization.visualize_3d_mask and config.visualization.mask_extension == ".h5"
    assert config.mask_suffix == "_min-5_max-20.0"  # as CryoSiam's f-string writes the YAML values
    assert config.embedding_files(["a.mrc"]) == ["TS_01.mrc", "TS_02.mrc"]
    assert config.network.num_layers == (3, 4, 6, 3) and config.network.block_type == "bottleneck"
    assert config.parameters.gpu_devices == (0, 1)
    assert config.hyper_parameters.learning_rate == 0.05 and config.hyper_parameters.seed == 3
    assert (config.seed, config.particles_star, config.workers) == (7, Path("picks/particles.star"), 0)


def test_the_example_misspelling_reads_as_documented(tmp_path):
    mapping = seed_config()
    mapping["clustering_kmeans"]["num_cluster"] = mapping["clustering_kmeans"].pop("num_clusters")
    assert refused(write_config(tmp_path, mapping)) == (
        "config key 'clustering_kmeans.num_cluster' is not a CryoSiam key; did you mean "
        "'clustering_kmeans.num_clusters'?")


@pytest.mark.parametrize("dotted", ALL_KEYS)
def test_every_misspelt_key_at_every_level_names_the_nearest(tmp_path, dotted):
    *sections, last = dotted.split(".")
    misspelt = ".".join([*sections, last + last[-1]])
    mapping = with_key({"prediction_folder": "out"}, misspelt, 1)
    message = refused(write_config(tmp_path, mapping))
    assert f"config key '{misspelt}' is not a CryoSiam key; did you mean '{dotted}'?" == message


def test_keys_at_the_wrong_level_are_pointed_to_their_place(tmp_path):
    message = refused(write_config(tmp_path, {"prediction_folder": "out", "batch_size": 4}))
    assert message.endswith("did you mean 'hyper_parameters.batch_size'?")
    message = refused(write_config(tmp_path, {"prediction_folder": "out", "clustering_kmeans": {"zzz": 1}}))
    assert message == ("config key 'clustering_kmeans.zzz' is not a CryoSiam key; the keys under 'clustering_kmeans' "
                       "are num_clusters, visualization")


@pytest.mark.parametrize(
    ("dotted", "value", "expected"),
    [
        ("masking_type", 3, "'masking_type' must be one of 0, 1, 2; got 3"),
        ("masking_type", 1.0, "'masking_type' must be one of 0, 1, 2"),
        ("masking_type", True, "'masking_type'"),
        ("expand_labels", -1, "'expand_labels' must be a whole number of at least 0"),
        ("min_particle_size", "10", "'min_particle_size'"),
        ("contrastive", "yes", "'contrastive' must be true or false"),
        ("file_extension", "", "'file_extension' must be a non-empty text"),
        ("test_files", "TS_01.mrc", "'test_files' must be a list of file names or null"),
        ("data_folder", 5, "'data_folder' must be a non-empty text"),
        ("parameters.data.patch_size", [64, 64], "'parameters.data.patch_size' must be a list of 3 whole numbers"),
        ("parameters.data.patch_size", [64, 0, 64], "'parameters.data.patch_size'"),
        ("parameters.data.patch_size", 64, "'parameters.data.patch_size'"),
        ("parameters.data.patch_overlap", 1.0, "'parameters.data.patch_overlap'"),
        ("parameters.data.std", 0, "'parameters.data.std' must be a number greater than 0"),
        ("parameters.data.mean", float("nan"), "'parameters.data.mean' must be a finite number"),
        ("parameters.data.max", -1, "'parameters.data.max' must be greater than parameters.data.min (0)"),
        ("parameters.network.spatial_dims", 4, "'parameters.network.spatial_dims'"),
        ("parameters.network.block_type", "wide", "'parameters.network.block_type' must be one of basic, bottleneck"),
        ("parameters.network.num_layers", [3, 0], "'parameters.network.num_layers'"),
        ("parameters.gpu_devices", -1, "'parameters.gpu_devices'"),
        ("parameters.gpu_devices", [0, "1"], "'parameters.gpu_devices'"),
        ("clustering_kmeans.num_clusters", 1, "'clustering_kmeans.num_clusters' must be a whole number of at least 2"),
        ("clustering_spectral.num_clusters", 2.5, "'clustering_spectral.num_clusters'"),
        ("clustering_spectral.estimate_num_clusters", 1, "'clustering_spectral.estimate_num_clusters'"),
        ("visualization.distance", "manhattan", "'visualization.distance' must be one of euclidean, cosine"),
        ("visualization.pca_components", 1, "'visualization.pca_components'"),
        ("visualization.3d_mask_extension", ".tif", "'visualization.3d_mask_extension'"),
        ("hyper_parameters.batch_size", 0, "'hyper_parameters.batch_size' must be a whole number of at least 1"),
        ("hyper_parameters.learning_rate", 0, "'hyper_parameters.learning_rate' must be a number greater than 0"),
        ("hyper_parameters.weight_decay", -0.1, "'hyper_parameters.weight_decay'"),
        ("workers", -1, "'workers'"),
        ("seed", 1.5, "'seed'"),
        ("clustering_kmeans", [6], "config key 'clustering_kmeans' must be a mapping"),
        ("instances.min_center_distance", -2, "'instances.min_center_distance' must be a distance"),
    ],
)
def test_impossible_values_are_refused_naming_the_key(tmp_path, dotted, value, expected):
    mapping = with_key(seed_config(), dotted, value)
    if dotted.startswith("instances."):
        mapping["instances"].setdefault("max_center_distance", 10)
    assert expected in refused(write_config(tmp_path, mapping))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"min_particle_size": 100, "max_particle_size": 50}, "'min_particle_size' must be at most max_particle_size"),
        ({"instances": {"min_center_distance": 9, "max_center_distance": 3}}, "'instances.min_center_distance'"),
        ({"instances": {"min_center_distance": 9}}, "config key 'instances.max_center_distance' is missing"),
        ({"particles_star": "a.star", "particles_csv": "a.csv"}, "'particles_star' and 'particles_csv'"),
        ({"visualization": {"3d_umap": True, "pca_components": 2}}, "'visualization.pca_components'"),
    ],
)
def test_values_impossible_together_are_refused(tmp_path, changes, expected):
    mapping = {**seed_config(), **changes}
    assert expected in refused(write_config(tmp_path, mapping))


def test_missing_prediction_folder_is_named(tmp_path):
    mapping = seed_config()
    del mapping["prediction_folder"]
    assert refused(write_config(tmp_path, mapping)) == "config key 'prediction_folder' is missing; add it to the config"


def test_unreadable_configs_are_input_errors(tmp_path):
    assert "no such file" in refused(tmp_path / "absent.yaml", InputError)
    broken = tmp_path / "broken.yaml"
    broken.write_text("data_folder: [unclosed\nprediction_folder: out\n")
    assert "not valid YAML" in refused(broken, InputError)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    assert "a mapping of keys to values; got list" in refused(listed, InputError)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert "got NoneType" in refused(empty, InputError)


valid_names = {section: [key[len(section) + 1:] if section else key for key in ALL_KEYS
                         if key.startswith(section + ".") and "." not in key[len(section) + 1:]] if section
               else [key for key in ALL_KEYS if "." not in key] for section in SECTIONS}


@FIXTURES
@given(section=st.sampled_from(SECTIONS), key=st.text(string.ascii_letters + string.digits + "_", min_size=1,
                                                        max_size=20), value=st.integers())
def test_random_unknown_keys_are_always_refused_in_one_line(tmp_path, section, key, value):
    if key in valid_names[section]:
        return
    dotted = f"{section}.{key}" if section else key
    mapping = with_key({"prediction_folder": "out"}, dotted, value)
    message = refused(write_config(tmp_path, mapping))
    assert message.startswith(f"config key '{dotted}' is not a CryoSiam key; ")


@FIXTURES
@given(batch=st.integers(1, 10**6), patch=st.lists(st.integers(1, 512), min_size=3, max_size=3),
       low=st.floats(-1e6, 1e6), width=st.floats(1e-3, 1e6), std=st.floats(1e-6, 1e6),
       clusters=st.integers(2, 1000), near=st.one_of(st.integers(0, 50), st.floats(0, 50)),
       far=st.integers(50, 100), seed=st.integers(0, 2**32))
def test_random_valid_numbers_round_trip(tmp_path, batch, patch, low, width, std, clusters, near, far, seed):
    mapping = seed_config()
    mapping["hyper_parameters"]["batch_size"] = batch
    mapping["parameters"]["data"].update({"patch_size": patch, "min": low, "max": low + width, "std": std})
    mapping["clustering_spectral"]["num_clusters"] = clusters
    mapping["instances"] = {"min_center_distance": near, "max_center_distance": far}
    mapping["seed"] = seed
    config = read_cryosiam_config(write_config(tmp_path, mapping))
    data = config.parameters.data
    assert config.hyper_parameters.batch_size == batch and data.patch_size == tuple(patch)
    assert (data.min, data.max, data.std) == (low, low + width, std)
    assert config.clustering_spectral.num_clusters == clusters and config.seed == seed
    assert config.mask_suffix == f"_min-{near}_max-{far}"


@pytest.mark.parametrize(
    ("filename", "extension", "stem"),
    [("TS_56_6.80Apx.mrc", ".mrc", "TS_56_6.80Apx"), ("TS_01.mrc", ".mrc", "TS_01"), ("TS_01", ".mrc", "TS_01"),
     ("a.mrc.rec", ".rec", "a.mrc"), ("data/TS_01.rec", ".rec", "TS_01"), (".mrc", ".mrc", ".mrc"),
     ("TS.mrc_copy.mrc", ".mrc", "TS.mrc_copy")],
)
def test_tomogram_stems_keep_inner_dots(filename, extension, stem):
    assert tomogram_stem(filename, extension) == stem


# ----------------------------------------------------------------------------- HDF5 outputs
def test_embeddings_and_labels_read_as_cryosiams_scripts_read_them(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(5, 8))
    path = tmp_path / "TS_01_embeds.h5"
    write_embeds_h5(path, vectors)
    with h5py.File(path, "r") as file:
        stored = file["embeddings"][()]
        assert list(file.keys()) == ["embeddings"]
    assert stored.shape == (8, 5) and stored.dtype == np.float32
    np.testing.assert_array_equal(stored.T, vectors.astype(np.float32))
    np.testing.assert_array_equal(read_embeds_h5(path), vectors.astype(np.float32))

    labels = tmp_path / "TS_01_instance_labels.h5"
    write_instance_labels_h5(labels, np.array([3, 9, 12, 40, 41], dtype=np.int32))
    with h5py.File(labels, "r") as file:
        assert file["labels"].dtype == np.int64 and file["labels"][()].tolist() == [3, 9, 12, 40, 41]
    assert read_instance_labels_h5(labels).tolist() == [3, 9, 12, 40, 41]


def test_clustering_files_have_cryosiams_datasets(tmp_path):
    centres = np.arange(6, dtype=np.float64).reshape(2, 3)
    write_cluster_centres_h5(tmp_path / "kmeans_clusters.h5", np.array([0, 1, 1]), centres)
    with h5py.File(tmp_path / "kmeans_clusters.h5", "r") as file:
        assert file["clusters"][()].tolist() == [0, 1, 1]
        np.testing.assert_array_equal(file["centers"][()], centres)
    write_cluster_centres_h5(tmp_path / "spectral_clusters.h5", np.array([1, 2]))
    with h5py.File(tmp_path / "spectral_clusters.h5", "r") as file:
        assert list(file.keys()) == ["clusters"]
    write_predictions_h5(tmp_path / "TS_01_clusters_kmeans.h5", np.array([2, 0]))
    with h5py.File(tmp_path / "TS_01_clusters_kmeans.h5", "r") as file:
        assert file["predictions"][()].tolist() == [2, 0]


def test_bad_arrays_and_files_are_refused(tmp_path):
    with pytest.raises(VectorError, match="NaN or infinite"):
        write_embeds_h5(tmp_path / "e.h5", np.array([[1.0, np.nan]]))
    with pytest.raises(VectorError, match=r"\(N, dim\)"):
        write_embeds_h5(tmp_path / "e.h5", np.zeros(3))
    with pytest.raises(ParameterError, match="whole numbers"):
        write_predictions_h5(tmp_path / "p.h5", np.array([0.5]))
    assert not list(tmp_path.iterdir())
    write_instance_labels_h5(tmp_path / "labels.h5", np.array([1]))
    with pytest.raises(InputError, match="no dataset 'embeddings' \\(datasets: labels\\)"):
        read_embeds_h5(tmp_path / "labels.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(InputError, match="cannot be read as HDF5"):
        read_embeds_h5(tmp_path / "text.h5")


# ----------------------------------------------------------------------------- regions
def regions_table(count: int = 3, extra: bool = False) -> pa.Table:
    rng = np.random.default_rng(count)
    columns = {"centroid-2": rng.uniform(0, 500, count), "label": np.arange(1, count + 1) * 7,
               "area": rng.integers(10, 5000, count).astype(np.float64),
               **{f"bbox-{axis}": rng.integers(0, 400, count) for axis in range(6)},
               "centroid-0": rng.uniform(0, 200, count), "centroid-1": rng.uniform(0, 500, count),
               "hull_area": rng.integers(10, 6000, count)}
    if extra:
        columns["distance"] = rng.uniform(0, 1, count)
    return pa.table(columns)


CRYOSIAM_ORDER = ["label", "area", "bbox-0", "bbox-1", "bbox-2", "bbox-3", "bbox-4", "bbox-5", "centroid-0",
                  "centroid-1", "centroid-2", "hull_area"]


def test_regions_csv_reads_as_pandas_and_cryosiams_reader_read_it(tmp_path):
    table = regions_table(extra=True)
    path = tmp_path / "TS_01_instance_regions.csv"
    write_regions_csv(path, table)
    frame = pd.read_csv(path)
    assert list(frame.columns) == [*CRYOSIAM_ORDER, "distance"]
    for column in frame.columns:
        assert frame[column].tolist() == table.column(column).to_pylist()
    with open(path, newline="") as file:  # extract_patches_embeddings.py's own parsing
        rows = list(csv.DictReader(file))
    parsed = {key: [int(row[key]) if "label" in key or "bbox" in key else float(row[key]) for row in rows]
              for key in rows[0]}
    assert parsed["label"] == [7, 14, 21] and parsed["centroid-2"] == table.column("centroid-2").to_pylist()
    back = read_regions_csv(path)
    expected = table.select([*CRYOSIAM_ORDER, "distance"])
    hull = expected.schema.get_field_index("hull_area")
    assert back.equals(expected.set_column(hull, "hull_area", expected.column("hull_area").cast(pa.float64())))


numbers = st.floats(-1e9, 1e9, allow_nan=False)


@FIXTURES
@given(data=st.data(), count=st.integers(0, 6))
def test_regions_csv_round_trips_exactly(tmp_path, data, count):
    ints = st.lists(st.integers(-2**40, 2**40), min_size=count, max_size=count)
    floats = st.lists(numbers, min_size=count, max_size=count)
    columns = {"label": pa.array(data.draw(ints), pa.int64()), "area": pa.array(data.draw(floats), pa.float64()),
               **{f"bbox-{axis}": pa.array(data.draw(ints), pa.int64()) for axis in range(6)},
               **{f"centroid-{axis}": pa.array(data.draw(floats), pa.float64()) for axis in range(3)},
               "hull_area": pa.array(data.draw(floats), pa.float64())}
    table = pa.table(columns)
    path = tmp_path / "regions.csv"
    write_regions_csv(path, table)
    back = read_regions_csv(path)
    if count:
        assert back.equals(table)
    else:
        assert back.num_rows == 0 and back.column_names == CRYOSIAM_ORDER


def test_regions_that_cryosiam_could_not_read_are_refused(tmp_path):
    table = regions_table()
    with pytest.raises(ParameterError, match="needs columns hull_area"):
        write_regions_csv(tmp_path / "r.csv", table.drop_columns(["hull_area"]))
    fractional = table.set_column(1, "label", pa.array([1.5, 2.0, 3.0]))
    with pytest.raises(ParameterError, match="whole numbers"):
        write_regions_csv(tmp_path / "r.csv", fractional)
    assert not list(tmp_path.iterdir())
    whole_floats = table.set_column(1, "label", pa.array([1.0, 2.0, 3.0]))
    write_regions_csv(tmp_path / "r.csv", whole_floats)
    assert read_regions_csv(tmp_path / "r.csv").column("label").to_pylist() == [1, 2, 3]
    (tmp_path / "short.csv").write_text("label,area\n1,2\n")
    with pytest.raises(InputError, match="lacks bbox-0, .*centroid-2"):
        read_regions_csv(tmp_path / "short.csv")


def test_clustered_regions_csv_and_star_have_cryosiams_columns(tmp_path):
    table = regions_table(extra=True)
    csv_path, star_path = tmp_path / "TS_56_6.80Apx_instance_regions_kmeans_clustered.csv", tmp_path / "c.star"
    write_clustered_regions(csv_path, star_path, table, np.array([2, 0, 5]), tomogram="TS_56_6.80Apx")
    frame = pd.read_csv(csv_path)
    assert list(frame.columns) == [*CRYOSIAM_ORDER, "distance", "semantic_class"]
    assert frame["semantic_class"].tolist() == [2, 0, 5]
    star = starfile.read(star_path)
    assert isinstance(star, pd.DataFrame)
    assert list(star.columns) == ["rlnLabel", "rlnArea", *(f"rlnBbox-{axis}" for axis in range(6)), "rlnCoordinateZ",
                                  "rlnCoordinateY", "rlnCoordinateX", "rlnHullArea", "rlnClass", "rlnMicrographName"]
    renamed = {"rlnLabel": "label", "rlnArea": "area", "rlnCoordinateZ": "centroid-0", "rlnCoordinateY": "centroid-1",
               "rlnCoordinateX": "centroid-2", "rlnHullArea": "hull_area",
               **{f"rlnBbox-{axis}": f"bbox-{axis}" for axis in range(6)}}
    for label, column in renamed.items():
        np.testing.assert_array_equal(star[label].to_numpy(), table.column(column).to_numpy())
    assert star["rlnClass"].tolist() == [2, 0, 5]
    assert star["rlnMicrographName"].tolist() == ["TS_56_6.80Apx"] * 3
    with pytest.raises(ParameterError, match="2 classes for 3 regions"):
        write_clustered_regions(csv_path, star_path, table, np.array([1, 2]), tomogram="t")


# ----------------------------------------------------------------------------- particle centres
RELION_30 = """
data_

loop_
_rlnCoordinateX #1
_rlnCoordinateY #2
_rlnCoordinateZ #3
_rlnMicrographName #4
_rlnAngleRot #5
120.5 80 33 Tomograms/TS_56_6.80Apx.mrc 10
7 8 9 TS_02.rec 0
"""

RELION_31 = """
# version 30001

data_optics

loop_
_rlnOpticsGroup #1
_rlnOpticsGroupName #2
_rlnImagePixelSize #3
_rlnImageDimensionality #4
1 opticsGroup1 6.8 3

# version 30001

data_particles

loop_
_rlnMicrographName #1
_rlnCoordinateX #2
_rlnCoordinateY #3
_rlnCoordinateZ #4
_rlnOpticsGroup #5
tomo1/tomo1.mrc 10.25 20 30 1
tomo2/tomo2.mrc 1 2 3 1
"""

WARP = """
data_

loop_
_rlnCoordinateX #1
_rlnCoordinateY #2
_rlnCoordinateZ #3
_rlnAngleRot #4
_rlnAngleTilt #5
_rlnAnglePsi #6
_rlnMicrographName #7
_rlnMagnification #8
_rlnDetectorPixelSize #9
_rlnImageName #10
  200.000   150.000    60.000  0.0  0.0  0.0  TS_01.tomostar  10000.0  10.0  subtomo/TS_01/TS_01001_10.00A.mrc
  210.500   151.000    61.000  0.0  0.0  0.0  TS_01.tomostar  10000.0  10.0  subtomo/TS_01/TS_01002_10.00A.mrc
"""

RELION_5 = """
# version 50001

data_general

_rlnTomoSubTomosAre2DStacks                       1

data_optics

loop_
_rlnOpticsGroup #1
_rlnOpticsGroupName #2
_rlnTomoTiltSeriesPixelSize #3
_rlnImagePixelSize #4
1 optics1 1.35 2.7
2 optics2 2.0 4.0

data_particles

loop_
_rlnTomoName #1
_rlnCenteredCoordinateXAngst #2
_rlnCenteredCoordinateYAngst #3
_rlnCenteredCoordinateZAngst #4
_rlnOpticsGroup #5
_rlnOriginXAngst #6
TS_01 1754.828605 -879.58025 1138.065739 1 -3.75
TS_02 -100 0 27 2 0
"""


def star(tmp_path: Path, text: str, name: str = "particles.star") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_relion_30_single_block_centres(tmp_path):
    table = read_particle_centres(star(tmp_path, RELION_30))
    assert table.column_names == ["tomogram", "x", "y", "z"]
    assert table.schema.field("x").type == pa.float64()
    assert table.to_pylist() == [{"tomogram": "TS_56_6.80Apx", "x": 120.5, "y": 80.0, "z": 33.0},
                                 {"tomogram": "TS_02", "x": 7.0, "y": 8.0, "z": 9.0}]


def test_relion_31_centres_take_the_particles_block(tmp_path):
    table = read_particle_centres(star(tmp_path, RELION_31))
    assert table.to_pylist() == [{"tomogram": "tomo1", "x": 10.25, "y": 20.0, "z": 30.0},
                                 {"tomogram": "tomo2", "x": 1.0, "y": 2.0, "z": 3.0}]


def test_warp_centres_drop_the_tomostar_suffix(tmp_path):
    table = read_particle_centres(star(tmp_path, WARP))
    assert table.column("tomogram").to_pylist() == ["TS_01", "TS_01"]
    assert table.column("x").to_pylist() == [200.0, 210.5]


def test_relion_5_centred_angstroms_are_flagged_and_converted_later(tmp_path):
    path = star(tmp_path, RELION_5)
    table = read_particle_centres(path)
    assert table.column_names == ["tomogram", "x", "y", "z", "centred_angstrom", "pixel_size"]
    assert table.column("x").to_pylist() == [1754.828605, -100.0]
    assert table.column("centred_angstrom").to_pylist() == [True, True]
    assert table.column("pixel_size").to_pylist() == [1.35, 2.0]  # each particle's optics group
    assert read_particle_centres(path, pixel_size=5.0).column("pixel_size").to_pylist() == [5.0, 5.0]

    shapes = {"TS_01": (500, 1000, 1000), "TS_02": (100, 200, 300)}
    voxels = centres_to_voxels(table, shapes, voxel_size=10.0)
    assert voxels.column_names == ["tomogram", "x", "y", "z"]
    assert voxels.column("x").to_pylist() == pytest.approx([175.4828605 + 500, -10 + 150])
    assert voxels.column("y").to_pylist() == pytest.approx([-87.958025 + 500, 100])
    assert voxels.column("z").to_pylist() == pytest.approx([113.8065739 + 250, 2.7 + 50])
    from_star = centres_to_voxels(table, (100, 200, 300))  # the optics pixel sizes
    assert from_star.column("x").to_pylist() == pytest.approx([1754.828605 / 1.35 + 150, -100 / 2.0 + 150])
    pixels = read_particle_centres(star(tmp_path, RELION_31, "pixels.star"))
    assert centres_to_voxels(pixels, (1, 2, 3)) is pixels
    with pytest.raises(ParameterError, match="no tomogram shape for 'TS_02'"):
        centres_to_voxels(table, {"TS_01": (1, 2, 3)}, voxel_size=1.0)
    with pytest.raises(ParameterError, match="three sizes"):
        centres_to_voxels(table, (1, 2), voxel_size=1.0)
    without_optics = RELION_5.split("data_optics")[0] + "data_particles" + RELION_5.split("data_particles")[1]
    no_optics = star(tmp_path, without_optics, "no_optics.star")
    unknown = read_particle_centres(no_optics)
    assert unknown.column("pixel_size").to_pylist() == [None, None]
    with pytest.raises(ParameterError, match="need a voxel size"):
        centres_to_voxels(unknown, (1, 2, 3))


def test_our_own_star_files_are_centres_too(tmp_path):
    path = tmp_path / "ours.star"
    write_particles_star(path, pa.table({"tomogram": ["TS_56_6.80Apx", "TS 02"], "x": [1, 2], "y": [3.5, 4.0],
                                         "z": [5, 6]}), pixel_size=6.8)
    table = read_particle_centres(path)
    assert table.to_pylist() == [{"tomogram": "TS_56_6.80Apx", "x": 1.0, "y": 3.5, "z": 5.0},
                                 {"tomogram": "TS 02", "x": 2.0, "y": 4.0, "z": 6.0}]


def test_star_files_without_coordinates_or_names_are_refused_in_one_line(tmp_path):
    path = star(tmp_path, "data_optics\n\nloop_\n_rlnOpticsGroup #1\n1\n\ndata_particles\n\nloop_\n"
                          "_rlnTomoName #1\n_rlnAngleRot #2\n_rlnCoordinateX #3\nTS_01 10 5\n")
    with pytest.raises(InputError) as error:
        read_particle_centres(path)
    assert str(error.value) == (f"{path}: no particle coordinates (rlnCoordinateX/Y/Z or "
                                "rlnCenteredCoordinateX/Y/ZAngst); its columns are rlnTomoName, rlnAngleRot, "
                                "rlnCoordinateX")
    nameless = star(tmp_path, "data_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnCoordinateZ #3\n1 2 3\n",
                    "nameless.star")
    with pytest.raises(InputError, match="no tomogram names"):
        read_particle_centres(nameless)
    with pytest.raises(InputError, match="no such file"):
        read_particle_centres(tmp_path / "absent.star")


def test_csv_centres_accept_tomogram_or_tomo_in_any_case(tmp_path):
    (tmp_path / "a.csv").write_text("Tomo,X,Y,Z,score\nTS_01.mrc,1.5,2,3,0.9\n007,4,5,6,0.1\n")
    table = read_particle_centres(tmp_path / "a.csv")
    assert table.to_pylist() == [{"tomogram": "TS_01", "x": 1.5, "y": 2.0, "z": 3.0},
                                 {"tomogram": "007", "x": 4.0, "y": 5.0, "z": 6.0}]
    (tmp_path / "b.csv").write_text("tomogram,x,y,z\nTS_56_6.80Apx,1,2,3\n")
    assert read_particle_centres(tmp_path / "b.csv").column("tomogram").to_pylist() == ["TS_56_6.80Apx"]
    (tmp_path / "c.csv").write_text("name,x,y\nTS_01,1,2\n")
    with pytest.raises(InputError, match="needs columns tomogram \\(or tomo\\), x, y, z; its columns are name, x, y"):
        read_particle_centres(tmp_path / "c.csv")


def reads_as_text(name: str) -> bool:
    """Whether pandas (inside starfile) keeps `name` as text rather than a number, a boolean or a missing value."""
    try:
        float(name)
    except ValueError:
        return name.lower() not in {"na", "nan", "null", "none", "true", "false", "n/a"}
    return False


tomogram_names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}[A-Za-z0-9_]", fullmatch=True).filter(reads_as_text)
coordinates = st.floats(-1e6, 1e6, allow_nan=False)


@FIXTURES
@given(data=st.data(), count=st.integers(1, 6))
def test_centres_read_back_from_star_and_csv(tmp_path, data, count):
    names = data.draw(st.lists(tomogram_names, min_size=count, max_size=count))
    axes = {axis: data.draw(st.lists(coordinates, min_size=count, max_size=count)) for axis in "xyz"}
    table = pa.table({"tomogram": names, **axes})
    write_particles_star(tmp_path / "c.star", table)
    stripped = [{"tomogram": _without_known_suffix(name), **{axis: axes[axis][row] for axis in axes}}
                for row, name in enumerate(names)]
    assert read_particle_centres(tmp_path / "c.star").to_pylist() == stripped
    pd.DataFrame({"TOMO": names, **axes}).to_csv(tmp_path / "c.csv", index=False)
    assert read_particle_centres(tmp_path / "c.csv").to_pylist() == stripped


def _without_known_suffix(name: str) -> str:
    for suffix in (".tomostar", ".mrcs", ".mrc", ".rec", ".st"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return name
