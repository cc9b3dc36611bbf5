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


def dynamic_quantize(x, *, axis=None, dtype=None):
    x, ax, _ = v.dynamic_args(x, axis, dtype)
    xc = np.require(x, np.float32, ["C_CONTIGUOUS", "ALIGNED"])
    if ax is None:
        q = np.empty(x.shape, np.uint8)
        scale, zero_point, status = _core.dynamic_quantize_tensor(xc, q)
        _raise_for(status, x)
        return q, np.float32(scale), np.uint8(zero_point)
    # Rows along the last axis, as the kernels read them: another axis is
    # moved last by a copy (and the result moved back by another).
    last = ax == x.ndim - 1
    rows = xc if last else np.ascontiguousarray(np.moveaxis(x, ax, -1))
    cols = rows.shape[-1]
    q = np.empty(rows.shape, np.int8)
    scales = np.empty(rows.shape[:-1], np.float32)
    _raise_for(_core.dynamic_quantize_rows(rows, q, scales.size, cols, scales), x)
    return (q if last else np.ascontiguousarray(np.moveaxis(q, -1, ax))), scales


def _raise_for(status, x):
    """The error of a dynamic quantization that did not succeed, as the reference raises it."""
    if status == "not_finite":
        raise v.not_finite_error(x)
    if status == "range_overflow":
        raise v.range_overflow_error(x)
    assert status == "ok", status


quantize.__doc__ = _ref.quantize.__doc__ + """
    ``out``, if given, is a C-contiguous array of the output dtype and ``x``'s
    shape that receives the result. Non-contiguous ``x`` is copied first.
    """
dequantize.__doc__ = _ref.dequantize.__doc__
dynamic_quantize.__doc__ = _ref.dynamic_quantize.__doc__ + """
    Per tensor: two passes over ``x``, the range kernel (threads over blocks)
    then the quantize kernel. Per slice along the last axis: one pass, each
    row quantized right after its range is taken, while it is in cache
    (threads over blocks of rows); along another axis, ``x`` is first copied
    with that axis last, and the result copied back. Non-contiguous ``x`` is
    copied first.
    """
