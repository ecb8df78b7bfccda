"""`embedscope train subtomograms` and `embedscope embed subtomograms`: CryoSiam's 3D SimSiam in our own terms.

Both take CryoSiam's YAML config; training also takes a folder of tomograms with masks or particle lists and
options named after CryoSiam's keys. `embedscope cryosiam ...` runs the same steps under CryoSiam's names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedscope.cli.micrographs import embed_app, train_app
from embedscope.cli.runner import session

stdout = Console()

Device = Annotated[str, typer.Option(help="auto (a GPU when there is one), cpu or cuda.")]


def _numbers(text: str | None) -> list[int] | None:
    from embedscope.errors import ParameterError

    if text is None:
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ParameterError(f"expected whole numbers separated by commas, e.g. 16,32,64,128; got {text!r}") from None


@train_app.command("subtomograms")
def train_subtomograms(
    config_or_inputs: Annotated[Path, typer.Argument(help="CryoSiam's YAML config, or a folder of tomograms "
                                                          "(then give --masks or --particles).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder: model/last.ckpt, training_log.csv, "
                                                                 "the crops cache and a config for predict.")],
    masks: Annotated[Path | None, typer.Option(help="Folder of <tomo>_instance_preds.h5 masks (instances_mask_folder)."
                                               )] = None,
    particles: Annotated[Path | None, typer.Option(help="RELION/Warp .star or a CSV of particle centres instead of "
                                                        "masks.")] = None,
    extension: Annotated[str, typer.Option(help="Tomogram file ending (file_extension).")] = ".mrc",
    patch_size: Annotated[int, typer.Option(help="Crop side in voxels (parameters.data.patch_size).")] = 32,
    masking_type: Annotated[int, typer.Option(help="0 none, 1 convex hull, 2 the region itself.")] = 1,
    expand_labels: Annotated[int, typer.Option(help="Voxels the labels grow by before cropping.")] = 3,
    min_size: Annotated[int | None, typer.Option(help="Smallest region kept, voxels (min_particle_size).")] = None,
    max_size: Annotated[int | None, typer.Option(help="Largest region kept, voxels (max_particle_size).")] = None,
    dim: Annotated[int, typer.Option(help="Embedding dimension (parameters.network.dim).")] = 256,
    pred_dim: Annotated[int, typer.Option(help="Predictor width (parameters.network.pred_dim).")] = 64,
    num_filters: Annotated[str, typer.Option(help="ResNet stage widths (parameters.network.num_filters).")]
    = "16,32,64,128",
    num_layers: Annotated[str, typer.Option(help="Blocks per stage (parameters.network.num_layers).")] = "1,1,1,1",
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the config's max_epochs, else 100).")] = None,
    batch_size: Annotated[int, typer.Option(help="Crops per step (hyper_parameters.batch_size).")] = 16,
    lr: Annotated[float, typer.Option(help="Learning rate (hyper_parameters.learning_rate).")] = 0.05,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes cropping in parallel.")] = 2,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from model/last.ckpt in the run folder.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over in a run folder that holds a model.")] = False,
    device: Device = "auto",
) -> None:
    """Train CryoSiam's 3D SimSiam (MONAI ResNet) on masked instance crops; resumable; CPU or CUDA.

    With a config, its keys rule (options other than -o, --epochs, --resume, --force and --device are ignored).
    """
    from embedscope.formats.cryosiam_config import read_cryosiam_config
    from embedscope.pipeline.subtomogram_training import config_for_inputs, train_subtomogram_model

    if config_or_inputs.suffix.lower() in (".yaml", ".yml"):
        config = read_cryosiam_config(config_or_inputs)
    else:
        keys = {"instances_mask_folder": masks, "particles_star": particles if particles and
                particles.suffix.lower() != ".csv" else None,
                "particles_csv": particles if particles and particles.suffix.lower() == ".csv" else None,
                "file_extension": extension, "masking_type": masking_type, "expand_labels": expand_labels,
                "min_particle_size": min_size, "max_particle_size": max_size, "seed": seed, "workers": workers,
                "parameters.data.patch_size": [patch_size] * 3, "parameters.network.dim": dim,
                "parameters.network.pred_dim": pred_dim, "parameters.network.num_filters": _numbers(num_filters),
                "parameters.network.num_layers": _numbers(num_layers), "hyper_parameters.batch_size": batch_size,
                "hyper_parameters.learning_rate": lr, "hyper_parameters.max_epochs": epochs}
        config = config_for_inputs(config_or_inputs, output, keys)
    report = train_subtomogram_model(config, output, epochs=epochs, device=device, resume=resume, replace=force,
                                     reporter=session.reporter())
    last = f", last loss {report.losses[-1]:.4f}" if report.losses else ""
    source = " (from the cache)" if report.cached else ""
    stdout.print(f"trained on {report.crops:,} crops{source} for {report.epochs} epochs on {report.device}{last} in "
                 f"{report.seconds:.0f} s; model {report.checkpoint}; predict with `embedscope cryosiam "
                 f"simsiam_embeddings_predict --config_file={report.predict_config}`", highlight=False)


@embed_app.command("subtomograms")
def embed_subtomograms(
    config: Annotated[Path, typer.Option("--config", help="CryoSiam's subtomogram-embeddings YAML config.")],
    filename: Annotated[str | None, typer.Option(help="Only this tomogram (always predicted again).")] = None,
    device: Device = "auto",
) -> None:
    """Embed every instance of the config's masks: CryoSiam's files and <prediction_folder>/embeddings.atlas."""
    from embedscope.cli.cryosiam import predict

    predict(config, filename, device)
