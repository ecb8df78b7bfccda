"""MiLoPYP's training augmentations as batched tensor operations, seeded by a torch.Generator.

One affine resampling per view does the shifted crop, the flips, the small rotation and the
random resized crop; brightness/contrast jitter, corner erasing and quarter turns follow, in the
order of MiLoPYP's torchvision pipelines (`transforms` for one view, `weak_transforms` for the other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

ERASE_VALUE = 1.0  # MiLoPYP's CornerErasing paints the patch maximum (white) on the [0, 1] scale
ERASE_GAP = 6  # px kept clear on each side of the centre lines


@dataclass(frozen=True)
class ViewRecipe:
    """The random transforms of one view; flips, a shifted crop and a quarter turn are always drawn."""

    rotation_degrees: float = 0.0  # angle uniform in [-r, r] (torchvision RandomRotation)
    crop_scale: tuple[float, float] = (1.0, 1.0)  # area fraction of a square RandomResizedCrop
    brightness: float = 0.0  # factor uniform in [1 - b, 1 + b] (ColorJitter)
    contrast: float = 0.0  # factor uniform in [1 - c, 1 + c] (ColorJitter)
    erase_probability: float = 0.0  # CornerErasing
    erase_scale: tuple[float, float] = (0.01, 0.02)  # erased area as a fraction of the view
    erase_ratio: tuple[float, float] = (0.5, 1.5)  # erased height / width, log-uniform


@dataclass(frozen=True)
class PairRecipe:
    """The recipes of the two views of a positive pair."""

    first: ViewRecipe
    second: ViewRecipe


# tomo_pre_proj_angle_select_new2d3d.py: strong view rotated +-30 deg, both corner-erased.
TILT_AND_TOMOGRAM = PairRecipe(
    first=ViewRecipe(rotation_degrees=30.0, erase_probability=0.5),
    second=ViewRecipe(erase_probability=0.5),
)
# tomo_pre_proj_angle_select_new3d_vol.py: ColorJitter(0.5, 0.2, ...) and RandomResizedCrop, no erasing.
# Saturation and hue jitter do nothing to one-channel images and are left out.
TOMOGRAM_ONLY = PairRecipe(
    first=ViewRecipe(crop_scale=(0.8, 1.0), brightness=0.5, contrast=0.2),
    second=ViewRecipe(crop_scale=(0.9, 1.0), brightness=0.5, contrast=0.2),
)


def draw_view(
    patches: torch.Tensor, recipe: ViewRecipe, *, bbox: int, margin: int, generator: torch.Generator
) -> torch.Tensor:
    """(n, c, S, S) patches in [0, 1] -> (n, c, bbox, bbox) augmented views; all channels move together.

    Each view's crop is centred up to `margin` px away from the patch centre (S = bbox + 2 margin),
    so two views of one patch are MiLoPYP's "neighbouring patch" positives.
    """
    grid = _sampling_grid(len(patches), patches.shape[-1], recipe, bbox, margin, generator)
    views = F.grid_sample(patches, grid.to(patches.device), mode="bilinear", padding_mode="zeros", align_corners=False)
    if recipe.brightness or recipe.contrast:
        views = jitter(views, recipe, generator)
    if recipe.erase_probability:
        views = _erase_corners(views, recipe, generator)
    return _turn_quarters(views, generator)


def _sampling_grid(
    n: int, size: int, recipe: ViewRecipe, bbox: int, margin: int, generator: torch.Generator
) -> torch.Tensor:
    """grid_sample coordinates of each output pixel u (from the view centre): patch centre + c + M u.

    c = shift + resized-crop offset, M = scale * rotation * flips; in grid_sample's [-1, 1] units
    that is the affine map (bbox / size) M and translation 2 c / size.
    """
    shift = torch.randint(-margin, margin + 1, (n, 2), generator=generator).float()
    flips = torch.where(torch.rand(n, 2, generator=generator) < 0.5, -1.0, 1.0)
    angle = (2 * torch.rand(n, generator=generator) - 1) * math.radians(recipe.rotation_degrees)
    low, high = recipe.crop_scale
    scale = torch.sqrt(low + (high - low) * torch.rand(n, generator=generator))
    offset = (2 * torch.rand(n, 2, generator=generator) - 1) * ((1 - scale) * bbox / 2)[:, None]
    cos, sin = torch.cos(angle), torch.sin(angle)
    columns = torch.stack([torch.stack([cos, sin], dim=1), torch.stack([-sin, cos], dim=1)], dim=2)
    matrix = columns * flips[:, None, :] * scale[:, None, None]  # (n, 2, 2) acting on (x, y)
    theta = torch.cat([matrix * (bbox / size), (2 / size) * (shift + offset)[:, :, None]], dim=2)
    return F.affine_grid(theta, [n, 1, bbox, bbox], align_corners=False)


def jitter(views: torch.Tensor, recipe: ViewRecipe, generator: torch.Generator) -> torch.Tensor:
    """Brightness and contrast factors, applied in a random order and clipped to [0, 1] like ColorJitter."""
    n, shape = len(views), (len(views), 1, 1, 1)
    brightness = (1 + recipe.brightness * (2 * torch.rand(n, generator=generator) - 1)).clamp(min=0)
    contrast = (1 + recipe.contrast * (2 * torch.rand(n, generator=generator) - 1)).clamp(min=0)
    brightness_first = torch.rand(n, generator=generator) < 0.5
    brightness, contrast = brightness.to(views.device).view(shape), contrast.to(views.device).view(shape)

    def brighten(x: torch.Tensor) -> torch.Tensor:
        return (x * brightness).clamp(0, 1)

    def stretch(x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (mean + contrast * (x - mean)).clamp(0, 1)

    order = brightness_first.to(views.device).view(shape)
    return torch.where(order, stretch(brighten(views)), brighten(stretch(views)))


def _erase_corners(views: torch.Tensor, recipe: ViewRecipe, generator: torch.Generator) -> torch.Tensor:
    """MiLoPYP's CornerErasing: a small rectangle set to white, kept off the centre lines of the view."""
    n, size = len(views), views.shape[-1]
    middle = size // 2
    low, high = recipe.erase_scale
    area = size * size * (low + (high - low) * torch.rand(n, generator=generator))
    log_low, log_high = math.log(recipe.erase_ratio[0]), math.log(recipe.erase_ratio[1])
    aspect = torch.exp(log_low + (log_high - log_low) * torch.rand(n, generator=generator))
    height, width = torch.round(torch.sqrt(area * aspect)), torch.round(torch.sqrt(area / aspect))
    chosen = (torch.rand(n, generator=generator) < recipe.erase_probability) & (height < middle) & (width < middle)
    top = _corner_start(height, middle, size, generator)
    left = _corner_start(width, middle, size, generator)
    index = torch.arange(size, dtype=torch.float32)
    rows = (index[None, :] >= top[:, None]) & (index[None, :] < (top + height)[:, None])
    cols = (index[None, :] >= left[:, None]) & (index[None, :] < (left + width)[:, None])
    mask = chosen[:, None, None] & rows[:, :, None] & cols[:, None, :]
    return views.masked_fill(mask[:, None].to(views.device), ERASE_VALUE)


def _corner_start(extent: torch.Tensor, middle: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """First row (or column) of an erased rectangle: in [0, middle - extent - 6) or [middle + 6, size - extent + 6)."""
    n = len(extent)
    before_end = (middle - extent - ERASE_GAP).clamp(min=1)
    after_start = middle + ERASE_GAP
    after_end = (size - extent + ERASE_GAP).clamp(min=after_start + 1)
    draw = torch.rand(n, generator=generator)
    before = torch.floor(draw * before_end)
    after = after_start + torch.floor(draw * (after_end - after_start))
    return torch.where(torch.rand(n, generator=generator) < 0.5, before, after)


def _turn_quarters(views: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """MiLoPYP's FixedRotation: each view turned by 0, 90, 180 or 270 degrees."""
    turns = torch.randint(0, 4, (len(views),), generator=generator).to(views.device)
    turned = views.clone()
    for quarter in (1, 2, 3):
        chosen = torch.nonzero(turns == quarter).flatten()
        if len(chosen):
            turned[chosen] = torch.rot90(views[chosen], quarter, dims=(2, 3))
    return turned
