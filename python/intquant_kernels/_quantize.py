"""Quantize and dequantize on the compiled kernels (see reference.py for the contract)."""
from __future__ import annotations

import numpy as np

from . import _core
from . import _validate as v
from . import reference as _ref


def quantize(x, scale, zero_point=0, *, axis=None, dtype=np.int8, narrow_range=False, out=None):
    if out is not None:
        v.no_overlap(out, "x", x, "scale", scale, "zero_point", zero_point)
    dt = v.q_dtype(dtype)
    qmin, qmax = v.q_range(dt, narrow_range)
    x = v.array_of(x, np.float32, "x")
    p = v.quant_params(x.shape, scale, zero_point, axis, qmin, qmax)
    y = np.empty(x.shape, dt) if out is None else v.check_out(out, x.shape, dt)
    # Aligned as well as contiguous: the scalar kernels load whole floats.
    x = np.require(x, np.float32, ["C_CONTIGUOUS", "ALIGNED"])
    _core.quantize(x, y, p.outer, p.channels, p.inner, p.scale, p.zero_point, qmin, qmax)
    return y


def dequantize(q, scale, zero_point=0, *, axis=None, out=None):
    if out is not None:
        v.no_overlap(out, "q", q, "scale", scale, "zero_point", zero_point)
    q = np.asarray(q)
    dt = v.q_dtype(q.dtype, "q's dtype")
    qmin, qmax = v.q_range(dt)
    p = v.quant_params(q.shape, scale, zero_point, axis, qmin, qmax)
    y = np.empty(q.shape, np.float32) if out is None else v.check_out(out, q.shape, np.float32)
    target = v.aligned(y)
    _core.dequantize(np.ascontiguousarray(q), target, p.outer, p.channels, p.inner, p.scale, p.zero_point)
    return v.finish(y, target)


quantize.__doc__ = _ref.quantize.__doc__ + """
    ``out``, if given, is a C-contiguous array of the output dtype and ``x``'s
    shape that receives the result. Non-contiguous ``x`` is copied first.
    """
dequantize.__doc__ = _ref.dequantize.__doc__
