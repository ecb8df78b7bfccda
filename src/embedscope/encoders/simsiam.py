"""SimSiam networks of MiLoPYP (`simsiam2d_18`, `simsiam2d3d_18`) and their symmetric loss.

A shared ResNet trunk embeds each input channel, the pooled features are concatenated, and a
linear layer, a 3-layer projector and a 2-layer predictor (all 128-d, MiLoPYP's `head_conv`)
follow; module names and shapes are MiLoPYP's, so its `state_dict`s load as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from embedscope.encoders.patches import PatchStatistics
from embedscope.encoders.resnet import ResNetTrunk
from embedscope.errors import ParameterError

EMBEDDING_DIM = 128

# arch -> (input channels, batch norm on the shortcut); channel order of 2d3d is (tilt, tomogram)
ARCHITECTURES: dict[str, tuple[int, bool]] = {
    "simsiam2d_18": (1, False),
    "simsiam2d3d_18": (2, True),
}


class SimSiam(ResNetTrunk):
    """Encoder (trunk + `fc`), projector `proj` and predictor `pred` over (n, channels, h, w) images.

    Every channel goes through the same trunk (MiLoPYP's 2d3d network stacks the tilt-series and
    tomogram patches in the batch) and their features are joined before `fc`.
    """

    def __init__(self, channels: int, width: int = 64, shortcut_norm: bool = True) -> None:
        super().__init__(width, shortcut_norm)
        self.channels = channels
        self.fc = nn.Linear(channels * self.feature_count, EMBEDDING_DIM)
        self.proj = nn.Sequential(
            *_linear_norm_relu(), *_linear_norm_relu(),
            nn.Linear(EMBEDDING_DIM, EMBEDDING_DIM, bias=False), nn.BatchNorm1d(EMBEDDING_DIM, affine=False),
        )
        self.pred = nn.Sequential(*_linear_norm_relu(), nn.Linear(EMBEDDING_DIM, EMBEDDING_DIM))
        for head in (self.fc, self.proj, self.pred):
            _initialise_head(head)
        # How input patches were normalised in training; not a weight, so not in the state_dict.
        self.patch_statistics: PatchStatistics | None = None

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(n, channels, h, w) -> (n, 128): trunk features of each channel, joined, through `fc`."""
        n, channels = images.shape[:2]
        if channels != self.channels:
            raise ValueError(f"expected {self.channels} input channels, got {channels}")
        stacked = images.transpose(0, 1).reshape(channels * n, 1, *images.shape[2:])
        features = self.pooled_features(stacked).reshape(channels, n, -1)
        return self.fc(features.transpose(0, 1).reshape(n, -1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The projection z and the prediction p of each image."""
        projection = self.proj(self.encode(images))
        return projection, self.pred(projection)


def make_model(arch: str, width: int = 64) -> SimSiam:
    """Build the network MiLoPYP names `arch`, with `width` stem channels (64 in MiLoPYP)."""
    if arch not in ARCHITECTURES:
        raise ParameterError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    if width < 1:
        raise ParameterError(f"width must be a positive channel count; got {width}")
    channels, shortcut_norm = ARCHITECTURES[arch]
    return SimSiam(channels, width, shortcut_norm)


def simsiam_loss(
    first: tuple[torch.Tensor, torch.Tensor], second: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """Symmetric negative cosine similarity, each prediction against the other view's detached projection.

    The stop-gradient on the projections is what keeps SimSiam from collapsing; -1 is the minimum.
    """
    (z1, p1), (z2, p2) = first, second
    return -0.5 * (F.cosine_similarity(p1, z2.detach()).mean() + F.cosine_similarity(p2, z1.detach()).mean())


def output_spread(prediction: torch.Tensor) -> float:
    """Mean per-dimension std of the L2-normalised predictions: near 0 means the embedding collapsed.

    MiLoPYP logs it as `output_std`; an uncollapsed 128-d embedding sits near 1/sqrt(128) = 0.088.
    """
    return F.normalize(prediction.detach(), dim=1).std(dim=0).mean().item()


def _linear_norm_relu() -> list[nn.Module]:
    return [nn.Linear(EMBEDDING_DIM, EMBEDDING_DIM, bias=False), nn.BatchNorm1d(EMBEDDING_DIM), nn.ReLU(inplace=True)]


def _initialise_head(head: nn.Module) -> None:
    """MiLoPYP's `fill_fc_weights`: linear weights drawn with std 0.001, biases set to 0.001."""
    for module in head.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.001)
            if module.bias is not None:
                nn.init.constant_(module.bias, 0.001)
