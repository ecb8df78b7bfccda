"""Embed micrographs or power spectra with a trained MicrographSimSiam, batch by batch, on the CPU or a GPU.

As prismPYP's eval2d, each view is resized to the input size and the reducer's output is kept; batches stream
through, so a caller can read views from a memory-mapped file and write vectors as they come.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from embedscope.encoders.devices import mixed_precision, resolve_device
from embedscope.encoders.micrograph_augment import prepare_micrographs
from embedscope.encoders.micrograph_simsiam import MicrographSimSiam


def embed_micrograph_batches(
    model: MicrographSimSiam,
    batches: Iterable[np.ndarray],
    *,
    device: str = "auto",
    amp: bool = True,
    input_size: int | None = None,
) -> Iterator[np.ndarray]:
    """Each uint8 (b, S, S) batch of views -> its (b, dim) float32 embeddings, in order.

    The model runs in eval mode without autograd, under autocast on a GPU when `amp`; `input_size`
    defaults to the one the model was trained at (224 for prismPYP's checkpoints).
    """
    target = resolve_device(device)
    model = model.to(target, memory_format=torch.channels_last).eval()  # faster convolutions on CPUs and GPUs
    size = input_size or model.input_size
    for batch in batches:
        images = torch.from_numpy(np.array(batch)).to(target, non_blocking=True)  # a copy: batches may be read-only
        with torch.inference_mode(), mixed_precision(target, amp):
            prepared = prepare_micrographs(images, size).contiguous(memory_format=torch.channels_last)
            vectors = model.embed(prepared)
        yield vectors.float().cpu().numpy()
