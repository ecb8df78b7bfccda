"""`figures`: draw a map layer as scatter plots, thumbnail maps, nearest-neighbour grids and 3D views.

Everything that can be wrong (layer, colour column, thumbnails, ids, output folder) is checked before the
first figure is drawn. File names follow prismPYP's, so users find them where they expect.
"""

from __future__ import annotations

import base64
import html
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from embedscope.atlas import Atlas, as_atlas
from embedscope.errors import AtlasError, ParameterError
from embedscope.progress import SILENT, Reporter

KINDS = ("scatter", "thumbnails", "neighbors", "matrix")
FORMATS = ("webp", "png", "svg", "pdf")
NEIGHBOURS = 8
MEDIA_TYPES = {".webp": "image/webp", ".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif"}
MAP_COLUMNS = ("x", "y", "z")


@dataclass
class FiguresReport:
    """What `figures` wrote: the files in order, each reference's neighbour rows, a colours layer, the time."""

    files: list[Path] = field(default_factory=list)
    neighbours: dict[int, list[int]] = field(default_factory=dict)
    colors_layer: str | None = None
    seconds: float = 0.0

    def _repr_html_(self) -> str:
        """The figures themselves, so a notebook cell that ends with `embedscope.draw(...)` shows them inline."""
        return "".join(_inline(file) for file in self.files)


@dataclass
class _Request:
    positions: np.ndarray
    values: np.ndarray | None
    key_title: str
    output: Path
    suffix: str
    dpi: int
    name: str


def figures_atlas(
    atlas: Atlas | str | os.PathLike[str],
    layer: str,
    *,
    kinds: Sequence[str] = ("scatter",),
    color: str | None = None,
    output: str | os.PathLike[str] = "figures",
    fmt: str = "webp",
    dpi: int = 150,
    max_thumbs: int = 150,
    min_dist: float | None = None,
    thumb_kinds: tuple[str, ...] | None = None,
    references: int = 3,
    reference_ids: tuple[str, ...] | None = None,
    animate: bool = False,
    colors: bool = False,
    seed: int = 0,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> FiguresReport:
    """Draw the asked `kinds` of figure for map `layer` into `output`; with `colors`, store a colour layer."""
    atlas = as_atlas(atlas)
    output, kinds = Path(output), tuple(kinds)
    started = time.perf_counter()
    _check_options(kinds, fmt, dpi, max_thumbs, min_dist, references)
    positions = _positions(atlas, layer)
    values = _color_values(atlas, color) if color else None
    needs_thumbs = {"thumbnails", "neighbors", "matrix"} & set(kinds)
    shown_kinds = _thumb_kinds(atlas, thumb_kinds) if needs_thumbs else ()
    rows = _reference_rows(atlas, references, reference_ids, seed) if {"neighbors", "matrix"} & set(kinds) else None
    _writable(output)
    request = _Request(positions, values, color or "", output, fmt, dpi, layer)
    report = FiguresReport()
    with reporter.phase("figures", None):
        if "scatter" in kinds:
            report.files += _scatter(request, animate)
        if "thumbnails" in kinds:
            report.files += _thumbnail_maps(atlas, request, shown_kinds, max_thumbs, min_dist, seed)
        if rows is not None:
            files, report.neighbours = _neighbour_grids(atlas, request, shown_kinds[0], rows, kinds)
            report.files += files
    if colors:
        report.colors_layer = _store_colors(atlas, layer, positions)
    report.seconds = time.perf_counter() - started
    parameters = {"layer": layer, "kinds": list(kinds), "color": color, "format": fmt, "dpi": dpi,
                  "files": [file.name for file in report.files], "colors_layer": report.colors_layer,
                  "neighbours": {str(row): near for row, near in report.neighbours.items()}}
    atlas.record("figures", parameters, command=command)
    return report


def _inline(file: Path) -> str:
    """One figure as HTML: the image embedded (PDF, which browsers do not show inline, as its path)."""
    kind = MEDIA_TYPES.get(file.suffix.lower())
    if kind is None:
        return f"<p>{html.escape(str(file))}</p>"
    data = base64.b64encode(file.read_bytes()).decode("ascii")
    return f'<figure><img src="data:{kind};base64,{data}" style="max-width:100%"/>' \
           f"<figcaption>{html.escape(file.name)}</figcaption></figure>"


def _check_options(
    kinds: tuple[str, ...], fmt: str, dpi: int, max_thumbs: int, min_dist: float | None, references: int
) -> None:
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ParameterError(f"figure kinds must be among {', '.join(KINDS)}; got {', '.join(kinds) or 'none'}")
    if fmt not in FORMATS:
        raise ParameterError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if not 20 <= dpi <= 1200:
        raise ParameterError(f"--dpi must be between 20 and 1200; got {dpi}")
    if max_thumbs < 1:
        raise ParameterError(f"--max-thumbs must be at least 1; got {max_thumbs}")
    if min_dist is not None and not 0 <= min_dist <= 2:
        raise ParameterError(f"--min-dist is a squared distance in [0, 1] map units (e.g. 0.003); got {min_dist:g}")
    if references < 1:
        raise ParameterError(f"--references must be at least 1; got {references}")


def _positions(atlas: Atlas, layer: str) -> np.ndarray:
    table = atlas.layer(layer)
    axes = [column for column in MAP_COLUMNS if column in table.column_names]
    if len(axes) < 2:
        raise AtlasError(f"layer {layer!r} is not a map (it has no x and y); make one with `embedscope map`")
    return np.column_stack([table.column(axis).to_numpy() for axis in axes]).astype(np.float32)


def _color_values(atlas: Atlas, name: str) -> np.ndarray:
    """The values of an item column, or of a layer (its `cluster` column, or its only column)."""
    if name in atlas.layers():
        table = atlas.layer(name).drop_columns(["row"])
        column = "cluster" if "cluster" in table.column_names else table.column_names[0]
        if len(table.column_names) > 1 and column != "cluster":
            raise ParameterError(f"layer {name!r} has several columns ({', '.join(table.column_names)}); "
                                 f"colour by a clustering layer or an item column")
        return _as_numpy(table.column(column))
    names = atlas.schema().names
    if name not in names or name == "vector":
        columns = ", ".join(column for column in names if column not in ("row", "vector"))
        raise AtlasError(f"no column or layer {name!r} to colour by in {atlas.path}; columns: {columns}; "
                         f"layers: {', '.join(atlas.layers()) or 'none'}")
    return _as_numpy(atlas.table([name]).column(name))


def _as_numpy(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        return column.to_numpy()
    return np.asarray(column.to_pylist(), dtype=object)


def _categorical(values: np.ndarray) -> bool:
    """Whether the figures colour these values as categories (strings, cluster numbers), not as numbers."""
    from embedscope.figures.scatter import color_by

    return color_by(values, len(values)).codes is not None


def _thumb_kinds(atlas: Atlas, asked: tuple[str, ...] | None) -> tuple[str, ...]:
    stored = atlas.thumb_kinds()
    if not stored:
        raise AtlasError(f"{atlas.path} has no thumbnails; make them with "
                         f"`embedscope thumbs {atlas.path} --from COLUMN` (a column of image paths)")
    missing = [kind for kind in asked or () if kind not in stored]
    if missing:
        raise AtlasError(f"no thumbnails {missing[0]!r} in {atlas.path} (kinds: {', '.join(stored)}); "
                         f"make them with `embedscope thumbs {atlas.path} --from COLUMN --kind {missing[0]}`")
    return tuple(asked or sorted(stored, key=lambda kind: (kind != "mg", kind)))


def _reference_rows(atlas: Atlas, count: int, ids: tuple[str, ...] | None, seed: int) -> np.ndarray:
    if not ids:
        return np.sort(np.random.default_rng(seed).choice(atlas.n, size=min(count, atlas.n), replace=False))
    known = atlas.table(["id"]).column("id").to_pylist()
    where = {item: row for row, item in enumerate(known)}
    missing = [item for item in ids if item not in where]
    if missing:
        raise AtlasError(f"no item with id {missing[0]!r} in {atlas.path}; give ids from its id column")
    return np.array([where[item] for item in ids], dtype=np.int64)


def _writable(output: Path) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".embedscope-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ParameterError(f"cannot write figures to {output} ({error.strerror}); choose another folder with -o")\
            from error


def _scatter(request: _Request, animate: bool) -> list[Path]:
    from embedscope.figures import animate_rotation, draw_scatter, draw_three_views

    base = request.output / f"scatter_plot_{request.name}"
    plain = request.output / f"scatter_plot_{request.name}_no_labels.{request.suffix}"
    if request.positions.shape[1] == 3:
        files = [draw_three_views(request.positions, Path(f"{base}.{request.suffix}"), values=request.values,
                                  title=request.name, dpi=request.dpi, key_title=request.key_title)]
        if animate:
            files.append(animate_rotation(request.positions, request.output / f"rotation_{request.name}.gif",
                                          values=request.values))
        return files
    drawn = draw_scatter(request.positions, Path(f"{base}.{request.suffix}"), values=request.values,
                         title=request.name, dpi=request.dpi, key_title=request.key_title)
    bare = draw_scatter(request.positions, plain, values=request.values, labels=False, dpi=request.dpi)
    return [drawn.path, bare.path]


def _thumbnail_maps(
    atlas: Atlas, request: _Request, kinds: tuple[str, ...], max_thumbs: int, min_dist: float | None, seed: int
) -> list[Path]:
    from embedscope.figures import draw_thumbnail_map, spaced_selection

    flat = request.positions[:, :2]
    clusters = request.values if request.values is not None and _categorical(request.values) else None
    rows = spaced_selection(flat, min_dist=min_dist, target=max_thumbs, seed=seed)
    files = []
    for kind in kinds:
        path = request.output / f"thumbnail_plot_{request.name}_{kind}.{request.suffix}"
        files.append(draw_thumbnail_map(flat, rows, atlas.thumbs(kind, rows), path, clusters=clusters,
                                        dpi=request.dpi, title=f"{request.name}: {kind}", key_title=request.key_title))
    if {"mg", "ps"} <= set(kinds):
        path = request.output / f"thumbnail_plot_{request.name}_mg_ps.{request.suffix}"
        pair = [atlas.thumbs("mg", rows), atlas.thumbs("ps", rows)]
        files.append(draw_thumbnail_map(flat, rows, pair, path, clusters=clusters, dpi=request.dpi,
                                        title=f"{request.name}: mg | ps", key_title=request.key_title))
    return files


def _neighbour_grids(
    atlas: Atlas, request: _Request, kind: str, rows: np.ndarray, kinds: tuple[str, ...]
) -> tuple[list[Path], dict[int, list[int]]]:
    """Each reference then its 8 nearest items in the original space, nearest first, with distances."""
    from embedscope.figures import draw_neighbor_matrix, draw_neighbors
    from embedscope.maps.neighbors import NearestNeighbors

    metric = atlas.metric or "euclidean"
    vectors = atlas.vectors()
    k = min(NEIGHBOURS, atlas.n - 1)
    if k < 1:
        raise ParameterError(f"{atlas.path} holds {atlas.n} item; nearest-neighbour figures need at least 2")
    found = NearestNeighbors(k, metric, method="exact").fit(vectors).query(vectors[rows], k + 1)
    neighbours, distances = _without_self(rows, found.indices, found.distances, k)
    files = []
    if "neighbors" in kinds:
        for number, (row, near, far) in enumerate(zip(rows, neighbours, distances, strict=True)):
            path = request.output / f"nearest_neighbors_{number}.{request.suffix}"
            files.append(draw_neighbors(atlas.thumbs(kind, [row])[0], atlas.thumbs(kind, near), far, path,
                                        title=f"item {row}: {kind}, {metric} distance", dpi=request.dpi))
    if "matrix" in kinds:
        path = request.output / f"nearest_neighbors_matrix.{request.suffix}"
        stack = np.stack([atlas.thumbs(kind, near) for near in neighbours])
        files.append(draw_neighbor_matrix(atlas.thumbs(kind, rows), stack, distances, path, dpi=request.dpi))
    return files, {int(row): [int(item) for item in near] for row, near in zip(rows, neighbours, strict=True)}


def _without_self(
    rows: np.ndarray, indices: np.ndarray, distances: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Drop each reference from its own neighbours (or its farthest hit, when a duplicate hid it)."""
    keep = indices != rows[:, None]
    keep[keep.all(axis=1), -1] = False
    return indices[keep].reshape(-1, k), distances[keep].reshape(-1, k)


def _store_colors(atlas: Atlas, layer: str, positions: np.ndarray) -> str:
    """A colour per item from its map position (MiLoPYP's all_colors.npy), as layer `<layer>_colors`."""
    from embedscope.figures import position_colors

    rgb = position_colors(positions[:, :2])
    name = f"{layer}_colors"
    params: dict[str, Any] = {"from_layer": layer, "what": "RGB colour of each item's map position"}
    atlas.add_layer(name, {"r": rgb[:, 0], "g": rgb[:, 1], "b": rgb[:, 2]}, params)
    return name
