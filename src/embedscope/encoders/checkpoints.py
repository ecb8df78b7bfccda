"""Checkpoint files in MiLoPYP's layout (`epoch`, `state_dict`, `optimizer`) plus what we need to reuse them.

We add `arch`, `width`, `bbox`, `margin` and the normalisation `mean`/`std`; MiLoPYP's loader ignores
extra keys, and a checkpoint MiLoPYP wrote (without them) is recognised from its weights' shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from embedscope.encoders.patches import PatchStatistics
from embedscope.encoders.simsiam import ARCHITECTURES, SimSiam, make_model
from embedscope.errors import InputError
from embedscope.formats.atomic_files import atomic_output

WRITTEN_BY_MILOPYP = "MiLoPYP"
WRITTEN_BY_US = "embedscope"


@dataclass(frozen=True)
class EncoderInfo:
    """What a checkpoint says about its network and the patches it was trained on."""

    arch: str
    width: int
    epoch: int
    bbox: int | None  # unknown in MiLoPYP's files
    margin: int | None
    statistics: PatchStatistics | None  # unknown in MiLoPYP's files
    written_by: str


def save_checkpoint(
    path: Path, model: SimSiam, optimizer: torch.optim.Optimizer, *, epoch: int, arch: str, width: int,
    bbox: int, margin: int, statistics: PatchStatistics,
) -> None:
    """Write a checkpoint atomically (a temporary file, then a rename); tensors are stored on the CPU."""
    contents = {
        "epoch": epoch,
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "optimizer": on_cpu(optimizer.state_dict()),
        "arch": arch,
        "width": width,
        "bbox": bbox,
        "margin": margin,
        "mean": list(statistics.mean),
        "std": list(statistics.std),
    }
    with atomic_output(path) as temporary:
        torch.save(contents, temporary)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint's dict on the CPU (tensors and plain values only, nothing else is unpickled)."""
    path = Path(path)
    contents = load_torch_checkpoint(path, "a model_*.pth written by training")
    if not isinstance(contents, dict) or not isinstance(contents.get("state_dict"), dict):
        raise InputError(f"{path}: not a SimSiam checkpoint (no 'state_dict' entry); give a model_*.pth from training")
    return contents


def load_torch_checkpoint(path: Path, expected: str) -> Any:
    """torch.load on the CPU of tensors and plain values only; a missing or damaged file is a one-line InputError.

    `expected` says in the message which file to give instead, e.g. "a model_*.pth written by training".
    """
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file; give the path of {expected}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load reports damage with many exception types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: not a readable PyTorch checkpoint ({reason[:200]})") from error


def describe_checkpoint(path: Path, contents: dict[str, Any]) -> EncoderInfo:
    """The network and training facts of a checkpoint, from our keys or, for MiLoPYP's, from the weight shapes."""
    if "arch" in contents:
        try:
            return _our_description(contents)
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"{path}: damaged checkpoint description ({type(error).__name__}: {error})") from error
    weights = checkpoint_weights(contents)
    stem, joined = _shape(weights.get("conv1.weight")), _shape(weights.get("fc.weight"))
    if stem is None or joined is None or len(stem) != 4 or len(joined) != 2:
        raise InputError(f"{path}: the weights are not those of a MiLoPYP SimSiam network (no conv1/fc layers)")
    width, features = stem[0], joined[1]
    arches = {ARCHITECTURES[name][0] * 4 * width: name for name in ARCHITECTURES}
    if features not in arches:
        raise InputError(f"{path}: fc takes {features} features, which fits no known SimSiam architecture")
    return EncoderInfo(arches[features], width, int(contents.get("epoch", 0)), None, None, None, WRITTEN_BY_MILOPYP)


def _our_description(contents: dict[str, Any]) -> EncoderInfo:
    arch = str(contents["arch"])
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}")
    statistics = None
    if "mean" in contents:
        statistics = PatchStatistics(tuple(map(float, contents["mean"])), tuple(map(float, contents["std"])))
    bbox, margin, width = contents.get("bbox"), contents.get("margin"), int(contents.get("width", 64))
    if width < 1:
        raise ValueError(f"width {width} is not a channel count")
    return EncoderInfo(
        arch, width, int(contents.get("epoch", 0)),
        None if bbox is None else int(bbox), None if margin is None else int(margin), statistics, WRITTEN_BY_US,
    )


def checkpoint_weights(contents: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The state_dict, without the `module.` prefix that DataParallel-wrapped models write."""
    return {name.removeprefix("module."): tensor for name, tensor in contents["state_dict"].items()}


def model_from_checkpoint(path: Path, contents: dict[str, Any], info: EncoderInfo) -> SimSiam:
    """Build the network the checkpoint describes and load its weights, naming the first misfit if any."""
    model = make_model(info.arch, info.width)
    weights, expected = checkpoint_weights(contents), model.state_dict()
    missing = [name for name in expected if name not in weights]
    extra = [name for name in weights if name not in expected]
    misfit = [name for name in expected if name in weights and _shape(weights[name]) != expected[name].shape]
    if missing or extra or misfit:
        problem = (
            f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
            else f"{misfit[0]} has shape {_shape(weights[misfit[0]])}, not {tuple(expected[misfit[0]].shape)}"
        )
        count = len(missing) + len(extra) + len(misfit)
        raise InputError(f"{path}: weights do not fit {info.arch} (width {info.width}): {problem} ({count} problems)")
    model.load_state_dict(weights)
    model.patch_statistics = info.statistics
    return model


def _shape(value: Any) -> tuple[int, ...] | None:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def on_cpu(value: Any) -> Any:
    """A copy of `value` (an optimiser state, say) with every tensor in it moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: on_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(on_cpu(item) for item in value)
    return value
