"""Time and score one projection tool on one data set, in this (fresh) process; print one JSON line.

    python benchmarks/project_tuning.py DATASET TOOL [--out map.npy]

DATASET: digits | curved50k | curved200k | FILE.npy. TOOL: ours-umap, ours-tsne, ours-pca, ours-phate (with the
PCA pre-step above 100 dimensions, as the pipeline runs them), ours-umap-raw, ours-tsne-raw (without it),
umap-learn, opentsne (the reference libraries with their defaults). Time counts imports and the fit, not loading
the data. Quality: trustworthiness@10 and kNN recall@10 against exact neighbours in the input space, over
every point for digits and over 5,000 seeded query points otherwise (an unbiased estimate of the mean).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

K = 10
QUERIES = 5_000
BLOCK = 256


def load(name: str) -> np.ndarray:
    """The named data set as float32 rows."""
    if name == "digits":
        from sklearn.datasets import load_digits

        return load_digits().data.astype(np.float32)
    if name.startswith("curved"):
        from embedscope.datasets import curved_clusters

        n = int(name.removeprefix("curved").replace("k", "000").replace("m", "000000"))
        return curved_clusters(n, 512, clusters=10, seed=0)[0]
    return np.load(name).astype(np.float32)


def run(tool: str, vectors: np.ndarray) -> np.ndarray:
    """Map `vectors` with `tool`, importing what it needs here so the import counts in the time."""
    if tool == "umap-learn":
        import umap

        return umap.UMAP().fit_transform(vectors)
    if tool == "opentsne":
        import openTSNE

        return np.asarray(openTSNE.TSNE().fit(vectors))
    from embedscope.maps import project, reduce_dims

    method = tool.removeprefix("ours-").removesuffix("-raw")
    if not tool.endswith("-raw") and vectors.shape[1] > 100:
        vectors = reduce_dims(vectors, 50)
    return project(vectors, method)


def score(vectors: np.ndarray, mapped: np.ndarray, queries: int = QUERIES, seed: int = 0) -> tuple[float, float]:
    """Trustworthiness@K and recall@K of the map, over all points or a seeded sample of `queries`."""
    import faiss

    n = len(vectors)
    rows = np.arange(n) if n <= queries else np.sort(np.random.default_rng(seed).choice(n, queries, replace=False))
    low = faiss.IndexFlatL2(mapped.shape[1])
    low.add(np.ascontiguousarray(mapped, dtype=np.float32))
    low_neighbours = low.search(np.ascontiguousarray(mapped[rows], dtype=np.float32), K + 1)[1]
    norms = (vectors.astype(np.float64) ** 2).sum(axis=1)
    penalty, kept = 0.0, 0
    for start in range(0, len(rows), BLOCK):
        block = rows[start : start + BLOCK]
        distances = norms[block, None] + norms[None, :] - 2.0 * (vectors[block] @ vectors.T).astype(np.float64)
        distances[np.arange(len(block)), block] = np.inf
        high = np.argpartition(distances, K, axis=1)[:, :K]
        for row, query in enumerate(block):
            mapped_neighbours = [j for j in low_neighbours[start + row] if j != query][:K]
            kept += len(set(mapped_neighbours) & set(high[row]))
            for j in set(mapped_neighbours) - set(high[row]):
                penalty += (distances[row] < distances[row, j]).sum() + 1 - K
    trust = 1.0 - 2.0 * penalty / (len(rows) * K * (2.0 * n - 3.0 * K - 1.0))
    return float(trust), kept / (len(rows) * K)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("tool")
    parser.add_argument("--out")
    args = parser.parse_args()
    vectors = load(args.dataset)
    start = time.perf_counter()
    mapped = run(args.tool, vectors)
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if args.out:
        np.save(args.out, mapped)
    trust, recall = score(vectors, mapped)
    result = {"dataset": args.dataset, "tool": args.tool, "seconds": round(seconds, 1), "peak_gb": round(peak_gb, 2),
              "trustworthiness": round(trust, 4), "recall": round(recall, 4)}
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
