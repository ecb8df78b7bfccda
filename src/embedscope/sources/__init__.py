"""Sources: files -> items and pixels. Images and their thumbnails and crops; tomograms with MiLoPYP's lists,
preprocessing, candidate picking and patch views.

The arrays follow the shared contract: images (H, W), tomograms (Z, Y, X) float32, coordinates (N, 3) int32 x, y, z.
"""

from embedscope.sources.candidates import CandidatePicker
from embedscope.sources.patch_stream import check_entries, extract_at, stream_patches
from embedscope.sources.patches import PatchBatch, patch_side, tilt_columns, views_2d, views_3d
from embedscope.sources.preprocessing import preprocess, preprocess_levels, preprocess_tilts
from embedscope.sources.thumbnails import crop, make_thumbnails, power_spectrum, thumbnail, to_uint8
from embedscope.sources.tomogram_files import (
    check_tilt_series,
    open_tomogram,
    read_angles,
    read_tilt_series,
    read_tomogram,
)
from embedscope.sources.tomogram_lists import TomogramEntry, find_tomograms, read_tomogram_list

__all__ = [
    "CandidatePicker",
    "PatchBatch",
    "TomogramEntry",
    "check_entries",
    "check_tilt_series",
    "crop",
    "extract_at",
    "find_tomograms",
    "make_thumbnails",
    "open_tomogram",
    "patch_side",
    "power_spectrum",
    "preprocess",
    "preprocess_levels",
    "preprocess_tilts",
    "read_angles",
    "read_tilt_series",
    "read_tomogram",
    "read_tomogram_list",
    "stream_patches",
    "thumbnail",
    "tilt_columns",
    "to_uint8",
    "views_2d",
    "views_3d",
]
