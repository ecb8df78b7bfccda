"""Sources: files -> items and pixels. Images and their thumbnails and crops; micrographs with prismPYP's lists,
metadata and webp pictures, their real-space and power-spectrum views; tomograms with MiLoPYP's lists,
preprocessing, candidate picking and patch views.

The arrays follow the shared contract: images (H, W), tomograms (Z, Y, X) float32, coordinates (N, 3) int32 x, y, z.
"""

from embedscope.sources.candidates import CandidatePicker
from embedscope.sources.instance_masks import (
    MaskVolume,
    RegionBoxes,
    find_instance_mask,
    open_instance_mask,
    read_instance_mask,
    region_boxes,
)
from embedscope.sources.micrograph_views import (
    WORKING_SIZE,
    MicrographViews,
    downsample,
    micrograph_views,
    robust_normalise,
    stream_views,
    to_uint8,
    views_from_webp,
)
from embedscope.sources.micrographs import (
    MICROGRAPH_SUFFIXES,
    MicrographInputs,
    MicrographMetadata,
    find_micrographs,
    micrograph_name,
    read_metadata,
    read_micrograph,
    read_name_list,
    read_pixel_size,
)
from embedscope.sources.particle_shapes import convex_hull_mask, expand_labels, fit_to_patch
from embedscope.sources.patch_stream import check_entries, extract_at, stream_patches
from embedscope.sources.patches import PatchBatch, patch_side, tilt_columns, views_2d, views_3d
from embedscope.sources.preprocessing import preprocess, preprocess_levels, preprocess_tilts
from embedscope.sources.spectra import power_spectrum, spectrum_frequency
from embedscope.sources.subtomograms import (
    CropBatch,
    CropSettings,
    IntensityScaling,
    SubtomogramJob,
    stream_subtomograms,
)
from embedscope.sources.thumbnails import crop, make_thumbnails, thumbnail
from embedscope.sources.tomogram_files import (
    check_tilt_series,
    open_tomogram,
    read_angles,
    read_tilt_series,
    read_tomogram,
)
from embedscope.sources.tomogram_lists import TomogramEntry, find_tomograms, read_tomogram_list

__all__ = [
    "MICROGRAPH_SUFFIXES",
    "WORKING_SIZE",
    "CandidatePicker",
    "CropBatch",
    "CropSettings",
    "IntensityScaling",
    "MaskVolume",
    "MicrographInputs",
    "MicrographMetadata",
    "MicrographViews",
    "PatchBatch",
    "RegionBoxes",
    "SubtomogramJob",
    "TomogramEntry",
    "check_entries",
    "check_tilt_series",
    "convex_hull_mask",
    "crop",
    "downsample",
    "expand_labels",
    "extract_at",
    "find_instance_mask",
    "find_micrographs",
    "find_tomograms",
    "fit_to_patch",
    "make_thumbnails",
    "micrograph_name",
    "micrograph_views",
    "open_instance_mask",
    "open_tomogram",
    "patch_side",
    "power_spectrum",
    "preprocess",
    "preprocess_levels",
    "preprocess_tilts",
    "read_angles",
    "read_instance_mask",
    "read_metadata",
    "read_micrograph",
    "read_name_list",
    "read_pixel_size",
    "read_tilt_series",
    "read_tomogram",
    "read_tomogram_list",
    "region_boxes",
    "robust_normalise",
    "spectrum_frequency",
    "stream_patches",
    "stream_subtomograms",
    "stream_views",
    "thumbnail",
    "tilt_columns",
    "to_uint8",
    "views_2d",
    "views_3d",
    "views_from_webp",
]
