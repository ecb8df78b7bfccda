"""What the scores share: seeded samples of rows, labels as integer codes (missing ones marked), and the checks
of their arguments.

Labels may be numbers, strings or objects; None and NaN mean "no label" everywhere.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from embedscope.errors import ParameterError
from embedscope.maps import METRICS


def sample_rows(n: int, sample: int | None, seed: int) -> np.ndarray:
    """All rows, or `sample` distinct seeded rows in increasing order."""
    if sample is None or sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))


def label_codes(labels: ArrayLike, n: int, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer codes of labels (-1 where missing), which are present (not None/NaN), and the distinct labels."""
    values = np.asarray(labels)
    if values.ndim != 1 or len(values) != n:
        raise ParameterError(f"{what} have {len(values)} entries for {n} items; give one per item")
    if values.dtype.kind == "f":
        present = ~np.isnan(values)
    elif values.dtype.kind == "O":
        present = np.array([not _missing(value) for value in values], dtype=bool)
    else:
        present = np.ones(n, dtype=bool)
    classes, found = np.unique(values[present], return_inverse=True)
    codes = np.full(n, -1, np.int64)
    codes[present] = found
    return codes, present, classes


def _missing(value: object) -> bool:
    """Whether a label is absent: None or NaN."""
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value))


def is_noise(classes: np.ndarray) -> np.ndarray:
    """Which distinct labels are the noise label -1 of density clusterings."""
    return np.array([value == -1 for value in classes.tolist()], dtype=bool)


def as_matrix(values: np.ndarray, what: str) -> np.ndarray:
    """`values` as an array, refused unless it has one row per item."""
    array = np.asarray(values)
    if array.ndim != 2:
        raise ParameterError(f"{what} must be a 2-D array (items x dimensions); got shape {array.shape}")
    return array


def check_common(k: int, n: int, sample: int | None, metric: str) -> None:
    if k < 1:
        raise ParameterError(f"k must be at least 1; got {k}")
    if k >= n:
        raise ParameterError(f"k={k} needs more than {k} items; there are {n}: lower k")
    check_sample(sample)
    check_metric(metric)


def check_sample(sample: int | None) -> None:
    if sample is not None and sample < 1:
        raise ParameterError(f"sample must be at least 1 (or None for every item); got {sample}")


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")

