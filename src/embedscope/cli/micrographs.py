"""`embedscope train micrographs` and `embedscope embed micrographs`: SimSiam on micrographs or their spectra.

These are prismPYP's train and inference steps in embedscope's own terms; `embedscope prismpyp ...` maps
prismPYP's flags onto the same steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedscope.cli.runner import session
from embedscope.cli.tomograms import embed_app, train_app

stdout = Console()

Inputs = Annotated[list[str], typer.Argument(help="Micrograph files (.mrc, .mrc.gz, .tif, .png ...), folders, globs "
                                                  "in quotes, or list files such as prismPYP's "
                                                  "all_micrographs_list.micrographs (order kept).")]
Domain = Annotated[str, typer.Option(help="real (the micrograph) or fft (its power spectrum).")]
Metadata = Annotated[Path | None, typer.Option(help="prismPYP's metadata folder or any CSV with a micrograph name "
                                                    "column; its columns join the items.")]
Webp = Annotated[Path | None, typer.Option(help="Read prismPYP's webp/<name>.webp and <name>_ctffit.webp pictures "
                                                "instead of the micrographs themselves.")]
PixelSize = Annotated[float | None, typer.Option(help="Å per pixel (default: pixel_size.txt or the MRC header); "
                                                      "sets the power spectrum's resolution band.")]
Search = Annotated[list[Path] | None, typer.Option(help="Folders where the names of a list file are looked up "
                                                       "(besides the list's own folder); repeatable.")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Workers = Annotated[int, typer.Option(help="Processes reading micrographs in parallel.")]


@train_app.command("micrographs")
def train_micrographs(
    inputs: Inputs,
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder (checkpoints/, views/, logs).")],
    domain: Domain = "real",
    metadata: Metadata = None,
    webp: Webp = None,
    pixel_size: PixelSize = None,
    search: Search = None,
    arch: Annotated[str, typer.Option(help="resnet18, resnet34 or resnet50.")] = "resnet50",
    dim: Annotated[int, typer.Option(help="Embedding dimension (the reducer's output).")] = 512,
    pred_dim: Annotated[int, typer.Option(help="Hidden width of SimSiam's predictor.")] = 256,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 100,
    batch_size: Annotated[int, typer.Option(help="Micrographs per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Base learning rate (scaled by batch size / 256, cosine decay).")] = 0.05,
    input_size: Annotated[int, typer.Option(help="Pixels the network sees per side.")] = 224,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from checkpoints/model_last.pth.tar.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over in a run folder that holds a model.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Device = "auto",
    workers: Workers = 2,
) -> None:
    """Train a SimSiam encoder on micrographs (real domain) or their power spectra (fft), prismPYP's way."""
    from embedscope.pipeline.micrograph_training import train_micrographs as train

    report = train(inputs, output, domain=domain, metadata=metadata, webp=webp, pixel_size=pixel_size,
                   search=search or (), arch=arch, dim=dim, pred_dim=pred_dim, epochs=epochs, batch_size=batch_size,
                   lr=lr, input_size=input_size,
                   resume=resume, replace=force, device=device, workers=workers, seed=seed,
                   reporter=session.reporter())
    last = f", last loss {report.losses[-1]:.4f}" if report.losses else ""
    stdout.print(f"trained {report.arch} ({report.domain} domain) on {report.micrographs:,} micrographs for "
                 f"{report.epochs} epochs{last} in {report.seconds:.0f} s; best model: {report.best}",
                 highlight=False)


@embed_app.command("micrographs")
def embed_micrographs(
    inputs: Inputs,
    model: Annotated[Path, typer.Option("--model", help="A trained model (ours or prismPYP's .pth.tar).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The Atlas to write.")],
    domain: Annotated[str | None, typer.Option(help="real or fft (default: the model's; real for prismPYP's).")]
    = None,
    metadata: Metadata = None,
    webp: Webp = None,
    pixel_size: PixelSize = None,
    search: Search = None,
    batch_size: Annotated[int, typer.Option(help="Micrographs per batch.")] = 32,
    device: Device = "auto",
    workers: Workers = 2,
    embeddings_pth: Annotated[Path | None, typer.Option(help="Also write prismPYP's embeddings.pth here.")] = None,
    save_every: Annotated[int, typer.Option(help="Keep finished work every this many micrographs, so that a "
                                                 "killed run resumes from there.")] = 256,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing Atlas (atomically).")] = False,
) -> None:
    """Embed micrographs into an Atlas (vectors, names, metadata, mg and ps thumbnails); a killed run resumes."""
    from embedscope.pipeline.micrograph_embedding import embed_micrographs as embed

    report = embed(inputs, model, output, domain=domain, metadata=metadata, webp=webp, pixel_size=pixel_size,
                   search=search or (),
                   batch_size=batch_size, device=device, workers=workers, chunk=save_every,
                   replace=force, embeddings_pth=embeddings_pth, reporter=session.reporter(), command=session.command)
    notes = [f"{report.resumed:,} from the earlier run"] if report.resumed else []
    notes += [f"{report.left_out:,} left out"] if report.left_out else []
    extra = f" ({', '.join(notes)})" if notes else ""
    stdout.print(f"embedded {report.items:,} micrographs ({report.domain} domain, dim {report.dim}){extra} into "
                 f"{report.atlas} in {report.seconds:.0f} s; the model waited for data "
                 f"{report.waiting:.0%} of the time", highlight=False)
