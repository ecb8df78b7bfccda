"""Embed the picked patches of a set of tomograms with a trained encoder (MiLoPYP's `simsiam_test_hm_*.py`).

The result is an Atlas (vectors = SimSiam's `pred`, as MiLoPYP plots) and, on request, MiLoPYP's
`all_output_info.npz` with the same rows, so either world can carry on from here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedscope.errors import ParameterError
from embedscope.pipeline.tomogram_atlas import write_tomogram_atlas
from embedscope.pipeline.tomogram_patches import gather_patches, mode_of
from embedscope.progress import SILENT, Reporter
from embedscope.sources import CandidatePicker


@dataclass
class EmbedReport:
    """What an embedding run wrote: the Atlas, the npz if asked, and the counts."""

    atlas: Path
    items: int
    tomograms: int
    arch: str
    npz: Path | None
    dropped: int
    seconds: float


def embed_tomograms(
    tomograms: Path,
    checkpoint: Path,
    output: Path,
    *,
    picker: CandidatePicker,
    arch: str | None = None,
    mode: str | None = None,
    bbox: int | None = None,
    batch_size: int = 256,
    device: str = "auto",
    workers: int = 1,
    order: str = "auto",
    npz: Path | None = None,
    replace: bool = False,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> EmbedReport:
    """Pick candidates, cut their views and embed them with the encoder in `checkpoint`; write an Atlas.

    arch and bbox default to the checkpoint's; a MiLoPYP checkpoint records no bbox, so give --bbox for it.
    """
    from embedscope.encoders.inference import embed_patches, load_encoder
    from embedscope.formats.milopyp import write_output_info

    started = time.perf_counter()
    if output.exists() and not replace:
        raise ParameterError(f"{output} already exists; pass --force to replace it")
    model, info = load_encoder(checkpoint, device, arch=arch, bbox=bbox)
    arch, mode = mode_of(info.arch, mode)
    bbox = bbox or info.bbox
    if bbox is None:
        raise ParameterError(f"{checkpoint} does not record its box size (MiLoPYP's files do not); pass --bbox")
    margin = info.margin or 0  # cut as in training, so that patches are scaled over the same window
    patches = gather_patches(tomograms, picker, bbox=bbox, mode=mode, margin=margin, dtype="float32",
                             workers=workers, order=order, reporter=reporter)
    proj, pred = embed_patches(model, patches.views3d, patches.views2d, bbox=bbox, batch_size=batch_size,
                               device=device, reporter=reporter)
    box = slice(margin, margin + bbox)
    subvol = patches.views3d[:, None, box, box]
    subvols_2d = None if patches.views2d is None else patches.views2d[:, None, box, box]
    parameters = {"tomograms": str(tomograms), "checkpoint": str(checkpoint), "arch": arch, "mode": mode,
                  "bbox": bbox, "margin": margin, "gauss": picker.gauss, "dog": list(picker.dog), "order": order,
                  "trained_epochs": info.epoch, "encoder_from": info.written_by}
    write_tomogram_atlas(output, pred, patches.names, patches.coords, subvol, subvols_2d,
                         step="embed tomograms", parameters=parameters, replace=replace, reporter=reporter,
                         command=command)
    if npz is not None:
        write_output_info(npz, proj, pred, patches.names, patches.coords, subvol, subvols_2d)
    return EmbedReport(output, len(patches), len(np.unique(patches.names)), arch, npz, patches.dropped,
                       time.perf_counter() - started)
