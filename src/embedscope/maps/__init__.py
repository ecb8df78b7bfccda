"""Maps: vectors -> positions. Neighbour graphs, then PCA, UMAP, t-SNE and PHATE as scikit-learn-style estimators,
sample-then-place for millions of vectors, and the registry of methods by name.

Everything here takes and returns arrays: `UMAP(n_neighbors=30).fit_transform(X)` works on any (n, dim) array.
"""

from embedscope.maps.neighbors import METRICS, KnnGraph, NearestNeighbors, knn_graph, prepare, rerank
from embedscope.maps.pca import PCA, reduce_dims
from embedscope.maps.phate import PHATE
from embedscope.maps.placement import sample_then_place
from embedscope.maps.projector import Projector
from embedscope.maps.registry import MAX_FIT, METHODS, fit_map, make_projection, project
from embedscope.maps.tsne import TSNE
from embedscope.maps.umap import UMAP

__all__ = [
    "MAX_FIT",
    "METHODS",
    "METRICS",
    "PCA",
    "PHATE",
    "TSNE",
    "UMAP",
    "KnnGraph",
    "NearestNeighbors",
    "Projector",
    "fit_map",
    "knn_graph",
    "make_projection",
    "prepare",
    "project",
    "reduce_dims",
    "rerank",
    "sample_then_place",
]
