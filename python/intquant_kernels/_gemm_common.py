"""Argument resolution shared by the fast gemm/qgemm and the reference."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate as v


@dataclass(frozen=True)
class QgemmEpilogue:
    """The resolved epilogue of qgemm (see reference.qgemm for the arithmetic)."""

    scale: np.ndarray  # (N,) float32: float32(a_scale * b_scale[n]), or the requantize multiplier
    bias: np.ndarray | None  # (N,) float32, float output only
    bias_q: np.ndarray | None  # (N,) int64, requantized output only
    relu: bool
    out_dtype: np.dtype
    requantize: bool
    out_zp: int
    lo: int
    hi: int


def resolve_qgemm(n, a_scale, b_scale, bias, relu, out_scale, out_zero_point, out_dtype) -> QgemmEpilogue:
    # This runs on every qgemm call: few NumPy calls, one errstate.
    a_s = v.positive_scale(a_scale, "a_scale")
    # b_scale's values are tested through the product: a finite positive a_scale
    # times an invalid b_scale is never finite and positive.
    b_s = v.positive_scale(b_scale, "b_scale", (n,), check_values=False)
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu must be a bool, got {type(relu).__name__}")
    relu = bool(relu)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        s = np.multiply(a_s, b_s, dtype=np.float32)
        if s.ndim == 0:
            s = np.full(n, s, np.float32)
        if not (np.isfinite(s) & (s > 0)).all():
            v.positive_scale(b_s, "b_scale", (n,))  # names b_scale if it is the culprit
            raise ValueError("a_scale * b_scale must be finite and > 0 in float32 for every column")

        bias_a = None
        if bias is not None:
            bias_a = np.asarray(bias)
            if bias_a.dtype.kind not in "fi":
                raise TypeError(f"bias must be a float or int32 array, got dtype {bias_a.dtype}")
            if bias_a.ndim > 1 or (bias_a.ndim == 1 and bias_a.shape[0] != n):
                raise ValueError(f"bias must be a scalar or have shape ({n},), got {bias_a.shape}")
            if bias_a.ndim == 0:
                bias_a = np.full(n, bias_a, bias_a.dtype)

        if out_scale is None:
            odt = np.dtype(out_dtype)
            if odt != np.float32:
                raise ValueError(f"without out_scale the output is float32; got out_dtype={odt} (give out_scale to requantize)")
            if not (out_zero_point is 0 or out_zero_point == 0):  # noqa: F632
                raise ValueError("out_zero_point applies only to requantized output (give out_scale)")
            if bias_a is not None and bias_a.dtype.kind != "f":
                raise TypeError("an integer bias is a quantized (int32) bias: it applies to requantized output only")
            b32 = None if bias_a is None else np.ascontiguousarray(bias_a, dtype=np.float32)
            return QgemmEpilogue(s, b32, None, relu, odt, False, 0, 0, 0)

        odt = np.dtype(out_dtype)
        if odt not in (np.dtype(np.int8), np.dtype(np.uint8)):
            raise ValueError(f"with out_scale the output is requantized: out_dtype must be int8 or uint8, got {odt}")
        qmin, qmax = v.q_range(odt)
        o_s = v.positive_scale(out_scale, "out_scale")
        ozp = v.scalar_int(out_zero_point, "out_zero_point", qmin, qmax)
        m = np.divide(s, o_s, dtype=np.float32)
        if not np.isfinite(m).all():
            raise ValueError("a_scale * b_scale / out_scale must be finite in float32")
        bias_q = None
        if bias_a is not None:
            if bias_a.dtype.kind == "f":
                bq = np.rint(np.divide(bias_a, s, dtype=np.float32))
                if not (np.abs(bq) <= v.INT32_MAX).all():
                    raise ValueError("bias / (a_scale * b_scale) must be finite and fit int32")
                bias_q = bq.astype(np.int64)
            else:
                if bias_a.dtype != np.int32:
                    raise TypeError(f"an integer bias must be int32, got {bias_a.dtype}")
                bias_q = bias_a.astype(np.int64)
    lo = max(qmin, ozp) if relu else qmin
    return QgemmEpilogue(m, None, bias_q, relu, odt, True, ozp, lo, qmax)
