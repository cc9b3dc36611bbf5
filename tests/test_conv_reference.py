"""The reference conv2d/qconv2d: that it computes a convolution, and which inputs it rejects.

The reference is the oracle of every conv kernel, so here it is checked against an independent
float64 convolution: a plain loop over output positions with explicit bounds checks (no padding,
no strided windows). Integer-valued float64 sums of this size are exact, so conv2d must equal it
exactly; qconv2d must equal it within float32 rounding, and bit for bit the reference qgemm applied
to the im2col matrix (its epilogue is qgemm's).

The random configurations (``random_case``) and the error table (``ERRORS``) are shared with
tests/test_conv.py, which checks the fast path against this reference.
"""
from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np
import pytest

from intquant_kernels import reference as ref

# test_conv.py imports INT32_MAX, Q_RANGE, rand_q and rng_for from here too.
from exact import (INT32_MAX, Q_RANGE, assert_same, epilogue_errors, rand_q, read_only,  # noqa: F401
                   rng_for, shape_in)


# --- helpers ---------------------------------------------------------------------------


def pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def pad4(p) -> tuple:
    """(top, left, bottom, right) of a padding argument."""
    if isinstance(p, (tuple, list)):
        return tuple(p) * 2 if len(p) == 2 else tuple(p)
    return (p,) * 4


def to_nchw(x, layout):
    return x if layout == "NCHW" else x.transpose(0, 3, 1, 2)


def from_nchw(y, layout):
    return y if layout == "NCHW" else y.transpose(0, 2, 3, 1)


@dataclass
class ConvCase:
    """A convolution's data and arguments: ``f.conv2d(case.x, case.w, **case.kw)``."""

    x: np.ndarray
    w: np.ndarray
    kw: dict  # stride, padding, dilation, groups, layout, x_zero_point, w_zero_point
    key: tuple  # the seed key, to reproduce it

    def __str__(self):
        x, w = self.x, self.w
        zp = self.kw["w_zero_point"]
        args = {k: v for k, v in self.kw.items() if k != "w_zero_point"}
        args["w_zero_point"] = "per-channel" if np.ndim(zp) else zp
        return f"x={x.dtype}{x.shape} w={w.shape} {args} (seed key {self.key})"


#: Kernel sizes (KH, KW): square 1, 2, 3, 5, 7 and non-square.
KERNELS = [(1, 1), (2, 2), (3, 3), (5, 5), (7, 7), (1, 3), (3, 1), (2, 5), (5, 3), (1, 7), (7, 2)]
CHANNELS = (1, 3, 17, 33)  # odd channel counts, for groups=1
GROUP_CHANNELS = (1, 3, 5)  # channels per group, for groups 2 and 4
DEPTHWISE_CHANNELS = (1, 2, 3, 8, 17, 33)
IMAGES = ("tiny", "square", "wide", "tall")


def random_case(*key, groups=None) -> ConvCase:
    """A random convolution from the seed ``key``: kernel, stride 1-3, dilation 1-2, padding
    (none, symmetric, per axis or asymmetric), groups 1, 2, 4 or depthwise, channel counts, image
    shape (tiny, square, wide or tall), batch 1-3, layout, int8 or uint8, zero points.

    ``groups`` forces the group kind: 1, 2, 4 or "depthwise".
    """
    rng = rng_for("case", *key)
    kh, kw = KERNELS[rng.integers(len(KERNELS))]
    stride = int(rng.integers(1, 4)) if rng.random() < 0.5 else tuple(int(s) for s in rng.integers(1, 4, 2))
    dilation = int(rng.integers(1, 3)) if rng.random() < 0.5 else tuple(int(d) for d in rng.integers(1, 3, 2))
    padding = [0, int(rng.integers(0, 4)), tuple(int(p) for p in rng.integers(0, 4, 2)),
               tuple(int(p) for p in rng.integers(0, 4, 4))][rng.integers(4)]

    kind = groups if groups is not None else [1, 2, 4, "depthwise"][rng.integers(4)]
    if kind == "depthwise":
        g = c = oc = int(rng.choice(DEPTHWISE_CHANNELS))
    elif kind == 1:
        g, c, oc = 1, int(rng.choice(CHANNELS)), int(rng.choice(CHANNELS))
    else:
        g = kind
        c, oc = g * int(rng.choice(GROUP_CHANNELS)), g * int(rng.choice(GROUP_CHANNELS))

    image = IMAGES[rng.integers(len(IMAGES))]
    h, w = {
        "tiny": lambda: rng.integers(1, 6, 2),
        "square": lambda: rng.integers(6, 13, 2),
        "wide": lambda: (rng.integers(1, 4), rng.integers(24, 65)),
        "tall": lambda: (rng.integers(24, 41), rng.integers(1, 4)),
    }[image]()
    # At least one output row and column.
    (dh, dw), (pt, pl, pb, pr) = pair(dilation), pad4(padding)
    h = max(int(h), dh * (kh - 1) + 1 - pt - pb, 0)
    w = max(int(w), dw * (kw - 1) + 1 - pl - pr, 0)
    n = int(rng.integers(1, 4))

    layout = ("NCHW", "NHWC")[rng.integers(2)]
    dtype = (np.int8, np.uint8)[rng.integers(2)]
    lo, hi = Q_RANGE[np.dtype(dtype)]
    x_zp = [0, lo, hi, int(rng.integers(lo, hi + 1))][rng.integers(4)]
    w_zp = [0, int(rng.integers(-128, 128)), rng.integers(-128, 128, oc).astype(np.int32)][rng.integers(3)]

    x = rand_q(rng, shape_in(layout, n, c, h, w), dtype)
    wt = rand_q(rng, (oc, c // g, kh, kw), np.int8)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=g, layout=layout,
                  x_zero_point=x_zp, w_zero_point=w_zp)
    return ConvCase(x, wt, kwargs, key)


def naive_conv(x, w, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW", x_zero_point=0,
               w_zero_point=0) -> np.ndarray:
    """The convolution in float64, one output position at a time, in ``layout``.

    For each output position (i, j) and tap (a, b), the input pixel is
    (i*sh + a*dh - pt, j*sw + b*dw - pl); taps outside the image contribute nothing (x there is
    x_zero_point, so x - x_zero_point is 0).
    """
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = pair(stride), pair(dilation), pad4(padding)
    xf = to_nchw(x, layout).astype(np.float64) - x_zero_point
    n, c, h, wd = xf.shape
    oc, cg, kh, kw = w.shape
    wf = w.astype(np.float64) - np.broadcast_to(np.asarray(w_zero_point, np.float64), (oc,))[:, None, None, None]
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    wg = wf.reshape(groups, oc // groups, cg * kh * kw)
    y = np.zeros((n, oc, oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = i * sh + dh * np.arange(kh) - pt
            cols = j * sw + dw * np.arange(kw) - pl
            a = np.flatnonzero((rows >= 0) & (rows < h))
            b = np.flatnonzero((cols >= 0) & (cols < wd))
            patch = np.zeros((n, c, kh, kw))
            patch[:, :, a[:, None], b] = xf[:, :, rows[a][:, None], cols[b]]
            patch = patch.reshape(n, groups, cg * kh * kw)
            y[:, :, i, j] = np.einsum("ngk,gok->ngo", patch, wg).reshape(n, oc)
    return from_nchw(y, layout)


def im2col(x, kh, kw, *, stride=1, padding=0, dilation=1, layout="NCHW", x_zero_point=0) -> np.ndarray:
    """Rows (N*OH*OW, C, KH, KW) of the input pixels each output position reads, in x's dtype,
    with x_zero_point outside the image."""
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = pair(stride), pair(dilation), pad4(padding)
    xp = np.pad(to_nchw(x, layout), ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=x_zero_point)
    n, c, hp, wp = xp.shape
    oh = (hp - dh * (kh - 1) - 1) // sh + 1
    ow = (wp - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, oh, ow, c, kh, kw), x.dtype)
    for i in range(oh):
        for j in range(ow):
            cols[:, i, j] = xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
    return cols.reshape(n * oh * ow, c, kh, kw), (n, oh, ow)


#: qconv2d epilogues: output dtype, bias (float or int32), relu; "pow2": power-of-two scales, so that
#: many requantized values (and float biases) fall exactly on a rounding tie.
EPILOGUES = {
    "f32": dict(),
    "f32_bias": dict(bias="float"),
    "f32_relu": dict(relu=True),
    "f32_bias_relu": dict(bias="float", relu=True),
    "int8": dict(out="int8"),
    "int8_float_bias_relu": dict(out="int8", bias="float", relu=True),
    "uint8_int32_bias": dict(out="uint8", bias="int32"),
    "uint8_int32_bias_relu": dict(out="uint8", bias="int32", relu=True),
    "int8_pow2_ties": dict(out="int8", pow2=True),
    "uint8_pow2_float_bias_ties": dict(out="uint8", bias="float", pow2=True),
}


def epilogue_args(rng, oc, kind) -> tuple:
    """(x_scale, w_scale, qconv2d keywords) for ``EPILOGUES[kind]``; w_scale per channel or scalar
    at random. Requantize multipliers are <= 0.5."""
    spec = EPILOGUES[kind]
    per_channel = rng.random() < 0.5
    if spec.get("pow2"):
        x_scale, out_scale = 0.5, 0.25
        w_scale = (2.0 ** -rng.integers(2, 5, oc)).astype(np.float32) if per_channel else 0.125
    else:
        x_scale, out_scale = float(rng.uniform(0.01, 0.1)), 0.05
        w_scale = rng.uniform(0.001, 0.02, oc).astype(np.float32) if per_channel else 0.0073
    s = np.multiply(np.float32(x_scale), np.asarray(w_scale, np.float32), dtype=np.float32) * np.ones(oc, np.float32)
    kw = {}
    if spec.get("bias") == "float":
        kw["bias"] = ((rng.integers(-40, 40, oc) + 0.5) * s).astype(np.float32) if spec.get("pow2") \
            else (rng.standard_normal(oc) * 5).astype(np.float32)
    elif spec.get("bias") == "int32":
        kw["bias"] = rng.integers(-3000, 3000, oc).astype(np.int32)
    if spec.get("relu"):
        kw["relu"] = True
    if "out" in spec:
        lo, hi = Q_RANGE[np.dtype(spec["out"])]
        kw.update(out_scale=out_scale, out_dtype=np.dtype(spec["out"]),
                  out_zero_point=int(rng.integers(lo + 100, hi - 99)))
    return x_scale, w_scale, kw


# --- conv2d against the naive convolution --------------------------------------------------


@pytest.mark.parametrize("seed", range(200))
def test_conv2d_against_naive(seed):
    case = random_case("naive", seed)
    want = naive_conv(case.x, case.w, **case.kw)
    assert np.all(np.abs(want) <= INT32_MAX)
    got = ref.conv2d(case.x, case.w, **case.kw)
    assert got.flags.c_contiguous
    assert_same(got, want.astype(np.int32), str(case))


@pytest.mark.parametrize("groups", [1, 2, 4, "depthwise"])
@pytest.mark.parametrize("seed", range(10))
def test_conv2d_against_naive_per_group_kind(groups, seed):
    case = random_case("naive_groups", groups, seed, groups=groups)
    assert_same(ref.conv2d(case.x, case.w, **case.kw), naive_conv(case.x, case.w, **case.kw).astype(np.int32),
                str(case))


def test_random_cases_cover_the_configuration_space():
    """The generator reaches every kernel, stride, dilation, padding form, group kind, layout,
    dtype and zero-point form within the 200 seeds of test_conv2d_against_naive."""
    cases = [random_case("naive", s) for s in range(200)]
    seen = {
        "kernel": {c.w.shape[2:] for c in cases},
        "stride": {s for c in cases for s in pair(c.kw["stride"])},
        "dilation": {d for c in cases for d in pair(c.kw["dilation"])},
        "padding": {type(c.kw["padding"]).__name__ + str(np.size(c.kw["padding"])) for c in cases},
        "asymmetric": {len(set(pad4(c.kw["padding"]))) > 1 for c in cases},
        "groups": {"depthwise" if c.kw["groups"] == c.x.shape[1 if c.kw["layout"] == "NCHW" else 3] == c.w.shape[0]
                   and c.kw["groups"] > 1 else c.kw["groups"] for c in cases},
        "layout": {c.kw["layout"] for c in cases},
        "dtype": {c.x.dtype.name for c in cases},
        "w_zp": {np.ndim(c.kw["w_zero_point"]) for c in cases},
        "x_zp": {c.kw["x_zero_point"] != 0 for c in cases},
        "wide": {max(c.x.shape[1:3] if c.kw["layout"] == "NHWC" else c.x.shape[2:]) >= 24 for c in cases},
    }
    assert seen["kernel"] >= set(KERNELS)
    assert seen["stride"] == {1, 2, 3} and seen["dilation"] == {1, 2}
    assert seen["padding"] == {"int1", "tuple2", "tuple4"} and seen["asymmetric"] == {False, True}
    assert seen["groups"] >= {1, 2, 4, "depthwise"}
    assert seen["layout"] == {"NCHW", "NHWC"} and seen["dtype"] == {"int8", "uint8"}
    assert seen["w_zp"] == {0, 1} and seen["x_zp"] == {False, True} and seen["wide"] == {False, True}


def test_layouts_agree():
    for seed in range(20):
        case = random_case("layouts", seed)
        kw = dict(case.kw)
        x_nchw = to_nchw(case.x, kw.pop("layout"))
        y_nchw = ref.conv2d(x_nchw, case.w, layout="NCHW", **kw)
        y_nhwc = ref.conv2d(np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)), case.w, layout="NHWC", **kw)
        assert_same(y_nhwc, np.ascontiguousarray(y_nchw.transpose(0, 2, 3, 1)), f"NHWC vs NCHW: {case}")


def test_pointwise_is_a_gemm():
    """A 1x1 stride-1 NHWC convolution is the gemm of the pixels by the (C, OC) weights."""
    rng = rng_for("pointwise")
    x = rand_q(rng, (2, 5, 7, 33), np.uint8)
    w = rand_q(rng, (17, 33, 1, 1), np.int8)
    w_zp = rng.integers(-128, 128, 17).astype(np.int32)
    want = ref.gemm(x.reshape(-1, 33), w[:, :, 0, 0].T, a_zero_point=131, b_zero_point=w_zp).reshape(2, 5, 7, 17)
    assert_same(ref.conv2d(x, w, layout="NHWC", x_zero_point=131, w_zero_point=w_zp), want, "1x1 NHWC")


# --- qconv2d --------------------------------------------------------------------------


@pytest.mark.parametrize("epilogue", list(EPILOGUES))
@pytest.mark.parametrize("seed", range(12))
def test_qconv2d_against_naive(seed, epilogue):
    """Float output within float32 rounding of the float64 value; requantized output within 1."""
    case = random_case("qnaive", seed)
    rng = rng_for("qnaive_scales", seed, epilogue)
    oc = case.w.shape[0]
    x_scale, w_scale, kw = epilogue_args(rng, oc, epilogue)
    got = ref.qconv2d(case.x, case.w, x_scale, w_scale, **case.kw, **kw)

    s = (np.float64(np.float32(x_scale)) * np.asarray(w_scale, np.float32).astype(np.float64)) * np.ones(oc)
    shape = shape_in(case.kw["layout"], 1, oc, 1, 1)
    s = s.reshape(shape)
    acc = naive_conv(case.x, case.w, **case.kw)
    bias = kw.get("bias")
    where = f"epilogue={epilogue} {case}"
    if "out_scale" not in kw:
        want = acc * s
        if bias is not None:
            want = want + bias.astype(np.float64).reshape(shape)
        if kw.get("relu"):
            want = np.maximum(want, 0)
        assert got.dtype == np.float32 and got.shape == want.shape
        tol = 2.0**-21 * (np.abs(acc * s) + (0 if bias is None else np.abs(bias.astype(np.float64)).reshape(shape)))
        err = np.abs(got.astype(np.float64) - want)
        assert np.all(err <= tol), f"{where}: off by {np.max(err - tol)} past float32 rounding"
    else:
        # The contract's bias_q: an int32 bias as given, a float bias divided by float32 s, rounded.
        if bias is None:
            bias_q = 0
        elif bias.dtype == np.int32:
            bias_q = bias.astype(np.float64).reshape(shape)
        else:
            s32 = np.multiply(np.float32(x_scale), np.asarray(w_scale, np.float32), dtype=np.float32)
            bias_q = np.rint(np.divide(bias, s32, dtype=np.float32)).astype(np.float64).reshape(shape)
        lo, hi = Q_RANGE[np.dtype(kw["out_dtype"])]
        ozp = kw["out_zero_point"]
        t = np.rint((acc + bias_q) * s / np.float64(np.float32(kw["out_scale"]))) + ozp
        want = np.clip(t, max(lo, ozp) if kw.get("relu") else lo, hi)
        assert got.dtype == kw["out_dtype"] and got.shape == want.shape
        err = np.abs(got.astype(np.float64) - want)
        assert np.all(err <= 1), f"{where}: off by {np.max(err)}"


@pytest.mark.parametrize("epilogue", list(EPILOGUES))
@pytest.mark.parametrize("seed", range(8))
def test_qconv2d_epilogue_is_qgemms(seed, epilogue):
    """qconv2d is, bit for bit, the reference qgemm of each group's im2col rows and weights."""
    case = random_case("qgemm_equiv", seed)
    rng = rng_for("qgemm_equiv_scales", seed, epilogue)
    x, w, g = case.x, case.w, case.kw["groups"]
    oc, cg, kh, kw_ = w.shape
    ocg = oc // g
    x_scale, w_scale, kw = epilogue_args(rng, oc, epilogue)
    got = ref.qconv2d(x, w, x_scale, w_scale, **case.kw, **kw)

    rows, (n, oh, ow) = im2col(x, kh, kw_, stride=case.kw["stride"], padding=case.kw["padding"],
                               dilation=case.kw["dilation"], layout=case.kw["layout"],
                               x_zero_point=case.kw["x_zero_point"])
    w_zp = np.broadcast_to(np.asarray(case.kw["w_zero_point"], np.int32), (oc,))
    per_channel = lambda v, sl: v[sl] if np.ndim(v) else v  # noqa: E731
    parts = []
    for j in range(g):
        sl = slice(j * ocg, (j + 1) * ocg)
        a = np.ascontiguousarray(rows[:, j * cg:(j + 1) * cg].reshape(len(rows), -1))
        b = w[sl].reshape(ocg, -1).T
        gkw = dict(kw, bias=per_channel(kw["bias"], sl)) if "bias" in kw else kw
        parts.append(ref.qgemm(a, b, x_scale, per_channel(w_scale, sl), a_zero_point=case.kw["x_zero_point"],
                               b_zero_point=w_zp[sl], **gkw))
    want = from_nchw(np.concatenate(parts, axis=1).reshape(n, oh, ow, oc).transpose(0, 3, 1, 2), case.kw["layout"])
    assert_same(got, np.ascontiguousarray(want), f"epilogue={epilogue} {case}")


# --- arguments ---------------------------------------------------------------------------


def test_parameter_forms_agree():
    """An int, a pair and a 4-tuple (and lists, NumPy integers) that mean the same give the same result."""
    rng = rng_for("forms")
    x = rand_q(rng, (1, 4, 9, 8), np.int8)
    w = rand_q(rng, (6, 2, 3, 3), np.int8)
    want = ref.conv2d(x, w, stride=2, padding=1, dilation=2, groups=2)
    for kw in (dict(stride=(2, 2), padding=(1, 1), dilation=(2, 2)),
               dict(stride=[2, 2], padding=[1, 1, 1, 1], dilation=[2, 2]),
               dict(stride=np.int64(2), padding=np.int32(1), dilation=np.uint8(2)),
               dict(stride=(np.int16(2), 2), padding=(1, np.int64(1), 1, 1), dilation=(2, np.int8(2)))):
        assert_same(ref.conv2d(x, w, groups=np.int64(2), **kw), want, str(kw))
    # (h, w) padding is (top, left, bottom, right) = (h, w, h, w)
    assert_same(ref.conv2d(x, w, padding=(2, 1), groups=2), ref.conv2d(x, w, padding=(2, 1, 2, 1), groups=2),
                "padding (h, w)")
    assert_same(ref.conv2d(x, w, padding=(2, 0, 1, 3), groups=2),
                naive_conv(x, w, padding=(2, 0, 1, 3), groups=2).astype(np.int32), "asymmetric padding")


def test_zero_points_as_other_integer_types():
    case = random_case("zp_types", 0, groups=1)
    kw = dict(case.kw)
    want = ref.conv2d(case.x, case.w, **kw)
    kw["x_zero_point"] = np.int64(kw["x_zero_point"])
    kw["w_zero_point"] = np.asarray(kw["w_zero_point"], np.int64)
    assert_same(ref.conv2d(case.x, case.w, **kw), want, "int64 zero points")


def test_packed_like_weights():
    """The reference accepts any object with .weights, .zero_point and .groups (PackedConvWeights)."""
    case = random_case("packed_like", 3, groups=2)
    kw = dict(case.kw)
    w_zp = np.broadcast_to(np.asarray(kw.pop("w_zero_point"), np.int32), (case.w.shape[0],))
    packed = types.SimpleNamespace(weights=case.w, zero_point=w_zp, groups=kw["groups"])
    want = ref.conv2d(case.x, case.w, w_zero_point=w_zp, **kw)
    assert_same(ref.conv2d(case.x, packed, **kw), want, "packed-like")
    assert_same(ref.qconv2d(case.x, packed, 0.5, 0.25, **kw), ref.qconv2d(case.x, case.w, 0.5, 0.25, w_zero_point=w_zp,
                                                                         **kw), "qconv2d packed-like")


def test_out():
    case = random_case("out", 1)
    want = ref.conv2d(case.x, case.w, **case.kw)
    out = np.full(want.shape, 7, np.int32)
    assert ref.conv2d(case.x, case.w, out=out, **case.kw) is out
    assert_same(out, want, "conv2d out=")
    qwant = ref.qconv2d(case.x, case.w, 0.5, 0.01, out_scale=0.3, out_dtype=np.uint8, **case.kw)
    qout = np.zeros(want.shape, np.uint8)
    assert ref.qconv2d(case.x, case.w, 0.5, 0.01, out_scale=0.3, out_dtype=np.uint8, out=qout, **case.kw) is qout
    assert_same(qout, qwant, "qconv2d out=")


def test_non_contiguous_inputs():
    case = random_case("views", 2)
    want = ref.conv2d(case.x, case.w, **case.kw)
    x_view = np.repeat(case.x, 2, axis=-1)[..., ::2]
    w_view = np.asfortranarray(case.w)
    assert_same(ref.conv2d(x_view, w_view, **case.kw), want, "strided x, Fortran-ordered w")


EMPTY = {
    "n=0": ((0, 4, 5, 5), (6, 4, 3, 3), dict()),
    "oc=0": ((2, 4, 5, 5), (0, 4, 3, 3), dict()),
    "c=0": ((2, 0, 5, 5), (3, 0, 3, 3), dict()),
    "h=0_padded": ((1, 2, 0, 4), (3, 2, 1, 1), dict(padding=1)),
}


@pytest.mark.parametrize("case", list(EMPTY))
def test_empty(case):
    """Empty batches and channel counts give empty (or all-zero) results; an empty image can still
    have an output made of padding only, which is zero."""
    x_shape, w_shape, kw = EMPTY[case]
    x = np.full(x_shape, 3, np.uint8)
    w = np.ones(w_shape, np.int8)
    y = ref.conv2d(x, w, x_zero_point=1, **kw)
    assert_same(y, naive_conv(x, w, x_zero_point=1, **kw).astype(np.int32), case)
    assert not y.any()


# --- the exactness bound --------------------------------------------------------------------

# (x dtype, x fill, x_zp, w fill, w_zp, (C/groups, KH, KW) at the bound, (C/groups, KH, KW) past it)
BOUND_CASES = {
    "uint8_1x1": (np.uint8, 255, 0, -128, 0, (65793, 1, 1), (65794, 1, 1)),
    "uint8_taps": (np.uint8, 255, 0, -128, 0, (241, 13, 21), (491, 2, 67)),  # 241*13*21 = 65793
    "int8_1x1": (np.int8, -128, 0, -128, 0, (131071, 1, 1), (131072, 1, 1)),
    "int8_zp_ends": (np.int8, -128, 127, 127, -128, (33025, 1, 1), (33026, 1, 1)),  # 255 * 255
}


@pytest.mark.parametrize("case", list(BOUND_CASES))
def test_deep_k_bound(case):
    """K = (C/groups) * KH * KW at the bound gives the exact extreme value; one more is refused."""
    dt, xv, x_zp, wv, w_zp, at, past = BOUND_CASES[case]
    k = int(np.prod(at))
    x = np.full((1, at[0], at[1], at[2]), xv, dt)
    w = np.full((2, *at), wv, np.int8)
    want = np.full((1, 2, 1, 1), k * (xv - x_zp) * (wv - w_zp), np.int32)
    assert_same(ref.conv2d(x, w, x_zero_point=x_zp, w_zero_point=w_zp), want, f"{case} K={k}")
    kp = int(np.prod(past))
    xp = np.full((1, past[0], past[1], past[2]), xv, dt)
    wp = np.full((2, *past), wv, np.int8)
    with pytest.raises(ValueError, match=rf"K={kp} \(C/groups \* KH \* KW\) could overflow.*K must be <= {k}$"):
        ref.conv2d(xp, wp, x_zero_point=x_zp, w_zero_point=w_zp)
    with pytest.raises(ValueError, match=rf"K must be <= {k}$"):
        ref.qconv2d(xp, wp, 1.0, 1.0, x_zero_point=x_zp, w_zero_point=w_zp)


def test_deep_k_bound_includes_int32_bias():
    bias = np.array([-10**6, 10**6 - 1], np.int32)
    k = (INT32_MAX - 10**6) // (255 * 128)
    kw = dict(bias=bias, out_scale=2.0**25, out_dtype=np.int8)
    ref.qconv2d(np.full((1, k, 1, 1), 255, np.uint8), np.full((2, k, 1, 1), -128, np.int8), 1.0, 1.0, **kw)
    with pytest.raises(ValueError, match=rf"\|bias\| <= 1000000\): K must be <= {k}$"):
        ref.qconv2d(np.full((1, k + 1, 1, 1), 255, np.uint8), np.full((2, k + 1, 1, 1), -128, np.int8), 1.0, 1.0,
                    **kw)


# --- errors ---------------------------------------------------------------------------------

# Shared with tests/test_conv.py. Base problem: X (N=2, C=4, H=6, W=7) uint8 NCHW, W (OC=6, C/groups=2,
# 3, 3) with groups=2: output (2, 6, 4, 5).
X = np.arange(2 * 4 * 6 * 7, dtype=np.int64).reshape(2, 4, 6, 7).astype(np.uint8)
W = (np.arange(6 * 2 * 3 * 3, dtype=np.int64).reshape(6, 2, 3, 3) % 19 - 9).astype(np.int8)
OUT_SHAPE = (2, 6, 4, 5)


def _c(f, **kw):
    base = dict(x=X, w=W, groups=2)
    base.update(kw)
    return f.conv2d(base.pop("x"), base.pop("w"), **base)


def _q(f, **kw):
    base = dict(x=X, w=W, x_scale=0.1, w_scale=0.2, groups=2)
    base.update(kw)
    return f.qconv2d(base.pop("x"), base.pop("w"), base.pop("x_scale"), base.pop("w_scale"), **base)


CONV_ERRORS = {
    # dtypes and dimensions
    "x_float": (TypeError, r"x must be an int8 or uint8 array, got dtype float64", lambda f: _c(f, x=X / 2)),
    "x_int16": (TypeError, r"x must be an int8 or uint8 array", lambda f: _c(f, x=X.astype(np.int16))),
    "x_list": (TypeError, r"x must be an int8 or uint8 array", lambda f: _c(f, x=X.tolist())),
    "x_3d": (ValueError, r"x must be 4-D", lambda f: _c(f, x=X[0])),
    "x_5d": (ValueError, r"x must be 4-D", lambda f: _c(f, x=X[None])),
    "w_uint8": (TypeError, r"w must be an int8 array or PackedConvWeights", lambda f: _c(f, w=W.view(np.uint8))),
    "w_float": (TypeError, r"w must be an int8 array", lambda f: _c(f, w=W.astype(np.float32))),
    "w_3d": (ValueError, r"w must be 4-D \(OC, C/groups, KH, KW\)", lambda f: _c(f, w=W[0])),
    "w_2d": (ValueError, r"w must be 4-D", lambda f: _c(f, w=W[:, :, 0, 0])),
    # groups and channels
    "c_not_divisible_by_groups": (ValueError, r"C=4 .*groups=3", lambda f: _c(f, w=W[:, :1], groups=3)),
    "oc_not_divisible_by_groups": (ValueError, r"OC=5 .*groups=2", lambda f: _c(f, w=W[:5])),
    "w_channels_not_c_over_groups": (ValueError, r"w.shape\[1\] must be C/groups = 2 .*got 4",
                                     lambda f: _c(f, w=np.concatenate([W, W], axis=1))),
    "w_channels_groups_1": (ValueError, r"w.shape\[1\] must be C/groups = 4 .*got 2", lambda f: _c(f, groups=1)),
    "groups_zero": (ValueError, r"groups must be >= 1, got 0", lambda f: _c(f, groups=0)),
    "groups_negative": (ValueError, r"groups must be >= 1", lambda f: _c(f, groups=-2)),
    "groups_float": (TypeError, r"groups must be an integer", lambda f: _c(f, groups=2.0)),
    "groups_bool": (TypeError, r"groups must be an integer", lambda f: _c(f, groups=True)),
    # kernel and output size
    "kernel_taller_than_input": (ValueError, r"output height would be < 1",
                                 lambda f: _c(f, w=np.zeros((6, 2, 7, 3), np.int8))),
    "kernel_wider_than_padded_input": (ValueError, r"output width would be < 1",
                                       lambda f: _c(f, w=np.zeros((6, 2, 1, 10), np.int8), padding=(0, 1))),
    "dilated_kernel_too_wide": (ValueError, r"output width would be < 1", lambda f: _c(f, dilation=(1, 4))),
    "kernel_empty": (ValueError, r"at least 1x1", lambda f: _c(f, w=np.zeros((6, 2, 0, 3), np.int8))),
    # stride, dilation, padding
    "stride_zero": (ValueError, r"stride must be >= 1", lambda f: _c(f, stride=0)),
    "stride_negative": (ValueError, r"stride must be >= 1", lambda f: _c(f, stride=-1)),
    "stride_pair_zero": (ValueError, r"stride must be >= 1", lambda f: _c(f, stride=(1, 0))),
    "stride_float": (TypeError, r"stride must be an integer or a pair", lambda f: _c(f, stride=1.0)),
    "stride_numpy_float": (TypeError, r"stride must be an integer or a pair", lambda f: _c(f, stride=np.float32(1))),
    "stride_bool": (TypeError, r"stride must be an integer or a pair", lambda f: _c(f, stride=True)),
    "stride_none": (TypeError, r"stride must be an integer or a pair", lambda f: _c(f, stride=None)),
    "stride_str": (TypeError, r"stride must be an integer or a pair", lambda f: _c(f, stride="1")),
    "stride_triple": (ValueError, r"stride must be an integer or a pair \(h, w\)", lambda f: _c(f, stride=(1, 1, 1))),
    "stride_pair_float": (TypeError, r"each entry of stride must be an integer", lambda f: _c(f, stride=(1, 1.5))),
    "dilation_zero": (ValueError, r"dilation must be >= 1", lambda f: _c(f, dilation=0)),
    "dilation_pair_zero": (ValueError, r"dilation must be >= 1", lambda f: _c(f, dilation=(0, 1))),
    "dilation_float": (TypeError, r"dilation must be an integer or a pair", lambda f: _c(f, dilation=2.0)),
    "padding_negative": (ValueError, r"padding must be >= 0", lambda f: _c(f, padding=-1)),
    "padding_pair_negative": (ValueError, r"padding must be >= 0", lambda f: _c(f, padding=(1, -1))),
    "padding_four_negative": (ValueError, r"padding must be >= 0", lambda f: _c(f, padding=(0, 0, 0, -1))),
    "padding_three": (ValueError, r"padding must be an integer, a pair \(h, w\) or \(top, left, bottom, right\)",
                      lambda f: _c(f, padding=(1, 1, 1))),
    "padding_float": (TypeError, r"padding must be an integer", lambda f: _c(f, padding=0.5)),
    "padding_bool_entry": (TypeError, r"each entry of padding must be an integer", lambda f: _c(f, padding=(1, False))),
    # layout
    "layout_lower_case": (ValueError, r"layout must be 'NCHW' or 'NHWC', got 'nchw'", lambda f: _c(f, layout="nchw")),
    "layout_unknown": (ValueError, r"layout must be 'NCHW' or 'NHWC'", lambda f: _c(f, layout="NWHC")),
    "layout_not_str": (TypeError, r"layout must be the str", lambda f: _c(f, layout=None)),
    "layout_nhwc_mismatch": (ValueError, r"C=7 .*groups=2", lambda f: _c(f, layout="NHWC")),
    # zero points
    "x_zp_above_uint8": (ValueError, r"x_zero_point must lie in \[0, 255\], got 256",
                         lambda f: _c(f, x_zero_point=256)),
    "x_zp_negative_uint8": (ValueError, r"x_zero_point must lie in \[0, 255\]", lambda f: _c(f, x_zero_point=-1)),
    "x_zp_above_int8": (ValueError, r"x_zero_point must lie in \[-128, 127\]",
                        lambda f: _c(f, x=X.view(np.int8), x_zero_point=128)),
    "x_zp_float": (TypeError, r"x_zero_point must be an integer", lambda f: _c(f, x_zero_point=1.0)),
    "x_zp_array": (ValueError, r"x_zero_point must be a scalar", lambda f: _c(f, x_zero_point=np.zeros(4, np.int32))),
    "w_zp_above_int8": (ValueError, r"w_zero_point must lie in \[-128, 127\]", lambda f: _c(f, w_zero_point=128)),
    "w_zp_channel_below_int8": (ValueError, r"w_zero_point must lie in \[-128, 127\]",
                                lambda f: _c(f, w_zero_point=[0, 0, -129, 0, 0, 0])),
    "w_zp_wrong_length": (ValueError, r"w_zero_point must be a scalar or have shape \(6,\)",
                          lambda f: _c(f, w_zero_point=np.zeros(4, np.int32))),
    "w_zp_2d": (ValueError, r"w_zero_point must be a scalar or have shape \(6,\)",
                lambda f: _c(f, w_zero_point=np.zeros((6, 1), np.int32))),
    "w_zp_float": (TypeError, r"w_zero_point must be an integer", lambda f: _c(f, w_zero_point=0.5)),
    # out
    "out_wrong_dtype": (TypeError, r"out must have dtype int32", lambda f: _c(f, out=np.zeros(OUT_SHAPE, np.int64))),
    "out_not_ndarray": (TypeError, r"out must be a numpy.ndarray", lambda f: _c(f, out=np.zeros(OUT_SHAPE).tolist())),
    "out_wrong_shape": (ValueError, r"out must have shape \(2, 6, 4, 5\)",
                        lambda f: _c(f, out=np.zeros((2, 4, 5, 6), np.int32))),
    "out_nchw_shape_for_nhwc": (ValueError, r"out must have shape \(2, 4, 5, 6\)",
                                lambda f: _c(f, x=X.transpose(0, 2, 3, 1), layout="NHWC",
                                             out=np.zeros(OUT_SHAPE, np.int32))),
    "out_non_contiguous": (ValueError, r"C-contiguous",
                           lambda f: _c(f, out=np.zeros((2, 6, 4, 10), np.int32)[..., ::2])),
    "out_fortran": (ValueError, r"C-contiguous",
                    lambda f: _c(f, out=np.asfortranarray(np.zeros(OUT_SHAPE, np.int32)))),
    "out_read_only": (ValueError, r"read-only", lambda f: _c(f, out=read_only(np.zeros(OUT_SHAPE, np.int32)))),
    # the exactness bound
    "k_past_bound": (ValueError, r"K=65794 \(C/groups \* KH \* KW\) could overflow.*K must be <= 65793$",
                     lambda f: f.conv2d(np.zeros((1, 65794, 1, 1), np.uint8), np.zeros((1, 65794, 1, 1), np.int8))),
}

QCONV_ERRORS = {
    "qconv_x_float": (TypeError, r"x must be an int8 or uint8 array", lambda f: _q(f, x=X.astype(np.float32))),
    "qconv_w_uint8": (TypeError, r"w must be an int8 array", lambda f: _q(f, w=W.view(np.uint8))),
    "qconv_groups_mismatch": (ValueError, r"w.shape\[1\] must be C/groups", lambda f: _q(f, groups=1)),
    "qconv_stride_zero": (ValueError, r"stride must be >= 1", lambda f: _q(f, stride=0)),
    "x_scale_zero": (ValueError, r"x_scale must be finite and > 0", lambda f: _q(f, x_scale=0.0)),
    "x_scale_negative": (ValueError, r"x_scale must be finite and > 0", lambda f: _q(f, x_scale=-0.1)),
    "x_scale_nan": (ValueError, r"x_scale must be finite and > 0", lambda f: _q(f, x_scale=float("nan"))),
    "x_scale_inf": (ValueError, r"x_scale must be finite and > 0", lambda f: _q(f, x_scale=float("inf"))),
    "x_scale_1d": (ValueError, r"x_scale must be a scalar", lambda f: _q(f, x_scale=np.full(4, 0.1))),
    "x_scale_str": (TypeError, r"x_scale must be a real number", lambda f: _q(f, x_scale=np.array("a"))),
    "w_scale_wrong_length": (ValueError, r"w_scale must be a scalar or have shape \(6,\)",
                             lambda f: _q(f, w_scale=np.full(4, 0.1, np.float32))),
    "w_scale_2d": (ValueError, r"w_scale must be a scalar or have shape \(6,\)",
                   lambda f: _q(f, w_scale=np.full((6, 1), 0.1))),
    "w_scale_zero": (ValueError, r"w_scale must be finite and > 0", lambda f: _q(f, w_scale=0)),
    "w_scale_channel_negative": (ValueError, r"w_scale must be finite and > 0",
                                 lambda f: _q(f, w_scale=np.array([0.1, 0.1, -0.1, 0.1, 0.1, 0.1], np.float32))),
    "w_scale_channel_nan": (ValueError, r"w_scale must be finite and > 0",
                            lambda f: _q(f, w_scale=np.array([0.1, np.nan, 0.1, 0.1, 0.1, 0.1], np.float32))),
    "w_scale_underflows_float32": (ValueError, r"w_scale must be finite and > 0", lambda f: _q(f, w_scale=1e-50)),
    "scale_product_underflows": (ValueError,
                                 r"^x_scale \* w_scale must be finite and > 0 in float32 for every output channel$",
                                 lambda f: _q(f, x_scale=1e-30, w_scale=1e-30)),
    **epilogue_errors(_q, 6, "x", "w"),
    "out_zero_point_out_of_range": (ValueError, r"out_zero_point must lie in \[0, 255\]",
                                    lambda f: _q(f, out_scale=1.0, out_dtype=np.uint8, out_zero_point=-1)),
    "qconv_x_zp_out_of_range": (ValueError, r"x_zero_point must lie in \[0, 255\]", lambda f: _q(f, x_zero_point=300)),
    "qconv_w_zp_wrong_length": (ValueError, r"w_zero_point must be a scalar or have shape \(6,\)",
                                lambda f: _q(f, w_zero_point=[1, 2])),
    "qconv_out_wrong_dtype": (TypeError, r"out must have dtype int8",
                              lambda f: _q(f, out_scale=1.0, out_dtype=np.int8, out=np.zeros(OUT_SHAPE, np.uint8))),
    "qconv_out_float64": (TypeError, r"out must have dtype float32", lambda f: _q(f, out=np.zeros(OUT_SHAPE))),
    "qconv_out_wrong_shape": (ValueError, r"out must have shape \(2, 6, 4, 5\)",
                              lambda f: _q(f, out=np.zeros((2, 6, 5, 4), np.float32))),
    "qconv_out_non_contiguous": (ValueError, r"C-contiguous",
                                 lambda f: _q(f, out=np.zeros((4, 6, 4, 5), np.float32)[::2])),
    "qconv_k_past_bound_with_bias": (ValueError, r"\|bias\| <= 1000000\): K must be <= 65762$",
                                     lambda f: f.qconv2d(np.zeros((1, 65763, 1, 1), np.uint8),
                                                         np.zeros((1, 65763, 1, 1), np.int8), 1.0, 1.0,
                                                         bias=np.array([10**6], np.int32), out_scale=1.0,
                                                         out_dtype=np.int8)),
}
ERRORS = {**CONV_ERRORS, **QCONV_ERRORS}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors(case):
    exc, pattern, call = ERRORS[case]
    with pytest.raises(exc, match=pattern):
        call(ref)


def _packed_like(groups=2, zero_point=0):
    return types.SimpleNamespace(weights=W, zero_point=np.full(6, zero_point, np.int32), groups=groups)


@pytest.mark.parametrize("case,pattern,call", [
    ("w_zero_point_given", r"zero point was fixed by pack_conv_weights",
     lambda: ref.conv2d(X, _packed_like(), groups=2, w_zero_point=3)),
    ("w_zero_point_array_given", r"zero point was fixed by pack_conv_weights",
     lambda: ref.conv2d(X, _packed_like(), groups=2, w_zero_point=np.zeros(6, np.int32))),
    ("groups_differ", r"packed with groups=2, but groups=1",
     lambda: ref.conv2d(X, _packed_like(), groups=1)),
    ("groups_default", r"packed with groups=2, but groups=1", lambda: ref.conv2d(X, _packed_like())),
    ("qconv_w_zero_point_given", r"zero point was fixed by pack_conv_weights",
     lambda: ref.qconv2d(X, _packed_like(), 1.0, 1.0, groups=2, w_zero_point=-1)),
])
def test_packed_like_errors(case, pattern, call):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_out_untouched_on_error():
    out = np.full(OUT_SHAPE, 77, np.int32)
    with pytest.raises(ValueError):
        _c(ref, x_zero_point=300, out=out)
    assert (out == 77).all()
