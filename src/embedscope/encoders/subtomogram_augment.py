"""Random views of subtomogram batches for SimSiam: flips, 90-degree turns, free rotations, small shifts,
intensity and noise.

A particle's class does not change with its orientation, position or contrast, so the two views of one crop
differ in exactly those; every draw comes from the caller's generator, so views are reproducible. Without free
rotations a particle's pose modulo quarter turns tells two views of it from any other, and SimSiam learns poses
instead of shapes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embedscope.errors import ParameterError

SHIFT_FRACTION = 1 / 8  # largest shift, as a fraction of the side along each axis
SCALE_RANGE = (0.8, 1.2)  # intensity scale
OFFSET_RANGE = 0.1  # intensity offset, up to this many crop standard deviations either way
NOISE_RANGE = 0.2  # Gaussian noise std, up to this many crop standard deviations
SPATIAL_AXES = (2, 3, 4)  # D, H, W of an (N, C, D, H, W) batch
PLANES = ((3, 4), (2, 4), (2, 3))  # turns about D, H, W


def draw_subtomogram_views(batch: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent random views of each (C, D, H, W) crop of a float (N, C, D, H, W) batch, on its device.

    Turns apply only in planes whose two sides are equal; shifts fill with zeros rather than wrap around.
    """
    if batch.ndim != 5 or not batch.is_floating_point():
        raise ParameterError(f"subtomogram views need a float (N, C, D, H, W) batch; got {batch.dtype} "
                             f"of shape {tuple(batch.shape)}")
    return _draw_view(batch, generator), _draw_view(batch, generator)


def _draw_view(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One view: geometry first (flips, turns, shifts), then contrast (scale, offset) and noise."""
    views = _flip(batch, generator)
    views = _turn(views, generator)
    views = _rotate(views, generator)
    views = _shift(views, generator)
    return _jitter_intensity(views, generator)


def _flip(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each crop along each spatial axis with probability 1/2."""
    flips = (torch.rand(len(batch), len(SPATIAL_AXES), generator=generator) < 0.5).to(batch.device)
    for index, axis in enumerate(SPATIAL_AXES):
        chosen = flips[:, index].view(-1, 1, 1, 1, 1)
        batch = torch.where(chosen, batch.flip(axis), batch)
    return batch


def _turn(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Turn each crop by 0-3 quarter turns in each plane whose two sides are equal (a turn keeps the shape)."""
    turns = torch.randint(0, 4, (len(batch), len(PLANES)), generator=generator)
    for index, plane in enumerate(PLANES):
        if batch.shape[plane[0]] != batch.shape[plane[1]]:
            continue
        turned = batch.clone()
        for quarter in (1, 2, 3):
            rows = (turns[:, index] == quarter).nonzero().flatten().to(batch.device)
            if len(rows):
                turned[rows] = torch.rot90(batch[rows], quarter, plane)
        batch = turned
    return batch


def _rotate(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Turn each crop about its centre by a rotation drawn uniformly over all of them (trilinear, zeros outside).

    Only cubic crops turn: normalised grid coordinates would stretch a box whose sides differ."""
    if len(set(batch.shape[2:])) > 1:
        return batch
    quaternions = torch.randn(len(batch), 4, generator=generator)  # a normal 4-vector's direction is uniform
    w, x, y, z = (quaternions / quaternions.norm(dim=1, keepdim=True)).unbind(1)
    matrices = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=1).view(-1, 3, 3)
    affine = torch.cat([matrices, torch.zeros(len(batch), 3, 1)], dim=2).to(batch.device, batch.dtype)
    grid = F.affine_grid(affine, list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _shift(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Move each crop by whole voxels, up to 1/8 of the side along each axis, filling the vacated voxels with 0."""
    sides = batch.shape[2:]
    limits = torch.tensor([int(side * SHIFT_FRACTION) for side in sides])
    offsets = (torch.rand(len(batch), 3, generator=generator) * (2 * limits + 1)).floor().long() - limits
    shifted = torch.zeros_like(batch)
    for row, offset in enumerate(offsets.tolist()):
        source = tuple(slice(max(0, -step), side - max(0, step)) for step, side in zip(offset, sides))
        target = tuple(slice(max(0, step), side - max(0, -step)) for step, side in zip(offset, sides))
        shifted[(row, slice(None), *target)] = batch[(row, slice(None), *source)]
    return shifted


def _jitter_intensity(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Scale each crop by 0.8-1.2, offset it by up to 0.1 of its std, and add noise of std up to 0.2 of its std."""
    n = len(batch)
    low, high = SCALE_RANGE
    scale = low + (high - low) * torch.rand(n, generator=generator)
    offset = OFFSET_RANGE * (2 * torch.rand(n, generator=generator) - 1)
    noise_level = NOISE_RANGE * torch.rand(n, generator=generator)
    noise = torch.randn(batch.shape, generator=generator)
    spread = batch.flatten(1).std(dim=1).view(-1, 1, 1, 1, 1)
    shape = (-1, 1, 1, 1, 1)
    scale, offset, noise_level = (value.view(shape).to(batch.device) for value in (scale, offset, noise_level))
    return batch * scale + spread * (offset + noise_level * noise.to(batch.device))
