"""`embedscope prismpyp ...`: prismPYP's train, eval2d, eval3d and intersect with its own flags, on our steps.

A command line from prismPYP's docs runs unchanged after `embedscope prismpyp`, writes the files prismPYP writes,
and also leaves an Atlas for `embedscope view` and `export`. Its distributed-training flags are accepted and
ignored: one process uses the GPU (or the CPU) it finds, so no port has to be chosen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedscope.cli.runner import session

app = typer.Typer(
    name="prismpyp",
    help="prismPYP's micrograph-quality commands (train, eval2d, eval3d, intersect) with its flags.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stdout = Console()

OutputPath = Annotated[Path, typer.Option("--output-path", help="Run folder (checkpoints/, inference/).")]
MetadataPath = Annotated[Path, typer.Option("--metadata-path", help="Folder with all_micrographs_list.micrographs, "
                                                                    "micrograph_metadata.csv, pixel_size.txt, webp/.")]
Arch = Annotated[str, typer.Option("--arch", "-a", help="resnet18, resnet34 or resnet50.")]
Dim = Annotated[int, typer.Option("--dim", help="Embedding dimension.")]
PredDim = Annotated[int, typer.Option("--pred-dim", help="Hidden width of the predictor.")]
BatchSize = Annotated[int, typer.Option("--batch-size", "-b", help="Micrographs per batch.")]
Workers = Annotated[int, typer.Option("--workers", "-j", help="Data-loading processes (at most the CPU count).")]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")]
UseFft = Annotated[bool, typer.Option("--use-fft", help="Fourier domain: embed the power spectra.")]
Gpu = Annotated[int | None, typer.Option("--gpu", help="A GPU id: any value means 'use the GPU'.")]
# Accepted for prismPYP's command lines; embedscope runs one process and needs none of them.
DistUrl = Annotated[str | None, typer.Option("--dist-url", help="Ignored: no port is needed.")]
DistBackend = Annotated[str | None, typer.Option("--dist-backend", help="Ignored.")]
WorldSize = Annotated[int | None, typer.Option("--world-size", help="Ignored.")]
Rank = Annotated[int | None, typer.Option("--rank", help="Ignored.")]
Distributed = Annotated[bool, typer.Option("--multiprocessing-distributed", help="Ignored: one process per GPU.")]
PrintFreq = Annotated[int, typer.Option("--print-freq", "-p", help="Ignored: progress shows every step.")]


def _ignore_distributed(*given: object) -> None:
    if any(value not in (None, False) for value in given):
        session.reporter().note("note: --dist-url, --dist-backend, --world-size, --rank and "
                                "--multiprocessing-distributed are ignored; embedscope needs no port or process group")


def _workers(asked: int) -> int:
    return max(0, min(asked, os.cpu_count() or 1))


@app.command()
def train(
    output_path: OutputPath,
    metadata_path: MetadataPath,
    arch: Arch = "resnet50",
    dim: Dim = 2048,
    pred_dim: PredDim = 512,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 100,
    start_epoch: Annotated[int, typer.Option("--start-epoch", help="Ignored: --resume continues where it left.")]
    = 0,
    batch_size: BatchSize = 512,
    lr: Annotated[float, typer.Option("--lr", "--learning-rate", help="Base learning rate.")] = 0.05,
    momentum: Annotated[float, typer.Option("--momentum", help="SGD momentum.")] = 0.9,
    weight_decay: Annotated[float, typer.Option("--wd", "--weight-decay", help="Weight decay.")] = 1e-4,
    fix_pred_lr: Annotated[bool, typer.Option("--fix-pred-lr", help="Keep the predictor's lr constant.")] = False,
    resume: Annotated[str, typer.Option("--resume", help="checkpoints/model_last.pth.tar of this run to continue.")]
    = "",
    use_fft: UseFft = False,
    workers: Workers = 32,
    seed: Seed = None,
    print_freq: PrintFreq = 10,
    gpu: Gpu = None,
    dist_url: DistUrl = None,
    dist_backend: DistBackend = None,
    world_size: WorldSize = None,
    rank: Rank = None,
    multiprocessing_distributed: Distributed = False,
) -> None:
    """Train SimSiam on the micrographs (or, with --use-fft, the power spectra) of a prismPYP metadata folder."""
    from embedscope.errors import ParameterError
    from embedscope.pipeline.micrograph_sources import prismpyp_inputs
    from embedscope.pipeline.micrograph_training import train_micrographs

    _ignore_distributed(dist_url, dist_backend, world_size, rank, multiprocessing_distributed)
    last = output_path / "checkpoints" / "model_last.pth.tar"
    if resume and Path(resume).resolve() != last.resolve():
        raise ParameterError(f"--resume {resume}: embedscope continues a run from its own {last}; pass that path "
                             "(or train into the folder that holds it)")
    lists, webp = prismpyp_inputs(metadata_path)
    report = train_micrographs(
        lists, output_path, domain="fft" if use_fft else "real", metadata=metadata_path, webp=webp, arch=arch,
        dim=dim, pred_dim=pred_dim, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
        weight_decay=weight_decay, fix_pred_lr=fix_pred_lr, resume=bool(resume), replace=not resume,
        device="cuda" if gpu is not None else "auto", workers=_workers(workers), seed=seed or 0,
        options={"start_epoch": start_epoch, "print_freq": print_freq}, reporter=session.reporter(),
    )
    stdout.print(f"trained {report.arch} on {report.micrographs:,} micrographs for {report.epochs} epochs in "
                 f"{report.seconds:.0f} s; best model: {report.best}", highlight=False)


def _evaluate(n_components: int, output_path: Path, metadata_path: Path, weights: str, embedding_path: Path | None,
              micrographs_list: Path | None, options: dict, batch_size: int, workers: int, gpu: int | None):
    from embedscope.pipeline.prismpyp_eval import EvalSettings, prismpyp_eval

    settings = EvalSettings(n_components=n_components, **options)
    report = prismpyp_eval(output_path, metadata_path, weights=Path(weights) if weights else None,
                           embedding_path=embedding_path, settings=settings, batch_size=batch_size,
                           workers=_workers(workers), device="cuda" if gpu is not None else "auto",
                           list_file=micrographs_list, reporter=session.reporter(), command=session.command)
    stdout.print(f"eval{n_components}d: {report.items:,} micrographs in {report.clusters} classes; "
                 f"{len(report.files)} files in {report.inference}, Atlas {report.atlas} ({report.seconds:.0f} s)",
                 highlight=False)
    return report


EVAL_HELP = {
    "evaluate": "Accepted (prismPYP needs it to evaluate; embedscope always does).",
    "weights": "Trained model (model_best.pth.tar, ours or prismPYP's).",
    "embedding": "Precomputed embeddings.pth (skips inference; CUDA-saved files load on a CPU).",
}


@app.command()
def eval2d(
    output_path: OutputPath,
    metadata_path: MetadataPath,
    evaluate: Annotated[bool, typer.Option("--evaluate", "-e", help=EVAL_HELP["evaluate"])] = False,
    feature_extractor_weights: Annotated[str, typer.Option("--feature-extractor-weights",
                                                           help=EVAL_HELP["weights"])] = "",
    embedding_path: Annotated[Path | None, typer.Option("--embedding-path", help=EVAL_HELP["embedding"])] = None,
    micrographs_list: Annotated[Path | None, typer.Option("--micrographs-list", help="Another list file.")] = None,
    n_clusters: Annotated[int, typer.Option("--n-clusters", help="k of the spherical k-means.")] = 100,
    num_neighbors: Annotated[int, typer.Option("--num-neighbors", help="UMAP neighbours; t-SNE perplexity.")] = 30,
    min_dist_umap: Annotated[float, typer.Option("--min-dist-umap", help="UMAP's min_dist.")] = 0.3,
    n_components: Annotated[int, typer.Option("--n-components", help="2 (3 is eval3d).")] = 2,
    matrix_num_neighbors: Annotated[int, typer.Option("--matrix-num-neighbors", help="Columns of the matrix.")] = 8,
    matrix_num_references: Annotated[int, typer.Option("--matrix-num-references", help="Rows of the matrix.")] = 5,
    use_fft: UseFft = False,
    svgz: Annotated[bool, typer.Option("--svgz", help="Write figures as .svgz instead of .webp.")] = False,
    zip_images: Annotated[bool, typer.Option("--zip-images", help="Ignored: thumbnails live in the Atlas.")] = False,
    arch: Arch = "resnet50",
    dim: Dim = 2048,
    pred_dim: PredDim = 512,
    batch_size: BatchSize = 64,
    workers: Workers = 32,
    seed: Seed = None,
    print_freq: PrintFreq = 10,
    gpu: Gpu = None,
    dist_url: DistUrl = None,
    dist_backend: DistBackend = None,
    world_size: WorldSize = None,
    rank: Rank = None,
    multiprocessing_distributed: Distributed = False,
) -> None:
    """Embed a metadata folder's micrographs (or read embeddings.pth), cluster, map and draw prismPYP's figures."""
    _ignore_distributed(dist_url, dist_backend, world_size, rank, multiprocessing_distributed)
    options = {"n_clusters": n_clusters, "num_neighbors": num_neighbors, "min_dist_umap": min_dist_umap,
               "matrix_num_neighbors": matrix_num_neighbors, "matrix_num_references": matrix_num_references,
               "use_fft": use_fft, "svgz": svgz, "seed": seed or 0}
    _evaluate(n_components, output_path, metadata_path, feature_extractor_weights, embedding_path,
              micrographs_list, options, batch_size, workers, gpu)


@app.command()
def eval3d(
    output_path: OutputPath,
    metadata_path: MetadataPath,
    evaluate: Annotated[bool, typer.Option("--evaluate", "-e", help=EVAL_HELP["evaluate"])] = False,
    feature_extractor_weights: Annotated[str, typer.Option("--feature-extractor-weights",
                                                           help=EVAL_HELP["weights"])] = "",
    embedding_path: Annotated[Path | None, typer.Option("--embedding-path", help=EVAL_HELP["embedding"])] = None,
    micrographs_list: Annotated[Path | None, typer.Option("--micrographs-list", help="Another list file.")] = None,
    n_clusters: Annotated[int, typer.Option("--n-clusters", help="k of the spherical k-means.")] = 100,
    num_neighbors: Annotated[int, typer.Option("--num-neighbors", help="UMAP neighbours.")] = 30,
    min_dist_umap: Annotated[float, typer.Option("--min-dist-umap", help="UMAP's min_dist.")] = 0.3,
    use_fft: UseFft = False,
    zip_images: Annotated[bool, typer.Option("--zip-images", help="Ignored: thumbnails live in the Atlas.")] = False,
    arch: Arch = "resnet50",
    dim: Dim = 2048,
    pred_dim: PredDim = 512,
    batch_size: BatchSize = 64,
    workers: Workers = 32,
    seed: Seed = None,
    gpu: Gpu = None,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Open the viewer on the 3D map at the end "
                                                                 "(prismPYP opens Phoenix).")] = True,
    port: Annotated[int, typer.Option("--port", help="Viewer port (0: a free one).")] = 0,
    dist_url: DistUrl = None,
    dist_backend: DistBackend = None,
    world_size: WorldSize = None,
    rank: Rank = None,
    multiprocessing_distributed: Distributed = False,
) -> None:
    """eval2d's steps with a 3D UMAP, then the viewer on it (instead of prismPYP's Phoenix session)."""
    _ignore_distributed(dist_url, dist_backend, world_size, rank, multiprocessing_distributed)
    options = {"n_clusters": n_clusters, "num_neighbors": num_neighbors, "min_dist_umap": min_dist_umap,
               "use_fft": use_fft, "seed": seed or 0}
    report = _evaluate(3, output_path, metadata_path, feature_extractor_weights, embedding_path, micrographs_list,
                       options, batch_size, workers, gpu)
    if serve:
        from embedscope.server import serve as serve_atlas

        serve_atlas(report.atlas, layer="umap3d", port=port, open_browser=bool(os.environ.get("DISPLAY")),
                    ready=lambda url: stdout.print(f"embedscope viewer: {url}  (Ctrl-C to stop)", highlight=False))


@app.command()
def intersect(
    real_parquet_file: Annotated[Path, typer.Option("--real-parquet-file", help="Real-domain data_for_export.parquet "
                                                                                "(or a viewer selection).")],
    fft_parquet_file: Annotated[Path, typer.Option("--fft-parquet-file", help="Fourier-domain parquet (or a "
                                                                              "selection).")],
    output_folder: Annotated[Path, typer.Option("--output-folder", help="Where intersection.parquet, "
                                                                        "files_in_common.txt and files/ go.")],
    good_real_classes: Annotated[list[int] | None, typer.Option("--good-real-classes", help="Real-domain classes "
                                                                                           "to keep.")] = None,
    good_fft_classes: Annotated[list[int] | None, typer.Option("--good-fft-classes", help="Fourier-domain classes "
                                                                                         "to keep.")] = None,
    link_type: Annotated[str, typer.Option("--link-type", help="hard or soft links in files/.")] = "hard",
    webp_path: Annotated[Path | None, typer.Option("--webp-path", help="Folder of <name>.webp pictures to link.")]
    = None,
) -> None:
    """Keep the micrographs that fall in good classes in both domains; link their pictures into files/."""
    from embedscope.pipeline.prismpyp_intersect import intersect_selections

    report = intersect_selections(real_parquet_file, fft_parquet_file, good_real=good_real_classes,
                                  good_fft=good_fft_classes, output=output_folder, link_type=link_type,
                                  webp_path=webp_path, reporter=session.reporter())
    stdout.print(f"{report.kept:,} micrographs are good in both domains (of {report.real_rows:,} real, "
                 f"{report.fft_rows:,} Fourier); wrote {report.output}", highlight=False)
