"""conv2d and qconv2d on the compiled kernels (see reference.py for the contract)."""
from __future__ import annotations

import functools

import numpy as np

from . import _core
from . import _validate as v
from . import reference as _ref
from ._conv_common import (accumulator_bound, channel_zero_points, check_packed_args, conv_activations,
                           conv_geometry, conv_weights, resolve_qconv)
from ._dispatch import active_isa
from ._gemm_common import EpilogueCache, kernel_args
from ._gemm import _OUT, _columns
from ._packed_conv import PackedConvWeights

#: Depthwise kernels keep their taps on the stack; larger kernels take the GEMM path.
_DW_MAX_TAPS = _core.DWCONV_MAX_TAPS
_VNNI4_ISAS: dict = {}


def _vnni4(isa: str) -> bool:
    """Whether ``isa``'s GEMM kernel takes the vnni4 layout."""
    known = _VNNI4_ISAS.get(isa)
    if known is None:
        known = _VNNI4_ISAS[isa] = _core.gemm_shape(isa)[0] == _core.GEMM_LAYOUT_VNNI4
    return known


class _Plan:
    """What one layer's calls share: its geometry, the geometry as the
    compiled module takes it, and the path it takes."""

    __slots__ = ("g", "args", "nhwc", "gemm", "nchw_1x1")

    def __init__(self, g):
        self.g = g
        self.args = [g.n, g.c, g.h, g.w, g.oc, g.groups, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, g.oh, g.ow]
        self.nhwc = g.layout == "NHWC"
        # A 1x1, stride-1, unpadded NHWC convolution of one group is a GEMM of
        # the pixels by the channels: no copy at all.
        one_by_one = (g.groups == 1 and g.kh == g.kw == 1 and g.sh == g.sw == 1
                      and g.pt == g.pl == g.pb == g.pr == 0)
        self.gemm = self.nhwc and one_by_one
        # The same in NCHW is a GEMM with the roles swapped (weights x channel
        # planes), whose tiles land in the output planes directly: int32
        # output on the vnni4 kernels (see csrc/conv.h, Conv1x1Nchw).
        self.nchw_1x1 = not self.nhwc and one_by_one


_PLANS: dict = {}


def _plain(value) -> bool:
    """A Python int or a tuple of them (nothing that compares equal to an int
    without being one, such as True or 1.0)."""
    return type(value) is int or (type(value) is tuple and all(type(e) is int for e in value))


def _plan(x_shape, w_shape, stride, padding, dilation, groups, layout) -> _Plan:
    """The layer's plan, remembered for plain-int arguments (a model calls the
    same layer again and again)."""
    if not (_plain(stride) and _plain(padding) and _plain(dilation) and type(layout) is str):
        return _Plan(conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, layout))
    key = (x_shape, w_shape, stride, padding, dilation, groups, layout)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _Plan(conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, layout))
        if len(_PLANS) < 256:
            _PLANS[key] = plan
    return plan


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
    plan = _plan(x.shape, pw.shape, stride, padding, dilation, pw.groups, layout)
    g = plan.g
    qmin, qmax = v.q_range(x.dtype)
    x_zp = v.scalar_int(x_zero_point, "x_zero_point", qmin, qmax)
    accumulator_bound(g.k, x.dtype, x_zp, pw._span, ep.bias_bound if ep is not None else 0)

    y = np.empty(g.out_shape, out_dtype) if out is None else v.check_out(out, g.out_shape, out_dtype)
    if y.size == 0:
        return y
    w_zp = pw.zero_point if pw._has_zp else None
    x = np.ascontiguousarray(x)
    if plan.nchw_1x1 and kind == _OUT.i32 and _vnni4(isa):
        _core.conv1x1_nchw(isa, x, g.n, g.c, g.h * g.w, g.oc, x_zp, pw._rows_u8(), pw._colsum, w_zp, y)
        return y
    col_off, epilogue = kernel_args(pw, x_zp + (128 if x.dtype == np.int8 else 0), ep)
    if plan.gemm:
        _core.gemm(isa, x.reshape(-1, g.c), pw._for_isa(isa), g.c, g.oc, w_zp, col_off, kind, y.reshape(-1, g.oc),
                   *epilogue)
        return y

    depthwise = pw.depthwise and g.kh * g.kw <= _DW_MAX_TAPS
    nchw = not plan.nhwc
    gconv = None
    if not depthwise and g.groups > 1 and _gconv(isa, g.oc, g.c // g.groups, g.oc // g.groups, g.kh * g.kw):
        gconv = pw._gconv()
    _core.conv2d(isa, x, nchw, plan.args, x_zp, pw._for_isa(isa, depthwise), depthwise, None if depthwise else w_zp,
                 col_off, kind, y, nchw, *epilogue, gconv)
    return y


@functools.lru_cache(maxsize=None)
def _gconv(isa, oc, cg, ocg, taps) -> bool:
    """Whether ``isa`` runs a small-group convolution of these sizes on its own
    kernel (csrc/conv.h, GconvRow) rather than as a grouped GEMM."""
    return _core.kernel_names(isa)["gconv"] is not None and _core.gconv_fits(oc, cg, ocg, taps)


_resolve = EpilogueCache(resolve_qconv)


def conv2d(x, w, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW", x_zero_point=0, w_zero_point=0,
           out=None):
    pw = _packed(w, groups, w_zero_point)
    return _run(x, pw, stride, padding, dilation, layout, x_zero_point, _OUT.i32, out, np.int32)


def qconv2d(x, w, x_scale, w_scale, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW",
            x_zero_point=0, w_zero_point=0, bias=None, relu=False, out_scale=None, out_zero_point=0,
            out_dtype=np.float32, out=None):
    pw = _packed(w, groups, w_zero_point)
    ep = _resolve(pw.shape[0], x_scale, w_scale, bias, relu, out_scale, out_zero_point, out_dtype, _columns)
    kind = _OUT.q8 if ep.requantize else _OUT.f32
    return _run(x, pw, stride, padding, dilation, layout, x_zero_point, kind, out, ep.out_dtype, ep)


_NOTE = """
    Fast path: ``w`` given as an array is packed on every call; pack it once
    with :func:`pack_conv_weights` for repeated use. ``out``, if given, is a
    C-contiguous array of the result's shape and dtype.
    """
conv2d.__doc__ = (_ref.conv2d.__doc__ or "") + _NOTE
qconv2d.__doc__ = (_ref.qconv2d.__doc__ or "") + _NOTE
