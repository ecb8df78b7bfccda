"""Apply a trained SimSiam encoder to patches: load a checkpoint (ours or MiLoPYP's), embed centre crops.

Like MiLoPYP's simsiam_test_hm scripts, the network runs in eval mode on the centre bbox crop of
each patch and returns both the projection (`proj`) and the prediction (`pred`, the one MiLoPYP plots).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from embedscope.encoders.checkpoints import EncoderInfo, describe_checkpoint, model_from_checkpoint, read_checkpoint
from embedscope.encoders.devices import resolve_device
from embedscope.encoders.patches import centre_crop, check_patches, normalise, patch_statistics, patch_tensor
from embedscope.encoders.simsiam import EMBEDDING_DIM, SimSiam
from embedscope.errors import InputError, ParameterError
from embedscope.progress import SILENT, Reporter


def load_encoder(
    checkpoint_path: Path, device: str = "auto", *, arch: str | None = None, bbox: int | None = None
) -> tuple[SimSiam, EncoderInfo]:
    """The network of a checkpoint, on `device` in eval mode, and what the checkpoint says about it.

    `arch` and `bbox`, when given, must match the checkpoint's (MiLoPYP's files record no bbox).
    Missing, damaged or mismatching files raise a one-line InputError naming the file.
    """
    path = Path(checkpoint_path)
    target = resolve_device(device)
    contents = read_checkpoint(path)
    info = describe_checkpoint(path, contents)
    if arch is not None and arch != info.arch:
        raise InputError(f"{path} holds a {info.arch} network, not {arch}; pass --arch {info.arch} or another file")
    if bbox is not None and info.bbox is not None and bbox != info.bbox:
        raise InputError(f"{path} was trained on {info.bbox} px boxes, not {bbox}; pass --bbox {info.bbox}")
    model = model_from_checkpoint(path, contents, info)
    return model.to(target).eval(), info


def embed_patches(
    model: SimSiam,
    views3d: np.ndarray,
    views2d: np.ndarray | None,
    *,
    bbox: int,
    batch_size: int = 256,
    device: str = "auto",
    reporter: Reporter = SILENT,
) -> tuple[np.ndarray, np.ndarray]:
    """(proj, pred), each (N, 128) float32, of the centre bbox crops of (N, S, S) patches (S >= bbox).

    Patches are normalised with the statistics stored at training time; a MiLoPYP checkpoint has
    none, so, as MiLoPYP's inference does, those of the patches being embedded are used.
    """
    if batch_size < 1:
        raise ParameterError(f"batch size must be at least 1; got {batch_size}")
    check_patches(views3d, views2d, channels=model.channels, smallest=bbox)
    statistics = model.patch_statistics or patch_statistics(views3d, views2d, bbox)
    if len(statistics.mean) != model.channels:
        raise InputError(f"the encoder's statistics cover {len(statistics.mean)} channels, not {model.channels}")
    target = resolve_device(device)
    model = model.to(target).eval()
    n = len(views3d)
    proj = np.empty((n, EMBEDDING_DIM), dtype=np.float32)
    pred = np.empty((n, EMBEDDING_DIM), dtype=np.float32)
    with reporter.phase("embedding patches", n) as advance, torch.inference_mode():
        for start in range(0, n, batch_size):
            rows = slice(start, min(n, start + batch_size))
            images = normalise(centre_crop(patch_tensor(views3d, views2d, rows), bbox), statistics)
            projection, prediction = model(images.to(target))
            proj[rows] = projection.float().cpu().numpy()
            pred[rows] = prediction.float().cpu().numpy()
            advance(rows.stop - start)
    return proj, pred
