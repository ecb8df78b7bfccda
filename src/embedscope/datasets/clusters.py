"""Clustered vectors whose clusters are curved arcs that may overlap, with their true labels.

Harder than Gaussian blobs (which any method separates), so maps and clusterings can be compared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

CHUNK = 65_536


def curved_clusters(
    n: int,
    dim: int,
    clusters: int = 8,
    *,
    separation: float = 3.0,
    noise: float = 0.35,
    width: int = 0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return `(vectors, labels)`: n float32 points on `clusters` noisy arcs in `dim` dimensions.

    Each cluster bends through a random plane around a centre drawn with scale `separation` (lower it to
    make clusters overlap) and spreads (scale 1) along `width` directions of its own, so that with width
    it is a curved sheet whose neighbours are set by its shape more than by the noise. Generated in
    chunks, so 1M x 512 needs only the output.
    """
    if n < 1 or dim < 2 + width or clusters < 1 or width < 0:
        raise ValueError("need n >= 1, clusters >= 1, width >= 0 and dim >= 2 + width")
    random = np.random.default_rng(seed)
    centres = random.normal(scale=separation / np.sqrt(2), size=(clusters, dim))
    planes = np.stack([np.linalg.qr(random.normal(size=(dim, 2 + width)))[0].T for _ in range(clusters)])
    bends = random.uniform(0.6, 1.6, size=clusters)
    labels = random.integers(0, clusters, size=n)
    vectors = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        label = labels[start:stop]
        angle = random.uniform(-1.0, 1.0, size=stop - start) * np.pi * bends[label] / 2
        arc = np.stack([np.sin(angle), 1.0 - np.cos(angle)], axis=1) * 2.0
        if width:
            arc = np.hstack([arc, random.normal(size=(stop - start, width))])
        points = centres[label] + np.einsum("nk,nkd->nd", arc, planes[label])
        points += random.normal(scale=noise, size=points.shape)
        vectors[start:stop] = points
    return vectors, labels


def write_demo_inputs(folder: Path, n: int = 5000, dim: int = 64, seed: int = 0) -> tuple[Path, Path]:
    """Write `vectors.npy`, `metadata.csv` (id, label, score, micrograph, x, y) and the micrographs; return the two.

    Each item is also a particle in `micrographs/`, shaped by its class, so the demo has images to show.
    """
    from embedscope.datasets.micrographs import write_demo_micrographs

    folder.mkdir(parents=True, exist_ok=True)
    vectors, labels = curved_clusters(n, dim, clusters=6, seed=seed)
    vectors_path, metadata_path = folder / "vectors.npy", folder / "metadata.csv"
    np.save(vectors_path, vectors)
    names, centres = write_demo_micrographs(folder / "micrographs", labels, seed)
    score = np.linalg.norm(vectors, axis=1)
    table = pa.table(
        {
            "id": pa.array([str(i) for i in range(n)]),
            "label": pa.array([f"class {label}" for label in labels]),
            "score": pa.array(np.round(score, 3)),
            "micrograph": pa.array([f"micrographs/{name}" for name in names]),
            "x": pa.array(centres[:, 0]),
            "y": pa.array(centres[:, 1]),
        }
    )
    pacsv.write_csv(table, metadata_path)
    return vectors_path, metadata_path
