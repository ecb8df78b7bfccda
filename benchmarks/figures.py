"""Figures against plain matplotlib: a 1M-point scatter and a thumbnail map of 100k items, same data, same run.

Run: `.venv/bin/python benchmarks/figures.py [--n 1000000] [--thumbs-n 100000]`.
Ours is `embedscope figures` end to end (process start, reading the Atlas, drawing, writing WebP); the peer
is what prismPYP and MiLoPYP do: `matplotlib.pyplot.scatter` of every point saved at the same dpi, and for
thumbnails MiLoPYP's greedy walk with one AnnotationBbox per kept image.
Both run in fresh processes under GNU time. Prints Markdown rows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from embedscope import Atlas
from embedscope.datasets import curved_clusters

PEER = """
import numpy as np, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
data = np.load({source!r})
xy, labels = data["xy"], data["labels"]
figure, axes = plt.subplots(figsize=(8, 8), dpi=150)
axes.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab20", s=1, alpha=0.5, linewidths=0)
figure.savefig({output!r})
"""

# MiLoPYP's plot_2d way (REFERENCE.md): walk the points in order, keep one whose squared distance in [0, 1]
# units to every kept one is at least min_dist, and draw each kept image with an AnnotationBbox.
PEER_THUMBNAILS = PEER.replace("figure.savefig", """from matplotlib.offsetbox import AnnotationBbox, OffsetImage
unit = (xy - xy.min(0)) / np.ptp(xy, 0)
kept = []
for row in range(len(unit)):
    if not kept or (((unit[kept] - unit[row]) ** 2).sum(1) >= 1.3e-3).all():
        kept.append(row)
images = np.random.default_rng(0).integers(0, 256, size=(len(kept), 32, 32), dtype=np.uint8)
for image, row in zip(images, kept):
    axes.add_artist(AnnotationBbox(OffsetImage(image, zoom=0.6, cmap="gray"), xy[row], frameon=True, pad=0.1))
figure.savefig""")


def timed(command: list[str]) -> float:
    """Wall seconds of a command, from GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        subprocess.run(["/usr/bin/time", "-f", "%e", "-o", report.name, *command], check=True,
                       stdout=subprocess.DEVNULL)
        return float(report.read().split()[-1])


def map_atlas(folder: Path, n: int, thumbs: bool) -> tuple[Path, np.ndarray, np.ndarray]:
    """An Atlas of n items with a 2D map layer, a label column and, if asked, 32 x 32 thumbnails."""
    vectors, labels = curved_clusters(n, 4, clusters=20, separation=6.0, seed=0)
    xy = vectors[:, :2]
    path = folder / f"map{n}.atlas"
    with Atlas.building(path, 4) as atlas:
        atlas.append(vectors, metadata=pa.table({"label": pa.array(labels.astype(np.int64))}))
        atlas.add_layer("map", {"x": xy[:, 0], "y": xy[:, 1]})
        if thumbs:
            random = np.random.default_rng(0)
            batches = (random.integers(0, 256, size=(min(8192, n - s), 32, 32), dtype=np.uint8)
                       for s in range(0, n, 8192))
            atlas.add_thumbs("mg", batches)
    return path, xy, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--thumbs-n", type=int, default=100_000)
    args = parser.parse_args()
    embedscope = [sys.executable, "-m", "embedscope", "--quiet", "figures"]
    print("| figure | items | tool | seconds | ratio |")
    print("|---|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for n, kind in ((args.n, "scatter"), (args.thumbs_n, "thumbnails")):
            atlas, xy, labels = map_atlas(folder, n, thumbs=kind == "thumbnails")
            source = folder / "points.npz"
            np.savez(source, xy=xy, labels=labels)
            script = PEER if kind == "scatter" else PEER_THUMBNAILS
            peer = timed([sys.executable, "-c", script.format(source=str(source), output=str(folder / "peer.webp"))])
            ours = timed([*embedscope, str(atlas), "--layer", "map", "--color", "label", "--kinds", kind,
                          "-o", str(folder / kind)])
            print(f"| {kind} | {n:,} | matplotlib ({'MiLoPYP-style' if kind != 'scatter' else 'scatter'}) "
                  f"| {peer:.1f} | 1.00 |", flush=True)
            print(f"| {kind} | {n:,} | embedscope figures | {ours:.1f} | {ours / peer:.2f} |", flush=True)


if __name__ == "__main__":
    main()
