"""conv2d and qconv2d on the compiled kernels (see reference.py for the contract),
and conv_plan, which says what runs a convolution."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _core
from . import _validate as v
from . import reference as _ref
from ._conv_common import (accumulator_bound, channel_zero_points, check_output_channels, check_packed_args,
                           conv_activations, conv_geometry, conv_groups, conv_weights, resolve_qconv)
from ._cache import Cache
from ._dispatch import active_isa
from ._gemm import _OUT, _columns
from ._gemm_common import EpilogueCache, kernel_args
from ._packed_conv import PackedConvWeights


@dataclass(frozen=True)
class ConvPlan:
    """What runs one convolution on one ISA path, as the C++ plan decides it
    (csrc/ops/conv_plan.h).

    - ``kind``: the driver: ``"gemm_in_place"`` (1x1 NHWC: a GEMM on the
      input as it is), ``"conv1x1_nchw"`` (1x1 NCHW, int32 output: weights
      times channel planes), ``"implicit_gemm"`` / ``"im2col_gemm"`` (the GEMM
      tile kernel on staged rows, read in place or copied into im2col rows),
      ``"small_groups"``, ``"depthwise_rows"`` (NHWC staging),
      ``"depthwise_planes"`` (NCHW planes read as given) or
      ``"depthwise_plane"`` (padded copies of NCHW planes).
    - ``kernels``: (role, kernel name) of each kernel that runs, as
      :func:`kernel_calls` counts them.
    - ``weights``: the packed layout it reads (``PackedConvWeights.layouts``).
    - ``input``, ``output``: how the layouts are handled.
    - ``gemm_rows``, ``gemm_small_m``: for the GEMM kinds, the rows of A of
      their GEMMs (output pixels per image; all pixels for
      ``gemm_in_place``; output channels for ``conv1x1_nchw``), and whether
      the path's small-M kernel runs them (see :class:`GemmPlan`).
    """

    isa: str
    kind: str
    kernels: tuple
    weights: str
    layout: str
    input: str
    output: str
    out_dtype: np.dtype
    gemm_rows: int = 0
    gemm_small_m: bool = False

    def __str__(self):
        kernels = ", ".join(f"{role}: {name}" for role, name in self.kernels)
        if self.gemm_small_m:
            kernels += f" (small M: {self.gemm_rows} rows)"
        return (f"{self.kind} on {self.isa} ({self.layout}, {self.out_dtype} output)\n"
                f"  kernels: {kernels}\n  weights: {self.weights}\n  input:   {self.input}\n"
                f"  output:  {self.output}")


_OUT_OF_DTYPE = {np.dtype(np.int32): _OUT.i32, np.dtype(np.float32): _OUT.f32,
                 np.dtype(np.int8): _OUT.q8, np.dtype(np.uint8): _OUT.q8}

_PLANS = Cache(maxsize=256)


def _plain(value) -> bool:
    """A Python int or a tuple of them (nothing that compares equal to an int
    without being one, such as True or 1.0)."""
    return type(value) is int or (type(value) is tuple and all(type(e) is int for e in value))


def _make_plan(x_shape, pw: PackedConvWeights, stride, padding, dilation, layout, isa, out):
    g = conv_geometry(x_shape, pw.shape, stride, padding, dilation, pw.groups, layout)
    cg = _core.ConvGeometry(n=g.n, c=g.c, h=g.h, w=g.w, oc=g.oc, groups=g.groups, kh=g.kh, kw=g.kw, sh=g.sh,
                            sw=g.sw, dh=g.dh, dw=g.dw, pt=g.pt, pl=g.pl, oh=g.oh, ow=g.ow)
    return g, _core.plan_conv(isa, cg, g.layout == "NCHW", out, pw._fits_int8)


def _plan(x_shape, pw: PackedConvWeights, stride, padding, dilation, layout, isa, out):
    """(geometry, C++ plan) of a layer, remembered for plain-int arguments (a
    model calls the same layer again and again)."""
    if not (_plain(stride) and _plain(padding) and _plain(dilation) and type(layout) is str):
        return _make_plan(x_shape, pw, stride, padding, dilation, layout, isa, out)
    key = (x_shape, pw.shape, pw.groups, pw._fits_int8, stride, padding, dilation, layout, isa, out)
    return _PLANS.get(key, lambda: _make_plan(x_shape, pw, stride, padding, dilation, layout, isa, out))


def _packed(w, groups, w_zero_point) -> PackedConvWeights:
    if isinstance(w, PackedConvWeights):
        if not (type(w_zero_point) is int and w_zero_point == 0 and type(groups) is int and groups == w.groups):
            check_packed_args(w.groups, w_zero_point, groups)
        return w
    w = conv_weights(w)
    return PackedConvWeights(w, groups=groups, zero_point=channel_zero_points(w_zero_point, w.shape[0]))


def _run(x, pw: PackedConvWeights, stride, padding, dilation, layout, x_zero_point, kind, out, out_dtype,
         ep=None):
    isa = active_isa()
    x = conv_activations(x)
    g, plan = _plan(x.shape, pw, stride, padding, dilation, layout, isa, kind)
    qmin, qmax = v.q_range(x.dtype)
    x_zp = v.scalar_int(x_zero_point, "x_zero_point", qmin, qmax)
    accumulator_bound(g.k, x.dtype, x_zp, pw._span, ep.bias_bound if ep is not None else 0)

    y = np.empty(g.out_shape, out_dtype) if out is None else v.check_out(out, g.out_shape, out_dtype)
    if y.size == 0:
        return y
    x = np.ascontiguousarray(x)
    weights = pw._layout(plan.weights, isa)
    w_zp = pw.zero_point if pw._has_zp and plan.weights != "depthwise" else None
    col_off, epilogue = kernel_args(pw, x_zp + (128 if x.dtype == np.int8 else 0), ep)
    target = v.aligned(y)
    _core.conv2d(plan, x, x_zp, weights, w_zp, pw._colsum, col_off, target, *epilogue)
    return v.finish(y, target)


def _shape_dtype(a, what: str, default):
    """(shape, dtype) of an array, a shape tuple, or a (shape, dtype) pair."""
    if isinstance(a, np.ndarray):
        return a.shape, a.dtype
    if isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], tuple):
        return a[0], np.dtype(a[1])
    if isinstance(a, tuple) and all(isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in a):
        return tuple(int(e) for e in a), np.dtype(default)
    raise TypeError(f"{what} must be an array, a shape tuple or a (shape, dtype) pair, got {type(a).__name__}")


def conv_plan(x, w, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW", out_dtype=np.int32) -> ConvPlan:
    """What will run this convolution on the active ISA path.

    ``x`` and ``w`` as :func:`conv2d` takes them, or their shapes (a tuple, or
    a ``(shape, dtype)`` pair; x defaults to uint8, w to int8); ``w`` may be
    :class:`PackedConvWeights`. ``out_dtype``: int32 for :func:`conv2d`,
    float32, int8 or uint8 for :func:`qconv2d`. Returns a :class:`ConvPlan`;
    raises as conv2d would for an invalid geometry.
    """
    x_shape, x_dtype = _shape_dtype(x, "x", np.uint8)
    if x_dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise TypeError(f"x must be an int8 or uint8 array, got dtype {x_dtype}")
    if isinstance(w, PackedConvWeights):
        pw = w
        check_packed_args(pw.groups, 0, groups)
    elif isinstance(w, np.ndarray):
        pw = _packed(w, groups, 0)  # checked as conv2d checks it
    else:
        w_shape, w_dtype = _shape_dtype(w, "w", np.int8)
        if w_dtype != np.int8:
            raise TypeError(f"w must be int8, got dtype {w_dtype}")
        pw = _ShapeOnly(w_shape, groups)
    try:
        out = _OUT_OF_DTYPE[np.dtype(out_dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"out_dtype must be int32, float32, int8 or uint8, got {out_dtype!r}") from None
    isa = active_isa()
    _, p = _make_plan(tuple(x_shape), pw, stride, padding, dilation, layout, isa, out)
    return ConvPlan(isa=p.isa, kind=p.kind, kernels=tuple(p.kernels), weights=p.weights, layout=layout,
                    input=p.input, output=p.output, out_dtype=np.dtype(out_dtype), gemm_rows=p.gemm_rows,
                    gemm_small_m=p.gemm_small_m)


class _ShapeOnly:
    """Weights known by their shape only (no zero points: every w fits int8)."""

    __slots__ = ("shape", "groups", "_fits_int8")

    def __init__(self, shape, groups):
        if len(shape) != 4:
            raise ValueError(f"w must be 4-D (OC, C/groups, KH, KW), got shape {tuple(shape)}")
        self.shape = tuple(int(e) for e in shape)
        self.groups = conv_groups(groups)
        check_output_channels(self.shape[0], self.groups)
        self._fits_int8 = True


_resolve = EpilogueCache(resolve_qconv)


def conv2d(x, w, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW", x_zero_point=0, w_zero_point=0,
           out=None):
    if out is not None:
        v.no_overlap(out, "x", x)
    pw = _packed(w, groups, w_zero_point)
    return _run(x, pw, stride, padding, dilation, layout, x_zero_point, _OUT.i32, out, np.int32)


def qconv2d(x, w, x_scale, w_scale, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW",
            x_zero_point=0, w_zero_point=0, bias=None, relu=False, out_scale=None, out_zero_point=0,
            out_dtype=np.float32, out=None):
    if out is not None:
        v.no_overlap(out, "x", x)
    pw = _packed(w, groups, w_zero_point)
    try:
        ep = _resolve(pw.shape[0], x_scale, w_scale, bias, relu, out_scale, out_zero_point, out_dtype, _columns)
    except (TypeError, ValueError):
        # The reference checks the geometry first: a fault there is the one to name.
        conv_geometry(conv_activations(x).shape, pw.shape, stride, padding, dilation, pw.groups, layout)
        raise
    kind = _OUT.q8 if ep.requantize else _OUT.f32
    return _run(x, pw, stride, padding, dilation, layout, x_zero_point, kind, out, ep.out_dtype, ep)


_NOTE = """
    Fast path: ``w`` given as an array is packed on every call; pack it once
    with :func:`pack_conv_weights` for repeated use. ``out``, if given, is a
    C-contiguous array of the result's shape and dtype. :func:`conv_plan`
    says which kernels will run.
    """
conv2d.__doc__ = (_ref.conv2d.__doc__ or "") + _NOTE
qconv2d.__doc__ = (_ref.qconv2d.__doc__ or "") + _NOTE
