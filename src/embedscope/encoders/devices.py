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
