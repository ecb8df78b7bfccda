"""CryoSiam's Lightning checkpoints (`last.ckpt`): read its networks, and write ours in the shape its loader reads.

CryoSiam rebuilds the network from `hyper_parameters['config' or 'backbone_config']['parameters']['network']` and
loads `state_dict` after stripping `_model.`; we read that, other modules' `model.`/`backbone.` prefixes, and
Lightning's pickled AttributeDicts, without ever running a pickled class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from embedscope.encoders.checkpoints import on_cpu
from embedscope.encoders.subtomogram_simsiam import NetworkSettings, SubtomogramSimSiam
from embedscope.errors import InputError, ParameterError
from embedscope.formats.atomic_files import atomic_output

EXPECTED_FILE = "a CryoSiam SimSiam checkpoint (model/last.ckpt of its training or ours)"
WEIGHT_PREFIXES = ("_model.", "model.", "backbone.")  # CryoSiam's module attribute, then other Lightning layouts
CONFIG_SECTIONS = ("config", "backbone_config")
LIGHTNING_VERSION = "2.4.0"  # written as `pytorch-lightning_version`; our files follow Lightning 2.x's layout
# Lightning's dict subclasses that hyper_parameters may hold; read as plain dicts, nothing of theirs is run.
DICT_CLASSES = (
    "lightning.fabric.utilities.data.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning.pytorch.utilities.parsing.AttributeDict",
)
FIRST_KEY = "encoder.conv1.weight"  # every CryoSiam network has it; tells which prefix the weights carry


def load_cryosiam_model(
    path: Path, contrastive: bool, network: Mapping[str, Any] | None = None
) -> tuple[SubtomogramSimSiam, NetworkSettings]:
    """The checkpoint's network with its weights, on the CPU in eval mode, and its settings.

    `contrastive` picks the config section CryoSiam reads ('backbone_config', else 'config'); `network` (a
    prediction config's `parameters.network`) must agree with the checkpoint on every key it gives.
    """
    model, settings, _ = read_cryosiam_checkpoint(path, contrastive, network)
    return model.eval(), settings


def read_cryosiam_checkpoint(
    path: Path, contrastive: bool = False, network: Mapping[str, Any] | None = None
) -> tuple[SubtomogramSimSiam, NetworkSettings, dict[str, Any]]:
    """The network with the file's weights, its settings, and the whole file (optimiser state, our run state)."""
    path = Path(path)
    contents = _load(path)
    if not isinstance(contents, dict) or not isinstance(contents.get("state_dict"), Mapping):
        raise InputError(f"{path}: not a Lightning checkpoint (no 'state_dict'); give {EXPECTED_FILE}")
    asked = None if network is None else NetworkSettings.from_config(network)
    settings = _settings(path, contents, contrastive, network)
    if asked is not None and settings is not None:
        _check_agreement(path, network, asked, settings)
    settings = settings or asked
    if settings is None:
        raise InputError(f"{path}: no 'hyper_parameters' with the network settings; give {EXPECTED_FILE}, or "
                         "give the network section of the training config")
    model = SubtomogramSimSiam(settings)
    model.load_state_dict(_network_weights(path, contents["state_dict"], model))
    return model, settings, contents


def save_cryosiam_checkpoint(
    path: Path, model: SubtomogramSimSiam, settings: NetworkSettings, *, epoch: int, global_step: int,
    optimizer_state: Mapping[str, Any], extra: Mapping[str, Any],
) -> None:
    """Write a Lightning-shaped checkpoint CryoSiam's loader reads, atomically; tensors are stored on the CPU.

    `epoch` and `global_step` are written as Lightning counts them; `extra` (our run state) goes under 'embedscope'.
    """
    config = {"parameters": {"network": settings.as_config()}}
    contents = {
        "epoch": epoch,
        "global_step": global_step,
        "pytorch-lightning_version": LIGHTNING_VERSION,
        "state_dict": {"_model." + name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "hyper_parameters": {"config": config, "backbone_config": config},
        "optimizer_states": [on_cpu(dict(optimizer_state))],
        "lr_schedulers": [],
        "embedscope": on_cpu(dict(extra)),
    }
    with atomic_output(Path(path)) as temporary:
        torch.save(contents, temporary)


def _load(path: Path) -> Any:
    """torch.load of tensors and plain values, Lightning's AttributeDicts read as dicts; anything else refused."""
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file; give the path of {EXPECTED_FILE}")
    try:
        with torch.serialization.safe_globals([(dict, name) for name in DICT_CLASSES]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load reports damage and refused classes with many exception types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: not a readable PyTorch checkpoint ({reason[:200]}); give {EXPECTED_FILE}") from error


def _settings(
    path: Path, contents: dict[str, Any], contrastive: bool, network: Mapping[str, Any] | None
) -> NetworkSettings | None:
    """The network section CryoSiam would read, falling back to the other section when one is missing.

    Keys of the section that are not network settings are ignored, as CryoSiam's loader ignores them.
    """
    hyper = contents.get("hyper_parameters")
    if not isinstance(hyper, Mapping):
        return None
    order = ("backbone_config", "config") if contrastive else CONFIG_SECTIONS
    for section in order:
        found = _network_section(hyper.get(section))
        if found is not None:
            known = {field.name for field in fields(NetworkSettings)}
            try:
                return NetworkSettings.from_config({k: v for k, v in found.items() if k in known})
            except ParameterError as error:
                raise InputError(f"{path}: its {section} holds invalid network settings ({error})") from error
    if network is not None:
        return None
    raise InputError(f"{path}: hyper_parameters hold neither 'config' nor 'backbone_config' with "
                     "parameters.network; give the network section of the training config")


def _network_section(config: Any) -> Mapping[str, Any] | None:
    parameters = config.get("parameters") if isinstance(config, Mapping) else None
    network = parameters.get("network") if isinstance(parameters, Mapping) else None
    return network if isinstance(network, Mapping) else None


def _check_agreement(
    path: Path, network: Mapping[str, Any], asked: NetworkSettings, found: NetworkSettings
) -> None:
    """Every key the config gives must have the checkpoint's value; the first that differs is named."""
    for key in network:
        if getattr(asked, key) != getattr(found, key):
            raise ParameterError(
                f"{path}: the config's network {key} is {_shown(getattr(asked, key))} but the checkpoint was "
                f"trained with {_shown(getattr(found, key))}; fix the config or give the matching checkpoint"
            )


def _network_weights(
    path: Path, state: Mapping[str, Any], model: SubtomogramSimSiam
) -> dict[str, torch.Tensor]:
    """The network's weights without their Lightning prefix; keys outside it belong to other modules (a loss ...).

    The weights must fit `model` exactly: the first missing, unexpected or misshapen key is named.
    """
    prefix = next((p for p in (*WEIGHT_PREFIXES, "") if p + FIRST_KEY in state), None)
    if prefix is None:
        raise InputError(f"{path}: no {FIRST_KEY} under any of the prefixes {', '.join(WEIGHT_PREFIXES)} (or none); "
                         f"give {EXPECTED_FILE}")
    weights = {str(key)[len(prefix):]: value for key, value in state.items() if str(key).startswith(prefix)}
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name not in weights:
            raise InputError(f"{path}: the weights lack {prefix}{name}, which the configured network has; "
                             "give the checkpoint this config was trained with")
        value = weights[name]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise InputError(f"{path}: {prefix}{name} is {shape} in the checkpoint but {tuple(tensor.shape)} in the "
                             "configured network; the network settings do not match these weights")
    unexpected = [name for name in weights if name not in expected]
    if unexpected:
        raise InputError(f"{path}: {prefix}{unexpected[0]} is not part of the configured network "
                         f"({len(unexpected)} such keys); the network settings do not match these weights")
    return weights


def _shown(value: Any) -> str:
    return str(list(value)) if isinstance(value, tuple) else repr(value)
