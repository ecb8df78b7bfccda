"""MiLoPYP's 2D ResNet-18 trunk: a 3x3 stem without max-pool and the first three residual stages.

Small cryo-ET patches (about 36 px) keep their full resolution through the stem; the module names
match MiLoPYP's (`conv1`, `bn1`, `layer1.0.conv1` ...) so its checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

BLOCKS_PER_STAGE = (2, 2, 2)  # ResNet-18's first three stages; MiLoPYP drops the fourth


def _conv3x3(inputs: int, outputs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projected) shortcut."""

    def __init__(self, inputs: int, outputs: int, stride: int, shortcut: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inputs, outputs, stride)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(outputs, outputs)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNetTrunk(nn.Module):
    """Stem and stages 1-3 of a ResNet-18 over one-channel images, pooled to `4 * width` features.

    `width` is the stem's channel count (64 in MiLoPYP); stages have width, 2x and 4x channels.
    `shortcut_norm` puts batch norm after the 1x1 shortcut convolution: MiLoPYP's 2d3d network
    has it, its 2d network does not.
    """

    def __init__(self, width: int = 64, shortcut_norm: bool = True) -> None:
        super().__init__()
        self.conv1 = _conv3x3(1, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        channels = width
        for stage, blocks in enumerate(BLOCKS_PER_STAGE):
            outputs, stride = width * 2**stage, 1 if stage == 0 else 2
            layer = []
            for block in range(blocks):
                shortcut = None
                if block == 0 and (stride != 1 or channels != outputs):
                    shortcut = _shortcut(channels, outputs, stride, shortcut_norm)
                layer.append(BasicBlock(channels, outputs, stride if block == 0 else 1, shortcut))
                channels = outputs
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.feature_count = channels
        initialise_resnet(self)

    def pooled_features(self, images: torch.Tensor) -> torch.Tensor:
        """(n, 1, h, w) images -> (n, 4 * width) globally averaged features of stage 3."""
        x = self.relu(self.bn1(self.conv1(images)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(self.avgpool(x), 1)


def _shortcut(inputs: int, outputs: int, stride: int, norm: bool) -> nn.Sequential:
    convolution = nn.Conv2d(inputs, outputs, kernel_size=1, stride=stride, bias=False)
    return nn.Sequential(convolution, nn.BatchNorm2d(outputs)) if norm else nn.Sequential(convolution)


def initialise_resnet(trunk: nn.Module) -> None:
    """He initialisation for convolutions, unit scale for batch norm (torchvision's ResNet choice).

    MiLoPYP starts stages 1-3 from ImageNet weights downloaded at run time; offline, training
    starts from this random initialisation instead.
    """
    for module in trunk.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
