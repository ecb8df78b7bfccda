"""embedscope's own commands. Each function maps options onto one pipeline step and prints its result.

No logic lives here: checks, reading and writing are in `embedscope.pipeline`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedscope.cli.cryosiam import app as cryosiam_app
from embedscope.cli.info_view import render_description
from embedscope.cli.milopyp import app as milopyp_app
from embedscope.cli.prismpyp import app as prismpyp_app
from embedscope.cli.runner import run_app, session
from embedscope.cli.subtomograms import embed_app, train_app  # the train and embed groups, all commands added

app = typer.Typer(
    name="embedscope",
    help="Embedding maps of images, micrographs, tomograms, text and existing vectors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stdout = Console()


def _version(value: bool) -> None:
    if value:
        from embedscope import __version__

        print(f"embedscope {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")] = False,
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """embedscope: turn vectors, images, micrographs and tomograms into maps you can explore.

    Flags --debug and --quiet may also be given after the command.
    """
    session.debug = debug
    session.quiet = quiet


@app.command("import")
def import_(
    inputs: Annotated[list[Path], typer.Argument(help="Vector files: .npy .npz .pt/.pth .parquet .csv/.tsv .h5")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The Atlas to write (a folder).")],
    key: Annotated[str | None, typer.Option(help="Array or dataset inside .npz / .pt / .h5 files.")] = None,
    transpose: Annotated[bool, typer.Option(help="The stored array is (dim, n), as CryoSiam's embeds.h5.")] = False,
    id_column: Annotated[str | None, typer.Option(help="Column (or npz/h5 array) holding the item ids.")] = None,
    vector_column: Annotated[
        str | None, typer.Option(help="List column holding the vectors, or a pattern like 'dim_*'.")
    ] = None,
    ids: Annotated[Path | None, typer.Option(help="File of ids, one per line, in input order.")] = None,
    meta: Annotated[Path | None, typer.Option(help="Metadata table (.csv/.tsv/.parquet) joined by id.")] = None,
    on: Annotated[str | None, typer.Option(help="Column of --meta that holds the item ids.")] = None,
    frame: Annotated[
        list[str] | None, typer.Option(help="Tag each input as a frame (snapshot); once per input.")
    ] = None,
    group: Annotated[list[str] | None, typer.Option(help="Tag each input with a group; once per input.")] = None,
    metric: Annotated[str | None, typer.Option(help="The distance the vectors are for: cosine or euclidean.")] = None,
    append: Annotated[bool, typer.Option("--append", help="Add to an existing Atlas.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing Atlas (atomically).")] = False,
) -> None:
    """Import vectors that already exist into an Atlas (new, --append, or --force to replace)."""
    from embedscope.pipeline import import_vectors

    report = import_vectors(
        inputs, output, key=key, transpose=transpose, id_column=id_column, vector_column=vector_column,
        ids_file=ids, meta=meta, on=on, frames=frame or (), groups=group or (), metric=metric,
        append=append, replace=force, reporter=session.reporter(), command=session.command,
    )
    if report.unmatched_ids and not session.quiet:
        examples = ", ".join(repr(example) for example in report.unmatched_examples)
        typer.echo(f"note: {report.unmatched_ids} item(s) had no row in {meta} (e.g. {examples})", err=True)
    if report.unused_metadata_rows and not session.quiet:
        typer.echo(f"note: {report.unused_metadata_rows} row(s) of {meta} matched no item", err=True)
    typer.echo(f"imported {report.added:,} vectors (dim {report.dim}) into {report.atlas}: {report.total:,} items")


@app.command()
def info(
    atlas: Annotated[Path, typer.Argument(help="The Atlas folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Show what an Atlas holds: items, dim, columns, layers, provenance, size on disk."""
    from embedscope.atlas import Atlas
    from embedscope.pipeline import describe

    description = describe(Atlas.open(atlas))
    if as_json:
        typer.echo(json.dumps(description, indent=2))
    else:
        render_description(description, stdout)


@app.command("map")
def map_(
    atlas: Annotated[Path, typer.Argument(help="The Atlas folder.")],
    method: Annotated[str, typer.Option(help="umap, tsne, pca or phate.")] = "umap",
    dims: Annotated[int, typer.Option(help="2 or 3.")] = 2,
    metric: Annotated[str | None, typer.Option(help="cosine or euclidean (default: the Atlas's).")] = None,
    neighbors: Annotated[int, typer.Option("--neighbors", help="Neighbours for UMAP and PHATE.")] = 15,
    min_dist: Annotated[float, typer.Option(help="UMAP's minimum distance between points.")] = 0.1,
    perplexity: Annotated[float, typer.Option(help="t-SNE's perplexity.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same map.")] = 0,
    name: Annotated[str | None, typer.Option(help="Layer name (default: the method, e.g. umap or umap3d).")] = None,
    engine: Annotated[str, typer.Option(help="fast (ours) or reference (umap-learn / openTSNE).")] = "fast",
    pca_dims: Annotated[
        int | None, typer.Option(help="Reduce with PCA first (default: to 50 above 100 dims; 0: never).")
    ] = None,
    max_fit: Annotated[int, typer.Option(help="Above this many items, fit on a sample and place the rest.")] = 200_000,
    score: Annotated[bool, typer.Option("--score", help="Also compute trustworthiness and kNN recall.")] = False,
) -> None:
    """Project the vectors to a 2D or 3D map and store it as a layer."""
    from embedscope.atlas import Atlas
    from embedscope.pipeline import map_atlas

    report = map_atlas(
        Atlas.open(atlas), method, dims=dims, metric=metric, n_neighbors=neighbors, min_dist=min_dist,
        perplexity=perplexity, seed=seed, engine=engine, pca_dims=pca_dims, max_fit=max_fit, name=name,
        score=score, reporter=session.reporter(), command=session.command,
    )
    typer.echo(f"wrote layer {report.layer} ({dims}D, {report.params['method']}) in {report.seconds:.1f} s")
    for key, value in report.scores.items():
        typer.echo(f"  {key}: {value:.4f}")


@app.command()
def cluster(
    atlas: Annotated[Path, typer.Argument(help="The Atlas folder.")],
    method: Annotated[str, typer.Option(help="kmeans, spectral, hdbscan, leiden or overcluster.")] = "kmeans",
    k: Annotated[int | None, typer.Option("--k", help="Number of clusters (upper bound with --estimate-k).")] = None,
    estimate_k: Annotated[bool, typer.Option("--estimate-k", help="Spectral: choose k by the eigengap.")] = False,
    spherical: Annotated[bool, typer.Option("--spherical", help="k-means on directions (cosine).")] = False,
    min_cluster_size: Annotated[int | None, typer.Option(help="HDBSCAN's smallest cluster.")] = None,
    resolution: Annotated[float, typer.Option(help="Leiden's resolution; higher gives more clusters.")] = 1.0,
    neighbors: Annotated[int, typer.Option("--neighbors", help="Neighbours of the graph (spectral, leiden).")] = 10,
    metric: Annotated[str | None, typer.Option(help="cosine or euclidean (default: the Atlas's).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same clusters.")] = 0,
    on_layer: Annotated[str | None, typer.Option(help="Cluster a map layer's positions, not the vectors.")] = None,
    pca_dims: Annotated[
        int | None, typer.Option(help="Reduce with PCA first (default: to 50 above 100 dims; 0: never).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Layer name (default: the method).")] = None,
) -> None:
    """Cluster the vectors (or a map layer) and store the labels as a layer."""
    from embedscope.atlas import Atlas
    from embedscope.pipeline import cluster_atlas

    report = cluster_atlas(
        Atlas.open(atlas), method, k=k, estimate_k=estimate_k, spherical=spherical,
        min_cluster_size=min_cluster_size, resolution=resolution, n_neighbors=neighbors, metric=metric,
        seed=seed, on_layer=on_layer, pca_dims=pca_dims, name=name, reporter=session.reporter(),
        command=session.command,
    )
    typer.echo(f"wrote layer {report.layer}: {report.n_clusters} clusters ({method}) in {report.seconds:.1f} s")


@app.command()
def quality(
    atlas: Annotated[Path, typer.Argument(help="The Atlas folder.")],
    layer: Annotated[str, typer.Option(help="The map or clustering layer to score.")],
    labels: Annotated[str | None, typer.Option(help="A column of known labels to score against.")] = None,
    k: Annotated[int, typer.Option("--k", help="Neighbours for trustworthiness, recall and accuracy.")] = 10,
    sample: Annotated[int, typer.Option(help="Points sampled for the scores.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Score a map (trustworthiness, kNN recall, kNN accuracy) or a clustering (silhouette, ARI, NMI)."""
    from embedscope.atlas import Atlas
    from embedscope.pipeline import assess_layer

    scores = assess_layer(Atlas.open(atlas), layer, labels=labels, k=k, sample=sample, seed=seed)
    if as_json:
        typer.echo(json.dumps(scores, indent=2))
        return
    for key, value in scores.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        typer.echo(f"{key:>22}  {shown}")


@app.command()
def thumbs(
    atlas: Annotated[Path, typer.Argument(help="The Atlas folder.")],
    from_column: Annotated[str, typer.Option("--from", help="Column holding each item's image path.")],
    kind: Annotated[str, typer.Option(help="Name of this kind of thumbnail, e.g. mg, ps or slices.")] = "image",
    size: Annotated[int, typer.Option(help="Thumbnail width and height in pixels.")] = 64,
    mode: Annotated[
        str | None, typer.Option(help="image, ps (power spectrum) or slices (default: ps for kind ps, else image).")
    ] = None,
    box: Annotated[int | None, typer.Option(help="Crop size in pixels around x, y[, z] (when present).")] = None,
    root: Annotated[Path | None, typer.Option(help="Folder that relative image paths start from.")] = None,
    crop: Annotated[bool, typer.Option(help="Crop around x, y[, z] columns when present.")] = True,
) -> None:
    """Store a small image per item (from PNG/JPEG/WebP/TIFF/MRC files) for figures and the viewer."""
    from embedscope.atlas import Atlas
    from embedscope.pipeline import thumbs_atlas

    report = thumbs_atlas(
        Atlas.open(atlas), from_column, kind=kind, size=size, mode=mode, box=box, root=root, crop=crop,
        reporter=session.reporter(), command=session.command,
    )
    what = "crops" if report.cropped else "images"
    typer.echo(f"wrote {report.n:,} {kind} thumbnails ({'x'.join(map(str, report.shape))}, from {what}) "
               f"in {report.seconds:.1f} s")


@app.command()
def figures(
    atlas: Annotated[Path, typer.Argument(help="The Atlas folder.")],
    layer: Annotated[str, typer.Option(help="The map layer to draw (2D or 3D).")],
    color: Annotated[str | None, typer.Option(help="Item column or clustering layer to colour by.")] = None,
    kinds: Annotated[str, typer.Option(help="Comma-separated: scatter, thumbnails, neighbors, matrix.")] = "scatter",
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the figures.")] = Path("figures"),
    fmt: Annotated[str, typer.Option("--format", help="webp, png, svg or pdf.")] = "webp",
    dpi: Annotated[int, typer.Option(help="Resolution of raster figures.")] = 150,
    max_thumbs: Annotated[int, typer.Option(help="About this many thumbnails on a thumbnail map.")] = 150,
    min_dist: Annotated[
        float | None, typer.Option(help="Minimum squared spacing of thumbnails in [0,1] map units (e.g. 0.003).")
    ] = None,
    thumbs: Annotated[str | None, typer.Option(help="Thumbnail kinds to show, e.g. mg,ps (default: all).")] = None,
    references: Annotated[int, typer.Option(help="Random items shown with their nearest neighbours.")] = 3,
    ids: Annotated[str | None, typer.Option(help="Comma-separated ids to show with their neighbours.")] = None,
    animate: Annotated[bool, typer.Option("--animate", help="3D layers: also a rotating GIF.")] = False,
    colors: Annotated[
        bool, typer.Option("--colors", help="Store a colour per item from its map position (layer LAYER_colors).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for the choice of references and thumbnails.")] = 0,
) -> None:
    """Draw publication figures of a map: scatter, thumbnail map, nearest-neighbour grids, 3D views."""
    from embedscope.atlas import Atlas
    from embedscope.pipeline import figures_atlas

    report = figures_atlas(
        Atlas.open(atlas), layer, kinds=_listed(kinds), color=color, output=output, fmt=fmt, dpi=dpi,
        max_thumbs=max_thumbs, min_dist=min_dist, thumb_kinds=_listed(thumbs) if thumbs else None,
        references=references, reference_ids=_listed(ids) if ids else None, animate=animate, colors=colors,
        seed=seed, reporter=session.reporter(), command=session.command,
    )
    for file in report.files:
        typer.echo(f"wrote {file}")
    if report.colors_layer:
        typer.echo(f"wrote layer {report.colors_layer}")


@app.command()
def paint(
    atlas: Annotated[Path, typer.Argument(help="An Atlas of tomogram points (tomogram, x, y, z columns).")],
    tomograms: Annotated[Path, typer.Option(help="A MiLoPYP list or a folder of .rec/.mrc tomograms.")],
    color_by: Annotated[str, typer.Option("--color-by", help="A layer (clusters, map, colours) or item column.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the volumes.")],
    fmt: Annotated[str, typer.Option("--format", help="npy (napari) or mrc (ChimeraX, napari).")] = "npy",
    radius: Annotated[int, typer.Option(help="Mark radius in pixels.")] = 12,
    mark: Annotated[str, typer.Option(help="disc (MiLoPYP's, over +-depth slices) or sphere.")] = "disc",
    depth: Annotated[int, typer.Option(help="Slices above and below a point that a disc covers.")] = 2,
    blend: Annotated[float | None, typer.Option(help="Also write grey x W + colour x (1-W) inside the marks.")] = None,
    order: Annotated[str, typer.Option(help="Axis order of the tomograms: auto, xzy (IMOD) or xyz.")] = "auto",
) -> None:
    """Paint each point's colour into its tomogram: grey, painted, blended and label volumes."""
    from embedscope.atlas import Atlas
    from embedscope.pipeline.painting import Marks, paint_atlas

    report = paint_atlas(Atlas.open(atlas), tomograms, color_by, output, fmt=fmt,
                         marks=Marks(radius=radius, mark=mark, depth=depth), blend=blend, order=order,
                         reporter=session.reporter())
    typer.echo(f"painted {sum(report.painted.values()):,} points into {len(report.painted)} tomograms: "
               f"{len(report.files)} files in {output}")
    if report.without_points:
        typer.echo(f"no points in {', '.join(report.without_points)}")


@app.command()
def export(
    atlas: Annotated[Path, typer.Argument(help="The Atlas folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    fmt: Annotated[str, typer.Option("--format", help="milopyp-coords, csv, parquet, json or star.")] = "csv",
    ids: Annotated[Path | None, typer.Option(help="File of item ids to export, one per line.")] = None,
    cluster_ids: Annotated[list[int] | None, typer.Option("--cluster", help="Cluster number(s) to export.")] = None,
    layer: Annotated[str | None, typer.Option(help="Clustering layer for --cluster (default: the newest).")] = None,
    where: Annotated[str | None, typer.Option(help="SQL condition on item and layer columns (e.g. umap_x > 0).")]
    = None,
    if_double: Annotated[bool, typer.Option("--if-double", help="milopyp-coords: write z x 2.")] = False,
) -> None:
    """Export a selection of items (by ids, cluster or SQL condition) as coordinates, a table or a STAR file."""
    from embedscope.pipeline.exporting import export_selection

    report = export_selection(atlas, ids_file=ids, clusters=cluster_ids or None, cluster_layer=layer, where=where,
                              fmt=fmt, output=output, if_double=if_double, reporter=session.reporter(),
                              command=session.command)
    typer.echo(f"exported {report.count:,} items to {report.output} ({report.format})")


@app.command()
def view(
    atlas: Annotated[Path, typer.Argument(help="The Atlas folder.")],
    layer: Annotated[str | None, typer.Option(help="Map layer to open on (default: the newest 2D one).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; other than loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: a free one).")] = 0,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False,
    token: Annotated[str | None, typer.Option(help="Access token (generated for a non-loopback --host).")] = None,
    export: Annotated[Path | None, typer.Option("--export", help="Write a static site to this folder instead.")]
    = None,
) -> None:
    """Explore an Atlas in the browser: map, thumbnails, lasso export, neighbours; or export it as a static site."""
    from embedscope.server import export_static_site, serve

    if export is not None:
        site = export_static_site(atlas, export, layer=layer, reporter=session.reporter())
        typer.echo(f"wrote the viewer to {site}; open {site / 'index.html'}")
        return
    serve(atlas, layer=layer, host=host, port=port, open_browser=not no_browser, token=token,
          ready=lambda url: typer.echo(f"embedscope viewer: {url}  (Ctrl-C to stop)"))


def _listed(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


app.add_typer(train_app)
app.add_typer(embed_app)
app.add_typer(milopyp_app)
app.add_typer(prismpyp_app)
app.add_typer(cryosiam_app)


def run() -> None:
    """Entry point of the `embedscope` console script."""
    run_app(app)
