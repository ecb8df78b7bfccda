"""The CryoSiam way of cutting subtomograms, re-implemented for the benchmark and the tests to compare against.

What `extract_patches_from_instances_mask` does, with scipy in place of scikit-image: the whole volume scaled, the
labels expanded over the whole volume, regions measured over the whole volume, one full-volume boolean mask per
region, every crop kept in a list, all in one process. Not part of the package.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from scipy import ndimage
from scipy.spatial import ConvexHull

from embedscope.sources.particle_shapes import fit_to_patch
from embedscope.sources.subtomograms import REGION_SCHEMA, CropSettings

FACE_CENTRES = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, -0.5, 0], [0, 0.5, 0], [0, 0, -0.5], [0, 0, 0.5]])


def crop_like_cryosiam(tomogram: np.ndarray, mask: np.ndarray, settings: CropSettings) -> tuple[list, pa.Table]:
    """Crops (each fitted to patch_size, float32) and their regions table, computed the CryoSiam way."""
    image = tomogram.astype(np.float32)
    if settings.intensity is not None:
        scaling = settings.intensity
        image = np.clip((image - scaling.minimum) / (scaling.maximum - scaling.minimum), 0, 1)
        image = (image - scaling.mean) / scaling.std
    labels = whole_volume_expansion(mask, settings.expand_labels)
    crops, rows = [], []
    for label, area, low, high, centroid in whole_volume_regions(labels):
        if (settings.min_particle_size and area < settings.min_particle_size) or (
                settings.max_particle_size and area > settings.max_particle_size):
            continue
        region = labels == label  # the full-volume mask, one per region, as CryoSiam builds it
        box = tuple(slice(a, b) for a, b in zip(low, high))
        sub_mask = region[box]
        patch = image[box].copy()
        hull_area = 0
        if settings.masking_type == 1:
            hull = hull_image(sub_mask)
            patch[~hull] = 0
            hull_area = int(hull.sum())
        elif settings.masking_type == 2:
            patch[~sub_mask] = 0
        crops.append(fit_to_patch(patch, settings.patch_size))
        rows.append([label, area, *low, *high, *centroid, hull_area])
    columns = list(zip(*rows)) if rows else [[] for _ in REGION_SCHEMA.names]
    return crops, pa.table({name: pa.array(values, field.type) for name, values, field
                            in zip(REGION_SCHEMA.names, columns, REGION_SCHEMA)})


def whole_volume_expansion(mask: np.ndarray, distance: int) -> np.ndarray:
    """scikit-image's expand_labels over the whole volume: nearest label for background within `distance`."""
    if distance == 0:
        return mask
    distances, indices = ndimage.distance_transform_edt(mask == 0, return_indices=True)
    out = np.zeros_like(mask)
    near = distances <= distance
    out[near] = mask[tuple(axis[near] for axis in indices)]
    return out


def whole_volume_regions(labels: np.ndarray):
    """regionprops over the whole volume: (label, area, bbox low, bbox high, centroid) per label, ascending."""
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None:
            continue
        label = index + 1
        voxels = np.nonzero(labels[box] == label)
        low = [part.start for part in box]
        high = [part.stop for part in box]
        centroid = [float(np.mean(axis)) + start for axis, start in zip(voxels, low)]
        yield label, len(voxels[0]), low, high, centroid


def hull_image(region: np.ndarray) -> np.ndarray:
    """scikit-image's convex_hull_image in 3D: the hull of every voxel's face centres, tested face by face."""
    points = np.unique((np.argwhere(region)[:, None, :] + FACE_CENTRES).reshape(-1, 3), axis=0)
    equations = ConvexHull(points).equations
    grid = np.indices(region.shape).reshape(3, -1).astype(np.float64)
    inside = np.ones(grid.shape[1], dtype=bool)
    for face in equations:
        inside &= face[:3] @ grid + face[3] < 1e-10
    return inside.reshape(region.shape)
