"""The settings every training loop shares (epochs, batch size, learning rate, seed, workers), checked once.

Each loop adds its own checks; the first that fails is raised, so a run with bad settings stops before any work.
"""

from __future__ import annotations

from collections.abc import Sequence

from embedscope.errors import ParameterError


def check_training(
    epochs: int, batch_size: int, lr: float, seed: int, workers: int, extra: Sequence[tuple[bool, str]] = ()
) -> None:
    """Raise a ParameterError naming the first setting that cannot work: the shared ones, then `extra`."""
    checks = [
        (epochs >= 1, f"epochs must be at least 1; got {epochs}"),
        (batch_size >= 2, f"batch size must be at least 2 (batch norm needs two samples); got {batch_size}"),
        (lr > 0, f"learning rate must be positive; got {lr}"),
        (seed >= 0, f"seed must be 0 or more; got {seed}"),
        (workers >= 0, f"workers must be 0 or more; got {workers}"),
        *extra,
    ]
    for ok, message in checks:
        if not ok:
            raise ParameterError(message)
