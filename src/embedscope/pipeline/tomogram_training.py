"""Train a SimSiam encoder on the picked patches of a set of tomograms (MiLoPYP's `simsiam_main.py`).

The run folder gets MiLoPYP's files (opts.txt, log.txt, model_last.pth, model_<epoch>.pth), so users keep
their habits of picking a model by its loss.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedscope.errors import ParameterError
from embedscope.pipeline.tomogram_patches import gather_patches, mode_of
from embedscope.progress import SILENT, Reporter
from embedscope.sources import CandidatePicker

TRAINING_MARGIN = 4  # pixels around each box from which shifted positive crops are drawn


@dataclass
class TrainReport:
    """Where the run left its files, how many patches it learned from, and its losses."""

    out_dir: Path
    checkpoint: Path
    arch: str
    patches: int
    epochs: int
    losses: tuple[float, ...]
    seconds: float


def train_tomograms(
    tomograms: Path,
    out_dir: Path,
    *,
    picker: CandidatePicker,
    arch: str | None = None,
    mode: str | None = None,
    bbox: int = 36,
    epochs: int = 100,
    batch_size: int = 256,
    lr: float = 1e-3,
    lr_steps: Sequence[int] = (200, 400, 600),
    val_intervals: int = 20,
    save_all: bool = False,
    resume: bool = False,
    device: str = "auto",
    width: int = 64,
    margin: int = TRAINING_MARGIN,
    seed: int = 0,
    workers: int = 1,
    order: str = "auto",
    replace: bool = False,
    options: Mapping[str, Any] | None = None,
    reporter: Reporter = SILENT,
) -> TrainReport:
    """Pick candidates in every tomogram, cut 8-bit patches with a margin, and train `arch` on them.

    A run folder that already holds a model is only continued (`resume`) or, with `replace`, started over.
    """
    from embedscope.encoders.training import train_simsiam

    started = time.perf_counter()
    arch, mode = mode_of(arch, mode)
    if (Path(out_dir) / "model_last.pth").exists() and not (resume or replace):
        raise ParameterError(f"{out_dir} already holds a trained model; continue it with --resume, start over "
                             "with --force, or train into another folder")
    if epochs < 1:
        raise ParameterError(f"--num_epochs must be at least 1; got {epochs}")
    if batch_size < 2:
        raise ParameterError(f"--batch_size must be at least 2 (SimSiam's batch norm needs pairs); got {batch_size}")
    patches = gather_patches(tomograms, picker, bbox=bbox, mode=mode, margin=margin, dtype="uint8",
                             workers=workers, order=order, reporter=reporter)
    if len(patches) < batch_size:
        raise ParameterError(f"only {len(patches)} patches were picked, fewer than --batch_size {batch_size}; lower "
                             f"--batch_size (e.g. {max(2, len(patches) // 4)}) or pick more (lower --dog sigmas)")
    picking = {"gauss": picker.gauss, "dog": ",".join(f"{sigma:g}" for sigma in picker.dog), "order": order,
               "mode": mode, "train_img_txt": str(tomograms)}
    result = train_simsiam(patches.views3d, patches.views2d, arch=arch, bbox=bbox, margin=margin, epochs=epochs,
                           out_dir=out_dir, batch_size=batch_size, lr=lr, lr_steps=lr_steps,
                           val_intervals=val_intervals, save_all=save_all, resume=resume, device=device,
                           width=width, seed=seed, workers=workers, options={**picking, **(options or {})},
                           reporter=reporter)
    return TrainReport(result.out_dir, result.checkpoint, arch, len(patches), result.epochs, result.losses,
                       time.perf_counter() - started)
