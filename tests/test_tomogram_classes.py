"""The whole exploration pipeline separates particle classes it was never told about.

Synthetic tomograms hold four classes (spheres, shells, rods, dimers); a tiny SimSiam trained for a few
epochs on CPU, then over-clustering, must agree with the truth clearly better than chance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
import torch
from scipy.spatial import cKDTree
from sklearn.metrics import adjusted_rand_score

from embedscope.atlas import Atlas
from embedscope.datasets.tomograms import write_demo_tomograms
from embedscope.pipeline import cluster_atlas
from embedscope.pipeline.tomogram_embedding import embed_tomograms
from embedscope.pipeline.tomogram_training import train_tomograms
from embedscope.sources import CandidatePicker

pytestmark = pytest.mark.slow


def true_classes(atlas: Atlas, truth_csv: Path) -> np.ndarray:
    """Each item's particle class, when it lies within that particle's radius; None for background picks."""
    truth = pacsv.read_csv(truth_csv).to_pylist()
    table = atlas.table(["tomogram", "x", "y", "z"]).to_pylist()
    classes = np.full(len(table), None, dtype=object)
    for name in {row["tomogram"] for row in truth}:
        particles = [row for row in truth if row["tomogram"] == name]
        tree = cKDTree([[row[axis] for axis in "xyz"] for row in particles])
        rows = [index for index, item in enumerate(table) if item["tomogram"] == name]
        distance, nearest = tree.query([[table[row][axis] for axis in "xyz"] for row in rows])
        for row, far, index in zip(rows, distance, nearest, strict=True):
            if far <= particles[index]["size"]:
                classes[row] = particles[index]["class"]
    return classes


def test_tiny_model_separates_particle_classes(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    data = tmp_path / "tomograms"
    write_demo_tomograms(data, n_tomograms=4, per_class=8, seed=5)
    picker = CandidatePicker(gauss=0.8, dog=(3, 5))
    trained = train_tomograms(data / "tomograms.txt", tmp_path / "run", picker=picker, bbox=36, epochs=20,
                              batch_size=64, lr=0.1, width=16, seed=0)
    assert trained.losses[-1] < trained.losses[0]
    embed_tomograms(data / "tomograms.txt", trained.checkpoint, tmp_path / "t.atlas", picker=picker)
    atlas = Atlas.open(tmp_path / "t.atlas")
    cluster_atlas(atlas, "overcluster", k=4, name="overcluster")
    labels = Atlas.open(tmp_path / "t.atlas").layer("overcluster").column("cluster").to_numpy()
    classes = true_classes(atlas, data / "particles.csv")
    on_particles = classes != None  # noqa: E711 - elementwise
    assert on_particles.mean() > 0.8
    ari = adjusted_rand_score(classes[on_particles].astype(str), labels[on_particles])
    print(f"ARI of over-clusters against the particle classes: {ari:.3f}")
    assert ari > 0.3
