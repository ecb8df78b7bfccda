"""Clusters: vectors -> labels. k-means (also spherical), spectral with the eigengap k, HDBSCAN, Leiden and MiLoPYP's
over-clustering, as scikit-learn-style estimators whose labels are numbered by decreasing cluster size.

Everything here takes and returns arrays: `KMeans(n_clusters=8).fit_predict(X)` works on any (n, dim) array.
"""

from embedscope.clusters.clusterer import Clusterer, by_size
from embedscope.clusters.hdbscan import HDBSCAN
from embedscope.clusters.kmeans import KMeans, kmeans_centres, nearest_centres
from embedscope.clusters.leiden import Leiden
from embedscope.clusters.overcluster import OverCluster
from embedscope.clusters.registry import METHODS, make_clusterer
from embedscope.clusters.spectral import Spectral, eigengap_k, knn_affinity, spectral_clusters

__all__ = [
    "HDBSCAN",
    "METHODS",
    "Clusterer",
    "KMeans",
    "Leiden",
    "OverCluster",
    "Spectral",
    "by_size",
    "eigengap_k",
    "kmeans_centres",
    "knn_affinity",
    "make_clusterer",
    "nearest_centres",
    "spectral_clusters",
]
