"""Train prismPYP's micrograph SimSiam on prepared views (micrographs or power spectra), with its optimiser and files.

As prismPYP's `train`: SGD with momentum and weight decay at lr * batch_size / 256, a cosine schedule (the
predictor held at the initial rate with `fix_pred_lr`), two views of each image per step, full batches only,
and model_best / model_last / model_lowest_collapse checkpoints. Unlike prismPYP the backbone is trained.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedscope.encoders.checkpoints import WRITTEN_BY_US
from embedscope.encoders.devices import autocast_dtype, mixed_precision, resolve_device
from embedscope.encoders.epochs import prefetched, seeded_generator, shuffled_batches
from embedscope.encoders.micrograph_augment import DOMAINS, draw_micrograph_view
from embedscope.encoders.micrograph_checkpoints import read_micrograph_checkpoint, save_micrograph_checkpoint
from embedscope.encoders.micrograph_run_files import (
    TrainingLog,
    write_best_collapse_epoch,
    write_best_epoch,
    write_training_config,
)
from embedscope.encoders.micrograph_simsiam import MICROGRAPH_ARCHES, MicrographSimSiam
from embedscope.encoders.simsiam import output_spread, simsiam_loss
from embedscope.encoders.training_checks import check_training
from embedscope.errors import ParameterError
from embedscope.progress import SILENT, Reporter

CHECKPOINT_FOLDER = "checkpoints"
BEST_CHECKPOINT = "model_best.pth.tar"  # lowest epoch loss
LAST_CHECKPOINT = "model_last.pth.tar"  # written every epoch; what --resume continues from
LOWEST_COLLAPSE_CHECKPOINT = "model_lowest_collapse.pth.tar"
EMA_WEIGHT = 0.9  # prismPYP's `w` for the running output std behind the collapse level
REFERENCE_BATCH = 256  # SimSiam scales the learning rate by batch_size / 256


@dataclass(frozen=True)
class MicrographTrainResult:
    """Where a training run left its checkpoints, and the loss and collapse level of each epoch it ran."""

    out_dir: Path
    best: Path
    last: Path
    lowest_collapse: Path
    epochs: int  # epochs completed, counting those of a resumed run
    losses: tuple[float, ...]  # one per epoch run by this call
    collapse_levels: tuple[float, ...]


@dataclass
class _RunState:
    """What carries from epoch to epoch, saved in every checkpoint so a resumed run continues it."""

    epoch: int = 0  # epochs completed
    best_loss: float = math.inf
    lowest_collapse: float = math.inf
    output_std_ema: float | None = None

    def extra(self) -> dict[str, Any]:
        return {"best_loss": self.best_loss, "lowest_collapse": self.lowest_collapse,
                "output_std_ema": self.output_std_ema}


def train_micrographs(
    images: np.ndarray,
    *,
    domain: str,
    arch: str = "resnet50",
    dim: int = 512,
    pred_dim: int = 256,
    epochs: int = 100,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    fix_pred_lr: bool = True,
    input_size: int = 224,
    out_dir: Path,
    resume: bool = False,
    device: str = "auto",
    amp: bool = True,
    workers: int = 2,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    reporter: Reporter = SILENT,
) -> MicrographTrainResult:
    """Train on (N, S, S) uint8 views of `domain` ("real" or "fft"); `images` may be a read-only memmap.

    Writes checkpoints/{model_best,model_last,model_lowest_collapse}.pth.tar, best_epoch.txt and
    best_collapse_epoch.txt, training_config.yaml and training_log.csv. Every epoch's shuffling and views
    derive from (seed, epoch), so a run resumed from model_last ends as an uninterrupted one would.
    """
    _check_images(images)
    _check_settings(domain, arch, dim, pred_dim, epochs, batch_size, lr, momentum, weight_decay, input_size, workers,
                    seed)
    target = resolve_device(device)
    out_dir = Path(out_dir)
    folder = out_dir / CHECKPOINT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    if resume:
        model, state, saved = _restore(folder / LAST_CHECKPOINT, arch, dim, pred_dim, domain, input_size)
    else:
        model, state, saved = _fresh_model(arch, dim, pred_dim, input_size, seed), _RunState(), {}
    model.to(target, memory_format=torch.channels_last)  # faster convolutions on CPUs and GPUs alike
    init_lr = lr * batch_size / REFERENCE_BATCH
    optimizer = torch.optim.SGD(_parameter_groups(model, fix_pred_lr), lr=init_lr, momentum=momentum,
                                weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype(target, amp) == torch.float16)
    if saved:
        optimizer.load_state_dict(saved["optimizer"])
        if saved.get("grad_scaler"):  # saved only from float16 GPU runs
            scaler.load_state_dict(saved["grad_scaler"])
    settings = {
        "arch": arch, "dim": dim, "pred_dim": pred_dim, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "init_lr": init_lr, "momentum": momentum, "weight_decay": weight_decay, "fix_pred_lr": fix_pred_lr,
        "input_size": input_size, "domain": domain, "use_fft": domain == "fft", "resume": resume,
        "start_epoch": state.epoch, "device": str(target), "amp": amp, "workers": workers, "seed": seed,
        "output_path": str(out_dir), "images": len(images), "image_size": int(images.shape[1]),
    }
    write_training_config(out_dir, {**(options or {}), **settings})
    log = TrainingLog(out_dir, state.epoch if resume else None)
    data = _EpochData(images, domain, input_size, batch_size, seed, workers)
    losses: list[float] = []
    levels: list[float] = []
    with reporter.phase(f"training {arch} on {domain} views", max(0, epochs - state.epoch)) as advance:
        for epoch in range(state.epoch, epochs):  # counted from 0, as prismPYP's schedule and notes
            rate = cosine_learning_rate(init_lr, epoch, epochs)
            for group in optimizer.param_groups:
                group["lr"] = init_lr if group["fix_lr"] else rate
            started = time.perf_counter()
            loss, spread = _train_one_epoch(model, optimizer, scaler, data, epoch, target, amp)
            ema = _running_output_std(state.output_std_ema, spread)
            level = max(0.0, 1 - math.sqrt(dim) * ema)
            log.write(epoch + 1, loss, level, spread, rate, time.perf_counter() - started)
            best, lowest = loss < state.best_loss, level < state.lowest_collapse
            state = _RunState(epoch + 1, min(loss, state.best_loss), min(level, state.lowest_collapse), ema)
            _save_epoch(folder, model, optimizer, scaler, state, domain, best=best, lowest=lowest, loss=loss,
                        level=level)
            losses.append(loss)
            levels.append(level)
            reporter.note(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f}, collapse level {level:.3f}, lr {rate:.4g}")
            advance(1)
    return MicrographTrainResult(out_dir, folder / BEST_CHECKPOINT, folder / LAST_CHECKPOINT,
                                 folder / LOWEST_COLLAPSE_CHECKPOINT, state.epoch, tuple(losses), tuple(levels))


def cosine_learning_rate(init_lr: float, epoch: int, epochs: int) -> float:
    """SimSiam's `adjust_learning_rate`: init_lr * (1 + cos(pi * epoch / epochs)) / 2, epoch counted from 0."""
    return init_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def _fresh_model(arch: str, dim: int, pred_dim: int, input_size: int, seed: int) -> MicrographSimSiam:
    """A randomly initialised network, its weights drawn from `seed` without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MicrographSimSiam(arch, dim, pred_dim)
    model.input_size = input_size
    return model


def _save_epoch(
    folder: Path, model: MicrographSimSiam, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
    state: _RunState, domain: str, *, best: bool, lowest: bool, loss: float, level: float,
) -> None:
    """model_best and model_lowest_collapse when this epoch set a record (with prismPYP's notes), model_last always.

    model_last goes last: a crash before it leaves the previous epoch to resume from, which redoes this one.
    """
    due = ((BEST_CHECKPOINT, best), (LOWEST_COLLAPSE_CHECKPOINT, lowest), (LAST_CHECKPOINT, True))
    extra = {**state.extra(), "grad_scaler": scaler.state_dict()}
    for name in (name for name, written in due if written):
        save_micrograph_checkpoint(folder / name, model, optimizer, epoch=state.epoch, arch=model.arch,
                                   dim=model.dim, pred_dim=model.pred_dim, domain=domain,
                                   input_size=model.input_size, extra=extra)
    if best:  # prismPYP's notes count epochs from 0
        write_best_epoch(folder, state.epoch - 1, loss, level)
    if lowest:
        write_best_collapse_epoch(folder, state.epoch - 1, loss, level)


def _running_output_std(previous: float | None, spread: float) -> float:
    """prismPYP's moving average (weight 0.9) of the output std, started at the first epoch's value.

    prismPYP starts it at 0, so its first epochs read as collapsed whatever the network does.
    """
    return spread if previous is None else EMA_WEIGHT * previous + (1 - EMA_WEIGHT) * spread


@dataclass(frozen=True)
class _EpochData:
    """What an epoch needs to cut its batches and draw their views."""

    images: np.ndarray
    domain: str
    input_size: int
    batch_size: int
    seed: int
    workers: int

    def batches(self, epoch: int) -> list[np.ndarray]:
        return shuffled_batches(len(self.images), self.batch_size, seeded_generator(self.seed, epoch))

    def views(self, epoch: int, index: int, rows: np.ndarray, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Two random views of each image of the batch, drawn on `device`; rows are read in file order."""
        generator = seeded_generator(self.seed, epoch, index + 1)
        batch = torch.from_numpy(self.images[np.sort(rows)]).to(device, non_blocking=True)
        views = [draw_micrograph_view(batch, self.domain, input_size=self.input_size, generator=generator)
                 for _ in range(2)]
        return tuple(view.contiguous(memory_format=torch.channels_last) for view in views)


def _train_one_epoch(
    model: MicrographSimSiam, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, data: _EpochData,
    epoch: int, device: torch.device, amp: bool,
) -> tuple[float, float]:
    """One pass over the batches; returns the mean loss and the mean output std of the first views' predictions."""
    model.train()
    batches = data.batches(epoch)
    total_loss = total_spread = 0.0
    prepare = lambda index: data.views(epoch, index, batches[index], device)
    for first, second in prefetched(prepare, len(batches), data.workers):
        with mixed_precision(device, amp):
            first_out, second_out = model(first), model(second)
            loss = simsiam_loss(first_out, second_out)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total_loss += loss.item()
        total_spread += output_spread(first_out[1].float())
    return total_loss / len(batches), total_spread / len(batches)


def _parameter_groups(model: MicrographSimSiam, fix_pred_lr: bool) -> list[dict[str, Any]]:
    """prismPYP's four groups; `fix_lr` marks the predictor's when its rate is held (`fix_pred_lr`)."""
    parts = {"backbone": model.backbone, "reducer": model.reducer, "projector": model.projector,
             "predictor": model.predictor}
    return [{"params": list(part.parameters()), "fix_lr": fix_pred_lr and name == "predictor"}
            for name, part in parts.items()]


def _restore(
    path: Path, arch: str, dim: int, pred_dim: int, domain: str, input_size: int
) -> tuple[MicrographSimSiam, _RunState, dict[str, Any]]:
    """The model, run state and file contents of model_last.pth.tar, refused if it was trained differently."""
    if not path.is_file():
        raise ParameterError(f"nothing to resume: {path} does not exist; start without --resume")
    model, info, contents = read_micrograph_checkpoint(path, arch=arch, dim=dim)
    asked, found = (pred_dim, domain, input_size), (info.pred_dim, info.domain, info.input_size)
    if info.written_by != WRITTEN_BY_US or asked != found or "optimizer" not in contents:
        raise ParameterError(
            f"cannot resume from {path}: it holds {info.written_by}'s {info.arch} (pred_dim {info.pred_dim}, "
            f"domain {info.domain}, input size {info.input_size}); asked for {arch} ({pred_dim}, {domain}, "
            f"{input_size}); train into another folder or start without --resume"
        )
    ema = contents.get("output_std_ema")
    state = _RunState(info.epoch, float(contents.get("best_loss", math.inf)),
                      float(contents.get("lowest_collapse", math.inf)), None if ema is None else float(ema))
    return model, state, contents


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 3:
        raise ParameterError(f"training views must be a uint8 (N, S, S) array; got {_describe(images)}")
    if images.shape[1] != images.shape[2]:
        raise ParameterError(f"training views must be square; got {images.shape[1]} x {images.shape[2]} px")
    if len(images) < 2:
        raise ParameterError(f"training needs at least 2 views (batch norm needs two samples); got {len(images)}")


def _check_settings(
    domain: str, arch: str, dim: int, pred_dim: int, epochs: int, batch_size: int, lr: float, momentum: float,
    weight_decay: float, input_size: int, workers: int, seed: int,
) -> None:
    check_training(epochs, batch_size, lr, seed, workers, [
        (domain in DOMAINS, f"domain must be one of {', '.join(DOMAINS)}; got {domain!r}"),
        (arch in MICROGRAPH_ARCHES, f"unknown architecture {arch!r}; use one of {', '.join(MICROGRAPH_ARCHES)}"),
        (dim >= 1 and pred_dim >= 1, f"dim and pred_dim must be positive; got {dim} and {pred_dim}"),
        (0 <= momentum < 1, f"momentum must be in [0, 1); got {momentum}"),
        (weight_decay >= 0, f"weight decay must be 0 or more; got {weight_decay}"),
        (input_size >= 32, f"input size must be at least 32 px (the ResNet shrinks it 32 times); got {input_size}"),
    ])


def _describe(images: Any) -> str:
    if isinstance(images, np.ndarray):
        return f"{images.dtype} array of shape {images.shape}"
    return type(images).__name__
