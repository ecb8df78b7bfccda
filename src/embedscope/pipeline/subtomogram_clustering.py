"""CryoSiam's k-means and spectral clustering of subtomogram embeddings, on the always-current Atlas, seeded.

Writes CryoSiam's files under each method's own names (spectral never overwrites k-means): `<method>_clusters.h5`,
`<tomo>_clusters_<method>.h5`, `<tomo>_instance_regions_<method>_clustered.csv` and `.star`; classes count from 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from embedscope.atlas import Atlas
from embedscope.formats.cryosiam_config import CryoSiamConfig, tomogram_stem
from embedscope.formats.cryosiam_files import (
    read_regions_csv,
    write_cluster_centres_h5,
    write_clustered_regions,
    write_predictions_h5,
)
from embedscope.pipeline.clustering import cluster_atlas
from embedscope.pipeline.subtomogram_atlas import TomogramFiles, current_atlas
from embedscope.progress import SILENT, Reporter

METHODS = ("kmeans", "spectral")
SPECTRAL_NEIGHBOURS = 10  # CryoSiam's kNN affinity


@dataclass
class SubtomogramClusterReport:
    """What a clustering run wrote: the method, the number of clusters (estimated or given) and the files."""

    method: str
    n_clusters: int
    estimated: bool
    items: int
    tomograms: int
    files: list[Path]
    seconds: float


def cluster_subtomograms(
    config: CryoSiamConfig, method: str, *, reporter: Reporter = SILENT, command: str | None = None
) -> SubtomogramClusterReport:
    """Cluster every predicted instance with `method` ("kmeans" or "spectral") and write CryoSiam's files.

    The Atlas is rebuilt first if any tomogram was added or re-predicted, so the clusters never describe stale data.
    """
    started = time.perf_counter()
    folder = Path(config.prediction_folder)
    names = None if config.clustering_files is None else [
        tomogram_stem(name, config.file_extension) for name in config.clustering_files]
    atlas = current_atlas(folder, names, file_extension=config.file_extension, reporter=reporter)
    section = config.clustering_kmeans if method == "kmeans" else config.clustering_spectral
    estimate = method == "spectral" and bool(section.estimate_num_clusters)
    report = cluster_atlas(
        atlas, method, k=section.num_clusters, estimate_k=estimate, n_neighbors=SPECTRAL_NEIGHBOURS,
        metric="euclidean", seed=config.seed, reporter=reporter, command=command,
    )
    labels = atlas.layer(method).column("cluster").to_numpy().astype(np.int64)
    classes = labels + 1  # CryoSiam's semantic classes: 0 is the background of a semantic mask
    files = _write_files(atlas, folder, method, classes, config.file_extension, reporter)
    if section.visualization:
        from embedscope.pipeline.subtomogram_figures import cluster_figure

        files += cluster_figure(atlas, method, folder, metric=config.visualization.distance, seed=config.seed,
                                reporter=reporter)
    return SubtomogramClusterReport(method, report.n_clusters, estimate, atlas.n,
                                    len(set(atlas.table(["tomogram"]).column(0).to_pylist())), files,
                                    time.perf_counter() - started)


def _write_files(
    atlas: Atlas, folder: Path, method: str, classes: np.ndarray, file_extension: str, reporter: Reporter
) -> list[Path]:
    """The run-wide clusters and centres, then per tomogram its predictions and its clustered regions (CSV, STAR)."""
    vectors = atlas.vectors()
    present = np.unique(classes)
    centres = np.stack([vectors[classes == value].mean(axis=0) for value in present])
    written = [folder / f"{method}_clusters.h5"]
    write_cluster_centres_h5(written[0], classes, centres)
    table = atlas.table(["tomogram", "label"])
    tomograms = np.asarray(table.column("tomogram").to_pylist(), dtype=object)
    labels = table.column("label").to_numpy()
    with reporter.phase(f"writing {method} files", len(np.unique(tomograms))) as advance:
        for name in dict.fromkeys(tomograms.tolist()):
            rows = np.flatnonzero(tomograms == name)
            files = TomogramFiles(name, folder)
            regions = _regions_in_order(read_regions_csv(files.regions), labels[rows])
            predictions = folder / f"{name}_clusters_{method}.h5"
            write_predictions_h5(predictions, classes[rows])
            csv = folder / f"{name}_instance_regions_{method}_clustered.csv"
            star = csv.with_suffix(".star")
            write_clustered_regions(csv, star, regions, classes[rows], tomogram=name)
            written += [predictions, csv, star]
            advance(1)
    return written


def _regions_in_order(regions: pa.Table, labels: np.ndarray) -> pa.Table:
    """The regions rows of `labels`, in that order (the Atlas joins by label; the files keep CryoSiam's order)."""
    position = {label: row for row, label in enumerate(regions.column("label").to_pylist())}
    return regions.take(pa.array([position[int(label)] for label in labels]))
