"""Train CryoSiam's subtomogram SimSiam on 3D crops, resumably, into CryoSiam's folder layout (model/last.ckpt).

SGD with momentum 0.9 and weight decay on a cosine schedule, two views of each crop per step, full batches only.
`lr` is used as given, not scaled by batch_size / 256 as SimSiam does: the default 0.05 is SimSiam's rate at
batch 256, and scaled down to the small batches 3D crops allow it barely trains. Every draw derives from
(seed, epoch, batch), so a resumed run ends with the weights an uninterrupted one would have.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedscope.encoders.cryosiam_checkpoints import read_cryosiam_checkpoint, save_cryosiam_checkpoint
from embedscope.encoders.devices import autocast_dtype, resolve_device
from embedscope.encoders.devices import mixed_precision as autocast_context
from embedscope.encoders.epochs import prefetched, seeded_generator, shuffled_batches
from embedscope.encoders.micrograph_run_files import TrainingLog, write_training_config
from embedscope.encoders.micrograph_training import cosine_learning_rate
from embedscope.encoders.simsiam import output_spread, simsiam_loss
from embedscope.encoders.subtomogram_augment import draw_subtomogram_views
from embedscope.encoders.subtomogram_simsiam import NetworkSettings, SubtomogramSimSiam
from embedscope.encoders.training_checks import check_training
from embedscope.errors import ParameterError
from embedscope.progress import SILENT, Reporter

MODEL_FOLDER = "model"
LAST_CHECKPOINT = "last.ckpt"  # CryoSiam's predict script falls back to <log_dir>/model/last.ckpt
MOMENTUM = 0.9
WRITTEN_BY_US = "embedscope"
NAN_CHUNK = 64  # crops checked for NaN at a time, so a memory-mapped file is never read whole


@dataclass(frozen=True)
class SubtomogramTrainResult:
    """Where a training run left its checkpoint, and the loss of each epoch this call ran."""

    epochs_run: int  # epochs completed, counting those of a resumed run
    last_loss: float  # of the last completed epoch, this call's or the resumed checkpoint's
    losses: list[float]  # one per epoch run by this call
    checkpoint: Path  # out_dir/model/last.ckpt
    device: str


def train_subtomograms(
    crops: np.ndarray,
    out_dir: Path,
    settings: NetworkSettings,
    *,
    epochs: int,
    batch_size: int,
    lr: float = 0.05,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    workers: int = 1,
    mixed_precision: bool = True,
    reporter: Reporter = SILENT,
) -> SubtomogramTrainResult:
    """Train on float32 (N, D, H, W) crops, or (N, C, D, H, W) with C = in_channels; `crops` may be a memmap.

    Writes model/last.ckpt every epoch, training_log.csv and training_config.yaml. A folder that already holds
    a run is refused unless `resume`, which continues from model/last.ckpt with the same network settings.
    """
    _check_settings(settings, epochs, batch_size, lr, weight_decay, seed, workers)
    _check_crops(crops, settings, batch_size)
    target = resolve_device(device)
    out_dir = Path(out_dir)
    checkpoint = out_dir / MODEL_FOLDER / LAST_CHECKPOINT
    model, state, saved = _restore(checkpoint, settings) if resume else _start(checkpoint, settings, seed)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    model.to(target, memory_format=model.memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype(target, mixed_precision) == torch.float16)
    if saved:
        optimizer.load_state_dict(saved["optimizer_states"][0])
        if saved["embedscope"].get("grad_scaler"):  # saved only from float16 GPU runs
            scaler.load_state_dict(saved["embedscope"]["grad_scaler"])
    options = {
        "network": settings.as_config(), "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "momentum": MOMENTUM, "weight_decay": weight_decay, "seed": seed, "device": str(target), "resume": resume,
        "start_epoch": state.epochs, "workers": workers, "mixed_precision": mixed_precision,
        "crops": len(crops), "crop_shape": list(crops.shape[1:]), "output_path": str(out_dir),
    }
    write_training_config(out_dir, options)
    log = TrainingLog(out_dir, state.epochs if resume else None)
    data = _EpochData(crops, batch_size, seed, workers, model.memory_format)
    losses: list[float] = []
    with reporter.phase("training subtomogram SimSiam", max(0, epochs - state.epochs)) as advance:
        for epoch in range(state.epochs, epochs):  # counted from 0, as the cosine schedule counts
            rate = cosine_learning_rate(lr, epoch, epochs)
            for group in optimizer.param_groups:
                group["lr"] = rate
            started = time.perf_counter()
            loss, spread, steps = _train_one_epoch(model, optimizer, scaler, data, epoch, target, mixed_precision)
            level = max(0.0, 1 - math.sqrt(settings.dim) * spread)
            log.write(epoch + 1, loss, level, spread, rate, time.perf_counter() - started)
            state = _RunState(epoch + 1, state.steps + steps, loss)
            _save(checkpoint, model, settings, optimizer, scaler, state, seed)
            losses.append(loss)
            reporter.note(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f}, collapse level {level:.3f}, lr {rate:.4g}")
            advance(1)
    return SubtomogramTrainResult(state.epochs, state.loss, losses, checkpoint, str(target))


@dataclass(frozen=True)
class _RunState:
    """What carries from epoch to epoch, saved in every checkpoint so a resumed run continues it."""

    epochs: int = 0  # epochs completed
    steps: int = 0  # optimiser steps taken, Lightning's global_step
    loss: float = math.nan  # of the last completed epoch


def _start(checkpoint: Path, settings: NetworkSettings, seed: int) -> tuple[SubtomogramSimSiam, _RunState, dict]:
    """A fresh network, its weights drawn from `seed` without touching the caller's RNG; refused over a run."""
    if checkpoint.exists():
        raise ParameterError(f"{checkpoint.parent.parent} already holds a training run ({checkpoint}); continue it "
                             "with --resume, start over with --force, or train into another folder")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SubtomogramSimSiam(settings)
    return model, _RunState(), {}


def _restore(
    checkpoint: Path, settings: NetworkSettings
) -> tuple[SubtomogramSimSiam, _RunState, dict[str, Any]]:
    """The network, run state and contents of model/last.ckpt, refused if it holds another network or not our run."""
    if not checkpoint.is_file():
        raise ParameterError(f"nothing to resume: {checkpoint} does not exist; start without resume")
    model, found, contents = read_cryosiam_checkpoint(checkpoint)
    if found != settings:
        key = next(name for name, value in settings.as_config().items() if found.as_config()[name] != value)
        raise ParameterError(f"cannot resume from {checkpoint}: it was trained with network {key} "
                             f"{found.as_config()[key]}, not {settings.as_config()[key]}; use the same network "
                             "settings or train into another folder")
    ours = contents.get("embedscope")
    if not isinstance(ours, dict) or ours.get("written_by") != WRITTEN_BY_US or not contents.get("optimizer_states"):
        raise ParameterError(f"cannot resume from {checkpoint}: it was not written by embedscope's training; "
                             "train into another folder")
    return model, _RunState(int(ours["epochs"]), int(contents.get("global_step", 0)), float(ours["loss"])), contents


def _save(
    checkpoint: Path, model: SubtomogramSimSiam, settings: NetworkSettings, optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler, state: _RunState, seed: int,
) -> None:
    """model/last.ckpt with Lightning's counters (`epoch` is the 0-based index of the epoch just finished)."""
    extra = {"written_by": WRITTEN_BY_US, "epochs": state.epochs, "loss": state.loss, "seed": seed,
             "grad_scaler": scaler.state_dict()}
    save_cryosiam_checkpoint(checkpoint, model, settings, epoch=state.epochs - 1, global_step=state.steps,
                             optimizer_state=optimizer.state_dict(), extra=extra)


@dataclass(frozen=True)
class _EpochData:
    """What an epoch needs to cut its batches and draw their views."""

    crops: np.ndarray
    batch_size: int
    seed: int
    workers: int
    memory_format: torch.memory_format

    def batches(self, epoch: int) -> list[np.ndarray]:
        return shuffled_batches(len(self.crops), self.batch_size, seeded_generator(self.seed, epoch))

    def views(self, epoch: int, index: int, rows: np.ndarray, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Two random views of each crop of the batch, drawn on `device`; rows are read in file order."""
        generator = seeded_generator(self.seed, epoch, index + 1)
        batch = torch.from_numpy(np.array(self.crops[np.sort(rows)], dtype=np.float32))
        if batch.ndim == 4:
            batch = batch.unsqueeze(1)
        views = draw_subtomogram_views(batch.to(device, non_blocking=True), generator)
        return tuple(view.contiguous(memory_format=self.memory_format) for view in views)


def _train_one_epoch(
    model: SubtomogramSimSiam, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, data: _EpochData,
    epoch: int, device: torch.device, mixed_precision: bool,
) -> tuple[float, float, int]:
    """One pass over the batches: the mean loss, the mean output std of the first views' predictions, the steps."""
    model.train()
    batches = data.batches(epoch)
    total_loss = total_spread = 0.0
    prepare = lambda index: data.views(epoch, index, batches[index], device)
    for first, second in prefetched(prepare, len(batches), data.workers):
        with autocast_context(device, mixed_precision):
            p1, p2, z1, z2 = model(first, second)
            loss = simsiam_loss((z1, p1), (z2, p2))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total_loss += loss.item()
        total_spread += output_spread(p1.float())
    return total_loss / len(batches), total_spread / len(batches), len(batches)


def _check_crops(crops: np.ndarray, settings: NetworkSettings, batch_size: int) -> None:
    """Float crops of the network's channels and dimensions, at least a batch of them, none holding NaN or inf."""
    if not isinstance(crops, np.ndarray) or crops.dtype != np.float32 or crops.ndim not in (4, 5):
        shown = f"{crops.dtype} array of shape {crops.shape}" if isinstance(crops, np.ndarray) else type(crops).__name__
        raise ParameterError(f"training crops must be a float32 (N, D, H, W) or (N, C, D, H, W) array; got {shown}")
    channels = crops.shape[1] if crops.ndim == 5 else 1
    if channels != settings.in_channels:
        raise ParameterError(f"the crops have {channels} channel(s) but the network takes in_channels "
                             f"{settings.in_channels}; give (N, {settings.in_channels}, D, H, W) crops")
    if len(crops) < batch_size:
        raise ParameterError(f"training needs at least one full batch: {len(crops)} crops for batch size "
                             f"{batch_size}; lower the batch size or give more crops")
    bad = sum(_count_nonfinite(crops[start : start + NAN_CHUNK]) for start in range(0, len(crops), NAN_CHUNK))
    if bad:
        raise ParameterError(f"{bad} of {len(crops)} crops hold NaN or infinite values; "
                         "fill or drop them before training")


def _count_nonfinite(chunk: np.ndarray) -> int:
    """How many crops of `chunk` hold a NaN or infinite value."""
    return int(np.count_nonzero(~np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)))


def _check_settings(
    settings: NetworkSettings, epochs: int, batch_size: int, lr: float, weight_decay: float, seed: int, workers: int
) -> None:
    spatial = settings.spatial_dims
    check_training(epochs, batch_size, lr, seed, workers, [
        (spatial == 3, f"training takes 3D crops: network spatial_dims must be 3, not {spatial}"),
        (weight_decay >= 0, f"weight decay must be 0 or more; got {weight_decay}"),
    ])
