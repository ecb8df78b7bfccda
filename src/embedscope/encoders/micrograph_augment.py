"""prismPYP's training views of micrographs and power spectra as batched tensor operations, seeded by a Generator.

Views are resized once (with antialiasing, as PIL does) to the network's input size, then one affine resampling
per batch places every view. Inputs stay on prismPYP's scale: values in [0, 1] in three equal channels
(prismPYP defines ImageNet's Normalize but never applies it, in train or eval2d), so its checkpoints see what
they were trained on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from embedscope.encoders.augment import ViewRecipe, jitter
from embedscope.errors import ParameterError

DOMAINS = ("real", "fft")
INPUT_SIZE = 224
COLOUR_JITTER = ViewRecipe(brightness=0.2, contrast=0.2)  # ColorJitter(0.2, 0.2, ...): hue/saturation act on no grey
NOISE_STD = 0.03  # largest std of the added Gaussian noise, on the [0, 1] scale
# real domain (prismPYP's `augmentation` without --use-fft)
CROP_AREA = (0.8, 1.0)  # RandomResizedCrop scale
CROP_RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's aspect ratios
ROTATION_DEGREES = 60.0  # RandomRotation(60)
BLUR_SIGMA = (0.1, 0.5)  # px at the input size; prismPYP's GaussianBlur([.1, .5]), applied to every view
BLUR_RADIUS = 2  # px each side of the kernel's centre, 4 sigma at the widest
# Fourier domain: every transform is centred, so the zero frequency stays in the middle
ZOOM_AREA = (0.9, 1.0)  # RandomResizedCrop(224, (0.9, 1)), here kept centred: a small change of defocus
STRETCH = (0.8, 1.2)  # RandomRadialStretch(max_scale=0.2), with probability 0.5
CENTRE_RADIUS = (0.03, 0.15)  # of the half-width: the dimmed low-frequency disc (prismPYP's HPF), probability 0.5


def prepare_micrographs(batch: torch.Tensor, input_size: int = INPUT_SIZE) -> torch.Tensor:
    """uint8 (b, S, S) views -> float (b, 3, input_size, input_size) in [0, 1], prismPYP's eval transform.

    That is Resize((input_size, input_size)) with antialiasing, ToTensor, and the grey copied to three channels.
    """
    return _unit_images(batch, input_size).expand(-1, 3, -1, -1)


def draw_micrograph_view(
    batch: torch.Tensor, domain: str, *, input_size: int = INPUT_SIZE, generator: torch.Generator
) -> torch.Tensor:
    """One random training view of each uint8 (b, S, S) image -> float (b, 3, input_size, input_size) in [0, 1].

    "real": resized crop, flips, rotation up to 60 deg, brightness/contrast, blur, noise. "fft": only what keeps
    a power spectrum physical: a centred zoom and radial stretch, flips, any rotation about the centre,
    brightness/contrast, a dimmed centre and centro-symmetric noise, so a symmetric spectrum stays symmetric.
    """
    if domain not in DOMAINS:
        raise ParameterError(f"domain must be one of {', '.join(DOMAINS)}; got {domain!r}")
    images = _unit_images(batch, input_size)
    n = len(images)
    theta = (_real_geometry if domain == "real" else _fourier_geometry)(n, generator).to(images.device)
    grid = F.affine_grid(theta, [n, 1, input_size, input_size], align_corners=False)
    padding = "zeros" if domain == "real" else "reflection"  # RandomRotation's black fill; reflection for spectra
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    views = jitter(views, COLOUR_JITTER, generator)
    views = _blur(views, generator) if domain == "real" else _dim_centre(views, generator)
    views = _add_noise(views, generator, centro_symmetric=domain == "fft")
    return views.clamp(0, 1).expand(-1, 3, -1, -1)


def _unit_images(batch: torch.Tensor, input_size: int) -> torch.Tensor:
    """uint8 (b, S, S) -> float (b, 1, input_size, input_size) as value / 255, resized with antialiasing."""
    if batch.dtype != torch.uint8 or batch.ndim != 3 or batch.shape[1] != batch.shape[2]:
        raise ParameterError(f"micrograph views must be uint8 (b, S, S); got {batch.dtype} {tuple(batch.shape)}")
    if input_size < 8:
        raise ParameterError(f"input size must be at least 8 px; got {input_size}")
    images = batch.unsqueeze(1).float().div_(255.0)
    if images.shape[-1] == input_size:
        return images
    resized = F.interpolate(images, size=(input_size, input_size), mode="bilinear", antialias=True, align_corners=False)
    return resized.clamp_(0, 1)


def _real_geometry(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) affine maps, output -> input in grid_sample units: crop offset + crop size * flips * rotation.

    The order is prismPYP's (crop, flips, then rotation of the cropped view); rotated corners show the image
    around the crop where it exists and black beyond it.
    """
    low, high = CROP_AREA
    area = low + (high - low) * torch.rand(n, generator=generator)
    log_low, log_high = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    ratio = torch.exp(log_low + (log_high - log_low) * torch.rand(n, generator=generator))
    ratio = torch.minimum(torch.maximum(ratio, area), 1 / area)  # keeps both sides within the image
    size = torch.stack([torch.sqrt(area * ratio), torch.sqrt(area / ratio)], dim=1)  # (width, height) fractions
    offset = (2 * torch.rand(n, 2, generator=generator) - 1) * (1 - size)
    flips = _flips(n, generator)
    angle = (2 * torch.rand(n, generator=generator) - 1) * math.radians(ROTATION_DEGREES)
    matrix = size[:, :, None] * flips[:, :, None] * _rotations(angle)
    return torch.cat([matrix, offset[:, :, None]], dim=2)


def _fourier_geometry(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) linear maps about the centre (no translation): zoom * stretch * flips * any rotation."""
    low, high = ZOOM_AREA
    zoom = torch.sqrt(low + (high - low) * torch.rand(n, generator=generator))
    low, high = STRETCH
    stretch = low + (high - low) * torch.rand(n, generator=generator)
    stretch = torch.where(torch.rand(n, generator=generator) < 0.5, stretch, torch.ones(n))
    flips = _flips(n, generator)
    angle = (2 * torch.rand(n, generator=generator) - 1) * math.pi
    matrix = (zoom * stretch)[:, None, None] * flips[:, :, None] * _rotations(angle)
    return torch.cat([matrix, torch.zeros(n, 2, 1)], dim=2)


def _flips(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 2) signs: each of the horizontal and vertical flips with probability 0.5."""
    return torch.where(torch.rand(n, 2, generator=generator) < 0.5, -1.0, 1.0)


def _rotations(angle: torch.Tensor) -> torch.Tensor:
    """(n, 2, 2) rotation matrices acting on (x, y) grid coordinates."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([cos, -sin], dim=1), torch.stack([sin, cos], dim=1)], dim=1)


def _blur(views: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A Gaussian blur of sigma uniform in BLUR_SIGMA px for each view: one separable grouped convolution."""
    n, size = len(views), views.shape[-1]
    low, high = BLUR_SIGMA
    sigma = low + (high - low) * torch.rand(n, generator=generator)
    taps = torch.arange(-BLUR_RADIUS, BLUR_RADIUS + 1, dtype=torch.float32)
    kernels = torch.exp(-0.5 * (taps[None, :] / sigma[:, None]) ** 2)
    kernels = (kernels / kernels.sum(dim=1, keepdim=True)).to(views.device, views.dtype)
    padded = F.pad(views.reshape(1, n, size, size), (BLUR_RADIUS,) * 4, mode="reflect")
    rows = F.conv2d(padded, kernels[:, None, :, None], groups=n)
    return F.conv2d(rows, kernels[:, None, None, :], groups=n).reshape(n, 1, size, size)


def _dim_centre(views: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """In half the views, the lowest frequencies dimmed by a centred Gaussian (prismPYP's high-pass, softened)."""
    n, size = len(views), views.shape[-1]
    low, high = CENTRE_RADIUS
    radius = low + (high - low) * torch.rand(n, generator=generator)
    depth = torch.rand(n, generator=generator) * (torch.rand(n, generator=generator) < 0.5)
    axis = (2 * torch.arange(size, dtype=torch.float32) + 1) / size - 1  # pixel centres in grid units
    distance = axis[None, :, None] ** 2 + axis[None, None, :] ** 2
    gain = 1 - depth[:, None, None] * torch.exp(-0.5 * distance / radius[:, None, None] ** 2)
    return views * gain[:, None].to(views.device, views.dtype)


def _add_noise(views: torch.Tensor, generator: torch.Generator, *, centro_symmetric: bool) -> torch.Tensor:
    """Gaussian noise of a std uniform in [0, NOISE_STD] per view; symmetrised about the centre for spectra."""
    n = len(views)
    noise = torch.randn(views.shape, generator=generator)
    if centro_symmetric:  # a real image's power spectrum is point-symmetric, its noise included
        noise = (noise + noise.flip(-2, -1)) / math.sqrt(2)
    std = NOISE_STD * torch.rand(n, generator=generator)
    return views + (std[:, None, None, None] * noise).to(views.device, views.dtype)
