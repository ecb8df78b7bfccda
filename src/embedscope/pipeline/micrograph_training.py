"""Train a SimSiam encoder on micrographs, in the real or the Fourier domain (prismPYP's `train`).

The run folder gets prismPYP's layout (checkpoints/model_best.pth.tar, model_last, model_lowest_collapse,
training_config.yaml) plus the prepared views, which a resumed run (or a --force run into the same folder) reuses.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedscope.errors import InputError, ParameterError
from embedscope.pipeline.micrograph_cache import DOMAIN_VIEWS, cached_views
from embedscope.pipeline.micrograph_sources import DEFAULT_BAND, collect_micrographs
from embedscope.progress import SILENT, Reporter
from embedscope.sources.micrograph_views import WORKING_SIZE

VIEWS_FOLDER = "views"


@dataclass
class MicrographTrainReport:
    """Where the run left its models, what it learned from, and its losses."""

    out_dir: Path
    best: Path
    domain: str
    arch: str
    micrographs: int
    epochs: int
    losses: tuple[float, ...]
    collapse: tuple[float, ...]
    seconds: float


def train_micrographs(
    inputs: Sequence[str | Path],
    out_dir: Path,
    *,
    domain: str = "real",
    metadata: Path | None = None,
    webp: Path | None = None,
    pixel_size: float | None = None,
    search: Sequence[Path] = (),
    arch: str = "resnet50",
    dim: int = 512,
    pred_dim: int = 256,
    epochs: int = 100,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    fix_pred_lr: bool = True,
    input_size: int = 224,
    size: int = WORKING_SIZE,
    band: tuple[float, float] = DEFAULT_BAND,
    resume: bool = False,
    replace: bool = False,
    device: str = "auto",
    workers: int = 2,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    reporter: Reporter = SILENT,
) -> MicrographTrainReport:
    """Prepare the views of every micrograph (once) and train `arch` on those of `domain`.

    A run folder that already holds a model is only continued (`resume`) or, with `replace`, started over.
    """
    from embedscope.encoders.micrograph_training import train_micrographs as train

    started = time.perf_counter()
    out_dir = Path(out_dir)
    if domain not in DOMAIN_VIEWS:
        raise ParameterError(f"--domain must be one of {', '.join(DOMAIN_VIEWS)}; got {domain!r}")
    last = out_dir / "checkpoints" / "model_last.pth.tar"
    if last.exists() and not (resume or replace):
        raise ParameterError(f"{out_dir} already holds a trained model; continue it with --resume, start over "
                             "with --force, or train into another folder")
    if resume and not last.exists():
        raise ParameterError(f"{out_dir} holds no checkpoints/model_last.pth.tar to resume; start without --resume")
    micrographs = collect_micrographs(inputs, metadata=metadata, webp=webp, pixel_size=pixel_size,
                                      search=search, reporter=reporter)
    if batch_size < 2:
        raise ParameterError(f"--batch-size must be at least 2 (batch norm needs two samples); got {batch_size}")
    views = cached_views(micrographs, out_dir / VIEWS_FOLDER, size=size, band=band, workers=workers,
                         reporter=reporter)
    if len(views.names) < 2:
        raise InputError(f"only {len(views.names)} of {len(micrographs)} micrographs could be read; training needs "
                         "at least 2 (see the warnings above)")
    settings = {"inputs": [str(item) for item in inputs], "domain": domain, "metadata": str(metadata or ""),
                "pixel_size": micrographs.pixel_size, "size": size, "band": list(band),
                "micrographs": len(views.names)}
    result = train(views.view(domain), domain=domain, arch=arch, dim=dim, pred_dim=pred_dim, epochs=epochs,
                   batch_size=min(batch_size, len(views.names)), lr=lr, momentum=momentum,
                   weight_decay=weight_decay, fix_pred_lr=fix_pred_lr, input_size=input_size, out_dir=out_dir,
                   resume=resume, device=device, workers=workers, seed=seed,
                   options={**settings, **(options or {})}, reporter=reporter)
    return MicrographTrainReport(out_dir, result.best, domain, arch, len(views.names), result.epochs,
                                 tuple(result.losses), tuple(result.collapse_levels),
                                 time.perf_counter() - started)
