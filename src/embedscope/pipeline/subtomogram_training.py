"""`embedscope train subtomograms`: crop the instances a CryoSiam config names and train a 3D SimSiam on them.

CryoSiam's released model cannot be downloaded everywhere, so users train their own. The crops are streamed once
into a memory-mapped cache in the run folder (reused on resume); the model lands where CryoSiam looks for it,
`<run>/model/last.ckpt`, and a config ready for `cryosiam simsiam_embeddings_predict` is written beside it.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from embedscope.errors import InputError, ParameterError
from embedscope.formats.atomic_files import atomic_output
from embedscope.formats.cryosiam_config import CryoSiamConfig
from embedscope.pipeline.subtomogram_jobs import crop_settings, network_keys, subtomogram_jobs
from embedscope.progress import SILENT, Reporter
from embedscope.sources.subtomograms import CropSettings, SubtomogramJob, stream_subtomograms

CACHE = "crops"
PREDICT_CONFIG = "subtomo_embeddings.yaml"
DEFAULT_EPOCHS, DEFAULT_LR = 100, 0.05


@dataclass
class SubtomogramTrainReport:
    """What a training run did: crops used (and whether from the cache), epochs, losses, model and config."""

    crops: int
    cached: bool
    epochs: int
    losses: list[float]
    checkpoint: Path
    predict_config: Path
    device: str
    seconds: float


def train_subtomogram_model(
    config: CryoSiamConfig,
    out_dir: Path,
    *,
    epochs: int | None = None,
    device: str = "auto",
    resume: bool = False,
    replace: bool = False,
    reporter: Reporter = SILENT,
) -> SubtomogramTrainReport:
    """Train on every instance of the config's tomograms; epochs, learning rate and seed come from the config.

    `replace` starts over in a folder that holds a run; `resume` continues it from model/last.ckpt.
    """
    from embedscope.encoders.subtomogram_simsiam import NetworkSettings
    from embedscope.encoders.subtomogram_training import train_subtomograms

    started = time.perf_counter()
    if resume and replace:
        raise ParameterError("--resume continues a run and --force starts it over; give one of them")
    out_dir = Path(out_dir)
    if replace and (out_dir / "model").exists():
        shutil.rmtree(out_dir / "model")
        (out_dir / "training_log.csv").unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    network = NetworkSettings.from_config(network_keys(config))
    settings = crop_settings(config)
    if network.spatial_dims != 3 or network.in_channels != 1:
        raise ParameterError("subtomograms need parameters.network.spatial_dims 3 and in_channels 1")
    jobs = subtomogram_jobs(config, None, reporter)
    crops, cached = cached_crops(out_dir / CACHE, jobs, settings, config.workers, reporter)
    hyper = config.hyper_parameters
    result = train_subtomograms(
        crops, out_dir, network, epochs=epochs or hyper.max_epochs or DEFAULT_EPOCHS,
        batch_size=hyper.batch_size, lr=hyper.learning_rate or DEFAULT_LR,
        weight_decay=hyper.weight_decay if hyper.weight_decay is not None else 1e-4,
        seed=hyper.seed if hyper.seed is not None else config.seed, device=device, resume=resume,
        workers=1, reporter=reporter,
    )
    predict_config = write_predict_config(config, out_dir, result.checkpoint, network)
    return SubtomogramTrainReport(len(crops), cached, result.epochs_run, result.losses, result.checkpoint,
                                  predict_config, result.device, time.perf_counter() - started)


def config_for_inputs(tomograms: Path, out_dir: Path, keys: dict[str, Any]) -> CryoSiamConfig:
    """A CryoSiam config for a folder of tomograms and CryoSiam keys given as options, written to the run folder.

    So a run started from options is described, and can be repeated, exactly like one started from a config.
    """
    from embedscope.formats.cryosiam_config import read_cryosiam_config

    if not Path(tomograms).is_dir():
        raise InputError(f"{tomograms} is neither a CryoSiam config (.yaml) nor a folder of tomograms")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw: dict[str, Any] = {"data_folder": str(Path(tomograms).resolve()),
                           "prediction_folder": str((out_dir / "predictions").resolve()),
                           "log_dir": str(out_dir.resolve()),
                           # without a config there is no k to give: spectral estimates it, up to CryoSiam's 10
                           "clustering_spectral": {"num_clusters": 10, "estimate_num_clusters": True}}
    for dotted, value in keys.items():
        if value is None:
            continue
        *sections, name = dotted.split(".")
        place = raw
        for section in sections:
            place = place.setdefault(section, {})
        place[name] = str(value.resolve()) if isinstance(value, Path) else value  # the config works from anywhere
    path = out_dir / "train_config.yaml"
    with atomic_output(path) as temporary:
        temporary.write_text(yaml.safe_dump(raw, sort_keys=False))
    return read_cryosiam_config(path)


def cached_crops(
    folder: Path, jobs: list[SubtomogramJob], settings: CropSettings, workers: int, reporter: Reporter = SILENT
) -> tuple[np.memmap, bool]:
    """All crops as a read-only (N, D, H, W) float32 memmap in `folder`, made once per inputs and crop settings.

    The cache is keyed by the settings and each input file's size and modification time; any change remakes it.
    """
    key = {"settings": json.loads(json.dumps(asdict(settings), default=str)), "inputs": _fingerprints(jobs)}
    index, data = folder / "crops.json", folder / "crops.f32"
    if index.is_file() and data.is_file():
        recorded = json.loads(index.read_text())
        if recorded.get("key") == key:
            return np.memmap(data, np.float32, "r", shape=tuple(recorded["shape"])), True
    folder.mkdir(parents=True, exist_ok=True)
    index.unlink(missing_ok=True)  # the index goes first and comes last: a half-made cache is never read
    count = 0
    with atomic_output(data) as temporary, open(temporary, "wb") as handle:
        for batch in stream_subtomograms(jobs, settings, 64, workers, reporter):
            handle.write(np.ascontiguousarray(batch.crops, dtype=np.float32).tobytes())
            count += len(batch.crops)
    if count == 0:
        raise InputError("no instance of any tomogram lies within min_particle_size..max_particle_size; "
                         "nothing to train on: lower min_particle_size or raise max_particle_size")
    shape = (count, *settings.patch_size)
    with atomic_output(index) as temporary:
        temporary.write_text(json.dumps({"key": key, "shape": shape}, indent=1))
    return np.memmap(data, np.float32, "r", shape=shape), False


def write_predict_config(config: CryoSiamConfig, out_dir: Path, checkpoint: Path, network: Any) -> Path:
    """The training config with trained_model set and the network's keys filled in, ready for predict.

    The embeddings are the encoder's output (contrastive False) unless the config asked for the predictor's.
    """
    raw = json.loads(json.dumps(config.raw, default=str))
    raw["trained_model"] = str(checkpoint.resolve())
    raw["log_dir"] = str(Path(out_dir).resolve())
    parameters = raw.setdefault("parameters", {}) or {}
    raw["parameters"] = parameters
    parameters["network"] = {**(parameters.get("network") or {}), **network.as_config()}
    path = Path(out_dir) / PREDICT_CONFIG
    with atomic_output(path) as temporary:
        temporary.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _fingerprints(jobs: list[SubtomogramJob]) -> list[list[Any]]:
    rows = []
    for job in jobs:
        for path in (job.tomogram, job.mask):
            if path is not None:
                stat = Path(path).stat()
                rows.append([job.name, str(path), stat.st_size, stat.st_mtime_ns])
        if job.centres is not None:
            rows.append([job.name, "centres", np.asarray(job.centres).tolist()])
    return rows
