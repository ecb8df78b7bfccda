"""Embed micrographs with a trained encoder into an Atlas (prismPYP's inference), resumable after a kill.

Finished chunks of micrographs are kept in a hidden folder beside the Atlas; a rerun of the same command skips
them, and the Atlas itself appears whole (vectors, names, metadata, `mg` and `ps` thumbnails) only at the end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from embedscope.atlas import Atlas
from embedscope.errors import InputError, ParameterError
from embedscope.pipeline.micrograph_progress import EmbeddingProgress
from embedscope.pipeline.micrograph_sources import (
    DEFAULT_BAND,
    MicrographSet,
    ViewProblems,
    collect_micrographs,
    stream_micrograph_views,
)
from embedscope.progress import SILENT, Reporter
from embedscope.sources.micrograph_views import WORKING_SIZE, MicrographViews

THUMB_SIZE = 128


@dataclass
class MicrographEmbedReport:
    """What an embedding run wrote and how long the model waited for pictures."""

    atlas: Path
    items: int
    left_out: int
    resumed: int  # micrographs a previous, interrupted run had already embedded
    dim: int
    domain: str
    waiting: float  # fraction of the embedding loop the model spent waiting for data
    seconds: float
    embeddings_pth: Path | None = None


def embed_micrographs(
    inputs: Sequence[str | Path],
    checkpoint: Path,
    output: Path,
    *,
    domain: str | None = None,
    metadata: Path | None = None,
    webp: Path | None = None,
    pixel_size: float | None = None,
    search: Sequence[Path] = (),
    size: int = WORKING_SIZE,
    band: tuple[float, float] = DEFAULT_BAND,
    batch_size: int = 32,
    device: str = "auto",
    workers: int = 2,
    chunk: int = 256,
    replace: bool = False,
    embeddings_pth: Path | None = None,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> MicrographEmbedReport:
    """Embed every micrograph of `inputs` with the encoder in `checkpoint` and write the Atlas `output`.

    `domain` defaults to the checkpoint's (prismPYP's files do not say: real). A run killed part-way is
    continued by the same command; `embeddings_pth` also writes prismPYP's inference/embeddings.pth.
    """
    from embedscope.encoders import load_micrograph_encoder

    started = time.perf_counter()
    output = Path(output)
    if output.exists() and not replace:
        raise ParameterError(f"{output} already exists; pass --force to replace it")
    if batch_size < 1 or chunk < 1:
        raise ParameterError(f"--batch-size and the chunk size must be at least 1; got {batch_size}, {chunk}")
    model, info = load_micrograph_encoder(checkpoint, device)
    domain = _domain(domain, info.domain, checkpoint)
    micrographs = collect_micrographs(inputs, metadata=metadata, webp=webp, pixel_size=pixel_size,
                                      search=search, reporter=reporter)
    settings = {"inputs": [str(item) for item in inputs], "checkpoint": str(checkpoint), "domain": domain,
                "arch": info.arch, "dim": info.dim, "size": size, "band": list(band),
                "pixel_size": micrographs.pixel_size, "webp": str(webp or ""), "names": micrographs.names}
    progress = EmbeddingProgress.open(output, settings, _stamp(checkpoint), reporter)
    remaining = progress.rows_to_do(len(micrographs))
    resumed = len(micrographs) - len(remaining)
    if resumed:
        reporter.note(f"resuming: {resumed:,} of {len(micrographs):,} micrographs were embedded by an earlier run")
    waiting = _embed_remaining(model, info, micrographs, remaining, progress, domain=domain, size=size, band=band,
                               batch_size=batch_size, device=device, workers=workers, chunk=chunk,
                               reporter=reporter)
    done = progress.gather()
    if not len(done.rows):
        raise InputError(f"none of the {len(micrographs):,} micrographs could be read (see the warnings above)")
    _write_atlas(output, micrographs, done, settings, replace, reporter, command)
    if embeddings_pth is not None:
        from embedscope.encoders import save_embeddings_pth

        save_embeddings_pth(embeddings_pth, done.vectors)
    progress.remove()
    return MicrographEmbedReport(output, len(done.rows), len(micrographs) - len(done.rows), resumed,
                                 done.vectors.shape[1], domain, waiting, time.perf_counter() - started,
                                 embeddings_pth)


def _embed_remaining(
    model, info, micrographs: MicrographSet, remaining: list[int], progress: EmbeddingProgress, *, domain: str,
    size: int, band: tuple[float, float], batch_size: int, device: str, workers: int, chunk: int, reporter: Reporter,
) -> float:
    """Embed the rows no earlier run finished, saving a chunk every `chunk` micrographs; return the wait share."""
    from embedscope.encoders import embed_micrograph_batches

    problems = ViewProblems(reporter)
    pending: list[tuple[int, MicrographViews]] = []
    waited = 0.0
    loop_started = time.perf_counter()
    view = "image" if domain == "real" else "spectrum"

    def run_model() -> None:
        batch = np.stack([getattr(views, view) for _, views in pending])
        vectors = next(embed_micrograph_batches(model, [batch], device=device, input_size=info.input_size))
        progress.add([row for row, _ in pending], vectors, [thumbnails_of(views) for _, views in pending],
                     [views.shape for _, views in pending])
        pending.clear()

    stream = stream_micrograph_views(micrographs.subset(remaining), size=size, band=band, workers=workers)
    with reporter.phase("embedding micrographs", len(remaining)) as advance:
        while True:
            asked = time.perf_counter()
            item = next(stream, None)
            waited += time.perf_counter() - asked
            if item is None:
                break
            index, views = item
            row = remaining[index]
            if problems.accept(micrographs.names[row], views):
                pending.append((row, views))
            else:
                progress.skip(row)
            if len(pending) == batch_size:
                run_model()
            if progress.unsaved >= chunk:
                progress.save()
            advance(1)
        if pending:
            run_model()
        progress.save()
    summary = problems.summary(size)
    if summary:
        reporter.note(f"micrographs: {summary}")
    total = time.perf_counter() - loop_started
    return waited / total if total > 0 else 0.0


def thumbnails_of(views: MicrographViews) -> tuple[np.ndarray, np.ndarray]:
    """The `mg` and `ps` thumbnails of a micrograph: its views shrunk by box averaging."""
    shrink = lambda image: np.asarray(Image.fromarray(image).resize((THUMB_SIZE, THUMB_SIZE), Image.BOX))  # noqa: E731
    return shrink(views.image), shrink(views.spectrum)


def _write_atlas(output: Path, micrographs: MicrographSet, done, settings: dict, replace: bool, reporter: Reporter,
                 command: str | None) -> None:
    """The Atlas of the embedded micrographs, in input order, built whole or not at all."""
    rows = done.rows
    columns = {
        "micrograph_name": pa.array([micrographs.names[row] for row in rows], pa.string()),
        "source": pa.array([str(_source(micrographs, row)) for row in rows], pa.string()),
        "height": pa.array(done.shapes[:, 0], pa.int32()),
        "width": pa.array(done.shapes[:, 1], pa.int32()),
    }
    if micrographs.metadata is not None:
        table = micrographs.metadata.table.take(pa.array(rows))
        columns |= {name: table.column(name) for name in table.column_names if name not in columns}
    parameters = {key: value for key, value in settings.items() if key != "names"}
    with Atlas.building(output, done.vectors.shape[1], metric="cosine", replace=replace) as atlas:
        with reporter.phase("writing items", len(rows)) as advance:
            atlas.append(done.vectors, columns["micrograph_name"], pa.table(columns), label="embeddings",
                         advance=advance)
        atlas.add_thumbs("mg", [done.mg])
        atlas.add_thumbs("ps", [done.ps])
        atlas.record("embed micrographs", parameters, command=command)


def _source(micrographs: MicrographSet, row: int) -> Path:
    if micrographs.paths is not None:
        return micrographs.paths[row]
    return Path(micrographs.webp) / f"{micrographs.names[row]}.webp"


def _domain(asked: str | None, trained: str | None, checkpoint: Path) -> str:
    if asked is not None and asked not in ("real", "fft"):
        raise ParameterError(f"--domain must be real or fft; got {asked!r}")
    if asked is not None and trained is not None and asked != trained:
        raise ParameterError(f"{checkpoint} was trained on {trained}-domain views, not {asked}; "
                             f"pass --domain {trained} (prismPYP's --use-fft for fft) or another model")
    return asked or trained or "real"


def _stamp(path: Path) -> list:
    status = Path(path).stat()
    return [str(Path(path).resolve()), status.st_size, status.st_mtime_ns]
