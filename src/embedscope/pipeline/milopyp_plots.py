"""MiLoPYP's `plot_2d.py` as embedscope steps: an npz becomes an Atlas, then map, over-cluster and figures.

The files keep MiLoPYP's names and contents (all_colors.npy, interactive_info_parquet.gzip, imgs/, the two
2d_visualization figures) so that their later scripts still read them; the Atlas holds the same results for
`embedscope view`, `paint` and `export`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from embedscope.atlas import Atlas
from embedscope.atlas.manifest import read_manifest
from embedscope.errors import AtlasError, ParameterError
from embedscope.formats.milopyp import image_urls, read_output_info, write_interactive_parquet
from embedscope.pipeline.clustering import cluster_atlas
from embedscope.pipeline.mapping import map_atlas
from embedscope.pipeline.tomogram_atlas import point_ids, write_tomogram_atlas
from embedscope.progress import SILENT, Reporter

ATLAS_NAME = "embeddings.atlas"
CLUSTER_LAYER = "overcluster"


@dataclass
class Plot2dReport:
    """What `milopyp plot2d` wrote, and the Atlas behind it."""

    atlas: Path
    items: int
    clusters: int
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def milopyp_plot2d(
    npz: Path,
    output: Path,
    *,
    n_cluster: int,
    num_neighbor: int,
    mode: str = "umap",
    min_dist_umap: float = 0.5,
    min_dist_vis: float = 1.3e-3,
    seed: int = 42,
    host: int = 7000,
    save_images: bool = True,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> Plot2dReport:
    """Map and over-cluster the `pred` embeddings of `npz` and write plot_2d.py's files into `output`.

    The map is UMAP (n_neighbors=num_neighbor) or t-SNE (perplexity=num_neighbor), min-max scaled to [0, 1].
    """
    started = time.perf_counter()
    if mode not in ("umap", "tsne"):
        raise ParameterError(f"--mode must be umap or tsne; got {mode!r}")
    if not 0 <= min_dist_vis <= 2:
        raise ParameterError(f"--min_dist_vis is a squared distance in [0, 1] map units (e.g. 1.3e-3); "
                             f"got {min_dist_vis:g}")
    info = read_output_info(npz)
    if info.subvol is None:
        raise ParameterError(f"{npz} has no subvol patches; plot2d needs them for the thumbnails (write the npz "
                             "with `embedscope milopyp test`)")
    _writable(output)
    atlas = _atlas_for(info, output / ATLAS_NAME, npz, reporter, command)
    mapped = map_atlas(atlas, mode, n_neighbors=num_neighbor, perplexity=float(num_neighbor),
                       min_dist=min_dist_umap, seed=seed, name=mode, reporter=reporter, command=command)
    clustered = cluster_atlas(atlas, "overcluster", k=n_cluster, seed=seed, name=CLUSTER_LAYER, reporter=reporter,
                              command=command)
    positions = _unit_square(atlas, mapped.layer)
    labels = atlas.layer(CLUSTER_LAYER).column("cluster").to_numpy()
    report = Plot2dReport(output / ATLAS_NAME, atlas.n, clustered.n_clusters)
    report.files += _milopyp_files(info, positions, labels, output, host, save_images, reporter)
    report.files += _figures(atlas, positions, labels, output, min_dist_vis, seed)
    report.seconds = time.perf_counter() - started
    atlas.record("milopyp plot2d", {"npz": str(npz), "mode": mode, "n_cluster": n_cluster,
                                    "num_neighbor": num_neighbor, "min_dist_umap": min_dist_umap,
                                    "min_dist_vis": min_dist_vis, "seed": seed,
                                    "files": [file.name for file in report.files]}, command=command)
    return report


def _writable(output: Path) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ParameterError(f"cannot write to {output} ({error.strerror}); choose another --path") from error


def _atlas_for(info, path: Path, npz: Path, reporter: Reporter, command: str | None) -> Atlas:
    """The Atlas of this npz: the one already beside it when it holds the same points, else a new one."""
    ids = point_ids(info.names, info.coords)
    if path.exists():
        try:
            read_manifest(path)
            atlas = Atlas.open(path)
            if atlas.n == len(ids) and atlas.table(["id"]).column("id").to_pylist() == ids:
                return atlas
        except AtlasError:
            pass
        reporter.note(f"replacing {path}: it holds other points than {npz}")
    return write_tomogram_atlas(path, info.pred, info.names, info.coords, info.subvol, info.subvols_2d,
                                step="import milopyp npz", parameters={"npz": str(npz)}, replace=True,
                                reporter=reporter, command=command)


def _unit_square(atlas: Atlas, layer: str) -> np.ndarray:
    table = atlas.layer(layer)
    xy = np.column_stack([table.column("x").to_numpy(), table.column("y").to_numpy()]).astype(np.float64)
    low, extent = xy.min(axis=0), np.ptp(xy, axis=0)
    return (xy - low) / np.where(extent > 0, extent, 1.0)


def _milopyp_files(info, positions: np.ndarray, labels: np.ndarray, output: Path, host: int, save_images: bool,
                   reporter: Reporter) -> list[Path]:
    """all_colors.npy, interactive_info_parquet.gzip and imgs/{i}.png, in npz order as MiLoPYP writes them."""
    from embedscope.figures import position_colors
    from embedscope.formats.atomic_files import atomic_output

    colors = output / "all_colors.npy"
    with atomic_output(colors) as temporary, open(temporary, "wb") as file:
        np.save(file, position_colors(positions))
    parquet = output / "interactive_info_parquet.gzip"
    write_interactive_parquet(parquet, info.names, info.coords, info.pred, labels.astype(np.int64),
                              image_urls(len(info), host))
    files = [colors, parquet]
    if save_images:
        folder = output / "imgs"
        folder.mkdir(exist_ok=True)
        with reporter.phase("patch images", len(info)) as advance:
            for index, patch in enumerate(info.subvol[:, 0]):
                Image.fromarray(_grey(patch)).save(folder / f"{index}.png", compress_level=1)
                advance(1)
        files.append(folder)
    return files


def _grey(patch: np.ndarray) -> np.ndarray:
    """A patch min-max scaled to uint8, as matplotlib's imsave with a grey map shows it."""
    low, high = float(patch.min()), float(patch.max())
    scaled = (patch - low) / (high - low) if high > low else np.zeros_like(patch)
    return np.rint(scaled * 255).astype(np.uint8)


def _figures(atlas: Atlas, positions: np.ndarray, labels: np.ndarray, output: Path, min_dist: float,
             seed: int) -> list[Path]:
    """The map with thumbnails, and the same map coloured and keyed by over-cluster."""
    from embedscope.figures import draw_thumbnail_map, spaced_selection

    rows = spaced_selection(positions, min_dist=min_dist, seed=seed)
    thumbs = atlas.thumbs("patch", rows)
    plain = draw_thumbnail_map(positions, rows, thumbs, output / "2d_visualization_out.webp",
                               title="embedding map")
    keyed = draw_thumbnail_map(positions, rows, thumbs, output / "2d_visualization_labels.webp",
                               clusters=labels, title="over-clusters", key_title="cluster")
    return [plain, keyed]
