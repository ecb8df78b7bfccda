"""The Atlas manifest, `atlas.json`: the one file whose atomic replacement commits every write.

Data files are immutable once named here; a write adds new files, then renames a new manifest into
place, so a crash at any moment leaves the previous manifest and the files it names intact.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedscope.errors import AtlasError

FORMAT = "embedscope-atlas"
FORMAT_VERSION = 1
MANIFEST_NAME = "atlas.json"
METRICS = ("cosine", "euclidean")


@dataclass
class Manifest:
    """What an Atlas holds: item count, dimension, part files, layers, cached graphs, thumbnails, side tables
    (records that are not row-aligned, such as a training's losses) and provenance."""

    dim: int
    metric: str | None = None
    n: int = 0
    parts: list[dict[str, Any]] = field(default_factory=list)
    next_part: int = 0
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    graphs: dict[str, dict[str, Any]] = field(default_factory=dict)
    thumbs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    provenance: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The manifest as the JSON object stored in `atlas.json`."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "n": self.n,
            "dim": self.dim,
            "metric": self.metric,
            "parts": self.parts,
            "next_part": self.next_part,
            "layers": self.layers,
            "graphs": self.graphs,
            "thumbs": self.thumbs,
            "tables": self.tables,
            "provenance": self.provenance,
        }

    def copy(self) -> Manifest:
        """A deep copy, so a failed transaction can return to the committed state."""
        return copy.deepcopy(self)

    def referenced_files(self) -> set[str]:
        """Paths (relative to the Atlas) of every data file the manifest names."""
        files = {part["file"] for part in self.parts}
        files.update(layer["file"] for layer in self.layers.values())
        files.update(name for graph in self.graphs.values() for name in graph["files"].values())
        files.update(name for kind in self.thumbs.values() for name in kind["files"])
        files.update(table["file"] for table in self.tables.values())
        return files


def read_manifest(atlas_path: Path) -> Manifest:
    """Read and check `atlas.json`, refusing anything that is not a whole Atlas manifest."""
    path = atlas_path / MANIFEST_NAME
    if not atlas_path.exists():
        raise AtlasError(f"{atlas_path}: no such Atlas; create one with `embedscope import`")
    if not path.is_file():
        raise AtlasError(f"{atlas_path} is not an Atlas (it has no {MANIFEST_NAME})")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AtlasError(f"{path} is damaged ({error}); rebuild the Atlas") from error
    return _manifest_from_json(data, path)


def write_manifest(atlas_path: Path, manifest: Manifest) -> None:
    """Replace `atlas.json` atomically: write a temporary file, flush it to disk, rename it."""
    target = atlas_path / MANIFEST_NAME
    temporary = atlas_path / f".{MANIFEST_NAME}.tmp-{os.getpid()}"
    with open(temporary, "w") as handle:
        json.dump(manifest.to_json(), handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    sync_directory(atlas_path)


def sync_directory(path: Path) -> None:
    """Flush a directory entry to disk so a rename inside it survives a power loss."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _manifest_from_json(data: Any, path: Path) -> Manifest:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AtlasError(f"{path} is not an embedscope Atlas manifest")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise AtlasError(
            f"{path} has format version {version}; this embedscope reads up to "
            f"{FORMAT_VERSION}: upgrade embedscope"
        )
    try:
        manifest = Manifest(
            dim=int(data["dim"]),
            metric=data.get("metric"),
            n=int(data["n"]),
            parts=list(data["parts"]),
            next_part=int(data["next_part"]),
            layers=dict(data["layers"]),
            graphs=dict(data.get("graphs", {})),
            thumbs=dict(data.get("thumbs", {})),
            tables=dict(data.get("tables", {})),
            provenance=list(data["provenance"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise AtlasError(f"{path} is damaged (missing or bad field {error}); rebuild it") from error
    if sum(int(part["rows"]) for part in manifest.parts) != manifest.n:
        raise AtlasError(f"{path} is damaged (part row counts do not add up to n); rebuild it")
    return manifest
