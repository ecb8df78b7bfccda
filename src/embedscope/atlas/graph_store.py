"""Neighbour graphs cached in an Atlas's `graph/` folder, so projections, clusterings, quality scores
and the viewer's neighbour search compute each graph once.

A graph is keyed by metric, the space it was computed in (`raw`, or a PCA reduction) and k; a
request for fewer neighbours reuses a larger graph. Any change to the items drops every graph.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the graph type is the maps' own; importing maps for it would slow every Atlas open
    from embedscope.maps.neighbors import KnnGraph


def graph_key(metric: str, space: str, k: int) -> str:
    """The manifest key of a graph."""
    return f"knn-{metric}-{space}-k{k}"


def write_graph(atlas_path: Path, key: str, graph: KnnGraph, space: str) -> dict[str, Any]:
    """Write the graph's two arrays under fresh names and return its manifest entry (not committed)."""
    files = {}
    for part, array in (("indices", graph.indices), ("distances", graph.distances)):
        name = free_name(atlas_path, "graph", f"{key}.{part}", ".npy")
        temporary = atlas_path / f"{name}.tmp-{os.getpid()}"
        with open(temporary, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array))
        os.replace(temporary, atlas_path / name)
        files[part] = name
    return {
        "files": files,
        "metric": graph.metric,
        "space": space,
        "k": graph.k,
        "n": len(graph.indices),
        "exact": graph.exact,
    }


def read_graph(atlas_path: Path, entry: dict[str, Any], k: int) -> KnnGraph:
    """The cached graph cut to k neighbours, memory-mapped."""
    from embedscope.maps.neighbors import KnnGraph

    indices = np.load(atlas_path / entry["files"]["indices"], mmap_mode="r")
    distances = np.load(atlas_path / entry["files"]["distances"], mmap_mode="r")
    return KnnGraph(indices, distances, entry["metric"], entry["exact"]).first(k)


def best_cached(graphs: dict[str, dict[str, Any]], metric: str, space: str, k: int) -> dict[str, Any] | None:
    """The cached graph with the fewest neighbours that still has at least k, if any."""
    fitting = [g for g in graphs.values() if g["metric"] == metric and g["space"] == space and g["k"] >= k]
    return min(fitting, key=lambda graph: graph["k"]) if fitting else None


def free_name(atlas_path: Path, folder: str, stem: str, suffix: str) -> str:
    """`folder/stem.suffix`, or `folder/stem.vN.suffix` with the first N not on disk.

    Committed files are never overwritten, so a write that dies leaves the previous state readable.
    """
    candidate, version = f"{folder}/{stem}{suffix}", 1
    while (atlas_path / candidate).exists():
        version += 1
        candidate = f"{folder}/{stem}.v{version}{suffix}"
    return candidate
