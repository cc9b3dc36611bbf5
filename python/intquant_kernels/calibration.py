"""Choosing the range to quantize: the calibrators of Wu et al. (2020), section 4.

Collect the activations of a layer over calibration batches, compute an
amax, turn it into a scale, quantize::

    from intquant_kernels.calibration import HistogramCalibrator, scale_zero_point
    cal = HistogramCalibrator()            # 2048 bins of |x|
    for batch in calibration_batches:
        cal.collect(activations(batch))    # streamed: memory is O(num_bins)
    amax = cal.compute_amax("entropy")     # or "percentile" (percentile=99.99), "mse"
    scale, zero_point = scale_zero_point(amax)            # int8, scale = amax / 127
    q = intquant_kernels.quantize(x, scale, zero_point)

- :class:`MaxCalibrator`: the largest ``|x|`` seen, per tensor or per
  channel (weights: ``axis`` = the output-channel axis).
- :class:`HistogramCalibrator`: percentile, entropy (KL divergence) and MSE
  over a streamed histogram of ``|x|``.
- :func:`scale_zero_point`: the scale (and zero point) of an amax or of a
  min/max range.

The classes here are those of :mod:`intquant_kernels.reference` with their
heavy steps in C++ (the histogram per ISA path, over threads with the GIL
released; the entropy and MSE searches); they give the same counts and choose
the same bins.
"""
from __future__ import annotations

import numpy as np

from . import _core
from . import _validate as v
from . import reference as _ref
from ._calibration_checks import non_finite_error
from ._dispatch import active_isa

__all__ = ["HistogramCalibrator", "MaxCalibrator", "scale_zero_point"]


def _batch_amax(self, x) -> float:
    lo, hi, finite = _core.value_range(active_isa(), x)
    if not finite:
        raise non_finite_error()
    return max(-lo, hi)


class MaxCalibrator(_ref.MaxCalibrator):
    __doc__ = _ref.MaxCalibrator.__doc__
    _batch_amax = _batch_amax


class HistogramCalibrator(_ref.HistogramCalibrator):
    __doc__ = _ref.HistogramCalibrator.__doc__
    _batch_amax = _batch_amax

    def _add(self, x):
        _core.abs_histogram(active_isa(), x, self._counts, self._inv_width)

    def _divergences(self, counts, candidates, levels):
        return _core.histogram_divergences(counts, candidates, levels)

    def _mse(self, candidates, qmax):
        return _core.histogram_mse(self.counts, candidates, qmax)


def _float32_values(value, what):
    a = np.asarray(value)
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise TypeError(f"{what} must be a real number or an array of them, got {a.dtype}")
    if a.ndim > 1:
        raise ValueError(f"{what} must be a scalar or 1-D (per channel), got shape {a.shape}")
    with np.errstate(over="ignore"):
        a32 = a.astype(np.float32)
    if not np.isfinite(a32).all():
        raise ValueError(f"{what} must be finite in float32")
    return a32


def scale_zero_point(amax=None, *, min_val=None, max_val=None, dtype=np.int8, narrow_range=False):
    """The ``(scale, zero_point)`` that quantize a range to ``dtype``.

    With ``qmin, qmax`` the dtype's range ([-128, 127] int8, [-127, 127]
    with ``narrow_range``, [0, 255] uint8), all arithmetic in float32:

    - ``amax`` (scale quantization, zero point 0): ``scale = amax / 127`` for
      int8 (either range: -amax and amax both map inside it), ``amax / 255``
      for uint8 (non-negative data). ``amax`` must be >= 0.
    - ``min_val``, ``max_val`` (affine, as ONNX DynamicQuantizeLinear and
      onnxruntime's quantizer): the range is first extended to include 0
      (``lo = min(min_val, 0)``, ``hi = max(max_val, 0)``); ``scale = (hi - lo)
      / (qmax - qmin)``; ``zero_point = round_half_even(clamp(qmin - lo /
      scale, qmin, qmax))``.

    An empty range (``amax == 0``, or ``lo == hi``) gets ``scale = 1.0``
    (as onnxruntime): every value is then 0 and quantizes to the zero point
    exactly. Scalars give a ``np.float32`` scale and a zero point of
    ``dtype``; 1-D arrays (per channel) give arrays. Exactly one of ``amax``
    and the pair ``min_val``/``max_val`` must be given.
    """
    dt = v.q_dtype(dtype)
    qmin, qmax = v.q_range(dt, narrow_range)
    if (amax is None) == (min_val is None and max_val is None):
        raise TypeError("give either amax or both min_val and max_val")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if amax is not None:
            a = _float32_values(amax, "amax")
            if (a < 0).any():
                raise ValueError("amax must be >= 0")
            span, lo = a, None
            levels = np.float32(255 if dt == np.uint8 else 127)
        else:
            if min_val is None or max_val is None:
                raise TypeError("give both min_val and max_val")
            lo = np.minimum(_float32_values(min_val, "min_val"), np.float32(0))
            hi = np.maximum(_float32_values(max_val, "max_val"), np.float32(0))
            if lo.shape != hi.shape:
                raise ValueError(f"min_val and max_val must have the same shape, got {lo.shape} and {hi.shape}")
            span = hi - lo
            levels = np.float32(qmax - qmin)
        scale = np.where(span == 0, np.float32(1), span / levels).astype(np.float32)
        if not (np.isfinite(scale) & (scale > 0)).all():
            raise ValueError("the scale of this range is not finite and > 0 in float32")
        if lo is None:
            zp = np.zeros(scale.shape, dt)
        else:
            zp = np.rint(np.clip(np.float32(qmin) - lo / scale, qmin, qmax)).astype(dt)
    if scale.ndim == 0:
        return np.float32(scale), zp[()]
    return scale, zp
