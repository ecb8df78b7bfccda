"""prismPYP's SimSiam network for micrographs and their power spectra: a torchvision ResNet, a reducer, two heads.

The reducer's output (`dim`, 512 by default) is the embedding prismPYP saves as embeddings.pth; the projector
and predictor only serve training. Module names are prismPYP's, so its state_dicts load here and ours there.
"""

from __future__ import annotations

import torch
from torch import nn

from embedscope.encoders.micrograph_augment import INPUT_SIZE
from embedscope.encoders.torch_resnet import RESNET_LAYOUTS, make_resnet
from embedscope.errors import ParameterError

MICROGRAPH_ARCHES = tuple(RESNET_LAYOUTS)  # ("resnet18", "resnet34", "resnet50")
REDUCER_WIDTH = 1024  # the reducer's hidden layer, as prismPYP
EMBEDDING_DIM = 512  # the 512-d embeddings of prismPYP's runs (its parser's defaults are --dim 2048 --pred-dim 512)
PREDICTOR_DIM = 256


class MicrographSimSiam(nn.Module):
    """`backbone` (ResNet without fc), `reducer` (MLP to `dim`), `projector` (3 layers) and `predictor` (2 layers).

    prismPYP's reducer expects 2048 backbone features, which only resnet50 gives; ours takes the backbone's
    own count (512 for resnet18/34), so those architectures work too.
    """

    def __init__(self, arch: str = "resnet50", dim: int = EMBEDDING_DIM, pred_dim: int = PREDICTOR_DIM) -> None:
        super().__init__()
        if arch not in MICROGRAPH_ARCHES:
            raise ParameterError(f"unknown architecture {arch!r}; use one of {', '.join(MICROGRAPH_ARCHES)}")
        if dim < 1 or pred_dim < 1:
            raise ParameterError(f"dim and pred_dim must be positive; got {dim} and {pred_dim}")
        self.arch, self.dim, self.pred_dim = arch, dim, pred_dim
        resnet = make_resnet(arch, zero_init_residual=True)
        self.backbone = nn.Sequential(*list(resnet.children())[:-1])
        self.reducer = nn.Sequential(
            nn.Linear(resnet.feature_count, REDUCER_WIDTH), nn.BatchNorm1d(REDUCER_WIDTH), nn.ReLU(inplace=True),
            nn.Linear(REDUCER_WIDTH, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, dim), nn.BatchNorm1d(dim),
        )
        self.projector = nn.Sequential(
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim, affine=False),
        )
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim), nn.ReLU(inplace=True),
            nn.Linear(pred_dim, dim),
        )
        # The side of the images it was trained on; not a weight, so not in the state_dict.
        self.input_size = INPUT_SIZE

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(n, 3, h, w) images -> (n, dim) reducer outputs, the vectors prismPYP's eval2d keeps."""
        return self.reducer(torch.flatten(self.backbone(images), 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The projection z and the prediction p of each image, for SimSiam's loss."""
        projection = self.projector(self.embed(images))
        return projection, self.predictor(projection)
