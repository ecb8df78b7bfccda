"""`embedscope milopyp ...`: MiLoPYP's exploration commands with their own flags, mapped onto our steps.

A user's command line from MiLoPYP's docs runs unchanged after `embedscope milopyp`, writes the files MiLoPYP
writes, and also leaves an Atlas for `embedscope view`, `paint` and `export`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedscope.cli.picking_options import Picking
from embedscope.cli.runner import session

app = typer.Typer(
    name="milopyp",
    help="MiLoPYP's exploration module (simsiam_main.py, simsiam_test_hm_*.py, plot_2d.py, visualize_3dhm.py, "
         "interactive_to_training_coords.py) with its flags.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stdout = Console()

TASKS = {"simsiam2d3d": "2d3d", "simsiam3d": "3d"}
MILOPYP_SEED = 317  # opts.py's default
MILOPYP_DOG = "2.5,5"  # opts.py's default; the documented runs pass --dog 3,5
ATLAS_NAME = "embeddings.atlas"

Task = Annotated[str, typer.Argument(help="simsiam2d3d (tilt series + tomograms) or simsiam3d (tomograms only).")]
ExpId = Annotated[str, typer.Option("--exp_id", "--exp-id", help="Run name: files go to exp/<task>/<exp_id>/.")]
Bbox = Annotated[int, typer.Option("--bbox", help="Patch size in pixels (bigger than the particles).")]
Dataset = Annotated[str | None, typer.Option("--dataset", help="MiLoPYP's loader name; must match the task.")]
Arch = Annotated[str | None, typer.Option("--arch", help="simsiam2d3d_18 (2d3d) or simsiam2d_18 (3d).")]
Gauss = Annotated[float, typer.Option("--gauss", help="Sigma of the denoising Gaussian (0: none).")]
Dog = Annotated[str, typer.Option("--dog", help="Sigmas of the difference-of-Gaussian pyramid, comma-separated.")]
Gpus = Annotated[str, typer.Option("--gpus", help="-1 for CPU; anything else uses a GPU when there is one.")]
Workers = Annotated[int, typer.Option("--num_workers", "--num-workers", help="Tomograms read in parallel.")]
Order = Annotated[str, typer.Option("--order", help="Axis order of the .rec files: auto, xzy (IMOD) or xyz.")]


def _mode(task: str, dataset: str | None) -> str:
    from embedscope.errors import ParameterError

    if task not in TASKS:
        raise ParameterError(f"task {task!r} is not one of {', '.join(TASKS)}")
    if dataset is not None and dataset != task:
        raise ParameterError(f"--dataset {dataset} does not match the task {task}; pass --dataset {task}")
    return TASKS[task]


def _list_file(name: Path) -> Path:
    """A list named as given, else under data/ as MiLoPYP's opts.py looks for it."""
    return name if name.exists() or name.is_absolute() else Path("data") / name


def _device(gpus: str) -> str:
    return "cpu" if gpus.strip().startswith("-1") else "auto"


def _picker(gauss: float, dog: str):
    return Picking(gauss=gauss, dog=dog).picker()


@app.command()
def train(
    task: Task,
    exp_id: ExpId = "default",
    num_epochs: Annotated[int, typer.Option("--num_epochs", "--num-epochs", help="Training epochs.")] = 140,
    bbox: Bbox = 32,
    dataset: Dataset = None,
    arch: Arch = None,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate (SGD).")] = 1e-3,
    lr_step: Annotated[str, typer.Option("--lr_step", "--lr-step", help="Epochs where lr drops 10x.")] = "200,400,600",
    train_img_txt: Annotated[Path, typer.Option("--train_img_txt", "--train-img-txt",
                                                help="Tomogram list (looked for as given, then in data/).")]
    = Path("train_images.txt"),
    batch_size: Annotated[int, typer.Option("--batch_size", "--batch-size", help="Patches per step.")] = 256,
    val_intervals: Annotated[int, typer.Option("--val_intervals", "--val-intervals",
                                               help="Save a model every this many epochs (with --save_all).")] = 5,
    save_all: Annotated[bool, typer.Option("--save_all", "--save-all", help="Keep model_<epoch>.pth files.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from model_last.pth in the run folder.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over in a run folder that holds a model (ours).")]
    = False,
    gauss: Gauss = 0.0,
    dog: Dog = MILOPYP_DOG,
    gpus: Gpus = "0",
    num_workers: Workers = 2,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = MILOPYP_SEED,
    order: Order = "auto",
    width: Annotated[int, typer.Option("--width", help="Base channels of the ResNet (ours; MiLoPYP's is 64).")] = 64,
) -> None:
    """Train the SimSiam encoder on picked patches (as simsiam_main.py); files in exp/<task>/<exp_id>/."""
    from embedscope.pipeline.tomogram_training import train_tomograms

    mode = _mode(task, dataset)
    out_dir = Path("exp") / task / exp_id
    steps = [int(step) for step in lr_step.replace(" ", "").split(",") if step]
    options = {"task": task, "exp_id": exp_id, "dataset": dataset or task, "gpus": gpus}
    report = train_tomograms(
        _list_file(train_img_txt), out_dir, picker=_picker(gauss, dog), arch=arch, mode=mode, bbox=bbox,
        epochs=num_epochs, batch_size=batch_size, lr=lr, lr_steps=steps, val_intervals=val_intervals,
        save_all=save_all, resume=resume, device=_device(gpus), width=width, seed=seed, workers=num_workers,
        order=order, replace=force, options=options, reporter=session.reporter(),
    )
    last = f", last loss {report.losses[-1]:.4f}" if report.losses else ""
    stdout.print(f"trained {report.arch} on {report.patches:,} patches for {report.epochs} epochs{last}; "
                 f"models and log in {report.out_dir}", highlight=False)


@app.command()
def test(
    task: Task,
    exp_id: ExpId = "default",
    bbox: Bbox = 32,
    dataset: Dataset = None,
    arch: Arch = None,
    test_img_txt: Annotated[Path, typer.Option("--test_img_txt", "--test-img-txt",
                                               help="Tomogram list (looked for as given, then in data/).")]
    = Path("test_images.txt"),
    load_model: Annotated[Path, typer.Option("--load_model", "--load-model", help="A trained model (.pth).")]
    = Path("model_last.pth"),
    gauss: Gauss = 0.0,
    dog: Dog = MILOPYP_DOG,
    gpus: Gpus = "0",
    num_workers: Workers = 2,
    order: Order = "auto",
    batch_size: Annotated[int, typer.Option("--batch_size", "--batch-size", help="Patches per batch.")] = 256,
) -> None:
    """Embed picked patches (as simsiam_test_hm_*.py): all_output_info.npz and embeddings.atlas."""
    from embedscope.pipeline.tomogram_embedding import embed_tomograms

    mode = _mode(task, dataset)
    out_dir = Path("exp") / task / exp_id
    out_dir.mkdir(parents=True, exist_ok=True)
    report = embed_tomograms(
        _list_file(test_img_txt), load_model, out_dir / ATLAS_NAME, picker=_picker(gauss, dog), arch=arch,
        mode=mode, bbox=bbox, batch_size=batch_size, device=_device(gpus), workers=num_workers, order=order,
        npz=out_dir / "all_output_info.npz", replace=True, reporter=session.reporter(), command=session.command,
    )
    stdout.print(f"embedded {report.items:,} patches of {report.tomograms} tomograms: {report.npz} and "
                 f"{report.atlas}", highlight=False)


@app.command()
def plot2d(
    input: Annotated[Path, typer.Option("--input", help="all_output_info.npz from the test step.")],
    n_cluster: Annotated[int, typer.Option("--n_cluster", "--n-cluster", help="Clusters for over-clustering.")],
    num_neighbor: Annotated[int, typer.Option("--num_neighbor", "--num-neighbor",
                                              help="UMAP neighbours or t-SNE perplexity.")],
    path: Annotated[Path, typer.Option("--path", help="Folder for the figures, colours, Parquet and imgs/.")],
    mode: Annotated[str, typer.Option("--mode", help="umap or tsne.")] = "umap",
    min_dist_umap: Annotated[float, typer.Option("--min_dist_umap", "--min-dist-umap",
                                                 help="UMAP's min_dist.")] = 0.5,
    min_dist_vis: Annotated[float, typer.Option("--min_dist_vis", "--min-dist-vis",
                                                help="Squared distance between shown thumbnails.")] = 1.3e-3,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 42,
    host: Annotated[int, typer.Option("--host", help="Port written into the image URLs of the Parquet.")] = 7000,
    save_out_img: Annotated[int, typer.Option("--save_out_img", "--save-out-img",
                                              help="1 writes imgs/<i>.png for every patch.")] = 1,
    gpus: Gpus = "0",
) -> None:
    """2D map, over-clusters and thumbnails (as plot_2d.py), plus an Atlas for `embedscope view`."""
    from embedscope.pipeline.milopyp_plots import milopyp_plot2d

    report = milopyp_plot2d(
        input, path, n_cluster=n_cluster, num_neighbor=num_neighbor, mode=mode, min_dist_umap=min_dist_umap,
        min_dist_vis=min_dist_vis, seed=seed, host=host, save_images=save_out_img == 1,
        reporter=session.reporter(), command=session.command,
    )
    stdout.print(f"{report.items:,} points in {report.clusters} over-clusters; wrote "
                 f"{', '.join(file.name for file in report.files)} in {path}; Atlas {report.atlas}", highlight=False)


@app.command()
def visualize3d(
    input: Annotated[Path, typer.Option("--input", help="all_output_info.npz from the test step.")],
    color: Annotated[Path, typer.Option("--color", help="all_colors.npy from plot2d.")],
    dir_simsiam: Annotated[Path, typer.Option("--dir_simsiam", "--dir-simsiam", help="Folder for the arrays.")],
    rec_dir: Annotated[Path, typer.Option("--rec_dir", "--rec-dir", help="Folder of the .rec tomograms.")],
    radius: Annotated[int, typer.Option("--radius", help="Disc radius in pixels (MiLoPYP: 12).")] = 12,
    order: Order = "auto",
) -> None:
    """3D heat maps (as visualize_3dhm.py): <name>_rec3d.npy and <name>_hm3d_simsiam.npy per tomogram."""
    from embedscope.pipeline.painting import Marks, paint_npz

    report = paint_npz(input, color, dir_simsiam, rec_dir, marks=Marks(radius=radius), order=order,
                       reporter=session.reporter())
    stdout.print(f"painted {sum(report.painted.values()):,} points into {len(report.painted)} tomograms: "
                 f"{len(report.files)} files in {dir_simsiam}", highlight=False)


@app.command()
def coords(
    input: Annotated[Path, typer.Option("--input", help="A folder of exported .parquet files, or one file.")],
    output: Annotated[Path, typer.Option("--output", help="Training-coordinates text file to write.")],
    if_double: Annotated[bool, typer.Option("--if_double", "--if-double",
                                            help="Write z x 2, for runs that binned z by 2.")] = False,
) -> None:
    """Exported selections -> training coordinates for the refinement module (interactive_to_training_coords.py)."""
    from embedscope.formats.milopyp import read_selection_parquets, write_training_coords

    names, points = read_selection_parquets(input)
    write_training_coords(output, names, points, if_double=if_double)
    stdout.print(f"wrote {len(names):,} coordinates to {output}", highlight=False)
