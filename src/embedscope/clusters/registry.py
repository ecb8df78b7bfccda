"""The clustering methods by name, as the command line and the pipeline ask for them.

One entry point with the CLI's parameter names, so a mistyped combination fails before any work.
"""

from __future__ import annotations

from embedscope.clusters.clusterer import Clusterer
from embedscope.clusters.hdbscan import HDBSCAN
from embedscope.clusters.kmeans import KMeans
from embedscope.clusters.leiden import Leiden
from embedscope.clusters.overcluster import OverCluster
from embedscope.clusters.spectral import Spectral
from embedscope.errors import ParameterError

METHODS = ("kmeans", "spectral", "hdbscan", "leiden", "overcluster")
USED_BY = {
    "--k": ("kmeans", "spectral", "overcluster"),
    "--estimate-k": ("spectral",),
    "--spherical": ("kmeans", "overcluster"),
    "--min-cluster-size": ("hdbscan",),
}


def make_clusterer(
    method: str,
    *,
    k: int | None = None,
    estimate_k: bool = False,
    spherical: bool = False,
    min_cluster_size: int | None = None,
    resolution: float = 1.0,
    n_neighbors: int = 10,
    centres: int = 256,
    metric: str = "euclidean",
    seed: int = 0,
) -> Clusterer:
    """The estimator for `method`, its parameters checked; options the method does not use are refused."""
    if method not in METHODS:
        raise ParameterError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")
    given = {"--k": k is not None, "--estimate-k": estimate_k, "--spherical": spherical,
             "--min-cluster-size": min_cluster_size is not None}
    for option, methods in USED_BY.items():
        if given[option] and method not in methods:
            raise ParameterError(f"{option} does not apply to {method}, only to {', '.join(methods)}: drop it")
    if method == "kmeans":
        return KMeans(k, spherical=spherical, metric=metric, random_state=seed)
    if method == "spectral":
        return Spectral(k, estimate_k=estimate_k, n_neighbors=n_neighbors, metric=metric, random_state=seed)
    if method == "hdbscan":
        return HDBSCAN(min_cluster_size, min_samples=n_neighbors, metric=metric)
    if method == "leiden":
        return Leiden(resolution, n_neighbors=n_neighbors, metric=metric, random_state=seed)
    return OverCluster(k, n_centres=centres, n_neighbors=n_neighbors, spherical=spherical, metric=metric,
                       random_state=seed)
