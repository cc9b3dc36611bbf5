"""Argument checks shared by the calibrators of :mod:`intquant_kernels.calibration`
and their NumPy references (:mod:`intquant_kernels.reference`): both accept and
reject the same inputs with the same messages."""
from __future__ import annotations

import numbers
import operator

import numpy as np

from . import _validate as v

METHODS = ("percentile", "entropy", "mse")
MAX_BINS = 1 << 24  # bins are uint32 indices in the kernels; a histogram this large is already 128 MB


def batch(x) -> np.ndarray:
    """A batch of calibration data: a float32 array (no silent casts, as
    :func:`quantize`), C-contiguous."""
    return np.ascontiguousarray(v.array_of(x, np.float32, "calibration data x"))


def non_finite_error() -> ValueError:
    return ValueError("calibration data x contains NaN or Inf; calibrators take finite values only "
                      "(nothing of this batch was collected)")


def num_bins(value) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("num_bins must be an integer, got bool")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"num_bins must be an integer, got {type(value).__name__}") from None
    if not 1 <= n <= MAX_BINS:
        raise ValueError(f"num_bins must be in [1, {MAX_BINS}], got {n}")
    return n


def flag(value, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be a bool, got {type(value).__name__}")
    return bool(value)


def positive_int(value, what: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be an integer, got bool")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {type(value).__name__}") from None
    if n < 1:
        raise ValueError(f"{what} must be >= 1, got {n}")
    return n


def method(value) -> str:
    if value not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {value!r}")
    return value


def percentile(value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"percentile must be a number, got {type(value).__name__}")
    p = float(value)
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    return p
