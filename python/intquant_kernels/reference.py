"""The NumPy reference: the definition of every result the kernels produce.

Written for reading, not speed: whole-array NumPy, no blocking. Every ISA path
of every op must return bit-identical results to the function of the same name
here, for every dtype and option; the tests and ``python -m intquant_kernels
validate`` check exactly that.
"""
from __future__ import annotations

import numpy as np

from . import _validate as v

__all__ = ["quantize", "dequantize"]


def quantize(x, scale, zero_point=0, *, axis=None, dtype=np.int8, narrow_range=False, out=None):
    """Quantize float32 ``x`` to int8 or uint8 (ONNX QuantizeLinear).

    ``q = saturate(round_half_to_even(x / scale) + zero_point)``, where

    - ``x / scale`` is a true float32 division (not a multiplication by a
      reciprocal, which can round differently);
    - rounding is to the nearest integer, ties to even (2.5 -> 2, 3.5 -> 4),
      and happens *before* the zero point is added;
    - saturation clamps to the dtype's range: [-128, 127] for int8,
      [0, 255] for uint8, [-127, 127] for int8 with ``narrow_range=True``;
    - +Inf saturates to the top of the range, -Inf to the bottom, and NaN
      maps to the zero point.

    ``scale`` and ``zero_point`` are scalars (per-tensor) or 1-D with one entry
    per channel along ``axis`` (per-channel); a scalar given with ``axis``
    applies to every channel.
    """
    dt = v.q_dtype(dtype)
    qmin, qmax = v.q_range(dt, narrow_range)
    x = v.array_of(x, np.float32, "x")
    p = v.quant_params(x.shape, scale, zero_point, axis, qmin, qmax)
    s = p.broadcast(x.ndim, p.scale)
    zp = p.broadcast(x.ndim, p.zero_point)

    with np.errstate(over="ignore", invalid="ignore"):
        r = np.rint(x / s)  # float32 / float32 -> float32
    r = np.where(np.isnan(r), np.float32(0), r)
    # r is integral; in float64, r + zp is exact wherever it matters
    # (anything beyond 2**53 saturates anyway).
    q = np.clip(r.astype(np.float64) + zp, qmin, qmax).astype(dt)
    if out is None:
        return q
    v.check_out(out, x.shape, dt)[...] = q
    return out


def dequantize(q, scale, zero_point=0, *, axis=None, out=None):
    """Dequantize int8/uint8 ``q`` to float32 (ONNX DequantizeLinear).

    ``x = float32(q - zero_point) * scale``: the difference is exact, so the
    float32 multiply is the only rounding. Granularity rules are those of
    :func:`quantize`; ``zero_point`` must lie in ``q``'s dtype range.
    """
    q = np.asarray(q)
    dt = v.q_dtype(q.dtype, "q's dtype")
    qmin, qmax = v.q_range(dt)
    p = v.quant_params(q.shape, scale, zero_point, axis, qmin, qmax)
    s = p.broadcast(q.ndim, p.scale)
    zp = p.broadcast(q.ndim, p.zero_point)
    x = (q.astype(np.int32) - zp).astype(np.float32) * s
    if out is None:
        return x
    v.check_out(out, q.shape, np.float32)[...] = x
    return out
