"""Synthetic micrographs: noisy MRC images with one particle per item, its shape set by the item's class.

They give the demo (and tests) real files to crop thumbnails from, laid out as a picking job's output:
a micrograph name and x, y pixel coordinates per particle.
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np

GRID = 10
SPACING = 40
BORDER = 26


def particle(label: int, size: int, angle: float) -> np.ndarray:
    """A size x size particle image whose shape depends on `label`: discs, rings, bars and pairs, turned by `angle`."""
    centre = (size - 1) / 2
    y, x = np.mgrid[:size, :size] - centre
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    radius = np.hypot(u, v)
    scale = size / 4
    shapes = [
        radius < scale,                                                            # disc
        np.abs(radius - scale) < scale / 3,                                        # ring
        (np.abs(u) < scale * 1.4) & (np.abs(v) < scale / 3),                       # bar
        np.hypot(np.abs(u) - scale * 0.8, v) < scale / 2,                          # pair of blobs
        (np.abs(u) < scale * 1.2) & (np.abs(v) < scale * 1.2) & (radius > scale / 2),  # square frame
        (np.abs(u) + np.abs(v)) < scale * 1.2,                                     # diamond
    ]
    return shapes[label % len(shapes)].astype(np.float32)


def write_demo_micrographs(folder: Path, labels: np.ndarray, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Write micrographs holding one particle per label (100 per image) and return each item's file and x, y.

    File names are relative to `folder`; coordinates are pixels, x along columns and y along rows.
    """
    folder.mkdir(parents=True, exist_ok=True)
    random = np.random.default_rng(seed)
    per_image = GRID * GRID
    side = BORDER * 2 + SPACING * (GRID - 1)
    size = SPACING - 8
    names: list[str] = []
    centres = np.empty((len(labels), 2))
    for image_number, start in enumerate(range(0, len(labels), per_image)):
        image = random.normal(scale=0.35, size=(side, side)).astype(np.float32)
        name = f"micrograph_{image_number:03d}.mrc"
        for slot, label in enumerate(labels[start : start + per_image]):
            x = BORDER + SPACING * (slot % GRID) + random.integers(-3, 4)
            y = BORDER + SPACING * (slot // GRID) + random.integers(-3, 4)
            top, left = y - size // 2, x - size // 2
            image[top : top + size, left : left + size] += particle(int(label), size, random.uniform(0, np.pi))
            centres[start + slot] = (x, y)
            names.append(name)
        with mrcfile.new(folder / name, overwrite=True) as mrc:
            mrc.set_data(image)
    return names, centres
