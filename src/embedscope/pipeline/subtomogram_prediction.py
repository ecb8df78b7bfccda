"""`cryosiam simsiam_embeddings_predict`: crop each instance, embed it, write CryoSiam's files and refresh the Atlas.

Per tomogram: `<tomo>_embeds.h5`, `<tomo>_instance_labels.h5`, `<tomo>_instance_regions.csv`, written whole or not
at all (embeddings last, as CryoSiam's skip test looks for them); then the one Atlas and any clusterings follow.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from embedscope.errors import ParameterError
from embedscope.formats.atomic_files import atomic_output
from embedscope.formats.cryosiam_config import CryoSiamConfig
from embedscope.formats.cryosiam_files import write_embeds_h5, write_instance_labels_h5, write_regions_csv
from embedscope.pipeline.subtomogram_atlas import SIDECAR, TomogramFiles, current_atlas
from embedscope.pipeline.subtomogram_jobs import crop_settings, network_keys, subtomogram_jobs
from embedscope.progress import SILENT, Reporter
from embedscope.sources.subtomograms import CropBatch, SubtomogramJob, stream_subtomograms
from embedscope.sources.thumbnails import to_uint8


@dataclass
class PredictReport:
    """What a predict run did: tomograms embedded, skipped as up to date, or without any region; the items."""

    embedded: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    atlas: Path | None = None
    items: int = 0
    reclustered: list[str] = field(default_factory=list)
    seconds: float = 0.0


def predict_subtomograms(
    config: CryoSiamConfig,
    filename: str | None = None,
    *,
    device: str = "auto",
    workers: int = 2,
    reporter: Reporter = SILENT,
    command: str | None = None,
) -> PredictReport:
    """Embed the instances of the config's tomograms (or of `filename` alone, always re-predicted).

    Tomograms whose files are newer than their inputs and were made with the same model and crop settings are
    skipped; any other is (re-)predicted. Afterwards the Atlas is rebuilt and existing clusterings redone.
    """
    from embedscope.encoders.cryosiam_checkpoints import load_cryosiam_model

    started = time.perf_counter()
    settings = crop_settings(config)
    jobs = subtomogram_jobs(config, filename, reporter)
    if config.trained_model is None:
        raise ParameterError(f"{config.path}: no trained_model (nor log_dir); set trained_model to a .ckpt, e.g. one "
                             "from `embedscope train subtomograms`")
    checkpoint = Path(config.trained_model)
    model, network = load_cryosiam_model(checkpoint, config.contrastive, network_keys(config))
    if network.in_channels != 1:
        raise ParameterError(f"the model takes {network.in_channels} channels; subtomograms have 1 "
                             "(parameters.network.in_channels must be 1)")
    folder = Path(config.prediction_folder)
    (folder / SIDECAR).mkdir(parents=True, exist_ok=True)
    recipe = _recipe(config, checkpoint, settings)
    report = PredictReport()
    todo = []
    for job in jobs:
        if filename is None and _up_to_date(TomogramFiles(job.name, folder), job, _job_recipe(recipe, job)):
            report.skipped.append(job.name)
        else:
            todo.append(job)
    if report.skipped:
        reporter.note(f"{len(report.skipped)} tomogram(s) already predicted with these settings: "
                      f"{', '.join(report.skipped[:3])}{' ...' if len(report.skipped) > 3 else ''}")
    seen = set()
    by_name = {job.name: job for job in todo}
    for name, vectors, regions, thumbs in _embedded_tomograms(model, todo, settings, config, device, workers,
                                                               reporter):
        _write_outputs(TomogramFiles(name, folder), vectors, regions, thumbs, _job_recipe(recipe, by_name[name]))
        report.embedded[name] = len(vectors)
        seen.add(name)
    for job in todo:
        if job.name not in seen:
            report.empty.append(job.name)
            _remove_outputs(TomogramFiles(job.name, folder))  # an older prediction would no longer be true
    atlas = _refresh(config, folder, reporter, command)
    if atlas is not None:
        report.atlas, report.items = atlas.path, atlas.n
        if todo:  # the clusterings already describe embeddings that did not change
            report.reclustered = _recluster(config, reporter, command)
    report.seconds = time.perf_counter() - started
    return report


def _embedded_tomograms(
    model: Any, jobs: list[SubtomogramJob], settings: Any, config: CryoSiamConfig, device: str, workers: int,
    reporter: Reporter,
) -> Iterator[tuple[str, np.ndarray, pa.Table, np.ndarray]]:
    """Each tomogram's vectors, regions and thumbnails as soon as its crops (streamed by the workers) are embedded.

    Tomograms come in job order; one whose regions all fall outside the size bounds does not come at all.
    """
    from embedscope.encoders.subtomogram_inference import embed_subtomogram_batches

    if not jobs:
        return
    streamed: deque[CropBatch] = deque()

    def crops() -> Iterator[np.ndarray]:
        for batch in stream_subtomograms(jobs, settings, config.hyper_parameters.batch_size, workers, reporter):
            streamed.append(batch)
            yield batch.crops

    parts: list[tuple[np.ndarray, pa.Table, np.ndarray]] = []
    current = None
    with reporter.phase("embedding subtomograms", None) as advance:
        for vectors in embed_subtomogram_batches(model, crops(), contrastive=config.contrastive, device=device):
            batch = streamed.popleft()
            if parts and batch.tomogram != current:
                yield current, *_joined(parts)
                parts = []
            current = batch.tomogram
            parts.append((vectors, batch.regions, _thumbnails(batch.crops)))
            advance(len(vectors))
        if parts:
            yield current, *_joined(parts)


def _joined(parts: list[tuple[np.ndarray, pa.Table, np.ndarray]]) -> tuple[np.ndarray, pa.Table, np.ndarray]:
    return (np.concatenate([part[0] for part in parts]), pa.concat_tables([part[1] for part in parts]),
            np.concatenate([part[2] for part in parts]))


def _thumbnails(crops: np.ndarray) -> np.ndarray:
    """The central z slice of each crop as a uint8 image, for the viewer and the figures."""
    middle = crops.shape[1] // 2
    return np.stack([to_uint8(crop[middle]) for crop in crops])


def _recipe(config: CryoSiamConfig, checkpoint: Path, settings: Any) -> dict[str, Any]:
    """What decides a tomogram's embeddings besides its own files: the model file and the crop settings."""
    stat = checkpoint.stat()
    return {"model": str(checkpoint.resolve()), "model_size": stat.st_size, "model_mtime_ns": stat.st_mtime_ns,
            "contrastive": bool(config.contrastive), "crops": json.loads(json.dumps(settings, default=_plain))}


def _job_recipe(recipe: dict[str, Any], job: SubtomogramJob) -> dict[str, Any]:
    """The recipe plus what a tomogram's own files do not show: its particle centres or its regions table."""
    digest = hashlib.sha256()
    if job.centres is not None:
        digest.update(np.ascontiguousarray(job.centres, dtype=np.int64).tobytes())
    if job.regions is not None:
        digest.update(json.dumps(job.regions.to_pydict(), default=float).encode())
    return {**recipe, "particles": digest.hexdigest()}


def _plain(value: Any) -> Any:
    return value.__dict__ if hasattr(value, "__dict__") else str(value)


def _up_to_date(files: TomogramFiles, job: SubtomogramJob, recipe: dict[str, Any]) -> bool:
    record = files.recipe
    if not (files.embeds.is_file() and files.regions.is_file() and record.is_file()):
        return False
    try:
        if json.loads(record.read_text()) != recipe:
            return False
    except (OSError, ValueError):
        return False
    made = files.embeds.stat().st_mtime_ns
    inputs = [job.tomogram] + ([job.mask] if job.mask is not None else [])
    return all(Path(path).stat().st_mtime_ns <= made for path in inputs)


def _write_outputs(
    files: TomogramFiles, vectors: np.ndarray, regions: pa.Table, thumbs: np.ndarray, recipe: dict[str, Any]
) -> None:
    """Thumbnails and the recipe first, CryoSiam's three files next, the embeddings last."""
    with atomic_output(files.thumbs) as temporary, open(temporary, "wb") as handle:
        np.save(handle, thumbs)
    with atomic_output(files.recipe) as temporary:
        temporary.write_text(json.dumps(recipe, indent=1))
    write_instance_labels_h5(files.labels, regions.column("label").to_numpy())
    write_regions_csv(files.regions, regions)
    write_embeds_h5(files.embeds, vectors)


def _remove_outputs(files: TomogramFiles) -> None:
    for path in (files.embeds, files.labels, files.regions, files.thumbs, files.recipe):
        path.unlink(missing_ok=True)


def _refresh(config: CryoSiamConfig, folder: Path, reporter: Reporter, command: str | None) -> Any:
    from embedscope.errors import InputError

    try:
        return current_atlas(folder, _clustering_names(config), file_extension=config.file_extension,
                             reporter=reporter)
    except InputError as error:
        reporter.note(f"no Atlas written: {error}")
        return None


def _clustering_names(config: CryoSiamConfig) -> list[str] | None:
    from embedscope.formats.cryosiam_config import tomogram_stem

    if config.clustering_files is None:
        return None
    return [tomogram_stem(name, config.file_extension) for name in config.clustering_files]


def _recluster(config: CryoSiamConfig, reporter: Reporter, command: str | None) -> list[str]:
    """Redo the clusterings that were run before (their files exist), so they describe the new embeddings."""
    from embedscope.pipeline.subtomogram_clustering import METHODS, cluster_subtomograms

    folder = Path(config.prediction_folder)
    done = [method for method in METHODS if (folder / f"{method}_clusters.h5").is_file()]
    for method in done:
        cluster_subtomograms(config, method, reporter=reporter, command=command)
    return done

