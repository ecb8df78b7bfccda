"""CryoSiam's visualisations as Atlas layers and figures: 2D/3D UMAP (or PCA) maps, scatter plots per clustering.

One map over all tomograms replaces CryoSiam's per-tomogram HTML files; `embedscope view` opens the same Atlas.
The `_data.csv` tables CryoSiam writes beside its plots are still written, for scripts that read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from embedscope.atlas import Atlas
from embedscope.formats.atomic_files import atomic_output
from embedscope.formats.cryosiam_config import CryoSiamConfig, tomogram_stem
from embedscope.pipeline.figuring import figures_atlas
from embedscope.pipeline.mapping import map_atlas
from embedscope.pipeline.subtomogram_atlas import THUMB_KIND, current_atlas
from embedscope.progress import SILENT, Reporter

UMAP_NEIGHBOURS, UMAP_MIN_DIST = 10, 0.0  # CryoSiam's UMAP settings


@dataclass
class VisualizeReport:
    """The map layers made and the figure and table files written."""

    layers: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    atlas: Path | None = None


def map_layer(
    atlas: Atlas, *, dims: int = 2, metric: str = "euclidean", pca_components: int | None = None, seed: int = 0,
    reporter: Reporter = SILENT, command: str | None = None,
) -> str:
    """The name of a current UMAP (or, with `pca_components`, PCA) layer of `dims` axes, made if missing or if it
    was made with another metric or seed.

    As CryoSiam: with pca_components the plot shows the first principal components instead of a UMAP.
    """
    method = "pca" if pca_components else "umap"
    name = method if dims == 2 else f"{method}{dims}d"
    made = atlas.layers().get(name, {}).get("params", {})
    if (made.get("method"), made.get("metric"), made.get("seed")) != (method, metric, seed):
        map_atlas(atlas, method, dims=dims, metric=metric, n_neighbors=min(UMAP_NEIGHBOURS, atlas.n - 1),
                  min_dist=UMAP_MIN_DIST, seed=seed, name=name, reporter=reporter, command=command)
    return name


def cluster_figure(
    atlas: Atlas, method: str, folder: Path, *, metric: str = "euclidean", seed: int = 0, reporter: Reporter = SILENT
) -> list[Path]:
    """The clustering `method` drawn on the UMAP (`<method>_figures/`), and CryoSiam's `_umap_data.csv` beside it."""
    layer = map_layer(atlas, metric=metric, seed=seed, reporter=reporter)
    output = folder / f"{method}_figures"
    output.mkdir(exist_ok=True)
    kinds = ("scatter", "thumbnails") if THUMB_KIND in atlas.thumb_kinds() else ("scatter",)
    report = figures_atlas(atlas, layer, kinds=kinds, color=method, output=output, fmt="png", seed=seed,
                           reporter=reporter)
    table = _map_table(atlas, layer, atlas.layer(method).column("cluster").to_numpy() + 1)
    data = folder / f"{method}_clusters_umap_data.csv"
    _write_csv(data, table.select(["class", "x", "y", "labels"]))
    return [*report.files, data]


def visualize_subtomograms(
    config: CryoSiamConfig, *, reporter: Reporter = SILENT, command: str | None = None
) -> VisualizeReport:
    """`simsiam_visualize_embeddings`: the 2D (and with `3d_umap`, 3D) map of all instances, figures and tables.

    Points are coloured by the clustering that `visualization_suffix` names (k-means or spectral) once it exists,
    else by tomogram; `visualization_files` picks the tomograms whose `<tomo>_umap_data.csv` is written.
    """
    settings = config.visualization
    folder = Path(config.prediction_folder)
    names = None if config.clustering_files is None else [
        tomogram_stem(name, config.file_extension) for name in config.clustering_files]
    atlas = current_atlas(folder, names, file_extension=config.file_extension, reporter=reporter)
    output = Path(settings.prediction_folder or folder / "vis")
    output.mkdir(parents=True, exist_ok=True)
    report = VisualizeReport(atlas=atlas.path)
    if not settings.visualize_umap:
        reporter.note("visualization.visualize_umap is False: no map drawn")
        return report
    color = _colour_layer(atlas, settings.visualization_suffix)
    for dims in (2, 3) if settings.umap_3d else (2,):
        layer = map_layer(atlas, dims=dims, metric=settings.distance, pca_components=settings.pca_components,
                          seed=config.seed, reporter=reporter, command=command)
        report.layers.append(layer)
        kinds = ("scatter", "thumbnails") if dims == 2 and THUMB_KIND in atlas.thumb_kinds() else ("scatter",)
        figures = figures_atlas(atlas, layer, kinds=kinds, color=color, output=output, fmt="png",
                                seed=config.seed, reporter=reporter, command=command)
        report.files += figures.files
        classes = atlas.layer(color).column("cluster").to_numpy() + 1 if color != "tomogram" else None
        report.files += _tomogram_tables(atlas, layer, classes, output, _visualised(config))
    return report


def _visualised(config: CryoSiamConfig) -> list[str] | None:
    files = config.visualization_files
    return None if files is None else [tomogram_stem(name, config.file_extension) for name in files]


def _colour_layer(atlas: Atlas, suffix: str) -> str:
    for method in ("spectral", "kmeans"):
        if method in suffix and method in atlas.layers():
            return method
    return "tomogram"


def _map_table(atlas: Atlas, layer: str, classes: np.ndarray | None) -> pa.Table:
    """Per item: tomogram, label, area, the map's axes, CryoSiam's plot label and the class (when clustered)."""
    items = atlas.table(["id", "tomogram", "label", "area", "hull_area"])
    positions = atlas.layer(layer)
    columns = {name: items.column(name) for name in ("tomogram", "label", "area", "hull_area")}
    columns.update({axis: positions.column(axis) for axis in ("x", "y", "z") if axis in positions.column_names})
    columns["labels"] = items.column("id")
    if classes is not None:
        columns["class"] = pa.array(classes.astype(np.int64))
    return pa.table(columns)


def _tomogram_tables(
    atlas: Atlas, layer: str, classes: np.ndarray | None, output: Path, names: Sequence[str] | None
) -> list[Path]:
    """CryoSiam's per-tomogram `<tomo>_<umap|pca>_data.csv`: the regions with the map's coordinates."""
    table = _map_table(atlas, layer, classes)
    if classes is not None:
        table = table.rename_columns(["semantic_class" if name == "class" else name for name in table.column_names])
    tomograms = np.asarray(table.column("tomogram").to_pylist(), dtype=object)
    written = []
    for name in dict.fromkeys(tomograms.tolist()):
        if names is not None and name not in names:
            continue
        path = output / f"{name}_{layer}_data.csv"
        _write_csv(path, table.filter(pa.array(tomograms == name)))
        written.append(path)
    return written


def _write_csv(path: Path, table: pa.Table) -> None:
    with atomic_output(path) as temporary:
        pacsv.write_csv(table, temporary)
