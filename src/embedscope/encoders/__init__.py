"""Encoders: arrays -> vectors. MiLoPYP's SimSiam networks (2D and 2d3d ResNet-18) and prismPYP's micrograph
SimSiam (torchvision-layout ResNet-18/34/50), their augmentations, resumable training, checkpoints in each
tool's layout, and batched inference on the CPU or a GPU.

The modules import torch; nothing outside `encoders/` and the embedding steps needs to.
"""

from embedscope.encoders.checkpoints import EncoderInfo, describe_checkpoint, read_checkpoint, save_checkpoint
from embedscope.encoders.cryosiam_checkpoints import load_cryosiam_model, save_cryosiam_checkpoint
from embedscope.encoders.inference import embed_patches, load_encoder
from embedscope.encoders.micrograph_augment import DOMAINS, draw_micrograph_view, prepare_micrographs
from embedscope.encoders.micrograph_checkpoints import (
    MicrographEncoderInfo,
    load_micrograph_encoder,
    save_embeddings_pth,
    save_micrograph_checkpoint,
)
from embedscope.encoders.micrograph_inference import embed_micrograph_batches
from embedscope.encoders.micrograph_simsiam import MICROGRAPH_ARCHES, MicrographSimSiam
from embedscope.encoders.micrograph_training import MicrographTrainResult, train_micrographs
from embedscope.encoders.simsiam import SimSiam, make_model
from embedscope.encoders.subtomogram_augment import draw_subtomogram_views
from embedscope.encoders.subtomogram_inference import embed_subtomogram_batches
from embedscope.encoders.subtomogram_simsiam import NetworkSettings, SubtomogramSimSiam
from embedscope.encoders.subtomogram_training import SubtomogramTrainResult, train_subtomograms
from embedscope.encoders.training import TrainResult, train_simsiam

__all__ = [
    "DOMAINS",
    "MICROGRAPH_ARCHES",
    "EncoderInfo",
    "MicrographEncoderInfo",
    "MicrographSimSiam",
    "MicrographTrainResult",
    "NetworkSettings",
    "SimSiam",
    "SubtomogramSimSiam",
    "SubtomogramTrainResult",
    "TrainResult",
    "describe_checkpoint",
    "draw_micrograph_view",
    "draw_subtomogram_views",
    "embed_micrograph_batches",
    "embed_patches",
    "embed_subtomogram_batches",
    "load_cryosiam_model",
    "load_encoder",
    "load_micrograph_encoder",
    "make_model",
    "prepare_micrographs",
    "read_checkpoint",
    "save_checkpoint",
    "save_cryosiam_checkpoint",
    "save_embeddings_pth",
    "save_micrograph_checkpoint",
    "train_micrographs",
    "train_simsiam",
    "train_subtomograms",
]
