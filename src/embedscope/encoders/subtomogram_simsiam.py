"""CryoSiam's subtomogram SimSiam: a MONAI ResNet whose `fc` is a 3-layer projector, and a 2-layer predictor.

Module names and shapes are CryoSiam's (`encoder.conv1.weight`, `encoder.fc.0.weight`, `predictor.0.weight` ...),
so its state_dicts load as they are; `NetworkSettings` is the `parameters.network` section of its configs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from embedscope.errors import ParameterError

BLOCK_TYPES = ("basic", "bottleneck")
SPATIAL_DIMS = (2, 3)
STAGES = 4  # MONAI's ResNet has four stages: one block count and one filter count each


@dataclass(frozen=True)
class NetworkSettings:
    """The network of a CryoSiam SimSiam, with CryoSiam's defaults; checked when made.

    dim is the embedding width (projector output), pred_dim the predictor's hidden width.
    """

    block_type: str = "bottleneck"
    in_channels: int = 1
    spatial_dims: int = 3
    num_layers: tuple[int, ...] = (1, 1, 1, 1)
    num_filters: tuple[int, ...] = (64, 128, 256, 512)
    no_max_pool: bool = True
    dim: int = 2048
    pred_dim: int = 512

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def from_config(cls, network: Mapping[str, Any]) -> NetworkSettings:
        """Settings from CryoSiam's `parameters.network` mapping; missing keys take CryoSiam's defaults.

        A misspelt key is refused naming the nearest valid one, so a typo never silently falls back to a default.
        """
        if not isinstance(network, Mapping):
            raise ParameterError(f"the network settings must be a mapping of names to values; got {network!r}")
        known = [field.name for field in fields(cls)]
        for key in network:
            if key not in known:
                nearest = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean {nearest[0]!r}?" if nearest else f"valid keys: {', '.join(known)}"
                raise ParameterError(f"unknown network setting {key!r}: {hint}")
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in network.items()}
        return cls(**values)

    def as_config(self) -> dict[str, Any]:
        """CryoSiam's `parameters.network` mapping with every key, lists for the per-stage values (as YAML has)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


class SubtomogramSimSiam(nn.Module):
    """CryoSiam's SimSiam over (n, in_channels, *spatial) volumes: `encoder` (ResNet + projector) and `predictor`.

    `embed` gives what CryoSiam's prediction keeps: the projector output, or the normalised prediction (contrastive).
    """

    def __init__(self, settings: NetworkSettings | None = None) -> None:
        from monai.networks.nets import ResNet  # here, not at the top: importing MONAI's networks takes seconds

        super().__init__()
        self.settings = settings = settings or NetworkSettings()
        self.encoder = ResNet(
            settings.block_type, list(settings.num_layers), list(settings.num_filters),
            n_input_channels=settings.in_channels, no_max_pool=settings.no_max_pool, num_classes=settings.dim,
            spatial_dims=settings.spatial_dims, act=("relu", {"inplace": False}),
        )
        output = self.encoder.fc
        width = output.weight.shape[1]
        self.encoder.fc = nn.Sequential(
            nn.Linear(width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Linear(width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(),
            output, nn.BatchNorm1d(settings.dim, affine=False),
        )
        output.bias.requires_grad = False  # as CryoSiam: the bias is followed by a batch norm
        self.predictor = nn.Sequential(
            nn.Linear(settings.dim, settings.pred_dim, bias=False), nn.BatchNorm1d(settings.pred_dim), nn.ReLU(),
            nn.Linear(settings.pred_dim, settings.dim),
        )

    @property
    def memory_format(self) -> torch.memory_format:
        """Channels last, the layout in which this network's convolutions run fastest (a third faster on CPUs)."""
        return torch.channels_last_3d if self.settings.spatial_dims == 3 else torch.channels_last

    def embed(self, volumes: torch.Tensor, contrastive: bool) -> torch.Tensor:
        """(n, dim) embeddings: the unit-length prediction when `contrastive`, else the projector output z."""
        projection = self.encoder(volumes)
        return F.normalize(self.predictor(projection), dim=1) if contrastive else projection

    def forward(
        self, first: torch.Tensor, second: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """p1, p2, z1, z2 of two views, the projections detached (SimSiam's stop-gradient), as CryoSiam returns."""
        z1, z2 = self.encoder(first), self.encoder(second)
        return self.predictor(z1), self.predictor(z2), z1.detach(), z2.detach()


def _check(settings: NetworkSettings) -> None:
    """Refuse settings MONAI cannot build, naming the setting and what it accepts."""
    for name in ("in_channels", "dim", "pred_dim"):
        if not _is_count(getattr(settings, name)):
            raise ParameterError(f"network setting {name} must be a positive integer; got {getattr(settings, name)!r}")
    for name in ("num_layers", "num_filters"):
        value = getattr(settings, name)
        if not (isinstance(value, tuple) and len(value) == STAGES and all(_is_count(item) for item in value)):
            raise ParameterError(f"network setting {name} must be {STAGES} positive integers; got {value!r}")
    if settings.block_type not in BLOCK_TYPES:
        raise ParameterError(f"network setting block_type must be one of {', '.join(BLOCK_TYPES)}; "
                             f"got {settings.block_type!r}")
    if settings.spatial_dims not in SPATIAL_DIMS or isinstance(settings.spatial_dims, bool):
        raise ParameterError(f"network setting spatial_dims must be 2 or 3; got {settings.spatial_dims!r}")
    if not isinstance(settings.no_max_pool, bool):
        raise ParameterError(f"network setting no_max_pool must be true or false; got {settings.no_max_pool!r}")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
