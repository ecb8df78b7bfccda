"""Synthetic data with known structure, for tests, benchmarks and `make demo`.

Nothing here is downloaded: every set is generated from a seed.
"""

from embedscope.datasets.clusters import curved_clusters, write_demo_inputs
from embedscope.datasets.micrographs import write_demo_micrographs

__all__ = ["curved_clusters", "write_demo_inputs", "write_demo_micrographs"]
