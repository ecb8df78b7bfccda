"""One Atlas over every tomogram's subtomogram embeddings, rebuilt whenever a tomogram's files change.

CryoSiam caches all embeddings in an `embeddings.h5` that is never invalidated; here the Atlas records a
fingerprint (size, modification time) of each tomogram's files and is rebuilt when any of them differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from embedscope.atlas import Atlas
from embedscope.errors import InputError
from embedscope.formats.cryosiam_files import read_embeds_h5, read_instance_labels_h5, read_regions_csv
from embedscope.progress import SILENT, Reporter

ATLAS_NAME = "embeddings.atlas"
SIDECAR = ".embedscope"  # our own per-tomogram files beside CryoSiam's: thumbnails and crop settings
STEP = "subtomogram-atlas"
EMBEDS, LABELS, REGIONS = "_embeds.h5", "_instance_labels.h5", "_instance_regions.csv"
THUMB_KIND = "patch"


@dataclass(frozen=True)
class TomogramFiles:
    """The files CryoSiam's predict step writes for one tomogram, and our thumbnail sidecar."""

    name: str
    folder: Path

    @property
    def embeds(self) -> Path:
        return self.folder / f"{self.name}{EMBEDS}"

    @property
    def labels(self) -> Path:
        return self.folder / f"{self.name}{LABELS}"

    @property
    def regions(self) -> Path:
        return self.folder / f"{self.name}{REGIONS}"

    @property
    def thumbs(self) -> Path:
        return self.folder / SIDECAR / f"{self.name}.thumbs.npy"

    @property
    def recipe(self) -> Path:
        return self.folder / SIDECAR / f"{self.name}.recipe.json"

    def fingerprint(self) -> list[int]:
        """Size and modification time (ns) of the embeddings and the regions: they change when re-predicted."""
        stats = [path.stat() for path in (self.embeds, self.regions)]
        return [value for stat in stats for value in (stat.st_size, stat.st_mtime_ns)]


def predicted_tomograms(folder: Path, names: Sequence[str] | None = None) -> list[TomogramFiles]:
    """The tomograms with embeddings in `folder` (all, sorted, or those `names`), as CryoSiam's clustering finds them.

    A named tomogram without its `_embeds.h5` is an error that names the file to predict first.
    """
    if names is None:
        found = sorted(path.name[: -len(EMBEDS)] for path in folder.glob(f"*{EMBEDS}") if path.is_file())
        return [TomogramFiles(name, folder) for name in found]
    chosen = [TomogramFiles(name, folder) for name in sorted(set(names))]
    missing = [files.embeds.name for files in chosen if not files.embeds.is_file()]
    if missing:
        raise InputError(f"{folder}: no {', '.join(missing[:3])}; run simsiam_embeddings_predict for them first")
    return chosen


def current_atlas(
    folder: Path, names: Sequence[str] | None = None, *, file_extension: str = ".mrc", reporter: Reporter = SILENT
) -> Atlas:
    """The Atlas `<folder>/embeddings.atlas` over the predicted tomograms, rebuilt first if it is stale or missing.

    Stale means: a tomogram was added, removed or re-predicted since it was built (any fingerprint differs).
    """
    tomograms = predicted_tomograms(folder, names)
    if not tomograms:
        raise InputError(f"{folder}: holds no *{EMBEDS} files; run simsiam_embeddings_predict first")
    wanted = {files.name: files.fingerprint() for files in tomograms}
    path = folder / ATLAS_NAME
    if path.exists():
        atlas = Atlas.open(path)
        if _built_from(atlas) == wanted:
            return atlas
    return build_atlas(path, tomograms, wanted, file_extension, reporter)


def build_atlas(
    path: Path,
    tomograms: Sequence[TomogramFiles],
    fingerprints: dict[str, list[int]],
    file_extension: str,
    reporter: Reporter = SILENT,
) -> Atlas:
    """Write the Atlas from each tomogram's embeddings, labels and regions (+ thumbnails when all have them).

    Items are `<tomo><ext>_<label>` (CryoSiam's plot labels) with tomogram, label, x, y, z, area, hull_area.
    """
    parts = [_tomogram_items(files, file_extension) for files in tomograms]
    dim = parts[0][0].shape[1]
    odd = [files.name for files, (vectors, _, _) in zip(tomograms, parts) if vectors.shape[1] != dim]
    if odd:
        raise InputError(f"{', '.join(odd[:3])}: embeddings are not {dim}-dimensional like the others; "
                         "re-predict them with the same model")
    thumbs = [files.thumbs for files in tomograms]
    with Atlas.building(path, dim, metric="euclidean", replace=True) as atlas:
        with reporter.phase("writing the embeddings Atlas", sum(len(p[0]) for p in parts)) as advance:
            for files, (vectors, ids, metadata) in zip(tomograms, parts):
                if len(vectors):
                    atlas.append(vectors, ids, metadata, label=files.embeds.name, advance=advance)
        if atlas.n and all(path.is_file() for path in thumbs):
            atlas.add_thumbs(THUMB_KIND, (np.load(path) for path in thumbs))
        elif atlas.n:
            reporter.note("some tomograms have no thumbnails (predicted by CryoSiam itself); the Atlas has none")
        atlas.record(STEP, {"tomograms": fingerprints, "file_extension": file_extension})
    return atlas


def _built_from(atlas: Atlas) -> dict[str, Any] | None:
    entries = [entry for entry in atlas.provenance if entry.get("step") == STEP]
    return entries[-1]["parameters"].get("tomograms") if entries else None


def _tomogram_items(files: TomogramFiles, file_extension: str) -> tuple[np.ndarray, list[str], pa.Table]:
    """One tomogram's vectors, ids and metadata, joined on the instance label (never on row order alone)."""
    vectors = read_embeds_h5(files.embeds)
    labels = read_instance_labels_h5(files.labels) if files.labels.is_file() else None
    regions = read_regions_csv(files.regions)
    region_labels = regions.column("label").to_numpy()
    if labels is None:
        labels = region_labels
    if not (len(vectors) == len(labels) == len(region_labels)) or not np.array_equal(labels, region_labels):
        raise InputError(f"{files.embeds.name}, {files.labels.name} and {files.regions.name} disagree on the "
                         f"instances ({len(vectors)}, {len(labels)} and {len(region_labels)} rows); re-predict "
                         f"{files.name}")
    metadata = pa.table({
        "tomogram": pa.array([files.name] * len(labels), pa.string()),
        "label": pa.array(labels.astype(np.int64)),
        "x": regions.column("centroid-2").cast(pa.float64()),
        "y": regions.column("centroid-1").cast(pa.float64()),
        "z": regions.column("centroid-0").cast(pa.float64()),
        "area": regions.column("area").cast(pa.int64()),
        "hull_area": regions.column("hull_area").cast(pa.int64()) if "hull_area" in regions.column_names
        else pa.array(np.zeros(len(labels), np.int64)),
    })
    ids = [f"{files.name}{file_extension}_{label}" for label in labels.tolist()]
    return vectors.astype(np.float32, copy=False), ids, metadata
