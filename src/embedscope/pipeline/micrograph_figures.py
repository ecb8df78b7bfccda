"""prismPYP's eval2d figures drawn from an Atlas of micrographs: scatter plots, thumbnail plots, neighbour grids.

The file names are prismPYP's (scatter_plot_UMAP.webp, thumbnail_plot_umap_mg.webp, nearest_neighbors_1.webp,
nearest_neighbors_matrix), so users find what they know; the pictures are ours, drawn from the Atlas's `mg` and
`ps` thumbnails (micrograph and power spectrum side by side in the neighbour grids, as prismPYP pairs them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedscope.atlas import Atlas
from embedscope.figures import draw_neighbor_matrix, draw_neighbors, draw_scatter, draw_thumbnail_map, spaced_selection

# layer -> (prismPYP's title word in scatter_plot_<word>.webp, its method name in thumbnail_plot_<name>_<mg|ps>)
METHOD_NAMES = {"pca": ("PCA", "pca"), "umap": ("UMAP", "umap"), "tsne": ("t-SNE", "tsne")}
THUMBNAIL_MIN_DIST = 3e-3  # prismPYP's squared distance between thumbnails, in [0, 1]-scaled map units
NEIGHBOUR_GRIDS = 3  # nearest_neighbors_<i>.webp, each a random example and its 8 nearest


def draw_map_figures(atlas: Atlas, layer: str, labels: np.ndarray, folder: Path, *, suffix: str = ".webp",
                     seed: int = 0) -> list[Path]:
    """scatter_plot_<METHOD>(_no_labels) and, where the Atlas has thumbnails, thumbnail_plot_<method>_<mg|ps>."""
    title, method = METHOD_NAMES[layer]
    positions = _positions(atlas, layer)
    kinds = [kind for kind in ("mg", "ps") if kind in atlas.thumb_kinds()]
    clusters = np.asarray(labels)
    files = [
        draw_scatter(positions, folder / f"scatter_plot_{title}{suffix}", values=clusters,
                     title=f"{title} projection", key_title="class").path,
        draw_scatter(positions, folder / f"scatter_plot_{title}_no_labels{suffix}", values=clusters,
                     labels=False).path,
    ]
    rows = spaced_selection(positions, min_dist=THUMBNAIL_MIN_DIST, seed=seed) if kinds else []
    for kind in kinds:
        what = "micrographs" if kind == "mg" else "power spectra"
        files.append(draw_thumbnail_map(
            positions, rows, atlas.thumbs(kind, rows), folder / f"thumbnail_plot_{method}_{kind}{suffix}",
            clusters=clusters, title=f"{what} on the {title} map, k = {len(np.unique(clusters))}",
            key_title="class"))
    return files


def draw_neighbour_figures(atlas: Atlas, vectors: np.ndarray, folder: Path, *, references: int, neighbours: int,
                           suffix: str = ".webp", seed: int = 0) -> list[Path]:
    """nearest_neighbors_<i> (an example and its 8 nearest) and nearest_neighbors_matrix (references x neighbours).

    Distances are euclidean between L2-normalised vectors, as prismPYP measures them.
    """
    if not {"mg", "ps"} & set(atlas.thumb_kinds()):
        return []
    pictures = _pair_pictures(atlas)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    random = np.random.default_rng(seed)
    files = []
    for index in range(min(NEIGHBOUR_GRIDS, len(unit))):
        example = int(random.integers(len(unit)))
        nearest, distances = _nearest(unit, example, min(8, len(unit) - 1))
        files.append(draw_neighbors(pictures[example], pictures[nearest], distances,
                                    folder / f"nearest_neighbors_{index + 1}{suffix}",
                                    title=f"micrograph {atlas_id(atlas, example)} and its nearest neighbours"))
    count, k = min(references, len(unit)), min(neighbours, len(unit) - 1)
    if count and k:
        examples = random.choice(len(unit), count, replace=False)
        found = [_nearest(unit, int(example), k) for example in examples]
        files.append(draw_neighbor_matrix(pictures[examples], np.stack([pictures[rows] for rows, _ in found]),
                                          np.stack([distances for _, distances in found]),
                                          folder / f"nearest_neighbors_matrix{suffix}"))
    return files


def atlas_id(atlas: Atlas, row: int) -> str:
    return str(atlas.table(["id"]).column("id")[row])


def _nearest(unit: np.ndarray, example: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k rows nearest to `example` (itself excluded), nearest first, and their distances."""
    distances = np.sqrt(np.maximum(((unit - unit[example]) ** 2).sum(axis=1), 0))
    distances[example] = np.inf
    rows = np.argsort(distances, kind="stable")[:k]
    return rows, distances[rows]


def _pair_pictures(atlas: Atlas) -> np.ndarray:
    """Each micrograph's thumbnail with its power spectrum to the right (whichever of the two the Atlas has)."""
    stacks = [atlas.thumbs(kind) for kind in ("mg", "ps") if kind in atlas.thumb_kinds()]
    return np.concatenate(stacks, axis=2)


def _positions(atlas: Atlas, layer: str) -> np.ndarray:
    table = atlas.layer(layer)
    return np.column_stack([table.column("x").to_numpy(), table.column("y").to_numpy()]).astype(np.float64)
