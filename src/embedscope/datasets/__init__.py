"""Synthetic data with known structure, for tests, benchmarks and `make demo`.

Nothing here is downloaded: every set is generated from a seed.
"""

from embedscope.datasets.clusters import curved_clusters, write_demo_inputs
from embedscope.datasets.micrographs import write_demo_micrographs
from embedscope.datasets.tomograms import (
    project_tilt_series,
    synthetic_tomogram,
    write_demo_tomograms,
)

__all__ = [
    "curved_clusters",
    "project_tilt_series",
    "synthetic_tomogram",
    "write_demo_inputs",
    "write_demo_micrographs",
    "write_demo_tomograms",
]
