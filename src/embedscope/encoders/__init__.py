"""Encoders: arrays -> vectors. MiLoPYP's SimSiam networks (2D and 2d3d ResNet-18), their augmentations,
resumable training, checkpoints in MiLoPYP's layout, and batched inference on the CPU or a GPU.

The modules import torch; nothing outside `encoders/` and the embedding steps needs to.
"""

from embedscope.encoders.checkpoints import EncoderInfo, describe_checkpoint, read_checkpoint, save_checkpoint
from embedscope.encoders.inference import embed_patches, load_encoder
from embedscope.encoders.simsiam import SimSiam, make_model
from embedscope.encoders.training import TrainResult, train_simsiam

__all__ = [
    "EncoderInfo",
    "SimSiam",
    "TrainResult",
    "describe_checkpoint",
    "embed_patches",
    "load_encoder",
    "make_model",
    "read_checkpoint",
    "save_checkpoint",
    "train_simsiam",
]
