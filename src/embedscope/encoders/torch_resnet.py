"""ResNet-18/34/50 with torchvision's module names, shapes and initialisation, without torchvision.

prismPYP builds its backbone from `torchvision.models.resnet*` minus `fc`; with the same names
(`conv1`, `bn1`, `layer1.0.conv1` ... `fc`) its weights load here unchanged, and ours load there.
"""

from __future__ import annotations

import torch
from torch import nn

from embedscope.encoders.resnet import BasicBlock, initialise_resnet
from embedscope.errors import ParameterError

STEM_WIDTH = 64
BOTTLENECK_EXPANSION = 4  # a Bottleneck's output has 4x the channels of its 3x3 convolution
# arch -> (bottleneck blocks?, blocks per stage), as torchvision's resnet18/34/50
RESNET_LAYOUTS: dict[str, tuple[bool, tuple[int, int, int, int]]] = {
    "resnet18": (False, (2, 2, 2, 2)),
    "resnet34": (False, (3, 4, 6, 3)),
    "resnet50": (True, (3, 4, 6, 3)),
}


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, torchvision's "v1.5"), 1x1 expand, plus the shortcut."""

    def __init__(self, inputs: int, width: int, stride: int, shortcut: nn.Module | None) -> None:
        super().__init__()
        outputs = width * BOTTLENECK_EXPANSION
        self.conv1 = nn.Conv2d(inputs, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, outputs, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ImageNet ResNet: 7x7 stride-2 stem, max-pool, four stages, average pool, `fc`.

    Its children, in order, are conv1, bn1, relu, maxpool, layer1-4, avgpool, fc; prismPYP's backbone is
    `nn.Sequential` of all but the last, hence its keys `backbone.0` (conv1) ... `backbone.7` (layer4).
    """

    def __init__(self, arch: str, num_classes: int = 1000, zero_init_residual: bool = True) -> None:
        super().__init__()
        bottleneck, blocks_per_stage = RESNET_LAYOUTS[arch]
        self.conv1 = nn.Conv2d(3, STEM_WIDTH, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_WIDTH)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = STEM_WIDTH
        for stage, blocks in enumerate(blocks_per_stage):
            width, stride = STEM_WIDTH * 2**stage, 1 if stage == 0 else 2
            layer, channels = _stage(channels, width, blocks, stride, bottleneck)
            self.add_module(f"layer{stage + 1}", layer)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        self.feature_count = channels
        initialise_resnet(self)
        if zero_init_residual:  # each block starts as the identity, which helps training from scratch
            for module in self.modules():
                if isinstance(module, Bottleneck):
                    nn.init.zeros_(module.bn3.weight)
                elif isinstance(module, BasicBlock):
                    nn.init.zeros_(module.bn2.weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def make_resnet(arch: str, num_classes: int = 1000, zero_init_residual: bool = True) -> ResNet:
    """torchvision's `resnet18`, `resnet34` or `resnet50(zero_init_residual=...)`, randomly initialised."""
    if arch not in RESNET_LAYOUTS:
        raise ParameterError(f"unknown architecture {arch!r}; use one of {', '.join(RESNET_LAYOUTS)}")
    return ResNet(arch, num_classes, zero_init_residual)


def _stage(inputs: int, width: int, blocks: int, stride: int, bottleneck: bool) -> tuple[nn.Sequential, int]:
    """One `layerN`: its first block changes stride and channels (through a 1x1 `downsample`), the rest keep them."""
    outputs = width * BOTTLENECK_EXPANSION if bottleneck else width
    layer = []
    for block in range(blocks):
        shortcut = None
        if block == 0 and (stride != 1 or inputs != outputs):
            convolution = nn.Conv2d(inputs, outputs, kernel_size=1, stride=stride, bias=False)
            shortcut = nn.Sequential(convolution, nn.BatchNorm2d(outputs))
        kind = Bottleneck if bottleneck else BasicBlock
        layer.append(kind(inputs, width, stride if block == 0 else 1, shortcut))
        inputs = outputs
    return nn.Sequential(*layer), outputs
