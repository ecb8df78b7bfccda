"""One particle's crop as CryoSiam shapes it: labels grown into the background, the convex hull of a particle, and
the padded and centre-cropped patch, each matching the scikit-image or MONAI call CryoSiam makes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull

HULL_TOLERANCE = 1e-10  # a voxel centre this close outside a hull face still counts as inside (as scikit-image)
_DIAMOND = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, -0.5, 0], [0, 0.5, 0], [0, 0, -0.5], [0, 0, 0.5]])


def fit_to_patch(crop: np.ndarray, patch_size: Sequence[int]) -> np.ndarray:
    """`crop` zero-padded (MONAI SpatialPad: the extra half on the far side) and centre-cropped (CenterSpatialCrop:
    from dim // 2 - size // 2) to `patch_size`, as float32."""
    patch = np.zeros(tuple(patch_size), dtype=np.float32)
    source, target = [], []
    for dim, size in zip(crop.shape, patch_size):
        start = dim // 2 - size // 2 if dim > size else 0
        offset = (size - dim) // 2 if dim < size else 0
        length = min(dim, size)
        source.append(slice(start, start + length))
        target.append(slice(offset, offset + length))
    patch[tuple(target)] = crop[tuple(source)]
    return patch


def expand_labels(labels: np.ndarray, distance: int) -> np.ndarray:
    """`labels` where each background voxel within `distance` of a label takes the nearest label (scikit-image's
    expand_labels): particles grow by `distance` voxels but never into each other."""
    if distance == 0 or labels.all() or not labels.any():
        return labels
    distances, nearest = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    return np.where(distances <= distance, labels[tuple(nearest)], 0).astype(labels.dtype, copy=False)


def convex_hull_mask(region: np.ndarray) -> np.ndarray:
    """The voxels of `region`'s box inside the convex hull of its voxels, each voxel taken as the diamond of its six
    face centres: scikit-image's convex_hull_image, which CryoSiam's masking type 1 uses."""
    if not region.any():
        return region.copy()
    surface = np.argwhere(region & ~ndimage.binary_erosion(region))  # inner voxels add no corner of the hull
    corners = np.unique((surface[:, None, :] + _DIAMOND).reshape(-1, 3), axis=0)
    faces = np.unique(ConvexHull(corners).equations, axis=0)  # inside: normal . point + offset < tolerance
    depth, rows, columns = region.shape
    z, y = np.indices((depth, rows)).reshape(2, -1, 1)
    room = HULL_TOLERANCE - faces[:, 3] - faces[:, 0] * z - faces[:, 1] * y  # per (z, y) row and face: bound on x
    across = faces[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = room / across
    upper = np.where(across > 0, limit, np.inf).min(axis=1, keepdims=True)
    lower = np.where(across < 0, limit, -np.inf).max(axis=1, keepdims=True)
    row_open = np.where(across == 0, room > 0, True).all(axis=1, keepdims=True)
    x = np.arange(columns)
    return ((x > lower) & (x < upper) & row_open).reshape(region.shape)
