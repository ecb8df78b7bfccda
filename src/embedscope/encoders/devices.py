"""Choose the torch device a user asked for: "auto" (a CUDA GPU when there is one), "cpu" or "cuda"."""

from __future__ import annotations

import torch

from embedscope.errors import ParameterError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """The torch.device for `name`; asking for "cuda" on a machine without a GPU is a ParameterError."""
    if name not in DEVICE_CHOICES:
        raise ParameterError(f"device must be one of {', '.join(DEVICE_CHOICES)}; got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu or auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The reduced precision for autocast on `device`: bfloat16 (or float16 on older GPUs) on a GPU, else None.

    The CPU keeps float32: bfloat16 there is slower on most CPUs and changes the results.
    """
    if not (enabled and device.type == "cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def mixed_precision(device: torch.device, enabled: bool) -> torch.autocast:
    """Autocast to `autocast_dtype(device, enabled)`, or a disabled autocast where that is None."""
    dtype = autocast_dtype(device, enabled)
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None)
