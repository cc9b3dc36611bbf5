"""The NumPy reference: the definition of every result the kernels produce.

Written for reading, not speed: whole-array NumPy, no blocking. Every ISA path
of every op must return bit-identical results to the function of the same name
here, for every dtype and option; the tests and ``python -m intquant_kernels
validate`` check exactly that.
"""
from __future__ import annotations

import numpy as np

from . import _calibration_checks as checks
from . import _conv_common as cc
from . import _validate as v

__all__ = ["quantize", "dequantize", "dynamic_quantize", "gemm", "qgemm", "conv2d", "qconv2d", "MaxCalibrator",
           "HistogramCalibrator"]


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


def dynamic_quantize(x, *, axis=None, dtype=None):
    """Quantize float32 ``x`` with a scale (and zero point) taken from ``x`` itself.

    ``axis=None`` (per tensor): ONNX DynamicQuantizeLinear, as onnxruntime
    computes it, returning ``(q, scale, zero_point)``: q uint8 of x's shape,
    scale an ``np.float32``, zero_point an ``np.uint8``. In float32:

    - ``lo = min(0, min(x))``, ``hi = max(0, max(x))`` (the range holds 0);
    - ``scale = (hi - lo) / 255``; where that is 0 (x all zeros, or empty, or
      a range too small for a nonzero float32 scale) ``scale = 1.0``;
    - ``zero_point = round_half_to_even(clamp(0 - lo / scale, 0, 255))``;
    - ``q = quantize(x, scale, zero_point, dtype=np.uint8)``.

    ``axis`` given (per slice, e.g. per token for axis=-1): symmetric int8,
    returning ``(q, scales)``: q int8 of x's shape, scales float32 of x's shape
    without ``axis`` (one scale per slice along ``axis``). For each slice:
    ``scale = max(|x_slice|) / 127`` in float32 (1.0 where that is 0: an
    all-zero or empty slice), ``q_slice = quantize(x_slice, scale, 0,
    dtype=np.int8, narrow_range=True)`` (zero point 0, range [-127, 127]).

    ``dtype`` may be given for clarity: np.uint8 (only) without axis, np.int8
    (only) with it. ``x`` must be a float32 array (TypeError otherwise, as in
    :func:`quantize`); a NaN or an infinity in it is a ValueError, and so is a
    per-tensor range ``hi - lo`` beyond float32 (onnxruntime would return an
    infinite scale).
    """
    x, ax, _ = v.dynamic_args(x, axis, dtype)
    if not np.isfinite(x).all():
        raise v.not_finite_error(x)
    if ax is None:
        lo = np.min(x, initial=np.float32(0))  # min(0, min(x)); 0 for an empty x
        hi = np.max(x, initial=np.float32(0))
        with np.errstate(over="ignore"):
            scale = (hi - lo) / np.float32(255)  # float32 / float32 -> float32
        if not np.isfinite(scale):
            raise v.range_overflow_error(x)
        if scale == 0:
            scale = np.float32(1.0)
        zero_point = np.uint8(np.rint(np.clip(np.float32(0) - lo / scale, np.float32(0), np.float32(255))))
        return quantize(x, scale, zero_point, dtype=np.uint8), np.float32(scale), zero_point

    # One slice per row: the reduced axis moved last, the others flattened.
    moved = np.moveaxis(x, ax, -1)
    rows = moved.reshape(int(np.prod(moved.shape[:-1])), moved.shape[-1])
    amax = np.max(np.abs(rows), axis=1, initial=np.float32(0))
    scales = amax / np.float32(127)  # float32
    scales = np.where(scales == 0, np.float32(1.0), scales)
    q = quantize(rows, scales, 0, axis=0, dtype=np.int8, narrow_range=True)  # row r: scales[r]
    q = np.ascontiguousarray(np.moveaxis(q.reshape(moved.shape), -1, ax))
    return q, scales.reshape(moved.shape[:-1])


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


# --- calibration -----------------------------------------------------------------
#
# The references of intquant_kernels.calibration: the same classes, with every
# step in NumPy. The fast classes derive from these and replace only the
# marked steps (_batch_amax, _add, _divergences, _mse) with C++ kernels, which
# must give the same counts and the same chosen bins.


class MaxCalibrator:
    """Max calibration: the largest ``|x|`` over every batch collected.

    ``axis=None``: one amax for the tensor (a Python float). ``axis=k``: one
    amax per index along axis ``k`` (for weights: per output channel), a
    float32 array; every batch must then have the same number of dimensions
    and the same length along ``k``.

    Data: float32 arrays (a TypeError otherwise: no silent casts); a batch
    with NaN or Inf raises ValueError and is not collected; an empty batch
    collects nothing (along ``axis``: it must still have the right length
    there).
    """

    def __init__(self, axis=None):
        if axis is not None and (isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer))):
            raise TypeError(f"axis must be an integer or None, got {type(axis).__name__}")
        self.axis = None if axis is None else int(axis)
        self._amax = None
        self._ndim = None

    def collect(self, x):
        x = checks.batch(x)
        if self.axis is None:
            if x.size == 0:
                return
            amax = self._batch_amax(x)
            self._amax = amax if self._amax is None else max(self._amax, amax)
            return
        ax = v.normalize_axis(self.axis, x.ndim)
        if self._amax is not None and (x.ndim != self._ndim or x.shape[ax] != self._amax.shape[0]):
            raise ValueError(f"every batch must have {self._ndim} dimensions and length {self._amax.shape[0]} "
                             f"along axis {self.axis}; got shape {x.shape}")
        others = tuple(d for d in range(x.ndim) if d != ax)
        amax = np.max(np.abs(x), axis=others, initial=np.float32(0))
        if not np.isfinite(amax).all():  # the max propagates NaN and keeps Inf
            raise checks.non_finite_error()
        self._ndim = x.ndim
        self._amax = amax if self._amax is None else np.maximum(self._amax, amax)

    def _batch_amax(self, x) -> float:
        """max |x| of a non-empty batch; ValueError for NaN or Inf. (C++ in the fast class.)"""
        if not np.isfinite(x).all():
            raise checks.non_finite_error()
        return float(np.max(np.abs(x)))

    def compute_amax(self):
        """The amax: a float (per tensor) or a float32 array (per channel).

        RuntimeError if nothing has been collected; 0.0 if every value seen
        was 0."""
        if self._amax is None:
            raise RuntimeError("no data collected: call collect() first")
        return self._amax.copy() if self.axis is not None else self._amax


class HistogramCalibrator:
    """Histogram calibration: percentile, entropy (KL divergence) and MSE.

    ``collect(x)`` adds batches to a histogram of ``|x|`` with ``num_bins``
    bins of equal width over ``[0, range)``. The first batch with a non-zero
    value sets ``range`` to its max ``|x|`` (zeros seen before wait in a
    count and go to bin 0). A later batch with a larger max ``|x|`` doubles
    the range (merging each pair of bins, ``new[j] = old[2j] + old[2j+1]``)
    as many times as it takes to cover it: the histogram is re-binned, never
    extended, so its memory is ``num_bins`` counts whatever the data.

    Bin of a value: ``min(floor(float64(|x|) * inv_width), num_bins - 1)``,
    with ``inv_width = num_bins / range`` (halved at each doubling); bin ``j``
    spans ``[j * w, (j + 1) * w)`` with ``w = range / num_bins``, and the
    threshold of ``i`` bins is the edge ``i * w``.

    Data rules as for :class:`MaxCalibrator` (float32 only, NaN/Inf rejected
    without collecting anything, empty batches ignored). ``unsigned`` says
    the data are non-negative (after a ReLU): it changes the number of
    quantization levels in ``"entropy"`` (256 instead of 128) and ``"mse"``
    (qmax 255 instead of 127), not the histogram, which is of ``|x|`` either
    way.
    """

    def __init__(self, num_bins=2048, unsigned=False):
        self.num_bins = checks.num_bins(num_bins)
        self.unsigned = checks.flag(unsigned, "unsigned")
        self._counts = np.zeros(self.num_bins, np.int64)
        self._range = None  # float: the histogram covers [0, range)
        self._inv_width = None  # num_bins / range, halved at every doubling
        self._zeros = 0  # values seen before the range was set (all 0)

    @property
    def counts(self) -> np.ndarray:
        """The histogram (int64, ``num_bins``), a copy."""
        counts = self._counts.copy()
        counts[0] += self._zeros
        return counts

    @property
    def bin_edges(self) -> np.ndarray:
        """The ``num_bins + 1`` bin edges (float64); None before a non-zero value."""
        return None if self._range is None else np.arange(self.num_bins + 1) * (self._range / self.num_bins)

    def collect(self, x):
        x = checks.batch(x)
        if x.size == 0:
            return
        amax = self._batch_amax(x)
        if self._range is None:
            if amax == 0:
                self._zeros += x.size
                return
            self._range, self._inv_width = amax, self.num_bins / amax
            self._counts[0] += self._zeros
            self._zeros = 0
        while amax > self._range:
            pairs = np.zeros(2 * ((self.num_bins + 1) // 2), np.int64)
            pairs[:self.num_bins] = self._counts
            self._counts = np.zeros(self.num_bins, np.int64)
            merged = pairs.reshape(-1, 2).sum(axis=1)
            self._counts[:merged.size] = merged
            self._range *= 2
            self._inv_width /= 2
        self._add(x)

    _batch_amax = MaxCalibrator._batch_amax

    def _add(self, x):
        """Adds the bins of x to the counts. (C++ in the fast class.)"""
        t = np.abs(x).astype(np.float64) * self._inv_width
        bins = np.minimum(np.floor(t), self.num_bins - 1).astype(np.int64)
        self._counts += np.bincount(bins.ravel(), minlength=self.num_bins)

    def compute_amax(self, method, *, percentile=99.99, start_bin=128, stride=1):
        """The threshold (a float) chosen by ``method``:

        - ``"percentile"``: the smallest bin edge ``i * w`` below which at
          least ``percentile`` % of the values lie: ``i`` is one more than the
          first bin whose cumulative count reaches ``percentile / 100 * total``
          (float64).
        - ``"entropy"``: TensorRT's KL-divergence search. For each candidate
          ``i`` from ``max(start_bin, L)`` to ``num_bins`` by ``stride``
          (``L`` = 128 levels, 256 if ``unsigned``: the values a quantized
          ``|x|`` takes): P is the first ``i`` bins with the counts of every
          bin past them (the clipped values) added to bin ``i - 1``. Q is the
          first ``i`` bins as counted (without the clipped values) merged into
          ``L`` levels, bin ``j`` in level ``j * L // i``, and expanded back:
          each non-empty bin gets its level's count divided by the level's
          number of non-empty bins, empty bins 0. The divergence is ``sum p *
          log(p / q)`` over the bins where ``p > 0``, p and q being P and Q
          divided by their own sums; where ``p > 0`` and ``q == 0`` (clipped
          values added to an empty bin, or every value clipped) it is +inf:
          no smoothing, that candidate is never chosen. Candidates below
          ``L`` are not tried: with fewer bins than levels every level is one
          bin and the divergence measures nothing. Before the search, bin 0
          takes the count of bin 1 (as NVIDIA's pytorch-quantization does):
          exact zeros, the many values a ReLU or hard-swish clips, quantize
          exactly whatever the threshold, and their spike in bin 0 would
          otherwise dominate the divergence of the first level.
        - ``"mse"``: for each candidate ``i`` from ``start_bin`` to
          ``num_bins`` by ``stride``, the mean over the histogram of
          ``(t - q)^2`` with ``t`` each bin's centre and ``q`` the centre
          quantized and dequantized with threshold ``i * w``: step
          ``s = i * w / qmax`` (qmax 127, 255 if ``unsigned``),
          ``q = min(round_half_even(t / s), qmax) * s``.

        Ties (equal divergences or errors) go to the largest threshold (the
        least clipping, as TensorRT's search). Returns 0.0 if every value
        collected was 0; RuntimeError if nothing was collected; ValueError if
        no candidate lies in ``[start_bin, num_bins]``.
        """
        method = checks.method(method)
        pct = checks.percentile(percentile)
        start = checks.positive_int(start_bin, "start_bin")
        step = checks.positive_int(stride, "stride")
        if self._range is None:
            if self._zeros == 0:
                raise RuntimeError("no data collected: call collect() first")
            return 0.0
        if method == "percentile":
            i = self._percentile_bins(pct)
        else:
            levels = 256 if self.unsigned else 128
            first = max(start, levels) if method == "entropy" else start
            candidates = np.arange(first, self.num_bins + 1, step, dtype=np.int64)
            if candidates.size == 0:
                raise ValueError(f"no candidate threshold: {method} starts at bin {first} "
                                 f"but the histogram has {self.num_bins} bins")
            if method == "entropy":
                # Bin 0 takes bin 1's count: zeros (every value a ReLU or hard-swish
                # clipped) quantize exactly at any threshold, and their spike would
                # otherwise dominate the divergence of the first level.
                counts = self.counts
                if counts.size > 1:
                    counts[0] = counts[1]
                score = self._divergences(counts, candidates, levels)
            else:
                score = self._mse(candidates, 255.0 if self.unsigned else 127.0)
            # The last of the minima: ties go to the largest threshold.
            i = int(candidates[candidates.size - 1 - np.argmin(score[::-1])])
        return i * (self._range / self.num_bins)

    def _percentile_bins(self, pct) -> int:
        cumulative = np.cumsum(self.counts)
        target = pct / 100 * cumulative[-1]
        return int(np.argmax(cumulative >= target)) + 1

    def _divergences(self, counts, candidates, levels) -> np.ndarray:
        """KL(P || Q) per candidate of the histogram ``counts`` (see compute_amax). (C++ in the
        fast class.)"""
        out = np.empty(candidates.size)
        for c, i in enumerate(candidates):
            kept = counts[:i].astype(np.float64)
            p = kept.copy()
            p[i - 1] += counts[i:].sum()
            level = np.arange(i) * levels // i
            nonempty = kept > 0
            mass = np.bincount(level, weights=kept, minlength=levels)
            used = np.bincount(level, weights=nonempty, minlength=levels)
            q = np.zeros(i)
            q[nonempty] = mass[level[nonempty]] / used[level[nonempty]]
            if ((p > 0) & (q == 0)).any():
                out[c] = np.inf
                continue
            p, q = p / p.sum(), q / q.sum()
            out[c] = np.sum(p[p > 0] * np.log(p[p > 0] / q[p > 0]))
        return out

    def _mse(self, candidates, qmax) -> np.ndarray:
        """The mean squared error per candidate, in units of one bin width squared
        (see compute_amax). (C++ in the fast class.)"""
        counts = self.counts
        centre = np.arange(self.num_bins) + 0.5
        out = np.empty(candidates.size)
        for c, i in enumerate(candidates):
            s = i / qmax
            q = np.minimum(np.rint(centre / s), qmax) * s
            out[c] = np.sum(counts * (centre - q) ** 2) / counts.sum()
        return out
