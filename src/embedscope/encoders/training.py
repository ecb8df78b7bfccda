"""Train MiLoPYP's SimSiam encoders on patch arrays, with its optimiser, schedule and output files.

MiLoPYP (simsiam_main.py) uses plain SGD (no momentum, no weight decay) at `--lr`, multiplied by
0.1 after each `--lr_step` epoch (200, 400, 600), on full batches only; we do the same. Positive
pairs are two augmented views of one patch, each cropped around a point up to `margin` px off centre.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedscope.encoders.augment import TILT_AND_TOMOGRAM, TOMOGRAM_ONLY, PairRecipe, draw_view
from embedscope.encoders.checkpoints import checkpoint_weights, describe_checkpoint, read_checkpoint, save_checkpoint
from embedscope.encoders.devices import resolve_device
from embedscope.encoders.epochs import prefetched, seeded_generator, shuffled_batches
from embedscope.encoders.patches import (
    PatchStatistics,
    check_patches,
    check_unit_range,
    normalise,
    patch_statistics,
    patch_tensor,
)
from embedscope.encoders.run_files import EpochLog, write_options
from embedscope.encoders.simsiam import EMBEDDING_DIM, SimSiam, make_model, output_spread, simsiam_loss
from embedscope.encoders.training_checks import check_training
from embedscope.errors import ParameterError
from embedscope.progress import SILENT, Reporter

LAST_CHECKPOINT = "model_last.pth"
LR_DECAY = 0.1  # MiLoPYP's --lr_decay_rate
MILOPYP_LR_STEPS = (200, 400, 600)  # MiLoPYP's --lr_step default
RECIPES: dict[str, PairRecipe] = {"simsiam2d_18": TOMOGRAM_ONLY, "simsiam2d3d_18": TILT_AND_TOMOGRAM}


@dataclass(frozen=True)
class TrainResult:
    """Where a training run left its files, and the mean loss of each epoch it ran."""

    out_dir: Path
    checkpoint: Path  # model_last.pth
    epochs: int  # epochs completed, counting those of a resumed run
    losses: tuple[float, ...]  # one per epoch run by this call
    statistics: PatchStatistics


def train_simsiam(
    views3d: np.ndarray,
    views2d: np.ndarray | None,
    *,
    arch: str,
    bbox: int,
    margin: int,
    epochs: int,
    out_dir: Path,
    batch_size: int = 256,
    lr: float = 1e-3,
    val_intervals: int = 20,
    save_all: bool = False,
    resume: bool = False,
    device: str = "auto",
    width: int = 64,
    seed: int = 0,
    workers: int = 1,
    lr_steps: Sequence[int] = MILOPYP_LR_STEPS,
    options: Mapping[str, Any] | None = None,
    reporter: Reporter = SILENT,
) -> TrainResult:
    """Train `arch` on (N, S, S) patches with S = bbox + 2 * margin; views2d are the tilt patches of 2d3d.

    Writes opts.txt, log.txt, model_last.pth after every epoch, model_<epoch>.pth every
    `val_intervals` epochs when `save_all` and at each lr step (as MiLoPYP does). `resume` continues
    from model_last.pth; every epoch's shuffling and augmentation derive from (seed, epoch), so a
    resumed run ends with the weights an uninterrupted one would have. `workers` threads prepare batches.
    """
    _check_settings(epochs, batch_size, lr, margin, seed, workers)
    with torch.random.fork_rng(devices=[]):  # seeds the initial weights without touching the caller's RNG
        torch.manual_seed(seed)
        model = make_model(arch, width)
    _check_training_patches(views3d, views2d, model.channels, bbox, margin)
    target = resolve_device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    statistics = patch_statistics(views3d, views2d, bbox)
    first_epoch, optimizer_state = 0, None
    if resume:
        first_epoch, optimizer_state, statistics = _restore(out_dir / LAST_CHECKPOINT, model, arch, width, bbox, margin)
    model.patch_statistics = statistics
    model.to(target)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    settings = {
        "arch": arch, "batch_size": batch_size, "bbox": bbox, "margin": margin, "num_epochs": epochs, "lr": lr,
        "lr_step": list(lr_steps), "val_intervals": val_intervals, "save_all": save_all, "resume": resume,
        "seed": seed, "width": width, "head_conv": EMBEDDING_DIM, "device": str(target), "num_workers": workers,
        "save_dir": str(out_dir), "patches": len(views3d), "mean": list(statistics.mean), "std": list(statistics.std),
    }
    write_options(out_dir, {**(options or {}), **settings})
    log = EpochLog(out_dir, append=resume)
    epoch_data = _EpochData(views3d, views2d, RECIPES[arch], statistics, bbox, margin, batch_size, seed, workers)
    losses: list[float] = []
    with reporter.phase(f"training {arch}", max(0, epochs - first_epoch)) as advance:
        for epoch in range(first_epoch + 1, epochs + 1):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(lr, epoch, lr_steps)
            started = time.perf_counter()
            loss, spread = _train_one_epoch(model, optimizer, epoch_data, epoch, target)
            minutes = (time.perf_counter() - started) / 60
            for name in _checkpoint_names(epoch, lr_steps, save_all, val_intervals):
                save_checkpoint(out_dir / name, model, optimizer, epoch=epoch, arch=arch, width=width, bbox=bbox,
                                margin=margin, statistics=statistics)
            log.write(epoch, {"loss": loss, "cosine_loss": loss, "output_std": spread, "time": minutes})
            losses.append(loss)
            reporter.note(f"epoch {epoch}/{epochs}: loss {loss:.4f}, output std {spread:.4f}")
            advance(1)
    return TrainResult(out_dir, out_dir / LAST_CHECKPOINT, max(epochs, first_epoch), tuple(losses), statistics)


def learning_rate(base: float, epoch: int, steps: Sequence[int]) -> float:
    """MiLoPYP's step schedule: `base` times 0.1 for every step epoch already passed (epoch > step)."""
    return base * LR_DECAY ** sum(epoch > step for step in steps)


@dataclass(frozen=True)
class _EpochData:
    """What an epoch needs to cut and augment its batches."""

    views3d: np.ndarray
    views2d: np.ndarray | None
    recipe: PairRecipe
    statistics: PatchStatistics
    bbox: int
    margin: int
    batch_size: int
    seed: int
    workers: int

    def batches(self, epoch: int) -> list[np.ndarray]:
        """Shuffled rows in full batches, the remainder dropped (MiLoPYP's drop_last), at least one batch."""
        return shuffled_batches(len(self.views3d), self.batch_size, seeded_generator(self.seed, epoch))

    def views(
        self, epoch: int, index: int, rows: np.ndarray, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two normalised, augmented views of the batch's patches, drawn on `device`."""
        generator = seeded_generator(self.seed, epoch, index + 1)
        patches = patch_tensor(self.views3d, self.views2d, rows).to(device, non_blocking=True)
        pair = (self.recipe.first, self.recipe.second)
        drawn = [draw_view(patches, recipe, bbox=self.bbox, margin=self.margin, generator=generator) for recipe in pair]
        return normalise(drawn[0], self.statistics), normalise(drawn[1], self.statistics)


def _train_one_epoch(
    model: SimSiam, optimizer: torch.optim.Optimizer, data: _EpochData, epoch: int, device: torch.device
) -> tuple[float, float]:
    """One pass over the batches; returns the sample-weighted mean loss and output spread."""
    model.train()
    batches = data.batches(epoch)
    total_loss = total_spread = 0.0
    count = 0
    prepare = lambda index: data.views(epoch, index, batches[index], device)
    for first, second in prefetched(prepare, len(batches), data.workers):
        first_out, second_out = model(first), model(second)
        loss = simsiam_loss(first_out, second_out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(first)
        total_spread += output_spread(first_out[1]) * len(first)
        count += len(first)
    return total_loss / count, total_spread / count


def _restore(
    path: Path, model: SimSiam, arch: str, width: int, bbox: int, margin: int
) -> tuple[int, dict[str, Any], PatchStatistics]:
    """Load model_last.pth into `model`; return its epoch, optimiser state and normalisation statistics."""
    contents = read_checkpoint(path)
    info = describe_checkpoint(path, contents)
    asked, found = (arch, width, bbox, margin), (info.arch, info.width, info.bbox, info.margin)
    if asked != found or info.statistics is None or "optimizer" not in contents:
        raise ParameterError(
            f"cannot resume from {path}: it was trained with arch {info.arch}, width {info.width}, bbox {info.bbox}, "
            f"margin {info.margin}; asked for {arch}, {width}, {bbox}, {margin} (start without --resume)"
        )
    model.load_state_dict(checkpoint_weights(contents))
    return info.epoch, contents["optimizer"], info.statistics


def _checkpoint_names(epoch: int, lr_steps: Sequence[int], save_all: bool, val_intervals: int) -> list[str]:
    """model_last.pth always; model_<epoch>.pth at lr steps and, with save_all, every val_intervals epochs."""
    numbered = epoch in lr_steps or (save_all and val_intervals > 0 and epoch % val_intervals == 0)
    return [LAST_CHECKPOINT, f"model_{epoch}.pth"] if numbered else [LAST_CHECKPOINT]


def _check_training_patches(
    views3d: np.ndarray, views2d: np.ndarray | None, channels: int, bbox: int, margin: int
) -> None:
    size = check_patches(views3d, views2d, channels=channels, smallest=bbox + 2 * margin)
    if size != bbox + 2 * margin:
        raise ParameterError(f"patches are {size} px but bbox {bbox} + 2 x margin {margin} = {bbox + 2 * margin}")
    if len(views3d) < 2:
        raise ParameterError(f"training needs at least 2 patches; got {len(views3d)}")
    check_unit_range(views3d, views2d)


def _check_settings(epochs: int, batch_size: int, lr: float, margin: int, seed: int, workers: int) -> None:
    check_training(epochs, batch_size, lr, seed, workers,
                   [(margin >= 0, f"margin must be 0 or more pixels; got {margin}")])

