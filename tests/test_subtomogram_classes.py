"""CryoSiam's workflow, run through its four commands, sorts synthetic subtomograms by their class.

Three synthetic tomograms (64 x 160 x 160) hold 6 particles of each of 4 classes (sphere, shell, rod, dimer, in
random orientations) plus debris the size bound drops: 72 instances. `embedscope train subtomograms` trains a small
3D ResNet SimSiam (filters 8-16-32-32, dim 64) for 15 epochs on CPU (about 100 s on 2 cores), then predict, k-means
(k = 4) and spectral clustering with an estimated k (upper bound 6) run on the seed's config. Measured (seed 1):

    spectral, estimated k = 4       ARI 0.774
    k-means, k = 4                  ARI 0.385
    untrained network, k-means      ARI 0.667 (same architecture and seed, random weights)
    standardised crop pixels, k-means ARI 0.48

Spectral clustering of the trained embeddings recovers the classes; k-means on CryoSiam's embedding (the
projector output, contrastive False) mixes spheres with dimers: its 64 batch-normalised dimensions give no
cluster a round shape. Free rotations in the training views matter: with quarter turns only, the trained network
fell below the untrained one (spectral 0.45-0.64), having learnt each particle's pose.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import adjusted_rand_score

from embedscope.datasets.instance_masks import write_demo_subtomograms

pytestmark = pytest.mark.slow

SEED = 1
TRUE_K = 4
FLOOR = 0.6


def clustered(predictions: Path, method: str, truth: pd.DataFrame) -> pd.DataFrame:
    """Every tomogram's clustered regions CSV, joined to the true class of each label."""
    frames = []
    for path in sorted(predictions.glob(f"*_instance_regions_{method}_clustered.csv")):
        frame = pd.read_csv(path)
        frame["tomogram"] = path.name.split("_instance_regions")[0]
        frames.append(frame)
    return pd.concat(frames).merge(truth, on=["tomogram", "label"], validate="one_to_one")


def test_spectral_clustering_with_estimated_k_recovers_the_classes(cli, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    write_demo_subtomograms(tmp_path / "data", n_tomograms=3, per_class=6, seed=SEED)
    config = yaml.safe_load((Path(__file__).parent / "data" / "cryosiam_subtomo_embeddings.yaml").read_text())
    config.update(data_folder=str(tmp_path / "data" / "tomograms"),
                  instances_mask_folder=str(tmp_path / "data" / "instances"), log_dir=str(tmp_path / "run"),
                  prediction_folder=str(tmp_path / "predictions"),
                  trained_model=str(tmp_path / "run" / "model" / "last.ckpt"), contrastive=False,
                  min_particle_size=300)
    config["visualization"]["visualize_umap"] = False
    config["clustering_kmeans"].update(num_clusters=TRUE_K, visualization=False)
    config["clustering_spectral"].update(num_clusters=6, estimate_num_clusters=True, visualization=False)
    config["parameters"]["data"]["patch_size"] = [32, 32, 32]
    config["parameters"]["network"].update(dim=64, pred_dim=16, num_filters=[8, 16, 32, 32])
    config["hyper_parameters"].update(max_epochs=15, batch_size=8, learning_rate=0.5, seed=SEED)
    path = tmp_path / "subtomo_embeddings.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    result = cli("train", "subtomograms", path, "-o", tmp_path / "run", "--device", "cpu", "-q")
    assert result.code == 0, result.err
    losses = pd.read_csv(tmp_path / "run" / "training_log.csv")["loss"]
    assert losses.iloc[-1] < losses.iloc[0] - 0.5  # SimSiam's loss runs from 0 towards -1
    for command in ("simsiam_embeddings_predict", "simsiam_embeddings_kmeans_clustering",
                    "simsiam_embeddings_spectral_clustering"):
        result = cli("cryosiam", command, f"--config_file={path}", "-q")
        assert result.code == 0, result.err

    everything = pd.read_csv(tmp_path / "data" / "particles.csv")
    truth = everything[everything["class"] != "debris"]
    spectral = clustered(tmp_path / "predictions", "spectral", truth)
    kmeans = clustered(tmp_path / "predictions", "kmeans", truth)
    assert len(spectral) == len(kmeans) == len(truth) == 3 * 6 * TRUE_K
    estimated = spectral["semantic_class"].nunique()
    spectral_ari = adjusted_rand_score(spectral["class"], spectral["semantic_class"])
    kmeans_ari = adjusted_rand_score(kmeans["class"], kmeans["semantic_class"])
    print(f"spectral: estimated k {estimated}, ARI {spectral_ari:.3f}; k-means ARI {kmeans_ari:.3f}")
    assert abs(estimated - TRUE_K) <= 1
    assert spectral_ari > FLOOR
    assert kmeans["semantic_class"].nunique() == TRUE_K
