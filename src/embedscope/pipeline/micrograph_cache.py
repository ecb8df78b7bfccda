"""The prepared views of a training set, kept on disk in the run folder as two uint8 arrays that numpy memory-maps.

Reading and transforming 10,000 4k micrographs takes minutes, so training does it once: a resumed or repeated
run (real or Fourier domain) reuses the arrays, and training reads them without holding them all in memory.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedscope.pipeline.micrograph_sources import MicrographSet, ViewProblems, stream_micrograph_views
from embedscope.progress import SILENT, Reporter

VIEW_KINDS = ("image", "spectrum")
DOMAIN_VIEWS = {"real": "image", "fft": "spectrum"}
DESCRIPTION = "views.json"


@dataclass(frozen=True)
class ViewCache:
    """The names kept (in order) and their (n, size, size) uint8 image and spectrum views, memory-mapped."""

    folder: Path
    names: list[str]
    image: np.ndarray
    spectrum: np.ndarray

    def view(self, domain: str) -> np.ndarray:
        """The views a model of `domain` ("real" or "fft") learns from."""
        return getattr(self, DOMAIN_VIEWS[domain])


def cached_views(
    micrographs: MicrographSet,
    folder: Path,
    *,
    size: int,
    band: tuple[float, float],
    workers: int = 2,
    reporter: Reporter = SILENT,
) -> ViewCache:
    """The views of `micrographs` in `folder`: reused when made from the same inputs and settings, else made anew.

    The folder is written under a temporary name and renamed, so an interrupted run never leaves a cache that
    looks whole; unreadable or blank micrographs are warned about and left out.
    """
    folder = Path(folder)
    wanted = _description(micrographs, size, band)
    if _stored_description(folder) == wanted:
        reporter.note(f"reusing the prepared views in {folder}")
        return _open(folder)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        kept = _write_views(micrographs, staging, size, band, workers, reporter)
        (staging / "names.txt").write_text("".join(f"{name}\n" for name in kept), encoding="utf-8")
        (staging / DESCRIPTION).write_text(json.dumps(wanted, indent=1), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _open(folder)


def _write_views(
    micrographs: MicrographSet, staging: Path, size: int, band: tuple[float, float], workers: int, reporter: Reporter
) -> list[str]:
    """Fill image.npy and spectrum.npy row by row as the views stream in; trim them to the micrographs kept."""
    count = len(micrographs)
    arrays = {kind: np.lib.format.open_memmap(staging / f"{kind}.npy", "w+", np.uint8, (count, size, size))
              for kind in VIEW_KINDS}
    problems = ViewProblems(reporter)
    kept: list[str] = []
    with reporter.phase("preparing micrographs", count) as advance:
        for row, views in stream_micrograph_views(micrographs, size=size, band=band, workers=workers):
            name = micrographs.names[row]
            if problems.accept(name, views):
                for kind in VIEW_KINDS:
                    arrays[kind][len(kept)] = getattr(views, kind)
                kept.append(name)
            advance(1)
    summary = problems.summary(size)
    if summary:
        reporter.note(f"views: {summary}")
    for kind, array in arrays.items():
        array.flush()
        del array
        if len(kept) < count:
            _truncate(staging / f"{kind}.npy", len(kept), size)
    return kept


def _truncate(path: Path, rows: int, size: int) -> None:
    """Rewrite an .npy file of (count, size, size) uint8 rows to its first `rows`, without loading it whole."""
    source = np.load(path, mmap_mode="r")
    shorter = path.with_suffix(".part.npy")
    target = np.lib.format.open_memmap(shorter, "w+", np.uint8, (rows, size, size))
    for start in range(0, rows, 256):
        target[start:start + 256] = source[start:start + 256]
    target.flush()
    del target, source
    os.replace(shorter, path)


def _open(folder: Path) -> ViewCache:
    names = (folder / "names.txt").read_text(encoding="utf-8").splitlines()
    image, spectrum = (np.load(folder / f"{kind}.npy", mmap_mode="r") for kind in VIEW_KINDS)
    return ViewCache(folder, names, image, spectrum)


def _description(micrographs: MicrographSet, size: int, band: tuple[float, float]) -> dict:
    """What the views depend on: the pictures (paths, sizes, times), the working size, band and pixel size."""
    sources = micrographs.paths or [Path(micrographs.webp) / f"{name}.webp" for name in micrographs.names]
    stamps = [[str(path), *_stamp(path)] for path in sources]
    return {"size": size, "band": list(band), "pixel_size": micrographs.pixel_size, "sources": stamps}


def _stamp(path: Path) -> list[int]:
    try:
        status = path.stat()
    except OSError:
        return [-1, -1]
    return [status.st_size, status.st_mtime_ns]


def _stored_description(folder: Path) -> dict | None:
    try:
        return json.loads((folder / DESCRIPTION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
