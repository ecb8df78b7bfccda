"""`embedscope cryosiam ...`: CryoSiam's subtomogram-embedding commands with their names and YAML config.

`cryosiam simsiam_embeddings_predict --config_file=...` from CryoSiam's docs runs unchanged after `embedscope`,
writes the files CryoSiam writes, and keeps one Atlas (`<prediction_folder>/embeddings.atlas`) current for `view`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedscope.cli.runner import session

app = typer.Typer(
    name="cryosiam",
    help="CryoSiam's subtomogram embeddings (simsiam_embeddings_predict, simsiam_visualize_embeddings, "
         "simsiam_embeddings_kmeans_clustering, simsiam_embeddings_spectral_clustering) with its YAML config.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stdout = Console()

ConfigFile = Annotated[Path, typer.Option("--config_file", "--config-file",
                                          help="CryoSiam's subtomogram-embeddings YAML config.")]
Device = Annotated[str, typer.Option("--device", help="auto (a GPU when there is one), cpu or cuda.")]


def _config(path: Path):
    from embedscope.formats.cryosiam_config import read_cryosiam_config

    return read_cryosiam_config(path)


@app.command("simsiam_embeddings_predict")
def predict(
    config_file: ConfigFile,
    filename: Annotated[str | None, typer.Option("--filename", help="Only this tomogram (e.g. TS_01.mrc); "
                                                                   "it is always predicted again.")] = None,
    device: Device = "auto",
) -> None:
    """Crop every instance of the masks, embed it, and write <tomo>_embeds.h5, _instance_labels.h5, _regions.csv."""
    from embedscope.errors import InputError
    from embedscope.pipeline.subtomogram_prediction import predict_subtomograms

    config = _config(config_file)
    report = predict_subtomograms(config, filename, device=device, workers=config.workers,
                                  reporter=session.reporter(), command=session.command)
    if not report.embedded and not report.skipped:
        raise InputError(f"no instance of {', '.join(report.empty[:3])} lies within min_particle_size.."
                         "max_particle_size; lower min_particle_size or raise max_particle_size")
    parts = [f"embedded {sum(report.embedded.values()):,} instances of {len(report.embedded)} tomogram(s)"]
    parts += [f"{len(report.skipped)} up to date"] if report.skipped else []
    parts += [f"{len(report.empty)} without instances in the size bounds"] if report.empty else []
    parts += [f"Atlas {report.atlas} holds {report.items:,} items"] if report.atlas else []
    parts += [f"redid {', '.join(report.reclustered)} clustering"] if report.reclustered else []
    stdout.print("; ".join(parts) + f" ({report.seconds:.0f} s)", highlight=False)


@app.command("simsiam_visualize_embeddings")
def visualize(config_file: ConfigFile) -> None:
    """Map all instances with UMAP (2D, and 3D with 3d_umap) or PCA; draw figures; write CryoSiam's _data.csv."""
    from embedscope.pipeline.subtomogram_figures import visualize_subtomograms

    report = visualize_subtomograms(_config(config_file), reporter=session.reporter(), command=session.command)
    stdout.print(f"layers {', '.join(report.layers) or 'none'} in {report.atlas}; {len(report.files)} files "
                 f"written; open the map with `embedscope view {report.atlas}`", highlight=False)


@app.command("simsiam_embeddings_kmeans_clustering")
def kmeans(config_file: ConfigFile) -> None:
    """k-means (seeded) on all instances: kmeans_clusters.h5, <tomo>_clusters_kmeans.h5, clustered CSV and STAR."""
    _cluster(config_file, "kmeans")


@app.command("simsiam_embeddings_spectral_clustering")
def spectral(config_file: ConfigFile) -> None:
    """Spectral clustering (k from the eigengap with estimate_num_clusters): CryoSiam's files named `spectral`."""
    _cluster(config_file, "spectral")


def _cluster(config_file: Path, method: str) -> None:
    from embedscope.pipeline.subtomogram_clustering import cluster_subtomograms

    report = cluster_subtomograms(_config(config_file), method, reporter=session.reporter(), command=session.command)
    k = f"{report.n_clusters} clusters" + (" (estimated by the eigengap)" if report.estimated else "")
    stdout.print(f"{method}: {k} over {report.items:,} instances of {report.tomograms} tomogram(s); "
                 f"{len(report.files)} files written", highlight=False)
