"""gemm and qgemm on the compiled kernels (see reference.py for the contract),
and gemm_plan, which says which kernel runs a GEMM."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import _core
from . import _validate as v
from . import reference as _ref
from ._dispatch import active_isa
from ._gemm_common import EpilogueCache, is_per_row, kernel_args, resolve_qgemm, row_scales
from ._packed import PackedWeights, check_no_zero_point

_OUT = _core.OutKind  # what the epilogue writes: i32, f32 or q8


def _packed(b, b_zero_point) -> PackedWeights:
    if isinstance(b, PackedWeights):
        check_no_zero_point(b_zero_point)
        return b
    b = v.weights(b)
    return PackedWeights(b, zero_point=v.column_zero_points(b_zero_point, b.shape[1]))


def _run(a, pw: PackedWeights, a_zero_point, kind, out, out_dtype, ep=None, rows=None):
    isa = active_isa()
    k, n = pw.shape
    a = v.activations(a, k)
    qmin, qmax = v.q_range(a.dtype)
    a_zp = v.scalar_int(a_zero_point, "a_zero_point", qmin, qmax)
    v.accumulator_bound(k, a.dtype, a_zp, pw._span, ep.bias_bound if ep is not None else 0)

    shape = a.shape[:-1] + (n,)
    a2 = a.reshape(math.prod(a.shape[:-1]), k)  # not -1: K may be 0
    if (k > 1 and a2.strides[1] != 1) or (a2.shape[0] > 1 and a2.strides[0] < k):
        a2 = np.ascontiguousarray(a2)

    col_off, epilogue = kernel_args(pw, a_zp + (128 if a.dtype == np.int8 else 0), ep)
    y = np.empty(shape, out_dtype) if out is None else v.check_out(out, shape, out_dtype)
    target = v.aligned(y)
    # Per-row scales (rows): ep.scale holds b_scale and the kernels form each row's scales.
    out_scale = 1.0 if rows is None or ep.out_scale is None else ep.out_scale
    _core.gemm(isa, a2, pw._for_isa(isa), k, n, pw.zero_point if pw._has_zp else None,
               col_off, kind, target.reshape(a2.shape[0], n), *epilogue, rows, out_scale)
    return v.finish(y, target)


@dataclass(frozen=True)
class GemmPlan:
    """Which kernel runs one GEMM on one ISA path, as the C++ table decides it
    (``gemm_kernel_for`` in csrc/runtime/kernel_table.h).

    - ``m``, ``k``, ``n``: the product: ``m`` rows of ``a`` (all its leading
      axes together) by a K x N ``b``.
    - ``kernels``: ``(("gemm", name),)``, the tile kernel as
      :func:`kernel_calls` counts it.
    - ``small_m``: the path's small-M kernel runs it: ``m`` is below
      ``small_m_rows``, the path's threshold (0: one kernel for every shape).
      On ``amx``, GEMMs of fewer than 16 rows (one A tile) run the
      ``avx512_vnni`` kernel, on the same packed weights.
    """

    isa: str
    m: int
    k: int
    n: int
    kernels: tuple
    small_m: bool
    small_m_rows: int

    def __str__(self):
        rule = (f"small M: {self.m} rows < {self.small_m_rows}" if self.small_m else
                f"{self.m} rows >= {self.small_m_rows}, the small-M threshold" if self.small_m_rows else
                "one kernel for every M")
        return (f"gemm {self.m}x{self.k}x{self.n} on {self.isa}\n"
                f"  kernels: {', '.join(f'{role}: {name}' for role, name in self.kernels)} ({rule})")


def _shape_of(x, what: str) -> tuple:
    if isinstance(x, np.ndarray):
        return x.shape
    if isinstance(x, tuple) and all(isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in x):
        return tuple(int(e) for e in x)
    raise TypeError(f"{what} must be an array or a shape tuple, got {type(x).__name__}")


def gemm_plan(a, b) -> GemmPlan:
    """What will run ``gemm(a, b)`` / ``qgemm(a, b, ...)`` on the active ISA path.

    ``a`` and ``b`` as :func:`gemm` takes them, or their shapes (``(..., K)``
    and ``(K, N)``); ``b`` may be :class:`PackedWeights`. Returns a
    :class:`GemmPlan`.
    """
    a_shape = _shape_of(a, "a")
    b_shape = b.shape if isinstance(b, PackedWeights) else _shape_of(b, "b")
    if len(a_shape) < 1:
        raise ValueError("a must have at least one dimension (..., K)")
    if len(b_shape) != 2:
        raise ValueError(f"b must be 2-D (K, N), got shape {tuple(b_shape)}")
    if a_shape[-1] != b_shape[0]:
        raise ValueError(f"a has K={a_shape[-1]} (last axis) but b has K={b_shape[0]} rows")
    isa = active_isa()
    m = math.prod(a_shape[:-1])
    rows = _core.gemm_small_m_rows(isa) if _core.kernel_names(isa)["gemm_small_m"] else 0
    return GemmPlan(isa=isa, m=m, k=b_shape[0], n=b_shape[1], kernels=(("gemm", _core.gemm_kernel_for(isa, m)),),
                    small_m=m < rows, small_m_rows=rows)


def _columns(n, a_s, b_s, bias32, o_s):
    """columns_numpy (see _gemm_common) in one C++ pass: the same float32 steps."""
    return _core.qgemm_columns(n, float(a_s), np.ascontiguousarray(b_s).reshape(-1), bias32,
                               None if o_s is None else float(o_s))


_resolve = EpilogueCache(resolve_qgemm)
# Per-row a_scale: only the per-column part (b_scale, bias, output) is remembered, keyed as above
# with a_scale None; the row scales change with every call (dynamic quantization) and are checked
# and copied per call, in C++ (O(M + N)), never kept.
_resolve_rows = EpilogueCache(functools.partial(resolve_qgemm, per_row=True))


def gemm(a, b, *, a_zero_point=0, b_zero_point=0, out=None):
    if out is not None:
        v.no_overlap(out, "a", a)
    return _run(a, _packed(b, b_zero_point), a_zero_point, _OUT.i32, out, np.int32)


def qgemm(a, b, a_scale, b_scale, *, a_zero_point=0, b_zero_point=0, bias=None, relu=False,
          out_scale=None, out_zero_point=0, out_dtype=np.float32, out=None):
    if out is not None:
        v.no_overlap(out, "a", a)
    pw = _packed(b, b_zero_point)
    if not is_per_row(a_scale):
        ep = _resolve(pw.shape[1], a_scale, b_scale, bias, relu, out_scale, out_zero_point, out_dtype, _columns)
        kind = _OUT.q8 if ep.requantize else _OUT.f32
        return _run(a, pw, a_zero_point, kind, out, ep.out_dtype, ep)
    ep = _resolve_rows(pw.shape[1], None, b_scale, bias, relu, out_scale, out_zero_point, out_dtype, _columns)
    a = v.activations(a, pw.shape[0])
    # The checks of reference._row_scales, at the extremes; a private copy for the kernels.
    rows = _core.qgemm_row_scales(np.ascontiguousarray(row_scales(a_scale, a.shape[:-1])), ep.scale_range,
                                  ep.out_scale)
    kind = _OUT.q8 if ep.requantize else _OUT.f32
    return _run(a, pw, a_zero_point, kind, out, ep.out_dtype, ep, rows)


_NOTE = """
    Fast path: ``b`` given as an array is packed on every call; pack it once
    with :func:`pack_weights` for repeated use. ``out``, if given, is a
    C-contiguous array of the result's shape and dtype.
    """
gemm.__doc__ = _ref.gemm.__doc__ + _NOTE
qgemm.__doc__ = _ref.qgemm.__doc__ + _NOTE
