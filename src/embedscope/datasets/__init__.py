"""Synthetic data with known structure, for tests, benchmarks and `make demo`.

Nothing here is downloaded: every set is generated from a seed.
"""

from embedscope.datasets.clusters import curved_clusters, write_demo_inputs
from embedscope.datasets.ctf import ctf_2d, ctf_zero_frequencies, electron_wavelength
from embedscope.datasets.instance_masks import synthetic_instance_mask, write_demo_subtomograms
from embedscope.datasets.micrographs import write_demo_micrographs
from embedscope.datasets.quality_micrographs import (
    QUALITY_CLASSES,
    QualitySet,
    synthetic_micrograph,
    write_quality_micrographs,
)
from embedscope.datasets.tomograms import (
    project_tilt_series,
    synthetic_tomogram,
    write_demo_tomograms,
)

__all__ = [
    "QUALITY_CLASSES",
    "QualitySet",
    "ctf_2d",
    "ctf_zero_frequencies",
    "curved_clusters",
    "electron_wavelength",
    "project_tilt_series",
    "synthetic_instance_mask",
    "synthetic_micrograph",
    "synthetic_tomogram",
    "write_demo_inputs",
    "write_demo_micrographs",
    "write_demo_subtomograms",
    "write_demo_tomograms",
    "write_quality_micrographs",
]
