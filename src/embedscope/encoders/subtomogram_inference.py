"""Embed subtomogram crops with a CryoSiam SimSiam, batch by batch, on the CPU or a GPU.

As CryoSiam's prediction, the vector is the projector output, or the normalised prediction when `contrastive`;
batches stream through, so a caller can read crops from a memory-mapped file and write vectors as they come.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from embedscope.encoders.devices import mixed_precision as autocast_context
from embedscope.encoders.devices import resolve_device
from embedscope.encoders.subtomogram_simsiam import SubtomogramSimSiam
from embedscope.errors import ParameterError


def embed_subtomogram_batches(
    model: SubtomogramSimSiam,
    batches: Iterable[np.ndarray],
    *,
    contrastive: bool,
    device: str = "auto",
    mixed_precision: bool = False,
) -> Iterator[np.ndarray]:
    """Each (n, D, H, W) or (n, C, D, H, W) batch of crops -> its (n, dim) float32 embeddings, in order.

    The model runs in eval mode (so a batch of one works) without autograd; `mixed_precision` autocasts on a GPU.
    """
    target = resolve_device(device)
    model = model.to(target, memory_format=model.memory_format).eval()
    for batch in batches:
        volumes = torch.from_numpy(_with_channels(np.array(batch, dtype=np.float32), model))  # a copy: may be read-only
        volumes = volumes.to(target, non_blocking=True).contiguous(memory_format=model.memory_format)
        with torch.inference_mode(), autocast_context(target, mixed_precision):
            vectors = model.embed(volumes, contrastive)
        yield vectors.float().cpu().numpy()


def _with_channels(batch: np.ndarray, model: SubtomogramSimSiam) -> np.ndarray:
    """The batch with its channel axis: added when the crops have none, checked against in_channels otherwise."""
    settings = model.settings
    if batch.ndim == settings.spatial_dims + 1 and settings.in_channels == 1:
        return batch[:, None]
    if batch.ndim == settings.spatial_dims + 2 and batch.shape[1] == settings.in_channels:
        return batch
    raise ParameterError(f"crops of shape {batch.shape} do not fit the network ({settings.in_channels} channel(s), "
                         f"{settings.spatial_dims}D); give (n, {settings.in_channels}, D, H, W) batches")
