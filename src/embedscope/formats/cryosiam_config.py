"""CryoSiam's subtomogram-embedding YAML config, read into typed frozen settings with CryoSiam's defaults.

Users keep their CryoSiam configs: every key of CryoSiam's reference is honoured, a misspelt key is refused
with the nearest valid one, and impossible values are refused naming their key before any work starts.
Where CryoSiam's code has a default (a function's default argument) it is ours; where it has none, ours is
the value of CryoSiam's documented example. Paths stay as written: CryoSiam resolves them against the working
directory, and so does `Path`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from embedscope.errors import InputError, ParameterError
from embedscope.formats.file_checks import reason, require_file

DISTANCES = ("euclidean", "cosine")  # the metrics embedscope's maps use
BLOCK_TYPES = ("basic", "bottleneck")  # MONAI's ResNet blocks, which CryoSiam's SimSiam builds on
MASKING_TYPES = {0: "no masking", 1: "convex hull", 2: "strict"}
SHOWN_VALUE = 60  # characters of a refused value quoted in its error

Check = Callable[[Any, str], Any]


def _setting(check: Check, default: Any = MISSING, key: str | None = None) -> Any:
    """A field read from the YAML key `key` (default: the field's name), checked by `check`."""
    return field(default=default, metadata={"check": check, "key": key})


def _section(kind: type, optional: bool = False) -> Any:
    """A field read from a nested mapping; absent or null gives the defaults, or None when `optional`."""
    default: dict[str, Any] = {"default": None} if optional else {"default_factory": lambda: kind()}
    return field(**default, metadata={"section": kind, "optional": optional})


# ----------------------------------------------------------------------------- value checks
def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE else text[:SHOWN_VALUE] + "..."


def _refuse(key: str, wanted: str, value: Any) -> ParameterError:
    return ParameterError(f"config key '{key}' must be {wanted}; got {_shown(value)}")


def _optional(check: Check) -> Check:
    return lambda value, key: None if value is None else check(value, key)


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _refuse(key, "true or false", value)
    return value


def _whole(minimum: int) -> Check:
    def check(value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _refuse(key, f"a whole number of at least {minimum}", value)
        return value
    return check


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _refuse(key, "a finite number", value)
    return float(value)


def _positive(value: Any, key: str) -> float:
    if _number(value, key) <= 0:
        raise _refuse(key, "a number greater than 0", value)
    return float(value)


def _not_negative(value: Any, key: str) -> float:
    if _number(value, key) < 0:
        raise _refuse(key, "a number of at least 0", value)
    return float(value)


def _distance(value: Any, key: str) -> int | float:
    """A centre distance, kept as written because CryoSiam puts it into mask file names (5 and 5.0 differ)."""
    if _number(value, key) < 0:
        raise _refuse(key, "a distance of at least 0", value)
    return value


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise _refuse(key, "a non-empty text", value)
    return value


def _path(value: Any, key: str) -> Path:
    return Path(_text(value, key))


def _choice(options: tuple[Any, ...]) -> Check:
    def check(value: Any, key: str) -> Any:
        if not any(type(value) is type(option) and value == option for option in options):
            raise _refuse(key, f"one of {', '.join(map(str, options))}", value)
        return value
    return check


def _names(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
        raise _refuse(key, "a list of file names or null", value)
    return tuple(value)


def _whole_list(minimum: int, length: int | None = None) -> Check:
    whole = _whole(minimum)

    def check(value: Any, key: str) -> tuple[int, ...]:
        items = [value] if length is None and isinstance(value, int) and not isinstance(value, bool) else value
        wanted = f"a list of {length or 'one or more'} whole numbers of at least {minimum}"
        if not isinstance(items, list) or not items or (length is not None and len(items) != length):
            raise _refuse(key, wanted, value)
        try:
            return tuple(whole(item, key) for item in items)
        except ParameterError:
            raise _refuse(key, wanted, value) from None
    return check


def _overlap(value: Any, key: str) -> float:
    if not 0 <= _number(value, key) < 1:
        raise _refuse(key, "a fraction from 0 up to (not including) 1, or null", value)
    return float(value)


def _devices(value: Any, key: str) -> int | tuple[int, ...]:
    if isinstance(value, list):
        return _whole_list(0)(value, key)
    return _whole(0)(value, key)


# ----------------------------------------------------------------------------- the settings
@dataclass(frozen=True)
class InstanceSpacing:
    """The centre distances an instance segmentation ran with; they name its mask files."""

    min_center_distance: int | float = _setting(_distance)
    max_center_distance: int | float = _setting(_distance)

    @property
    def suffix(self) -> str:
        """CryoSiam's mask-file suffix, e.g. `_min-5_max-20` in `TS_01_instance_preds_min-5_max-20.h5`."""
        return f"_min-{self.min_center_distance}_max-{self.max_center_distance}"


@dataclass(frozen=True)
class KMeansSettings:
    """`clustering_kmeans`: how many clusters, and whether to draw them."""

    num_clusters: int = _setting(_whole(2), 4)
    visualization: bool = _setting(_boolean, True)


@dataclass(frozen=True)
class SpectralSettings:
    """`clustering_spectral`: clusters (an upper bound when estimated from the eigengap), and drawing."""

    num_clusters: int = _setting(_whole(2), 10)
    estimate_num_clusters: bool = _setting(_boolean, False)
    visualization: bool = _setting(_boolean, True)


@dataclass(frozen=True)
class VisualizationSettings:
    """`visualization`: where the maps go, the metric, optional PCA instead of UMAP, and what colours them."""

    prediction_folder: Path | None = _setting(_optional(_path), None)
    distance: str = _setting(_choice(DISTANCES), "euclidean")
    pca_components: int | None = _setting(_optional(_whole(2)), None)
    visualization_suffix: str = _setting(_text, "instance_regions.csv")
    visualize_umap: bool = _setting(_boolean, True)
    umap_3d: bool = _setting(_boolean, False, key="3d_umap")
    visualize_3d_mask: bool = _setting(_boolean, False)  # in CryoSiam's own test config
    mask_extension: str = _setting(_choice((".mrc", ".h5")), ".mrc", key="3d_mask_extension")


@dataclass(frozen=True)
class DataSettings:
    """`parameters.data`: the crop size and the intensity window and normalisation of the input."""

    patch_size: tuple[int, int, int] = _setting(_whole_list(1, 3), (64, 64, 64))
    patch_overlap: float | None = _setting(_optional(_overlap), None)
    min: float = _setting(_number, 0.0)
    max: float = _setting(_number, 1.0)
    mean: float = _setting(_number, 0.0)
    std: float = _setting(_positive, 1.0)


@dataclass(frozen=True)
class NetworkSettings:
    """`parameters.network`: the SimSiam backbone; keys left null are taken from the checkpoint."""

    spatial_dims: int = _setting(_choice((2, 3)), 3)
    in_channels: int = _setting(_whole(1), 1)
    dim: int = _setting(_whole(1), 1024)
    pred_dim: int | None = _setting(_optional(_whole(1)), None)
    block_type: str | None = _setting(_optional(_choice(BLOCK_TYPES)), None)
    num_layers: tuple[int, ...] | None = _setting(_optional(_whole_list(1)), None)
    num_filters: tuple[int, ...] | None = _setting(_optional(_whole_list(1)), None)
    no_max_pool: bool | None = _setting(_optional(_boolean), None)


@dataclass(frozen=True)
class Parameters:
    """`parameters`: the GPUs, the data and the network."""

    gpu_devices: int | tuple[int, ...] | None = _setting(_optional(_devices), 0)
    data: DataSettings = _section(DataSettings)
    network: NetworkSettings = _section(NetworkSettings)


@dataclass(frozen=True)
class HyperParameters:
    """`hyper_parameters`: the batch size, and for training the epochs, learning rate, weight decay and seed."""

    batch_size: int = _setting(_whole(1), 10)
    max_epochs: int | None = _setting(_optional(_whole(1)), None)
    learning_rate: float | None = _setting(_optional(_positive), None)
    weight_decay: float | None = _setting(_optional(_not_negative), None)
    seed: int | None = _setting(_optional(_whole(0)), None)


@dataclass(frozen=True)
class CryoSiamConfig:
    """A CryoSiam subtomogram-embedding config: CryoSiam's keys plus embedscope's seed, centre lists and workers.

    `trained_model` is `<log_dir>/model/last.ckpt` when unset, as CryoSiam does, and None without a log_dir.
    """

    path: Path
    raw: dict[str, Any] = field(repr=False, compare=False)
    prediction_folder: Path = _setting(_path)
    data_folder: Path | None = _setting(_optional(_path), None)
    instances_mask_folder: Path | None = _setting(_optional(_path), None)
    log_dir: Path | None = _setting(_optional(_path), None)
    trained_model: Path | None = _setting(_optional(_path), None)
    contrastive: bool = _setting(_boolean, False)
    file_extension: str = _setting(_text, ".mrc")
    test_files: tuple[str, ...] | None = _setting(_optional(_names), None)
    train_files: tuple[str, ...] | None = _setting(_optional(_names), None)
    clustering_files: tuple[str, ...] | None = _setting(_optional(_names), None)
    visualization_files: tuple[str, ...] | None = _setting(_optional(_names), None)
    min_particle_size: int | None = _setting(_optional(_whole(0)), None)
    max_particle_size: int | None = _setting(_optional(_whole(1)), None)
    masking_type: int = _setting(_choice(tuple(MASKING_TYPES)), 0)
    expand_labels: int = _setting(_whole(0), 1)
    instances: InstanceSpacing | None = _section(InstanceSpacing, optional=True)
    clustering_kmeans: KMeansSettings = _section(KMeansSettings)
    clustering_spectral: SpectralSettings = _section(SpectralSettings)
    visualization: VisualizationSettings = _section(VisualizationSettings)
    parameters: Parameters = _section(Parameters)
    hyper_parameters: HyperParameters = _section(HyperParameters)
    seed: int = _setting(_whole(0), 0)
    particles_star: Path | None = _setting(_optional(_path), None)
    particles_csv: Path | None = _setting(_optional(_path), None)
    workers: int = _setting(_whole(0), 2)

    @property
    def network(self) -> NetworkSettings:
        """`parameters.network`, the part of the config a checkpoint is checked against."""
        return self.parameters.network

    @property
    def mask_suffix(self) -> str:
        """What CryoSiam adds to instance-mask and regions file names: `_min-{a}_max-{b}` with `instances`."""
        return "" if self.instances is None else self.instances.suffix

    def embedding_files(self, available: list[str]) -> list[str]:
        """The tomograms to embed: `test_files` (else all `available`), then `train_files` not already listed."""
        files = list(self.test_files if self.test_files is not None else available)
        return files + [name for name in self.train_files or () if name not in files]


# ----------------------------------------------------------------------------- reading
def read_cryosiam_config(path: Path) -> CryoSiamConfig:
    """Read and check a CryoSiam YAML config; one-line errors name the file or the dotted key at fault.

    Unknown keys are refused with the nearest valid key, so a typo never silently falls back to a default.
    """
    path = Path(path)
    require_file(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid YAML ({reason(error)}); fix the config's syntax") from error
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a CryoSiam config is a mapping of keys to values; got {type(raw).__name__}")
    values = _checked(CryoSiamConfig, raw, "")
    if values.get("trained_model") is None and values.get("log_dir") is not None:
        values["trained_model"] = values["log_dir"] / "model" / "last.ckpt"
    config = CryoSiamConfig(path=path, raw=raw, **values)
    _check_together(config)
    return config


def tomogram_stem(filename: str, file_extension: str) -> str:
    """The file's name without `file_extension` at its end: TS_56_6.80Apx.mrc -> TS_56_6.80Apx.

    CryoSiam cuts at the first occurrence instead, losing names with dots; a name without it stays unchanged.
    """
    name = Path(filename).name
    if file_extension and name.endswith(file_extension) and len(name) > len(file_extension):
        return name[:-len(file_extension)]
    return name


def _checked(kind: type, mapping: Any, prefix: str) -> dict[str, Any]:
    """The checked values of one (nested) mapping, keyed by field name; unknown keys are refused."""
    if not isinstance(mapping, dict):
        raise ParameterError(f"config key '{prefix}' must be a mapping of keys to values; got {_shown(mapping)}")
    known = {_yaml_key(item): item for item in fields(kind) if item.metadata}
    for key in mapping:
        if str(key) not in known:
            raise ParameterError(_unknown_key(str(key), prefix, list(known)))
    values = {}
    for key, item in known.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if "section" in item.metadata:
            content = mapping.get(key)
            if content is None:
                values[item.name] = None if item.metadata["optional"] else item.default_factory()
            else:
                values[item.name] = item.metadata["section"](**_checked(item.metadata["section"], content, dotted))
        elif key in mapping:
            values[item.name] = item.metadata["check"](mapping[key], dotted)
        elif item.default is MISSING:
            raise ParameterError(f"config key '{dotted}' is missing; add it to the config")
    return values


def _yaml_key(item: Field[Any]) -> str:
    return item.metadata.get("key") or item.name


def _unknown_key(key: str, prefix: str, valid: list[str]) -> str:
    dotted = f"{prefix}.{key}" if prefix else key
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        suggestion = f"{prefix}.{close[0]}" if prefix else close[0]
    else:
        everywhere = _all_keys(CryoSiamConfig, "")
        close = difflib.get_close_matches(key, [name.rsplit(".", 1)[-1] for name in everywhere], n=1)
        suggestion = next((name for name in everywhere if close and name.rsplit(".", 1)[-1] == close[0]), None)
    if suggestion:
        return f"config key '{dotted}' is not a CryoSiam key; did you mean '{suggestion}'?"
    where = f" under '{prefix}'" if prefix else ""
    return f"config key '{dotted}' is not a CryoSiam key; the keys{where} are {', '.join(valid)}"


def _all_keys(kind: type, prefix: str) -> list[str]:
    names = []
    for item in fields(kind):
        if item.metadata:
            dotted = f"{prefix}.{_yaml_key(item)}" if prefix else _yaml_key(item)
            names.append(dotted)
            if "section" in item.metadata:
                names += _all_keys(item.metadata["section"], dotted)
    return names


def _check_together(config: CryoSiamConfig) -> None:
    """Refuse values that are fine alone but impossible together."""
    data, low, high = config.parameters.data, config.min_particle_size, config.max_particle_size
    if data.max <= data.min:
        raise _refuse("parameters.data.max", f"greater than parameters.data.min ({data.min:g})", data.max)
    if low is not None and high is not None and low > high:
        raise _refuse("min_particle_size", f"at most max_particle_size ({high})", low)
    spacing = config.instances
    if spacing is not None and spacing.min_center_distance > spacing.max_center_distance:
        raise _refuse("instances.min_center_distance",
                      f"at most instances.max_center_distance ({spacing.max_center_distance})",
                      spacing.min_center_distance)
    settings = config.visualization
    if settings.umap_3d and settings.pca_components is not None and settings.pca_components < 3:
        raise _refuse("visualization.pca_components", "at least 3 for a 3D map (3d_umap: true)",
                      settings.pca_components)
    if config.particles_star is not None and config.particles_csv is not None:
        raise ParameterError("config keys 'particles_star' and 'particles_csv' are both set; keep one of them")

