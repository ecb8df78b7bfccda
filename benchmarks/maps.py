"""Maps against the peers: `embedscope map` vs umap-learn and openTSNE, same data, same run.

Run: `.venv/bin/python benchmarks/maps.py [--sizes 50000,200000] [--methods umap,tsne] [--big]`.
Each tool runs in a fresh process (start-up, reading the data and writing the result included) under
GNU time for wall time and peak memory; quality is scored afterwards on the same seeded sample with
embedscope.metrics. Data: curved clusters (embedscope.datasets) at n x 512, curved sheets at the first
size, and the scikit-learn digits. `--big` adds 1M x 256 (ours only: the peers take hours). Prints Markdown rows.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from embedscope import Atlas
from embedscope.datasets import curved_clusters
from embedscope.metrics import knn_accuracy, knn_recall, trustworthiness

PEERS = {
    "umap": "import umap; Y = umap.UMAP().fit_transform(X)",
    "tsne": "import openTSNE; Y = np.asarray(openTSNE.TSNE().fit(X))",
}
PEER_NAMES = {"umap": "umap-learn", "tsne": "openTSNE"}


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GB) of a command, from GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command], check=True,
                       stdout=subprocess.DEVNULL)
        seconds, kilobytes = report.read().split()[-2:]
    return float(seconds), float(kilobytes) / 1024**2


def run_ours(folder: Path, source: Path, method: str) -> tuple[np.ndarray, float, float]:
    """Import (untimed, fresh Atlas so no cached graph helps), then time `embedscope map`."""
    atlas = folder / f"{method}.atlas"
    shutil.rmtree(atlas, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "embedscope", "import", str(source), "-o", str(atlas), "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    command = [sys.executable, "-m", "embedscope", "map", str(atlas), "--method", method, "--name", "bench", "--quiet"]
    seconds, memory = timed(command)
    layer = Atlas.open(atlas).layer("bench")
    return np.column_stack([layer.column("x").to_numpy(), layer.column("y").to_numpy()]), seconds, memory


def run_peer(folder: Path, source: Path, method: str) -> tuple[np.ndarray, float, float]:
    """Time the peer library with its defaults, loading the same .npy and saving its map."""
    output = folder / f"{method}_peer.npy"
    script = f"import numpy as np; X = np.load({str(source)!r}); {PEERS[method]}; np.save({str(output)!r}, Y)"
    seconds, memory = timed([sys.executable, "-c", script])
    return np.load(output), seconds, memory


def scores(vectors: np.ndarray, labels: np.ndarray, positions: np.ndarray) -> dict[str, float]:
    """Trustworthiness@10, kNN recall@10 and kNN label accuracy of a map, on one seeded sample."""
    return {
        "trust": trustworthiness(vectors, positions, k=10, sample=5000, seed=0),
        "recall": knn_recall(vectors, positions, k=10, sample=5000, seed=0),
        "accuracy": knn_accuracy(positions, labels, k=10, sample=5000, seed=0),
    }


def datasets(sizes: list[int], big: bool):
    """(name, vectors, labels) for each benchmark data set."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    yield "digits 1,797 x 64", digits.data.astype(np.float32), digits.target
    for n in sizes:
        vectors, labels = curved_clusters(n, 512, clusters=12, separation=2.2, seed=0)
        yield f"curved clusters {n:,} x 512", vectors, labels
    # The arcs above are 1-D under noise in 512 dims, so their true 10 neighbours are set by the noise and
    # every tool's recall is near 1%; sheets 5 dims wide under light noise have neighbours a map can keep.
    if sizes:
        vectors, labels = curved_clusters(sizes[0], 512, clusters=12, separation=2.2, noise=0.05, width=4, seed=0)
        yield f"curved sheets {sizes[0]:,} x 512", vectors, labels
    if big:
        vectors, labels = curved_clusters(1_000_000, 256, clusters=20, separation=2.2, seed=1)
        yield "curved clusters 1,000,000 x 256", vectors, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--methods", default="umap,tsne")
    parser.add_argument("--big", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size]
    methods = args.methods.split(",")
    print("| data | method | tool | seconds | peak GB | time ratio | trustworthiness@10 | kNN recall@10 | kNN acc |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as scratch:
        folder = Path(scratch)
        for name, vectors, labels in datasets(sizes, args.big):
            source = folder / "vectors.npy"
            np.save(source, vectors)
            for method in methods:
                big_data = name.startswith("curved clusters 1,000,000")
                if big_data and method != "umap":
                    continue
                ours, ours_seconds, ours_memory = run_ours(folder, source, method)
                ours_scores = scores(vectors, labels, ours)
                if big_data:
                    _row(name, method, "embedscope", ours_seconds, ours_memory, None, ours_scores)
                    continue
                peer, peer_seconds, peer_memory = run_peer(folder, source, method)
                _row(name, method, PEER_NAMES[method], peer_seconds, peer_memory, 1.0, scores(vectors, labels, peer))
                _row(name, method, "embedscope", ours_seconds, ours_memory, ours_seconds / peer_seconds, ours_scores)


def _row(name: str, method: str, tool: str, seconds: float, memory: float, ratio: float | None, score: dict) -> None:
    shown = "" if ratio is None else f"{ratio:.2f}"
    print(
        f"| {name} | {method} | {tool} | {seconds:.1f} | {memory:.1f} | {shown} | {score['trust']:.4f} "
        f"| {score['recall']:.4f} | {score['accuracy']:.4f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
