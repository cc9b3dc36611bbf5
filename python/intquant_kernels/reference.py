"""The NumPy reference: the definition of every result the kernels produce.

Written for reading, not speed: whole-array NumPy, no blocking. Every ISA path
of every op must return bit-identical results to the function of the same name
here, for every dtype and option; the tests and ``python -m intquant_kernels
validate`` check exactly that.
"""
from __future__ import annotations

import numpy as np

from . import _conv_common as cc
from . import _validate as v

__all__ = ["quantize", "dequantize", "gemm", "qgemm", "conv2d", "qconv2d"]


def _into(out, y):
    """The result ``y`` of an op: returned as is when ``out`` is None, else written into ``out``
    (checked: an ndarray of y's dtype and shape, C-contiguous, writeable) and ``out`` returned."""
    if out is None:
        return y
    v.check_out(out, y.shape, y.dtype)[...] = y
    return out


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
    v.no_overlap(out, "x", x, "scale", scale, "zero_point", zero_point)
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
    # np.asarray: operations on 0-d arrays return NumPy scalars; keep an array.
    return _into(out, np.asarray(np.clip(r.astype(np.float64) + zp, qmin, qmax).astype(dt)))


def dequantize(q, scale, zero_point=0, *, axis=None, out=None):
    """Dequantize int8/uint8 ``q`` to float32 (ONNX DequantizeLinear).

    ``x = float32(q - zero_point) * scale``: the difference is exact, so the
    float32 multiply is the only rounding. Granularity rules are those of
    :func:`quantize`; ``zero_point`` must lie in ``q``'s dtype range.
    """
    v.no_overlap(out, "q", q, "scale", scale, "zero_point", zero_point)
    q = np.asarray(q)
    dt = v.q_dtype(q.dtype, "q's dtype")
    qmin, qmax = v.q_range(dt)
    p = v.quant_params(q.shape, scale, zero_point, axis, qmin, qmax)
    s = p.broadcast(q.ndim, p.scale)
    zp = p.broadcast(q.ndim, p.zero_point)
    with np.errstate(over="ignore"):  # a huge scale may overflow to +-inf, as in float32 C
        x = np.asarray((q.astype(np.int32) - zp).astype(np.float32) * s)
    return _into(out, x)


def _weights_and_zp(b, b_zero_point):
    from ._packed import PackedWeights, check_no_zero_point

    if isinstance(b, PackedWeights):
        check_no_zero_point(b_zero_point)
        return b.weights, b.zero_point
    b = v.weights(b)
    return b, v.column_zero_points(b_zero_point, b.shape[1])


def _gemm_int64(a, b, b_zp, a_zero_point, bias_bound=0):
    k = b.shape[0]
    a = v.activations(a, k)
    qmin, qmax = v.q_range(a.dtype)
    a_zp = v.scalar_int(a_zero_point, "a_zero_point", qmin, qmax)
    v.accumulator_bound(k, a.dtype, a_zp, v.weight_span(b_zp), bias_bound)
    # int64: the exact value; the bound above keeps it within int32.
    return (a.astype(np.int64) - a_zp) @ (b.astype(np.int64) - b_zp)


def gemm(a, b, *, a_zero_point=0, b_zero_point=0, out=None):
    """int8 matrix product with int32 result (ONNX MatMulInteger).

    ``C[..., n] = sum_k (a[..., k] - a_zero_point) * (b[k, n] - b_zero_point[n])``,
    exactly. ``a`` is int8 or uint8 of shape (..., K), ``a_zero_point`` a
    scalar in a's dtype range; ``b`` is int8 (K, N) or PackedWeights;
    ``b_zero_point`` a scalar or (N,) in [-128, 127]. Where K is large enough
    that the result could leave int32 for these dtypes and zero points, a
    ValueError gives the largest allowed K.
    """
    v.no_overlap(out, "a", a)
    b, b_zp = _weights_and_zp(b, b_zero_point)
    return _into(out, _gemm_int64(a, b, b_zp, a_zero_point).astype(np.int32))


def qgemm(a, b, a_scale, b_scale, *, a_zero_point=0, b_zero_point=0, bias=None, relu=False, out_scale=None,
          out_zero_point=0, out_dtype=np.float32, out=None):
    """gemm with a fused dequantize (float32) or requantize (int8/uint8) epilogue.

    With ``s[m, n] = float32(a_scale[m]) * float32(b_scale[n])`` (a float32
    product; ``m`` the row of ``a``, all its leading axes together), and
    ``acc`` the exact gemm result:

    - float32 output (``out_scale is None``):
      ``y = float32(acc) * s[m, n]``, then ``y = y + bias[n]`` (a separate
      float32 add: no fused multiply-add), then ``max(y, 0)`` if ``relu``.
    - requantized output (``out_scale`` given, ``out_dtype`` int8 or uint8;
      ONNX QLinearMatMul): ``mult[m, n] = s[m, n] / float32(out_scale)`` in
      float32;
      ``q = saturate(round_half_to_even(float32(acc + bias_q[n]) * mult[m, n]) + out_zero_point)``,
      where ``bias_q`` is an int32 bias as given, or (per-tensor ``a_scale``
      only) a float bias quantized as ``round_half_to_even(bias[n] / s[n])``
      (float32 division). ``relu`` clamps at ``out_zero_point`` (real zero).

    ``a_scale`` is a scalar (per tensor: ``s[m, n] = s[n]`` for every row) or
    per row: an array of shape ``a.shape[:-1]``, or of a shape that broadcasts
    to it (e.g. ``(B, 1)`` for ``a`` of shape ``(B, T, K)``), as produced by
    dynamic quantization of each row of activations. With every row's scale
    equal, the per-row result is bit-identical to the per-tensor one. A float
    bias with a per-row ``a_scale`` and requantized output would need a bias
    quantized per element: it is refused (ValueError); give an int32 bias
    (quantized by the caller) or request float32 output. ``b_scale`` is a
    scalar or (N,) (per output channel). Every scale must be finite and > 0
    in float32, and so must every ``s[m, n]``; when requantizing, every
    ``mult[m, n]`` must be finite. ``b_zero_point`` is as in :func:`gemm`
    (affine weights; PackedWeights carry their own).
    """
    v.no_overlap(out, "a", a)
    from ._gemm_common import is_per_row, resolve_qgemm, row_scales

    b, b_zp = _weights_and_zp(b, b_zero_point)
    if not is_per_row(a_scale):
        ep = resolve_qgemm(b.shape[1], a_scale, b_scale, bias, relu, out_scale, out_zero_point, out_dtype)
        return _into(out, _epilogue(_gemm_int64(a, b, b_zp, a_zero_point, ep.bias_bound), ep))
    ep = resolve_qgemm(b.shape[1], None, b_scale, bias, relu, out_scale, out_zero_point, out_dtype, per_row=True)
    a = v.activations(a, b.shape[0])
    scale = _row_scales(row_scales(a_scale, a.shape[:-1]), ep)
    return _into(out, _epilogue(_gemm_int64(a, b, b_zp, a_zero_point, ep.bias_bound), ep, scale))


def _row_scales(a_s, ep):
    """The per-element scale of qgemm with a per-row ``a_s`` (float32, ``a.shape[:-1]``):
    ``s[..., n] = a_s[...] * b_scale[n]`` in float32, or when requantizing the multiplier
    ``s[..., n] / out_scale``; each checked as qgemm's docstring says, in that order."""
    if not (np.isfinite(a_s) & (a_s > 0)).all():
        raise ValueError("a_scale must be finite and > 0 in float32")
    with np.errstate(over="ignore", under="ignore"):
        s = np.multiply(a_s[..., None], ep.scale, dtype=np.float32)  # ep.scale holds b_scale
        if not (np.isfinite(s) & (s > 0)).all():
            raise ValueError("a_scale * b_scale must be finite and > 0 in float32 for every row and column")
        if not ep.requantize:
            return s
        mult = np.divide(s, np.float32(ep.out_scale), dtype=np.float32)
    if not np.isfinite(mult).all():
        raise ValueError("a_scale * b_scale / out_scale must be finite in float32")
    return mult


def _epilogue(acc, ep, scale=None):
    """qgemm's epilogue (see :func:`qgemm`) on the exact int64 ``acc``, channel n on the last axis,
    with ``ep.scale`` (per channel), or ``scale`` (per element: a per-row a_scale) in its place."""
    scale = ep.scale if scale is None else scale
    if not ep.requantize:
        with np.errstate(over="ignore", invalid="ignore"):  # IEEE float32, as the kernels
            y = acc.astype(np.float32) * scale
            if ep.bias is not None:
                y = y + ep.bias
        if ep.relu:
            y = np.maximum(y, np.float32(0))
        return y
    total = acc if ep.bias_q is None else acc + ep.bias_q
    with np.errstate(over="ignore"):
        t = np.rint(total.astype(np.int32).astype(np.float32) * scale)
    return np.clip(t.astype(np.float64) + ep.out_zp, ep.lo, ep.hi).astype(ep.out_dtype)


# --- convolution ---------------------------------------------------------------


def _conv_weights_and_zp(w, w_zero_point, groups):
    """The (OC, C/groups, KH, KW) int8 weights and their (OC,) int32 zero points.

    ``w`` is an int8 array, or anything shaped like PackedConvWeights (with
    ``.weights``, ``.zero_point`` and ``.groups``), which carries its own zero
    point and groups.
    """
    if all(hasattr(w, name) for name in ("weights", "zero_point", "groups")):
        cc.check_packed_args(w.groups, w_zero_point, groups)
        wa = cc.conv_weights(w.weights)
        return wa, cc.channel_zero_points(w.zero_point, wa.shape[0], "zero_point")
    wa = cc.conv_weights(w)
    return wa, cc.channel_zero_points(w_zero_point, wa.shape[0])


def _conv_int64(x, w, w_zp, g, x_zero_point, bias_bound=0):
    """The exact accumulator in int64, channels last: (N, OH, OW, OC)."""
    qmin, qmax = v.q_range(x.dtype)
    x_zp = v.scalar_int(x_zero_point, "x_zero_point", qmin, qmax)
    cc.accumulator_bound(g.k, x.dtype, x_zp, v.weight_span(w_zp), bias_bound)

    xs = x if g.layout == "NCHW" else x.transpose(0, 3, 1, 2)
    # Outside the image x is x_zp, so (x - x_zp) is 0 there: padding is real zero.
    xp = np.pad(xs.astype(np.int64), ((0, 0), (0, 0), (g.pt, g.pb), (g.pl, g.pr)), constant_values=x_zp) - x_zp
    xp = xp.reshape(g.n, g.groups, g.cg, *xp.shape[2:])  # (N, G, C/G, H + pt + pb, W + pl + pr)
    ws = (w.astype(np.int64) - w_zp[:, None, None, None]).reshape(g.groups, g.ocg, g.cg, g.kh, g.kw)
    acc = np.zeros((g.n, g.oh, g.ow, g.groups, g.ocg), np.int64)
    for i in range(g.kh):
        for j in range(g.kw):
            # The input pixel of tap (i, j) for every output pixel: (N, G, C/G, OH, OW).
            win = xp[..., i * g.dh:i * g.dh + (g.oh - 1) * g.sh + 1:g.sh,
                     j * g.dw:j * g.dw + (g.ow - 1) * g.sw + 1:g.sw]
            acc += np.einsum("ngchw,goc->nhwgo", win, ws[..., i, j])
    return acc.reshape(g.n, g.oh, g.ow, g.oc)


def _in_layout(y, layout):
    """A channels-last (N, OH, OW, OC) result in ``layout``, C-contiguous."""
    return np.ascontiguousarray(y if layout == "NHWC" else y.transpose(0, 3, 1, 2))


def conv2d(x, w, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW", x_zero_point=0, w_zero_point=0,
           out=None):
    """int8 2-D convolution with int32 result (ONNX ConvInteger).

    ``y[n, oc, oh, ow] = sum_{c, kh, kw} (x[n, g*C/G + c, oh*sh + kh*dh - pt, ow*sw + kw*dw - pl] - x_zero_point)
    * (w[oc, c, kh, kw] - w_zero_point[oc])``, exactly, where G = groups,
    ``g = oc // (OC/G)`` is the group of output channel oc, c runs over its C/G input channels, and
    x outside the image takes the value ``x_zero_point`` (the padding is real
    zero). With (pt, pl, pb, pr) the padding,
    ``OH = (H + pt + pb - dh*(KH - 1) - 1) // sh + 1`` and likewise OW; both
    must be >= 1.

    ``x`` is int8 or uint8, (N, C, H, W) with ``layout="NCHW"`` or (N, H, W, C)
    with ``layout="NHWC"``; the result has the same layout, (N, OC, OH, OW) or
    (N, OH, OW, OC). ``w`` is int8 (OC, C/groups, KH, KW) in both layouts, or
    PackedConvWeights (which carries its zero point and groups: then
    ``w_zero_point`` must be 0 and ``groups`` the packed one). ``stride`` and
    ``dilation`` are an integer or (h, w), each >= 1; ``padding`` an integer,
    (h, w) or (top, left, bottom, right), each >= 0; ``groups`` divides C and
    OC. ``x_zero_point`` is a scalar in x's dtype range; ``w_zero_point`` a
    scalar or (OC,) in [-128, 127]. Where K = (C/groups) * KH * KW is large
    enough that the result could leave int32, a ValueError gives the largest
    allowed K (the bound of :func:`gemm`).
    """
    v.no_overlap(out, "x", x)
    x = cc.conv_activations(x)
    w, w_zp = _conv_weights_and_zp(w, w_zero_point, groups)
    g = cc.conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, layout)
    return _into(out, _in_layout(_conv_int64(x, w, w_zp, g, x_zero_point).astype(np.int32), g.layout))


def qconv2d(x, w, x_scale, w_scale, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW", x_zero_point=0,
            w_zero_point=0, bias=None, relu=False, out_scale=None, out_zero_point=0, out_dtype=np.float32,
            out=None):
    """conv2d with a fused dequantize (float32) or requantize (int8/uint8) epilogue.

    ``acc`` is the exact :func:`conv2d` result; the epilogue is :func:`qgemm`'s
    (float32 output, or requantized as ONNX QLinearConv: see qgemm for the
    rounding, saturation, bias and relu rules), applied per output channel oc,
    in place of qgemm's column n, with ``s[oc] = float32(x_scale) *
    float32(w_scale[oc])`` (a float32 product).

    ``w_scale`` is a scalar or (OC,) (per output channel); ``x_scale`` a
    scalar; ``bias`` a scalar or (OC,). The other arguments are those of
    :func:`conv2d`; with an int32 bias the exactness bound leaves room for
    max|bias|.
    """
    v.no_overlap(out, "x", x)
    x = cc.conv_activations(x)
    w, w_zp = _conv_weights_and_zp(w, w_zero_point, groups)
    g = cc.conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, layout)
    ep = cc.resolve_qconv(g.oc, x_scale, w_scale, bias, relu, out_scale, out_zero_point, out_dtype)
    acc = _conv_int64(x, w, w_zp, g, x_zero_point, ep.bias_bound)
    return _into(out, _in_layout(_epilogue(acc, ep), g.layout))
