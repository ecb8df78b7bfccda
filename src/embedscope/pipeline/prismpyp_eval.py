"""prismPYP's `eval2d` and `eval3d` as embedscope steps: embed (or read embeddings.pth), cluster, map, draw, export.

`<output>/inference/` receives prismPYP's files (embeddings.pth, scatter and thumbnail plots, neighbour grids,
data_for_export.parquet) and an Atlas, `embeddings.atlas`, that `embedscope view`, `export` and `intersect` read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from embedscope.atlas import Atlas
from embedscope.errors import InputError, ParameterError
from embedscope.pipeline.clustering import cluster_atlas
from embedscope.pipeline.mapping import map_atlas
from embedscope.pipeline.micrograph_embedding import THUMB_SIZE, embed_micrographs, thumbnails_of
from embedscope.pipeline.micrograph_figures import draw_map_figures, draw_neighbour_figures
from embedscope.pipeline.micrograph_sources import (
    ViewProblems,
    collect_micrographs,
    prismpyp_inputs,
    stream_micrograph_views,
)
from embedscope.progress import SILENT, Reporter
from embedscope.sources.micrographs import read_name_list

ATLAS_NAME = "embeddings.atlas"
CLUSTER_LAYER = "kmeans"


@dataclass
class EvalReport:
    """What an eval2d/eval3d run wrote."""

    inference: Path
    atlas: Path
    items: int
    clusters: int
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class EvalSettings:
    """prismPYP's eval flags that shape the analysis (not where the data come from)."""

    n_clusters: int = 100
    num_neighbors: int = 30
    min_dist_umap: float = 0.3
    n_components: int = 2
    matrix_num_neighbors: int = 8
    matrix_num_references: int = 5
    use_fft: bool = False
    svgz: bool = False
    seed: int = 0


def prismpyp_eval(
    output_path: Path,
    metadata_path: Path,
    *,
    weights: Path | None = None,
    embedding_path: Path | None = None,
    settings: EvalSettings = EvalSettings(),
    batch_size: int = 32,
    workers: int = 2,
    device: str = "auto",
    list_file: Path | None = None,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> EvalReport:
    """Run eval2d (n_components 2) or eval3d (3) on prismPYP's metadata folder into `<output_path>/inference/`.

    With `embedding_path`, those vectors are used (a CUDA-saved file loads on a CPU); else `weights` embeds the
    micrographs of the folder's list (or `list_file`), from its webp pictures (the power spectra with `use_fft`).
    """
    started = time.perf_counter()
    _check(settings)
    if weights is None and embedding_path is None:
        raise ParameterError("give --feature-extractor-weights (a trained model) or --embedding-path "
                             "(embeddings.pth from an earlier run)")
    lists, webp = prismpyp_inputs(metadata_path)
    lists = [Path(list_file)] if list_file is not None else lists
    _check_size(sum(len(read_name_list(listing)) for listing in lists), settings)  # before any work
    inference = Path(output_path) / "inference"
    try:
        inference.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ParameterError(f"cannot write to {inference} ({error.strerror}); choose another --output-path") from error
    atlas_path = inference / ATLAS_NAME
    domain = "fft" if settings.use_fft else "real"
    report = EvalReport(inference, atlas_path, 0, 0)
    if embedding_path is not None:
        atlas = _atlas_from_embeddings(Path(embedding_path), lists, metadata_path, webp, atlas_path, workers,
                                       reporter, command)
    else:
        embedded = embed_micrographs(lists, weights, atlas_path, domain=domain,
                                     metadata=metadata_path, webp=webp, batch_size=batch_size, device=device,
                                     workers=workers, replace=True, embeddings_pth=inference / "embeddings.pth",
                                     reporter=reporter, command=command)
        report.files.append(inference / "embeddings.pth")
        atlas = Atlas.open(embedded.atlas)
    report.items = atlas.n
    _check_size(atlas.n, settings)
    labels = _cluster(atlas, settings, reporter, command)
    report.clusters = len(np.unique(labels))
    layers = _map(atlas, settings, reporter, command)
    suffix = ".svgz" if settings.svgz else ".webp"
    with reporter.phase("figures", len(layers) + 1) as advance:
        for layer in layers:
            if layer.endswith("3d"):
                report.files.append(_three_views(atlas, layer, labels, inference / f"scatter_plot_UMAP_3d{suffix}"))
            else:
                report.files += draw_map_figures(atlas, layer, labels, inference, suffix=suffix, seed=settings.seed)
            advance(1)
        report.files += draw_neighbour_figures(atlas, atlas.vectors(), inference,
                                               references=settings.matrix_num_references,
                                               neighbours=settings.matrix_num_neighbors, suffix=suffix,
                                               seed=settings.seed)
        advance(1)
    report.files.append(_export_parquet(atlas, labels, layers, inference / "data_for_export.parquet"))
    atlas.record(f"prismpyp eval{settings.n_components}d", {
        "output_path": str(output_path), "metadata_path": str(metadata_path), "weights": str(weights or ""),
        "embedding_path": str(embedding_path or ""), **settings.__dict__,
        "files": [file.name for file in report.files]}, command=command)
    report.seconds = time.perf_counter() - started
    return report


def _check(settings: EvalSettings) -> None:
    checks = [
        (settings.n_clusters >= 1, f"--n-clusters must be at least 1; got {settings.n_clusters}"),
        (settings.num_neighbors >= 2, f"--num-neighbors must be at least 2; got {settings.num_neighbors}"),
        (0 <= settings.min_dist_umap <= 1, f"--min-dist-umap must lie in [0, 1]; got {settings.min_dist_umap:g}"),
        (settings.n_components in (2, 3), f"--n-components must be 2 or 3; got {settings.n_components}"),
        (settings.matrix_num_neighbors >= 1 and settings.matrix_num_references >= 1,
         "--matrix-num-neighbors and --matrix-num-references must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ParameterError(message)


def _check_size(n: int, settings: EvalSettings) -> None:
    if settings.n_clusters > n:
        raise ParameterError(f"--n-clusters {settings.n_clusters} is more than the {n} micrographs; "
                             f"pass at most {n} (e.g. --n-clusters {max(1, min(10, n // 3))})")
    if n < 4:
        raise ParameterError(f"a map needs at least 4 micrographs; only {n} could be embedded")


def _cluster(atlas: Atlas, settings: EvalSettings, reporter: Reporter, command: str | None) -> np.ndarray:
    """prismPYP's spherical k-means (faiss Kmeans, spherical=True) on the L2-normalised embeddings."""
    cluster_atlas(atlas, "kmeans", k=settings.n_clusters, spherical=True, seed=settings.seed, name=CLUSTER_LAYER,
                  reporter=reporter, command=command)
    return atlas.layer(CLUSTER_LAYER).column("cluster").to_numpy()


def _map(atlas: Atlas, settings: EvalSettings, reporter: Reporter, command: str | None) -> list[str]:
    """PCA, UMAP (in n_components) and, when there are enough micrographs for the perplexity, t-SNE."""
    common = {"seed": settings.seed, "metric": "cosine", "reporter": reporter, "command": command}
    layers = [map_atlas(atlas, "pca", **common).layer]
    layers.append(map_atlas(atlas, "umap", dims=settings.n_components, n_neighbors=settings.num_neighbors,
                            min_dist=settings.min_dist_umap, **common).layer)
    if settings.n_components == 2:
        if atlas.n > 3 * settings.num_neighbors:
            layers.append(map_atlas(atlas, "tsne", perplexity=float(settings.num_neighbors), **common).layer)
        else:
            reporter.note(f"t-SNE skipped: {atlas.n} micrographs are too few for perplexity {settings.num_neighbors} "
                          f"(it needs more than {3 * settings.num_neighbors})")
    return layers


def _three_views(atlas: Atlas, layer: str, labels: np.ndarray, path: Path) -> Path:
    from embedscope.figures import draw_three_views

    table = atlas.layer(layer)
    xyz = np.column_stack([table.column(axis).to_numpy() for axis in ("x", "y", "z")])
    return draw_three_views(xyz, path, values=labels, title="UMAP projection (3D)", key_title="class")


def _export_parquet(atlas: Atlas, labels: np.ndarray, layers: list[str], path: Path) -> Path:
    """data_for_export.parquet: clusters, UMAP coordinates, names, the metadata columns and the unit vectors."""
    from embedscope.formats.prismpyp import write_export_parquet

    umap = atlas.layer(next(layer for layer in layers if layer.startswith("umap")))
    axes = [axis for axis in ("x", "y", "z") if axis in umap.column_names]
    items = atlas.table()
    names = items.column("micrograph_name").to_pylist()
    ours = {"row", "id", "vector", "micrograph_name", "source", "height", "width"}
    metadata = items.select([name for name in items.column_names if name not in ours])
    metadata = metadata.add_column(0, "micrograph_name", pa.array(names, pa.string()))
    vectors = atlas.vectors()
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return write_export_parquet(path, cluster_id=labels, umap_xy=np.column_stack([umap.column(a).to_numpy()
                                                                                  for a in axes]),
                                thumbnails=names, names=names, metadata=metadata, embeddings=unit)


def _atlas_from_embeddings(embedding_path: Path, lists: list[Path], metadata_path: Path, webp: Path | None,
                           atlas_path: Path, workers: int, reporter: Reporter, command: str | None) -> Atlas:
    """An Atlas of precomputed embeddings (prismPYP's embeddings.pth, rows in the list's order) with thumbnails."""
    from embedscope.formats.prismpyp import read_embeddings_pth
    from embedscope.sources.micrographs import read_metadata

    vectors = read_embeddings_pth(embedding_path)
    names = [name for listing in lists for name in read_name_list(listing)]
    if len(names) != len(vectors):
        raise InputError(f"{embedding_path} holds {len(vectors):,} embeddings but {lists[0]} lists {len(names):,} "
                         "micrographs; give the embeddings made from this list")
    try:
        micrographs = collect_micrographs(lists, metadata=metadata_path, webp=webp, reporter=reporter)
    except InputError as error:
        reporter.note(f"no thumbnails: {error}")
        micrographs = None
    table = read_metadata(names, metadata_path).table
    columns = {"micrograph_name": pa.array(names, pa.string())}
    columns |= {name: table.column(name) for name in table.column_names if name not in columns}
    with Atlas.building(atlas_path, vectors.shape[1], metric="cosine", replace=True) as atlas:
        atlas.append(vectors, columns["micrograph_name"], pa.table(columns), label=str(embedding_path))
        if micrographs is not None and micrographs.names == names:
            _add_thumbnails(atlas, micrographs, workers, reporter)
        elif micrographs is not None:
            reporter.note("no thumbnails: not every listed micrograph has its pictures")
        atlas.record("import prismpyp embeddings", {"embedding_path": str(embedding_path)}, command=command)
    return Atlas.open(atlas_path)


def _add_thumbnails(atlas: Atlas, micrographs, workers: int, reporter: Reporter) -> None:
    """The mg and ps thumbnails of every micrograph; one that cannot be read gets mid-grey ones and a warning."""
    problems = ViewProblems(reporter)
    blank = np.full((THUMB_SIZE, THUMB_SIZE), 128, np.uint8)
    pictures: list[tuple[np.ndarray, np.ndarray]] = []
    with reporter.phase("thumbnails", len(micrographs)) as advance:
        for row, views in stream_micrograph_views(micrographs, workers=workers):
            usable = problems.accept(micrographs.names[row], views)
            pictures.append(thumbnails_of(views) if usable else (blank, blank))
            advance(1)
    atlas.add_thumbs("mg", [np.stack([mg for mg, _ in pictures])])
    atlas.add_thumbs("ps", [np.stack([ps for _, ps in pictures])])
