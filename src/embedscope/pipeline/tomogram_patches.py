"""All the patches of a set of tomograms, gathered compactly for training or embedding.

Tomograms stream in one at a time per worker; only their 8-bit or float32 views are kept, never a volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedscope.errors import ParameterError
from embedscope.progress import SILENT, Reporter
from embedscope.sources import CandidatePicker, find_tomograms, stream_patches

ARCH_MODES = {"simsiam2d_18": "3d", "simsiam2d3d_18": "2d3d"}
MODE_ARCHS = {mode: arch for arch, mode in ARCH_MODES.items()}


@dataclass
class Patches:
    """The picked points of every tomogram and their views, row-aligned."""

    names: np.ndarray  # (N,) str
    coords: np.ndarray  # (N, 3) int32 x, y, z
    views3d: np.ndarray  # (N, S, S)
    views2d: np.ndarray | None  # (N, S, S), 2d3d only
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.coords)


def mode_of(arch: str | None, mode: str | None) -> tuple[str, str]:
    """The (arch, mode) pair, one derived from the other when missing; a mismatch is refused."""
    if arch is not None and arch not in ARCH_MODES:
        raise ParameterError(f"unknown arch {arch!r}; use one of {', '.join(ARCH_MODES)}")
    if mode is not None and mode not in MODE_ARCHS:
        raise ParameterError(f"unknown mode {mode!r}; use 3d (tomograms only) or 2d3d (tomograms and tilt series)")
    if arch is None and mode is None:
        mode = "3d"
    arch = arch or MODE_ARCHS[mode]
    if mode is not None and ARCH_MODES[arch] != mode:
        raise ParameterError(f"arch {arch} is for {ARCH_MODES[arch]} mode, not {mode}; use --arch {MODE_ARCHS[mode]}")
    return arch, ARCH_MODES[arch]


def gather_patches(
    tomograms: Path,
    picker: CandidatePicker,
    *,
    bbox: int,
    mode: str,
    margin: int = 0,
    dtype: str = "float32",
    workers: int = 1,
    order: str = "auto",
    reporter: Reporter = SILENT,
) -> Patches:
    """Pick candidates in every tomogram of a list (or folder) and cut their views, in list order."""
    entries = find_tomograms(tomograms, mode)
    names, coords, views3d, views2d, dropped = [], [], [], [], 0
    with reporter.phase("picking and cutting patches", len(entries)) as advance:
        for batch in stream_patches(entries, picker, bbox, mode, margin=margin, dtype=dtype, workers=workers,
                                    order=order, reporter=reporter):
            names.append(np.full(len(batch.coords), batch.name, dtype=object))
            coords.append(batch.coords)
            views3d.append(batch.views3d)
            if batch.views2d is not None:
                views2d.append(batch.views2d)
            dropped += batch.dropped
            advance(1)
    if not sum(len(block) for block in coords):
        raise ParameterError(f"no patches in {tomograms}: every candidate was too near an edge; lower --bbox or "
                             "the picking borders")
    return Patches(
        names=np.concatenate(names).astype(str),
        coords=np.concatenate(coords),
        views3d=np.concatenate(views3d),
        views2d=np.concatenate(views2d) if views2d else None,
        dropped=dropped,
    )
