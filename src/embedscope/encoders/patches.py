"""Patch arrays in memory -> float tensors for the networks: checks, channel stacking, crops, statistics.

Patches stay uint8 or float32 in RAM; only the rows of one batch are converted. uint8 values are
read as value/255 (torchvision's ToTensor, as MiLoPYP does), float32 values as they are, in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from embedscope.errors import ParameterError

STATISTICS_CHUNK = 4096


@dataclass(frozen=True)
class PatchStatistics:
    """Mean and std of each input channel over the training patches' centre crops, for normalisation."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


def check_patches(views3d: np.ndarray, views2d: np.ndarray | None, *, channels: int, smallest: int) -> int:
    """Check the arrays' shape and dtype for a network of `channels` inputs; return the patch side.

    A one-line ParameterError says which array is wrong and what was expected.
    """
    if channels == 2 and views2d is None:
        raise ParameterError("the 2d3d architecture needs tilt-series patches (views2d); none were given")
    if channels == 1 and views2d is not None:
        raise ParameterError("tilt-series patches (views2d) were given for a tomogram-only architecture; use 2d3d")
    for name, array in (("views3d", views3d), ("views2d", views2d)):
        if array is None:
            continue
        if array.dtype not in (np.uint8, np.float32):
            raise ParameterError(f"{name} must be uint8 or float32 patches; got {array.dtype}")
        if array.ndim != 3 or array.shape[1] != array.shape[2]:
            raise ParameterError(f"{name} must be (N, S, S) square patches; got shape {array.shape}")
    if views2d is not None and views2d.shape != views3d.shape:
        raise ParameterError(f"views2d {views2d.shape} and views3d {views3d.shape} must have the same shape")
    if views3d.shape[1] < smallest:
        raise ParameterError(f"patches are {views3d.shape[1]} px but at least {smallest} px are needed")
    return views3d.shape[1]


def check_unit_range(views3d: np.ndarray, views2d: np.ndarray | None) -> None:
    """Refuse float32 patches outside [0, 1] or not finite: augmentation clips and erases on that scale."""
    for name, array in (("views3d", views3d), ("views2d", views2d)):
        if array is None or array.dtype != np.float32:
            continue
        for start in range(0, len(array), STATISTICS_CHUNK):
            chunk = array[start : start + STATISTICS_CHUNK]
            low, high = float(chunk.min(initial=0.0)), float(chunk.max(initial=0.0))
            if not (low >= 0.0 and high <= 1.0):
                raise ParameterError(
                    f"{name} holds values in [{low:g}, {high:g}]; float32 patches must be scaled to [0, 1] "
                    "(MiLoPYP min-max scales each patch) or passed as uint8"
                )


def patch_tensor(views3d: np.ndarray, views2d: np.ndarray | None, rows: np.ndarray | slice) -> torch.Tensor:
    """The chosen rows as a float32 (n, channels, S, S) tensor; channels are (tilt, tomogram) in 2d3d."""
    arrays = [views3d] if views2d is None else [views2d, views3d]
    return torch.stack([_as_unit_float(_rows_of(array, rows)) for array in arrays], dim=1)


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size window of (..., S, S) images (the upper-left one of two when S - size is odd)."""
    start = (images.shape[-1] - size) // 2
    return images[..., start : start + size, start : start + size]


def patch_statistics(views3d: np.ndarray, views2d: np.ndarray | None, bbox: int) -> PatchStatistics:
    """Per-channel mean and (unbiased) std over all centre-cropped patches, as MiLoPYP normalises.

    Sums run in float64 over chunks, so the patches are never copied whole.
    """
    count, sums, squares = 0, None, None
    for start in range(0, len(views3d), STATISTICS_CHUNK):
        chunk = centre_crop(patch_tensor(views3d, views2d, slice(start, start + STATISTICS_CHUNK)), bbox).double()
        chunk_sums, chunk_squares = chunk.sum(dim=(0, 2, 3)), (chunk * chunk).sum(dim=(0, 2, 3))
        sums = chunk_sums if sums is None else sums + chunk_sums
        squares = chunk_squares if squares is None else squares + chunk_squares
        count += chunk[:, 0].numel()
    if sums is None or count < 2:
        raise ParameterError("at least one patch is needed to compute normalisation statistics")
    means = sums / count
    variances = ((squares - count * means * means) / (count - 1)).clamp(min=0.0)
    std = tuple(max(math.sqrt(value), 1e-6) for value in variances.tolist())
    return PatchStatistics(tuple(means.tolist()), std)


def normalise(images: torch.Tensor, statistics: PatchStatistics) -> torch.Tensor:
    """(x - mean) / std per channel, MiLoPYP's final `Normalize` step."""
    shape = (1, len(statistics.mean), 1, 1)
    mean = torch.tensor(statistics.mean, dtype=images.dtype, device=images.device).reshape(shape)
    std = torch.tensor(statistics.std, dtype=images.dtype, device=images.device).reshape(shape)
    return (images - mean) / std


def _rows_of(array: np.ndarray, rows: np.ndarray | slice) -> torch.Tensor:
    part = np.ascontiguousarray(array[rows])
    return torch.from_numpy(part if part.flags.writeable else part.copy())


def _as_unit_float(values: torch.Tensor) -> torch.Tensor:
    return values.float().div_(255.0) if values.dtype == torch.uint8 else values.float()
