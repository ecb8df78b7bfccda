"""`embedscope train tomograms` and `embedscope embed tomograms`: SimSiam on picked tomogram patches.

These are MiLoPYP's exploration steps in embedscope's own terms; `embedscope milopyp ...` maps MiLoPYP's
flags onto the same steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedscope.cli.picking_options import BorderXY, BorderZ, Distance, Dog, Gauss, NmsSize, Order, Picking, Threshold
from embedscope.cli.runner import session

train_app = typer.Typer(name="train", help="Train an encoder.", no_args_is_help=True, pretty_exceptions_enable=False)
embed_app = typer.Typer(name="embed", help="Embed a source into an Atlas.", no_args_is_help=True,
                        pretty_exceptions_enable=False)
stdout = Console()

Tomograms = Annotated[Path, typer.Argument(help="A MiLoPYP list (image_name rec_path [tilt_path angle_path]) "
                                                "or a folder of .rec/.mrc files.")]
Mode = Annotated[str | None, typer.Option(help="3d (tomograms) or 2d3d (with tilt series); default from --arch.")]
Arch = Annotated[str | None, typer.Option(help="simsiam2d_18 (3d) or simsiam2d3d_18 (2d3d).")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Workers = Annotated[int, typer.Option(help="Tomograms read and cut in parallel.")]


@train_app.command("tomograms")
def train_tomograms(
    tomograms: Tomograms,
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder for models, opts.txt and log.txt.")],
    mode: Mode = None,
    arch: Arch = None,
    bbox: Annotated[int, typer.Option(help="Patch size in pixels (bigger than the particles).")] = 36,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 100,
    batch_size: Annotated[int, typer.Option(help="Patches per step.")] = 256,
    lr: Annotated[float, typer.Option(help="Learning rate (SGD, MiLoPYP's schedule).")] = 1e-3,
    save_every: Annotated[int, typer.Option(help="Keep model_<epoch>.pth every this many epochs (0: none).")] = 20,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from model_last.pth in the run folder.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over in a run folder that holds a model.")] = False,
    width: Annotated[int, typer.Option(help="Base channels of the ResNet (MiLoPYP: 64).")] = 64,
    margin: Annotated[int, typer.Option(help="Pixels around each box for shifted positive crops.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Device = "auto",
    workers: Workers = 2,
    gauss: Gauss = 0.8,
    dog: Dog = "3,5",
    border_z: BorderZ = 10,
    border_xy: BorderXY = None,
    nms_size: NmsSize = 3,
    threshold_std: Threshold = 0.5,
    nms_distance: Distance = 14.0,
    order: Order = "auto",
) -> None:
    """Pick candidates in tomograms and train a SimSiam encoder on their patches (MiLoPYP's exploration)."""
    from embedscope.pipeline.tomogram_training import train_tomograms as train

    picking = Picking(gauss, dog, border_z, border_xy, nms_size, threshold_std, nms_distance)
    report = train(
        tomograms, output, picker=picking.picker(), arch=arch, mode=mode, bbox=bbox, epochs=epochs,
        batch_size=batch_size, lr=lr, val_intervals=save_every, save_all=save_every > 0, resume=resume,
        device=device, width=width, margin=margin, seed=seed, workers=workers, order=order, replace=force,
        reporter=session.reporter(),
    )
    last = f", last loss {report.losses[-1]:.4f}" if report.losses else ""
    stdout.print(f"trained {report.arch} on {report.patches:,} patches for {report.epochs} epochs{last} in "
                 f"{report.seconds:.0f} s; model: {report.checkpoint}", highlight=False)


@embed_app.command("tomograms")
def embed_tomograms(
    tomograms: Tomograms,
    model: Annotated[Path, typer.Option("--model", help="A trained model (ours or MiLoPYP's .pth).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The Atlas to write.")],
    npz: Annotated[Path | None, typer.Option(help="Also write MiLoPYP's all_output_info.npz here.")] = None,
    mode: Mode = None,
    arch: Arch = None,
    bbox: Annotated[int | None, typer.Option(help="Patch size (default: the model's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Patches per batch.")] = 256,
    device: Device = "auto",
    workers: Workers = 2,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing Atlas (atomically).")] = False,
    gauss: Gauss = 0.8,
    dog: Dog = "3,5",
    border_z: BorderZ = 10,
    border_xy: BorderXY = None,
    nms_size: NmsSize = 3,
    threshold_std: Threshold = 0.5,
    nms_distance: Distance = 14.0,
    order: Order = "auto",
) -> None:
    """Pick candidates in tomograms and embed their patches into an Atlas (tomogram, x, y, z, thumbnails)."""
    from embedscope.pipeline.tomogram_embedding import embed_tomograms as embed

    picking = Picking(gauss, dog, border_z, border_xy, nms_size, threshold_std, nms_distance)
    report = embed(
        tomograms, model, output, picker=picking.picker(), arch=arch, mode=mode, bbox=bbox, batch_size=batch_size,
        device=device, workers=workers, order=order, npz=npz, replace=force, reporter=session.reporter(),
        command=session.command,
    )
    also = f" and {report.npz}" if report.npz else ""
    stdout.print(f"embedded {report.items:,} patches of {report.tomograms} tomograms ({report.arch}) into "
                 f"{report.atlas}{also} in {report.seconds:.0f} s", highlight=False)
