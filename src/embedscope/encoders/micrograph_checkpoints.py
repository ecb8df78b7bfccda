"""Micrograph encoder checkpoints in prismPYP's layout, and its embeddings.pth.

prismPYP saves `{'epoch', 'arch', 'state_dict', 'optimizer'}` of its DistributedDataParallel model, so every
weight name starts with `module.`; we write the same, plus `dim`, `pred_dim`, `domain`, `input_size`, the best
values so far and `written_by`. We read ours, prismPYP's, and bare state_dicts, telling the network from the keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedscope.encoders.checkpoints import WRITTEN_BY_US, load_torch_checkpoint, on_cpu
from embedscope.encoders.devices import resolve_device
from embedscope.encoders.micrograph_augment import DOMAINS, INPUT_SIZE
from embedscope.encoders.micrograph_simsiam import EMBEDDING_DIM, MICROGRAPH_ARCHES, PREDICTOR_DIM, MicrographSimSiam
from embedscope.encoders.torch_resnet import RESNET_LAYOUTS
from embedscope.errors import InputError, ParameterError
from embedscope.formats.atomic_files import atomic_output

DDP_PREFIX = "module."
WRITTEN_BY_PRISMPYP = "prismPYP"
EXPECTED_FILE = "a model_*.pth.tar written by prismPYP's or embedscope's micrograph training"
SHOWN_KEYS = 3  # differing keys named in an error message
_BLOCK_KEY = re.compile(r"backbone\.([4-7])\.(\d+)\.conv1\.weight")


@dataclass(frozen=True)
class MicrographEncoderInfo:
    """What a checkpoint says about its network and how it was trained."""

    arch: str
    dim: int
    pred_dim: int
    epoch: int
    domain: str | None  # "real" or "fft"; unknown in prismPYP's files
    input_size: int  # side of the network's input; prismPYP always uses 224
    written_by: str


def save_micrograph_checkpoint(
    path: Path, model: MicrographSimSiam, optimizer: torch.optim.Optimizer, *, epoch: int, arch: str, dim: int,
    pred_dim: int, domain: str, input_size: int, extra: Mapping[str, Any] | None = None,
) -> None:
    """Write prismPYP's checkpoint layout plus our keys, atomically; tensors are stored on the CPU.

    `extra` adds training state (best loss, lowest collapse level ...) that a resumed run needs.
    """
    contents = {
        **(extra or {}),
        "epoch": epoch,
        "arch": arch,
        "state_dict": {DDP_PREFIX + name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "optimizer": on_cpu(optimizer.state_dict()),
        "dim": dim,
        "pred_dim": pred_dim,
        "domain": domain,
        "input_size": input_size,
        "written_by": WRITTEN_BY_US,
    }
    with atomic_output(Path(path)) as temporary:
        torch.save(contents, temporary)


def load_micrograph_encoder(
    path: Path, device: str = "auto", *, arch: str | None = None, dim: int | None = None
) -> tuple[MicrographSimSiam, MicrographEncoderInfo]:
    """The network of a checkpoint on `device`, in eval mode, and what the checkpoint says about it.

    `arch` and `dim`, when given, must fit the weights; otherwise they are read from the file or its keys.
    """
    model, info, _ = read_micrograph_checkpoint(path, arch=arch, dim=dim)
    return model.to(resolve_device(device)).eval(), info


def read_micrograph_checkpoint(
    path: Path, *, arch: str | None = None, dim: int | None = None
) -> tuple[MicrographSimSiam, MicrographEncoderInfo, dict[str, Any]]:
    """The network with the file's weights (on the CPU), its description, and the file's whole contents.

    The contents carry the optimiser state and the extra values a resumed training run continues from.
    """
    path = Path(path)
    contents = load_torch_checkpoint(path, EXPECTED_FILE)
    weights = _weights(path, contents)
    ours = contents.get("written_by") == WRITTEN_BY_US
    found_arch, found_dim, found_pred_dim = _network_from_keys(weights)
    if arch is not None and arch not in MICROGRAPH_ARCHES:
        raise ParameterError(f"unknown architecture {arch!r}; use one of {', '.join(MICROGRAPH_ARCHES)}")
    arch = arch or found_arch
    if arch is None:
        known = ", ".join(MICROGRAPH_ARCHES)
        raise InputError(f"{path}: cannot tell the ResNet from the weights; pass --arch (one of {known})")
    model = MicrographSimSiam(arch, dim or found_dim or EMBEDDING_DIM, found_pred_dim or PREDICTOR_DIM)
    _check_fit(path, weights, model, found_arch, found_dim)
    model.load_state_dict(weights)
    model.input_size = _integer(contents, "input_size", INPUT_SIZE) if ours else INPUT_SIZE
    info = MicrographEncoderInfo(
        arch, model.dim, model.pred_dim, _integer(contents, "epoch", 0), _domain(contents) if ours else None,
        model.input_size, WRITTEN_BY_US if ours else WRITTEN_BY_PRISMPYP,
    )
    return model, info, contents


def save_embeddings_pth(path: Path, vectors: np.ndarray) -> None:
    """prismPYP's inference/embeddings.pth: `torch.save` of one (N, dim) float32 tensor, kept on the CPU.

    prismPYP saves it from the GPU, which makes it unloadable without one; ours loads anywhere.
    """
    if vectors.ndim != 2:
        raise ParameterError(f"embeddings must be an (N, dim) array; got shape {vectors.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    with atomic_output(Path(path)) as temporary:
        torch.save(tensor, temporary)


def _weights(path: Path, contents: Any) -> dict[str, torch.Tensor]:
    """The state_dict of a checkpoint dict, or the file itself when it is a bare state_dict; `module.` removed."""
    state = contents.get("state_dict", contents) if isinstance(contents, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: not a SimSiam checkpoint (no state_dict of tensors); give {EXPECTED_FILE}")
    return {str(name).removeprefix(DDP_PREFIX): tensor for name, tensor in state.items()}


def _network_from_keys(weights: Mapping[str, torch.Tensor]) -> tuple[str | None, int | None, int | None]:
    """(arch, dim, pred_dim) as the weights show them: Bottleneck conv3 means resnet50, block counts 18 vs 34."""
    blocks = [0, 0, 0, 0]
    for name in weights:
        match = _BLOCK_KEY.fullmatch(name)
        if match:
            stage, block = int(match[1]) - 4, int(match[2])
            blocks[stage] = max(blocks[stage], block + 1)
    bottleneck = "backbone.4.0.conv3.weight" in weights
    arches = [name for name, layout in RESNET_LAYOUTS.items() if layout == (bottleneck, tuple(blocks))]
    dim = _rows(weights, "reducer.6.weight")
    return (arches[0] if arches else None), dim, _rows(weights, "predictor.0.weight")


def _check_fit(
    path: Path, weights: Mapping[str, torch.Tensor], model: MicrographSimSiam, found_arch: str | None,
    found_dim: int | None,
) -> None:
    """Refuse weights that do not fit `model`, naming the first differing keys and the likely right flags."""
    expected = model.state_dict()
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    misshapen = [name for name in expected if name in weights and weights[name].shape != expected[name].shape]
    count = len(missing) + len(unexpected) + len(misshapen)
    if not count:
        return
    problems = [f"{label} {_some(names)}" for label, names in (("missing", missing), ("unexpected", unexpected))
                if names]
    if misshapen:
        name = misshapen[0]
        problems.append(f"{name} is {tuple(weights[name].shape)}, not {tuple(expected[name].shape)}")
    if found_arch is not None and found_arch != model.arch:
        advice = f"it looks like a {found_arch} checkpoint, pass --arch {found_arch}"
    elif found_dim is not None and found_dim != model.dim:
        advice = f"it was trained with dim {found_dim}, pass --dim {found_dim}"
    else:
        advice = f"give {EXPECTED_FILE}"
    raise InputError(f"{path}: weights do not fit {model.arch} (dim {model.dim}): {'; '.join(problems)}; "
                     f"{count} keys differ: {advice}")


def _some(names: list[str]) -> str:
    return " ".join(names[:SHOWN_KEYS]) + (" …" if len(names) > SHOWN_KEYS else "")


def _rows(weights: Mapping[str, torch.Tensor], name: str) -> int | None:
    tensor = weights.get(name)
    return int(tensor.shape[0]) if tensor is not None and tensor.ndim == 2 else None


def _integer(contents: dict[str, Any], key: str, default: int) -> int:
    value = contents.get(key, default)
    return value if isinstance(value, int) else default


def _domain(contents: dict[str, Any]) -> str | None:
    domain = contents.get("domain")
    return domain if domain in DOMAINS else None
