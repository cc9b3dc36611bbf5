"""quantize / dequantize: every ISA path against the NumPy reference, bit for bit.

Conventions:

- results are compared exactly (dtype, shape and every element; float32 results
  by bit pattern, so that -0.0 vs +0.0 or NaN payloads would show);
- random data comes from generators seeded by the case (op, shape, config), so a
  failure names its case and reproduces on its own;
- a few results are also computed by hand (Python integers and exact binary
  fractions), so that the reference itself is pinned, not just trusted.
"""
from __future__ import annotations

import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import reference as ref

from exact import assert_same, raises_on_both, read_only, rng_for

F32 = np.float32
MAX32 = float(np.finfo(np.float32).max)
TINY32 = 2.0**-149  # smallest float32 denormal

# (id, dtype, narrow_range)
QCONFIGS = [
    ("int8", np.int8, False),
    ("uint8", np.uint8, False),
    ("int8_narrow", np.int8, True),
]
QCONFIG_IDS = [c[0] for c in QCONFIGS]


def qrange(dtype, narrow=False):
    if np.dtype(dtype) == np.uint8:
        return 0, 255
    return (-127 if narrow else -128), 127


# --- helpers ------------------------------------------------------------------


def bits(a):
    a = np.asarray(a)
    return a.view(np.uint32) if a.dtype == np.float32 else a


def check(op, x, scale, zero_point=0, *, what="", **kw):
    """iq.<op> == reference.<op> for op "quantize" or "dequantize"; returns the fast result."""
    got = getattr(iq, op)(x, scale, zero_point, **kw)
    want = getattr(ref, op)(x, scale, zero_point, **kw)
    assert isinstance(got, np.ndarray), what
    assert_same(got, want, what)
    return got


# Values that must survive every lane of every kernel.
SPECIALS = np.array(
    [
        np.nan, np.inf, -np.inf, 0.0, -0.0, TINY32, -TINY32, 1e-40, -1e-40, 2.0**-126,
        MAX32, -MAX32, 1e20, -1e20, 3e9, -3e9, 2.0**24 + 2, -(2.0**24) - 2,
        0.5, -0.5, 1.5, -1.5, 126.5, 127.5, -127.5, -128.5, 254.5, 255.5,
    ],
    np.float32,
)

# Power-of-two scales make (k + 0.5) * scale an exact tie; the others make it a
# near-tie that only a true float32 division rounds like the reference.
SCALES = [0.25, 1.0, 2.0**-7, 0.0371, 0.3, 7.0, 3.0e-3, 1.1, 64.0, 0.7]


def make_x(shape, scale, rng):
    """float32 data for quantize: in range, saturating, ties, and specials.

    ``scale`` may be an array broadcasting against ``shape`` (per-channel).
    """
    s = np.asarray(scale, np.float32)
    base = (rng.standard_normal(shape) * 90).astype(np.float32) * s
    k = rng.integers(-300, 300, shape).astype(np.float32)
    ties = (k + F32(0.5)) * s
    special = rng.choice(SPECIALS, shape)
    u = rng.random(shape)
    x = np.where(u < 0.35, ties, base)
    x = np.where(u > 0.92, special, x)
    return np.asarray(x, dtype=np.float32, order="C")


def make_q(shape, dtype, rng):
    lo, hi = qrange(dtype)
    q = rng.integers(lo, hi + 1, shape).astype(dtype)
    # make sure the extremes of the dtype turn up
    u = rng.random(shape)
    q = np.where(u < 0.05, dtype(lo), q)
    q = np.where(u > 0.95, dtype(hi), q)
    return np.asarray(q, dtype=dtype, order="C")


def random_scales(n, rng):
    s = rng.uniform(0.01, 2.0, n).astype(np.float32)
    pow2 = (2.0 ** rng.integers(-10, 4, n)).astype(np.float32)
    return np.where(rng.random(n) < 0.4, pow2, s).astype(np.float32)


def half_even(v):
    """Round an exact binary fraction to the nearest integer, ties to even (Python int)."""
    return int(round(v))  # Python's round is exact and ties-to-even for floats


def sat(v, lo, hi):
    return max(lo, min(hi, v))


# --- values pinned by hand ------------------------------------------------------


def test_known_results_by_hand():
    def q(x, *a, **k):
        r = iq.quantize(np.array(x, np.float32), *a, **k)
        r_ref = ref.quantize(np.array(x, np.float32), *a, **k)
        assert_same(r, r_ref, f"quantize{(x,) + a} {k}")
        return r.tolist()

    # ties to even, both signs
    assert q([2.5, 3.5, -2.5, -3.5, 0.5, -0.5, 1.5, -1.5], 1.0) == [2, 4, -2, -4, 0, 0, 2, -2]
    # saturation, full and narrow int8, uint8
    assert q([-1000.0, 1000.0], 1.0) == [-128, 127]
    assert q([-1000.0, 1000.0, -127.0, -127.5, -128.0], 1.0, narrow_range=True) == [-127, 127, -127, -127, -127]
    assert q([-1000.0, 1000.0, 0.0, 1.5], 1.0, 128, dtype=np.uint8) == [0, 255, 128, 130]
    # rounding happens before the zero point is added (adding first moves ties)
    assert q([0.5], 1.0, 1) == [1]
    assert q([2.5], 1.0, 3) == [5]
    assert q([2.5, -0.5], 1.0, 3, dtype=np.uint8) == [5, 3]
    # NaN -> zero point, +Inf -> qmax, -Inf -> qmin
    assert q([np.nan, np.inf, -np.inf], 0.1, 5) == [5, 127, -128]
    assert q([np.nan, np.inf, -np.inf], 0.1, 7, dtype=np.uint8) == [7, 255, 0]
    assert q([np.nan, np.inf, -np.inf], 0.1, -3, narrow_range=True) == [-3, 127, -127]
    # a true float32 division, not a multiplication by the reciprocal:
    # -885.5 / 7 == -126.5 exactly (-> -126), but -885.5 * float32(1/7) rounds to -127
    assert F32(-885.5) / F32(7.0) == F32(-126.5)
    assert q([-885.5], 7.0) == [-126]
    assert F32(66.15) / F32(0.7) == F32(94.5)
    assert q([66.15], 0.7) == [94]
    # per-channel, last and first axis
    x = [[1.0, 2.0], [3.0, 4.0]]
    assert q(x, np.array([1.0, 2.0], np.float32), axis=1) == [[1, 1], [3, 2]]
    assert q(x, np.array([1.0, 2.0], np.float32), axis=0) == [[1, 2], [2, 2]]
    assert q(x, 1.0, np.array([0, 100]), axis=1) == [[1, 102], [3, 104]]
    # huge and tiny, exactly
    assert q([1.5 * 2.0**127], 2.0**126) == [3]
    assert q([3 * TINY32, -5 * TINY32], TINY32) == [3, -5]
    assert q([MAX32, -MAX32], 2.0**-10) == [127, -128]

    def dq(qv, dtype, *a, **k):
        r = iq.dequantize(np.array(qv, dtype), *a, **k)
        assert_same(r, ref.dequantize(np.array(qv, dtype), *a, **k), f"dequantize{(qv,) + a}")
        return r

    assert dq([-128, 0, 127], np.int8, 0.5, -1).tolist() == [-63.5, 0.5, 64.0]
    assert dq([0, 255, 128], np.uint8, 2.0, 128).tolist() == [-256.0, 254.0, 0.0]
    assert dq([[1, 2], [3, 4]], np.int8, np.array([1.0, 0.5], np.float32), np.array([1, 0]), axis=1).tolist() == [
        [0.0, 1.0],
        [2.0, 2.0],
    ]
    # q == zero point gives +0.0, never -0.0
    z = dq([5, -7], np.int8, 0.25, 5)
    assert bits(z)[0] == 0 and z[1] == -3.0


def test_reference_quantize_formula_on_ties_and_edges():
    """The reference against integers computed by hand, on a full sweep of ties."""
    k = np.arange(-400, 400)
    for scale in (1.0, 0.5, 2.0**-10, 64.0):
        x = ((k + 0.5) * scale).astype(np.float32)
        assert np.all(x.astype(np.float64) / scale == k + 0.5)
        for name, dtype, narrow in QCONFIGS:
            lo, hi = qrange(dtype, narrow)
            for zp in (0, lo, hi, 3):
                want = [sat(half_even(v + 0.5) + zp, lo, hi) for v in k.tolist()]
                got = ref.quantize(x, scale, zp, dtype=dtype, narrow_range=narrow)
                assert got.tolist() == want, (name, scale, zp)


# --- every length, every path ---------------------------------------------------


GUARD = 16


@pytest.mark.parametrize("cfg", QCONFIGS, ids=QCONFIG_IDS)
def test_quantize_every_length(every_isa, cfg):
    name, dtype, narrow = cfg
    lo, hi = qrange(dtype, narrow)
    for n in range(601):
        rng = rng_for("quantize", n, name)
        scale = SCALES[n % len(SCALES)]
        zp = int(rng.integers(lo, hi + 1))
        x = make_x((n,), scale, rng)
        what = f"{every_isa} quantize n={n} {name} scale={scale} zp={zp}"
        check("quantize", x, scale, zp, dtype=dtype, narrow_range=narrow, what=what)
        # the same through out=, with guard bytes on either side of it: a tail
        # must not write past the array
        buf = np.full(n + 2 * GUARD, 0x5A, np.uint8).view(dtype)
        out = buf[GUARD:GUARD + n]
        r = iq.quantize(x, scale, zp, dtype=dtype, narrow_range=narrow, out=out)
        assert r is out, what
        assert_same(out, ref.quantize(x, scale, zp, dtype=dtype, narrow_range=narrow), what + " (out=)")
        assert np.all(buf.view(np.uint8)[:GUARD] == 0x5A), what + ": wrote before out"
        assert np.all(buf.view(np.uint8)[GUARD + n:] == 0x5A), what + ": wrote past out"


@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["int8", "uint8"])
def test_dequantize_every_length(every_isa, dtype):
    lo, hi = qrange(dtype)
    dscales = SCALES + [TINY32 * 3, 1e-40, 2.0**-130, 1e30]
    for n in range(601):
        rng = rng_for("dequantize", n, np.dtype(dtype).name)
        scale = dscales[n % len(dscales)]
        zp = int(rng.integers(lo, hi + 1))
        q = make_q((n,), dtype, rng)
        what = f"{every_isa} dequantize n={n} {np.dtype(dtype)} scale={scale} zp={zp}"
        check("dequantize", q, scale, zp, what=what)
        buf = np.full(n + 2 * GUARD, np.nan, np.float32)
        out = buf[GUARD:GUARD + n]
        r = iq.dequantize(q, scale, zp, out=out)
        assert r is out, what
        assert_same(out, ref.dequantize(q, scale, zp), what + " (out=)")
        assert np.all(np.isnan(buf[:GUARD])), what + ": wrote before out"
        assert np.all(np.isnan(buf[GUARD + n:])), what + ": wrote past out"


# --- shapes and axes ----------------------------------------------------------


ODD_SHAPES = [(), (1,), (2,), (3, 5, 7), (17, 1, 33), (1, 1, 1), (2, 3, 4, 5), (65,), (7, 9), (1, 300), (300, 1)]


def _shape_id(shape):
    return "x".join(map(str, shape)) or "0d"


@pytest.mark.parametrize("cfg", QCONFIGS, ids=QCONFIG_IDS)
def test_odd_shapes_per_tensor(isa, cfg):
    name, dtype, narrow = cfg
    lo, hi = qrange(dtype, narrow)
    for shape in ODD_SHAPES:
        rng = rng_for("odd", shape, name)
        scale = SCALES[len(shape) % len(SCALES)]
        zp = int(rng.integers(lo, hi + 1))
        x = make_x(shape, scale, rng)
        what = f"{isa} quantize shape={shape} {name}"
        q = check("quantize", x, scale, zp, dtype=dtype, narrow_range=narrow, what=what)
        assert q.shape == shape
        # per-tensor results do not depend on the shape
        assert_same(q.reshape(-1), iq.quantize(x.reshape(-1), scale, zp, dtype=dtype, narrow_range=narrow), what)
        d = check("dequantize", q, scale, zp, what=f"{isa} dequantize shape={shape} {name}")
        assert d.shape == shape


def test_zero_d_values(isa):
    x = np.array(-2.5, np.float32)
    q = iq.quantize(x, 1.0)
    assert q.shape == () and q.dtype == np.int8 and int(q) == -2
    assert_same(q, ref.quantize(x, 1.0), "0-d quantize")
    d = iq.dequantize(np.array(-3, np.int8), 0.5, 1)
    assert d.shape == () and d.dtype == np.float32 and float(d) == -2.0
    assert_same(d, ref.dequantize(np.array(-3, np.int8), 0.5, 1), "0-d dequantize")
    # a 0-d float32 scalar (numpy scalar, not an array) is accepted too
    assert int(iq.quantize(np.float32(3.5), 1.0)) == 4


@pytest.mark.parametrize(
    "fn, arg",
    [
        ("quantize", np.array(1.5, np.float32)),
        ("dequantize", np.array(3, np.int8)),
    ],
    ids=["quantize", "dequantize"],
)
@pytest.mark.parametrize("impl", [iq, ref], ids=["fast", "reference"])
def test_zero_d_input_gives_0d_array(impl, fn, arg):
    """A 0-d array in gives a 0-d ndarray out (as np.empty(x.shape) does), from both paths."""
    r = getattr(impl, fn)(arg, 0.5)
    assert isinstance(r, np.ndarray), f"{impl.__name__}.{fn} returned {type(r).__name__}, not a 0-d numpy.ndarray"
    assert r.shape == ()


# (shape, axis) for per-channel along first / middle / last axes, negative too
PER_CHANNEL_CASES = [
    ((3, 5, 7), 0),
    ((3, 5, 7), 1),
    ((3, 5, 7), 2),
    ((3, 5, 7), -1),
    ((3, 5, 7), -2),
    ((3, 5, 7), -3),
    ((17, 1, 33), 1),
    ((17, 1, 33), 0),
    ((17, 1, 33), -1),
    ((9,), 0),
    ((1,), 0),
    ((4, 1), 1),
    ((2, 3, 4, 5), 2),
]


@pytest.mark.parametrize("cfg", QCONFIGS, ids=QCONFIG_IDS)
def test_per_channel_axes(isa, cfg):
    name, dtype, narrow = cfg
    lo, hi = qrange(dtype, narrow)
    for shape, axis in PER_CHANNEL_CASES:
        rng = rng_for("axes", shape, axis, name)
        c = shape[axis]
        scale = random_scales(c, rng)
        zp = rng.integers(lo, hi + 1, c)
        bshape = [1] * len(shape)
        bshape[axis] = c
        x = make_x(shape, scale.reshape(bshape), rng)
        what = f"{isa} shape={shape} axis={axis} {name}"
        q = check("quantize", x, scale, zp, axis=axis, dtype=dtype, narrow_range=narrow, what="quantize " + what)
        # per-channel with one scale and zero point == the scalar per-tensor result, channel by channel
        for ch in (0, c - 1):
            sl = [slice(None)] * len(shape)
            sl[axis] = slice(ch, ch + 1)
            sl = tuple(sl)
            one = iq.quantize(
                np.ascontiguousarray(x[sl]), float(scale[ch]), int(zp[ch]), dtype=dtype, narrow_range=narrow
            )
            assert_same(q[sl], one, f"quantize {what} channel {ch} alone")
        check("dequantize", q, scale, zp, axis=axis, what="dequantize " + what)
        # per-channel zero points with a scalar scale, and scalar zero point with 1-D scale
        check("quantize", x, 0.25, zp, axis=axis, dtype=dtype, narrow_range=narrow, what="quantize zp-only " + what)
        check("quantize", x, scale, int(zp[0]), axis=axis, dtype=dtype, narrow_range=narrow,
              what="quantize s-only " + what)
        check("dequantize", q, 0.25, zp, axis=axis, what="dequantize zp-only " + what)
        check("dequantize", q, scale, int(zp[0]), axis=axis, what="dequantize s-only " + what)


@pytest.mark.parametrize("cfg", QCONFIGS, ids=QCONFIG_IDS)
def test_scalar_scale_with_axis_equals_per_tensor(isa, cfg):
    name, dtype, narrow = cfg
    lo, hi = qrange(dtype, narrow)
    for shape in [(3, 5, 7), (4, 33), (40,), (17, 1, 33)]:
        rng = rng_for("scalar-axis", shape, name)
        x = make_x(shape, 0.125, rng)
        zp = int(rng.integers(lo, hi + 1))
        per_tensor = check("quantize", x, 0.125, zp, dtype=dtype, narrow_range=narrow, what=f"{shape}")
        q = make_q(shape, dtype, rng)
        deq = iq.dequantize(q, 0.3, zp)
        for axis in range(-len(shape), len(shape)):
            what = f"{isa} shape={shape} axis={axis} {name}"
            got = check("quantize", x, 0.125, zp, axis=axis, dtype=dtype, narrow_range=narrow, what=what)
            assert_same(got, per_tensor, what + " vs per-tensor")
            got_d = check("dequantize", q, 0.3, zp, axis=axis, what=what)
            assert_same(got_d, deq, what + " dequantize vs per-tensor")


CHANNEL_COUNTS = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 300, 511, 512, 513, 1000]

# layout id -> (shape for c channels, axis); "last" layouts run the *_channels kernels
CHANNEL_LAYOUTS = {
    "last_2d": (lambda c: (5, c), 1),
    "last_3d_neg": (lambda c: (2, 3, c), -1),
    "last_1d": (lambda c: (c,), 0),
    "first": (lambda c: (c, 6), 0),
    "middle": (lambda c: (2, c, 3), 1),
    "middle_neg": (lambda c: (2, c, 3), -2),
}


@pytest.mark.parametrize("layout", list(CHANNEL_LAYOUTS))
@pytest.mark.parametrize("cfg", QCONFIGS, ids=QCONFIG_IDS)
def test_quantize_channel_counts(isa, cfg, layout):
    name, dtype, narrow = cfg
    lo, hi = qrange(dtype, narrow)
    shape_of, axis = CHANNEL_LAYOUTS[layout]
    for c in CHANNEL_COUNTS:
        shape = shape_of(c)
        rng = rng_for("channels-q", shape, axis, name)
        scale = random_scales(c, rng)
        zp = rng.integers(lo, hi + 1, c)
        bshape = [1] * len(shape)
        bshape[axis] = c
        x = make_x(shape, scale.reshape(bshape), rng)
        check(
            "quantize", x, scale, zp, axis=axis, dtype=dtype, narrow_range=narrow,
            what=f"{isa} quantize channels={c} shape={shape} axis={axis} {name}",
        )


@pytest.mark.parametrize("layout", list(CHANNEL_LAYOUTS))
@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["int8", "uint8"])
def test_dequantize_channel_counts(isa, dtype, layout):
    lo, hi = qrange(dtype)
    shape_of, axis = CHANNEL_LAYOUTS[layout]
    for c in CHANNEL_COUNTS:
        shape = shape_of(c)
        rng = rng_for("channels-dq", shape, axis, np.dtype(dtype).name)
        scale = random_scales(c, rng)
        zp = rng.integers(lo, hi + 1, c)
        q = make_q(shape, dtype, rng)
        check(
            "dequantize", q, scale, zp, axis=axis,
            what=f"{isa} dequantize channels={c} shape={shape} axis={axis} {np.dtype(dtype)}",
        )


# --- special values --------------------------------------------------------------


@pytest.mark.parametrize("cfg", QCONFIGS, ids=QCONFIG_IDS)
def test_ties_both_signs(isa, cfg):
    """x = (k + 0.5) * scale with scale a power of two: x / scale is exactly a tie."""
    name, dtype, narrow = cfg
    lo, hi = qrange(dtype, narrow)
    k = np.arange(-300, 300)
    for scale in (1.0, 0.5, 0.25, 2.0, 2.0**-10, 2.0**-140, 64.0):  # 2**-140: the ties are denormals
        x = ((k + 0.5) * scale).astype(np.float32)
        assert np.all(x.astype(np.float64) / scale == k + 0.5)
        for zp in sorted({0, lo, hi, 1, -1 if lo < 0 else 2, (lo + hi) // 2}):
            want = np.array([sat(half_even(v + 0.5) + zp, lo, hi) for v in k.tolist()], dtype)
            what = f"{isa} ties scale={scale} zp={zp} {name}"
            got = check("quantize", x, scale, zp, dtype=dtype, narrow_range=narrow, what=what)
            assert_same(got, want, what + " (by hand)")
            # per-channel along the last axis (the *_channels kernels), same values
            x2 = x.reshape(20, 30)
            got2 = check(
                "quantize", x2, np.full(30, scale, np.float32), np.full(30, zp), axis=1, dtype=dtype,
                narrow_range=narrow, what=what + " per-channel",
            )
            assert_same(got2, want.reshape(20, 30), what + " per-channel (by hand)")


@pytest.mark.parametrize("cfg", QCONFIGS, ids=QCONFIG_IDS)
def test_saturation_edges(isa, cfg):
    """Values that land on qmin-1, qmin, qmax, qmax+1 (and the ties next to them) after the zero point."""
    name, dtype, narrow = cfg
    lo, hi = qrange(dtype, narrow)
    for zp in sorted({lo, lo + 1, 0 if lo <= 0 else lo, 1, hi - 1, hi, (lo + hi) // 2}):
        targets = []
        for edge in (lo - 1, lo, hi, hi + 1):
            for d in (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5):
                targets.append(edge - zp + d)  # the value of x / scale
        t = np.array(targets * 5)  # repeated so that vector bodies see them, not only tails
        for scale in (1.0, 0.25, 2.0**-9):
            x = (t * scale).astype(np.float32)
            want = np.array([sat(half_even(v) + zp, lo, hi) for v in t.tolist()], dtype)
            what = f"{isa} edges zp={zp} scale={scale} {name}"
            got = check("quantize", x, scale, zp, dtype=dtype, narrow_range=narrow, what=what)
            assert_same(got, want, what + " (by hand)")


@pytest.mark.parametrize("cfg", QCONFIGS, ids=QCONFIG_IDS)
def test_nonfinite_huge_and_denormal_values(isa, cfg):
    name, dtype, narrow = cfg
    lo, hi = qrange(dtype, narrow)
    for zp in sorted({lo, 0 if lo <= 0 else lo, hi, 1}):
        # (x, scale, expected) with the expectation by hand
        cases = [
            (np.nan, 1.0, zp),
            (-np.nan, 0.01, zp),
            (np.inf, 1.0, hi),
            (-np.inf, 1.0, lo),
            (np.inf, 1e30, hi),
            (-np.inf, 1e-30, lo),
            (0.0, 1.0, zp),
            (-0.0, 1.0, zp),
            (MAX32, 1.0, hi),
            (-MAX32, 1.0, lo),
            (MAX32, 2.0**-10, hi),  # x / scale overflows to +inf
            (-MAX32, 2.0**-10, lo),
            (1e20, 1.0, hi),
            (-1e20, 1.0, lo),
            (3e9, 1.0, hi),  # beyond int32
            (-3e9, 1.0, lo),
            (2.0**31, 1.0, hi),
            (-(2.0**31), 1.0, lo),
            (2.0**24 + 2, 1.0, hi),
            (-(2.0**24) - 2, 1.0, lo),
            (1.5 * 2.0**127, 2.0**126, sat(3 + zp, lo, hi)),
            (-2.5 * 2.0**126, 2.0**126, sat(-2 + zp, lo, hi)),
            (TINY32, 1.0, zp),  # denormal x, normal scale -> 0
            (-TINY32, 1.0, zp),
            (1e-40, 1e-3, zp),
            (3 * TINY32, TINY32, sat(3 + zp, lo, hi)),  # denormal / denormal
            (-7 * TINY32, TINY32, sat(-7 + zp, lo, hi)),
            (5 * 2.0**-141, 2.0**-140, sat(2 + zp, lo, hi)),  # 2.5 -> 2, in denormals
            (-7 * 2.0**-141, 2.0**-140, sat(-4 + zp, lo, hi)),  # -3.5 -> -4
            (1.0, TINY32, hi),  # x / denormal scale overflows
            (-1.0, TINY32, lo),
            (2.0**-126, 2.0**-127, sat(2 + zp, lo, hi)),  # normal / denormal scale
        ]
        for scale in sorted({c[1] for c in cases}):
            sel = [c for c in cases if c[1] == scale]
            # each value at every position of a vector and of a tail
            reps = 37
            x = np.array([c[0] for c in sel] * reps, np.float32)
            want = np.array([c[2] for c in sel] * reps, dtype)
            what = f"{isa} specials scale={scale!r} zp={zp} {name}"
            got = check("quantize", x, scale, zp, dtype=dtype, narrow_range=narrow, what=what)
            assert_same(got, want, what + " (by hand)")
            # through the per-channel (last axis) kernels as well
            x2 = x.reshape(reps, len(sel))
            got2 = check(
                "quantize", x2, np.full(len(sel), scale, np.float32), np.full(len(sel), zp), axis=-1,
                dtype=dtype, narrow_range=narrow, what=what + " per-channel",
            )
            assert_same(got2, want.reshape(reps, len(sel)), what + " per-channel (by hand)")


@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["int8", "uint8"])
def test_dequantize_denormal_and_huge_scales(isa, dtype):
    lo, hi = qrange(dtype)
    q = np.arange(lo, hi + 1).astype(dtype)
    for zp in (lo, 0 if lo <= 0 else 1, hi):
        diff = np.arange(lo, hi + 1) - zp
        # denormal scales: exact denormal products, not flushed to zero
        for scale in (TINY32, 3 * TINY32, 2.0**-130, 1e-40):
            what = f"{isa} dequantize scale={scale!r} zp={zp}"
            got = check("dequantize", q, scale, zp, what=what)
            assert np.all((got != 0) == (diff != 0)), what + ": denormal results flushed to zero"
        # q == zp gives +0.0 (never -0.0); the sign follows q - zp
        got = check("dequantize", q, 0.375, zp, what=f"{isa} signs zp={zp}")
        assert not np.any(bits(got) == 0x80000000), "dequantize produced -0.0"
        assert np.all(np.signbit(got) == (diff < 0))
        # large but finite results
        got = check("dequantize", q, 1e36, zp, what=f"{isa} huge scale zp={zp}")
        assert np.all(np.isfinite(got))


OVERFLOW_Q = np.array([-128, -2, 0, 2, 127] * 7, np.int8)
OVERFLOW_WANT = np.array([-np.inf, -np.inf, 0.0, np.inf, np.inf] * 7, np.float32)


def test_dequantize_overflow_to_inf(isa):
    """A valid (finite in float32) scale whose products overflow gives +-inf, as IEEE says."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = iq.dequantize(OVERFLOW_Q, 3e38, 0)
    assert not caught, [str(w.message) for w in caught]
    assert_same(got, OVERFLOW_WANT, f"{isa} dequantize overflow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ref.dequantize(OVERFLOW_Q, 3e38, 0)
    assert_same(got, want, f"{isa} dequantize overflow vs reference")


def test_reference_dequantize_overflow_is_silent():
    """The reference answers the same valid call without a warning, as the fast path does
    (reference.quantize already silences its float overflow; under -W error a warning is an exception)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = ref.dequantize(OVERFLOW_Q, 3e38, 0)
    assert not caught, f"reference.dequantize warned: {[str(w.message) for w in caught]}"
    assert_same(got, OVERFLOW_WANT, "reference dequantize overflow")


def test_quantize_is_silent_on_nonfinite(isa):
    """quantize of NaN/Inf/overflowing quotients emits no warnings from either path."""
    x = np.array([np.nan, np.inf, -np.inf, MAX32, -MAX32, 1.0], np.float32)
    for fn in (iq.quantize, ref.quantize):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = fn(x, TINY32, 3)
        assert not caught, [str(w.message) for w in caught]
        assert got.tolist() == [3, 127, -128, 127, -128, 127]


# --- large arrays and threads ------------------------------------------------------


# > 2 * 65536 elements, none a multiple of 64, so the threaded split has uneven pieces
LARGE_CASES = [
    ((2 * 65536 + 12345,), None),
    ((3, 70001), None),
    ((601, 333), 1),  # per-channel, last axis: rows split across tasks
    ((601, 333), -1),
    ((3, 70001), 0),  # per-channel, first axis: one channel spans several tasks
    ((5, 7, 6007), 1),  # per-channel, middle axis
    ((70001, 3), 0),  # many channels, inner 3
    ((2, 131073), 1),  # channels > a whole task on the last axis: one row per task
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape, axis", LARGE_CASES, ids=[f"{_shape_id(s)}-axis{a}" for s, a in LARGE_CASES])
def test_large_arrays_threaded(isa, shape, axis, threads):
    iq.set_num_threads(threads)
    assert iq.get_num_threads() == threads
    rng = rng_for("large", shape, axis)
    if axis is None:
        scale, zp_i8, zp_u8 = 0.0371, -3, 200
        xs = scale
    else:
        c = shape[axis]
        scale = random_scales(c, rng)
        zp_i8 = rng.integers(-128, 128, c)
        zp_u8 = rng.integers(0, 256, c)
        bshape = [1] * len(shape)
        bshape[axis] = c
        xs = scale.reshape(bshape)
    x = make_x(shape, xs, rng)
    what = f"{isa} threads={threads} shape={shape} axis={axis}"
    qi = check("quantize", x, scale, zp_i8, axis=axis, what="quantize int8 " + what)
    qu = check("quantize", x, scale, zp_u8, axis=axis, dtype=np.uint8, what="quantize uint8 " + what)
    check("quantize", x, scale, zp_i8 if axis is None else np.clip(zp_i8, -127, 127), axis=axis, narrow_range=True,
          what="quantize narrow " + what)
    check("dequantize", qi, scale, zp_i8, axis=axis, what="dequantize int8 " + what)
    check("dequantize", qu, scale, zp_u8, axis=axis, what="dequantize uint8 " + what)


def test_concurrent_python_threads(isa):
    """Two Python threads in quantize/dequantize at once (GIL released, shared pool): still exact."""
    iq.set_num_threads(2)
    rng = rng_for("gil")
    n = 3 * 65536 + 7
    x1 = make_x((n,), 0.05, rng)
    x2 = make_x((1001, 257), 0.5, rng)
    s2 = random_scales(257, rng)
    zp2 = rng.integers(0, 256, 257)
    q3 = make_q((n,), np.int8, rng)
    want1 = ref.quantize(x1, 0.05, 3)
    want2 = ref.quantize(x2, s2, zp2, axis=1, dtype=np.uint8)
    want3 = ref.dequantize(q3, 0.125, -5)
    barrier = threading.Barrier(3)

    def run(job):
        barrier.wait()
        results = []
        for _ in range(12):
            results.append(job())
        return results

    jobs = [
        (lambda: iq.quantize(x1, 0.05, 3), want1),
        (lambda: iq.quantize(x2, s2, zp2, axis=1, dtype=np.uint8), want2),
        (lambda: iq.dequantize(q3, 0.125, -5), want3),
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(run, job) for job, _ in jobs]
        all_results = [f.result(timeout=120) for f in futures]
    for j, (results, (_, want)) in enumerate(zip(all_results, jobs)):
        for i, got in enumerate(results):
            assert_same(got, want, f"{isa} job {j} iteration {i}")


# --- layouts, out=, empty arrays -----------------------------------------------------


def _views(base):
    return {
        "transposed": base.transpose(2, 0, 1),
        "T": base.T,
        "step": base[:, ::3, :],
        "step_reversed": base[::2, :, ::-1],
        "fortran": np.asfortranarray(base),
        "strided_last": base[..., 1],
        "negative_step_1d": base.reshape(-1)[::-7],
    }


def _view_params(rng, view, axis, per_tensor, zp_end):
    """(scale, zero_point) for ``view``: ``per_tensor`` for axis None, else random per channel of
    ``axis`` (zero points in [0, zp_end))."""
    if axis is None:
        return per_tensor
    c = view.shape[axis]
    return random_scales(c, rng), rng.integers(0, zp_end, c)


def test_non_contiguous_inputs(isa):
    rng = rng_for("views")
    base_x = make_x((6, 10, 9), 0.25, rng)
    base_q = make_q((6, 10, 9), np.int8, rng)
    base_u = make_q((6, 10, 9), np.uint8, rng)
    for name, view in _views(base_x).items():
        assert not view.flags.c_contiguous, name
        cont = np.ascontiguousarray(view)
        for axis in [None] + list(range(-view.ndim, view.ndim)):
            scale, zp = _view_params(rng, view, axis, (0.25, 7), 256)
            what = f"{isa} {name} axis={axis}"
            got = check("quantize", view, scale, zp, axis=axis, dtype=np.uint8, what="quantize " + what)
            assert_same(got, iq.quantize(cont, scale, zp, axis=axis, dtype=np.uint8), what + " vs contiguous")
            assert got.flags.c_contiguous
    for qbase in (base_q, base_u):
        for name, view in _views(qbase).items():
            cont = np.ascontiguousarray(view)
            for axis in (None, 0, -1):
                scale, zp = _view_params(rng, view, axis, (0.3, 2), 128)
                what = f"{isa} dequantize {qbase.dtype} {name} axis={axis}"
                got = check("dequantize", view, scale, zp, axis=axis, what=what)
                assert_same(got, iq.dequantize(cont, scale, zp, axis=axis), what + " vs contiguous")


@pytest.mark.parametrize("impl", [iq, ref], ids=["fast", "reference"])
def test_out_argument(isa, impl):
    rng = rng_for("out")
    x = make_x((4, 33), 0.5, rng)
    scale = random_scales(33, rng)
    for dtype, narrow in ((np.int8, False), (np.uint8, False), (np.int8, True)):
        out = np.empty((4, 33), dtype)
        r = impl.quantize(x, 0.5, 1, dtype=dtype, narrow_range=narrow, out=out)
        assert r is out
        assert_same(out, ref.quantize(x, 0.5, 1, dtype=dtype, narrow_range=narrow), "out= per-tensor")
        r = impl.quantize(x, scale, 1, axis=1, dtype=dtype, narrow_range=narrow, out=out)
        assert r is out
        assert_same(out, ref.quantize(x, scale, 1, axis=1, dtype=dtype, narrow_range=narrow), "out= per-channel")
    q = make_q((4, 33), np.uint8, rng)
    out = np.empty((4, 33), np.float32)
    assert impl.dequantize(q, scale, 9, axis=1, out=out) is out
    assert_same(out, ref.dequantize(q, scale, 9, axis=1), "dequantize out=")
    # out of a 0-d and an empty input
    out0 = np.empty((), np.int8)
    assert impl.quantize(np.array(2.5, np.float32), 1.0, out=out0) is out0 and int(out0) == 2
    oute = np.empty((0, 3), np.float32)
    assert impl.dequantize(np.empty((0, 3), np.int8), 1.0, out=oute) is oute


def _bad_outs():
    return [
        ("q_wrong_dtype", "quantize", np.empty((2, 3), np.uint8), TypeError, "out must have dtype int8, got uint8"),
        ("q_float_out", "quantize", np.empty((2, 3), np.float32), TypeError, "out must have dtype int8"),
        ("q_wrong_shape", "quantize", np.empty((3, 2), np.int8), ValueError, "out must have shape (2, 3), got (3, 2)"),
        ("q_flat_shape", "quantize", np.empty(6, np.int8), ValueError, "out must have shape"),
        ("q_non_contiguous", "quantize", np.empty((3, 2), np.int8).T, ValueError, "out must be C-contiguous"),
        ("q_strided", "quantize", np.empty((2, 6), np.int8)[:, ::2], ValueError, "out must be C-contiguous"),
        ("q_read_only", "quantize", read_only(np.empty((2, 3), np.int8)), ValueError, "out is read-only"),
        ("q_list", "quantize", [[0] * 3] * 2, TypeError, "out must be a numpy.ndarray"),
        ("dq_wrong_dtype", "dequantize", np.empty((2, 3), np.float64), TypeError, "out must have dtype float32, got float64"),
        ("dq_int_out", "dequantize", np.empty((2, 3), np.int8), TypeError, "out must have dtype float32"),
        ("dq_wrong_shape", "dequantize", np.empty((2, 4), np.float32), ValueError, "out must have shape (2, 3)"),
        ("dq_non_contiguous", "dequantize", np.empty((3, 2), np.float32).T, ValueError, "out must be C-contiguous"),
        ("dq_read_only", "dequantize", read_only(np.empty((2, 3), np.float32)), ValueError, "out is read-only"),
    ]


@pytest.mark.parametrize("case", _bad_outs(), ids=[c[0] for c in _bad_outs()])
@pytest.mark.parametrize("impl", [iq, ref], ids=["fast", "reference"])
def test_bad_out(impl, case):
    _, fn, out, exc, msg = case
    arg = np.ones((2, 3), np.float32) if fn == "quantize" else np.ones((2, 3), np.int8)
    with pytest.raises(exc, match=re.escape(msg)):
        getattr(impl, fn)(arg, 0.5, out=out)


EMPTY_CASES = [
    ((0,), None, 0.5),
    ((0,), 0, "per-channel"),
    ((0, 3), None, 0.5),
    ((0, 3), 0, "per-channel"),
    ((0, 3), 1, "per-channel"),
    ((0, 3), -1, 0.5),
    ((3, 0), None, 0.5),
    ((3, 0), 0, "per-channel"),
    ((3, 0), 1, "per-channel"),
    ((3, 0), 0, 0.5),
    ((2, 0, 4), 1, "per-channel"),
]


@pytest.mark.parametrize("shape, axis, scale", EMPTY_CASES, ids=[f"{_shape_id(s)}-axis{a}-{'pc' if isinstance(sc, str) else 'scalar'}" for s, a, sc in EMPTY_CASES])
def test_empty_arrays(isa, shape, axis, scale):
    if isinstance(scale, str):
        c = shape[axis]
        scale = np.full(c, 0.5, np.float32)
        zp = np.arange(c) % 3
    else:
        zp = 1
    x = np.empty(shape, np.float32)
    for dtype, narrow in ((np.int8, False), (np.uint8, False), (np.int8, True)):
        q = check("quantize", x, scale, zp, axis=axis, dtype=dtype, narrow_range=narrow, what=f"{shape} {axis}")
        assert q.shape == shape and q.dtype == dtype
        d = check("dequantize", np.empty(shape, dtype), scale, zp, axis=axis, what=f"{shape} {axis}")
        assert d.shape == shape and d.dtype == np.float32


def test_dtype_spellings(isa):
    x = np.array([-300.0, -1.5, 0.0, 2.5, 300.0], np.float32)
    for spelling in (np.int8, "int8", np.dtype("int8"), "i1"):
        r = iq.quantize(x, 1.0, dtype=spelling)
        assert r.dtype == np.int8 and r.tolist() == [-128, -2, 0, 2, 127]
    for spelling in (np.uint8, "uint8", np.dtype("uint8"), "u1"):
        r = iq.quantize(x, 1.0, 100, dtype=spelling)
        assert r.dtype == np.uint8 and r.tolist() == [0, 98, 100, 102, 255]
    # defaults: int8, zero point 0, full range
    assert iq.quantize(np.array([-200.0], np.float32), 1.0).tolist() == [-128]
    assert iq.dequantize(np.array([-128], np.int8), 1.0).tolist() == [-128.0]
    # scale and zero point given as numpy scalars / other integer dtypes
    assert iq.quantize(x, np.float64(1.0), np.uint8(100), dtype=np.uint8).tolist() == [0, 98, 100, 102, 255]
    assert iq.quantize(x, 1, np.int64(-1)).tolist() == [-128, -3, -1, 1, 127]


# --- errors ------------------------------------------------------------------------

X = np.ones((2, 3), np.float32)
Q8 = np.ones((2, 3), np.int8)
QU8 = np.ones((2, 3), np.uint8)
S3 = np.ones(3, np.float32)
SCALE_MSG = "scale must be finite and > 0 in float32"

# (id, op, args, kwargs, exception, regex)
ERROR_CASES = [
    # dtypes
    ("x_float64", "quantize", (np.ones(3), 1.0), {}, TypeError, r"x must be a float32 array, got float64"),
    ("x_int32", "quantize", (np.ones(3, np.int32), 1.0), {}, TypeError, r"x must be a float32 array, got int32"),
    ("x_float16", "quantize", (np.ones(3, np.float16), 1.0), {}, TypeError, r"x must be a float32 array, got float16"),
    ("x_list", "quantize", ([1.0, 2.0], 1.0), {}, TypeError, r"x must be a float32 array"),
    ("x_int8", "quantize", (Q8, 1.0), {}, TypeError, r"x must be a float32 array, got int8"),
    ("q_int16", "dequantize", (np.ones(3, np.int16), 1.0), {}, TypeError, r"q's dtype must be int8 or uint8, got int16"),
    ("q_float32", "dequantize", (X, 1.0), {}, TypeError, r"q's dtype must be int8 or uint8, got float32"),
    ("q_int32", "dequantize", (np.ones(3, np.int32), 1.0), {}, TypeError, r"q's dtype must be int8 or uint8"),
    ("q_bool", "dequantize", (np.ones(3, bool), 1.0), {}, TypeError, r"q's dtype must be int8 or uint8"),
    ("dtype_int16", "quantize", (X, 1.0), {"dtype": np.int16}, TypeError, r"dtype must be int8 or uint8, got int16"),
    ("dtype_float32", "quantize", (X, 1.0), {"dtype": np.float32}, TypeError, r"dtype must be int8 or uint8"),
    ("dtype_int32_str", "quantize", (X, 1.0), {"dtype": "int32"}, TypeError, r"dtype must be int8 or uint8"),
    ("dtype_bogus", "quantize", (X, 1.0), {"dtype": "bogus"}, TypeError, r"dtype must be int8 or uint8"),
    # scale values
    *[
        (f"{op}_scale_{sid}", op, (arg, sv), {}, ValueError, re.escape(SCALE_MSG) + extra)
        for op, arg in (("quantize", X), ("dequantize", Q8))
        for sid, sv, extra in (
            ("zero", 0.0, ""),
            ("int_zero", 0, ""),
            ("negative", -1.0, ""),
            ("negative_zero", -0.0, ""),
            ("nan", float("nan"), ""),
            ("inf", float("inf"), ""),
            ("minus_inf", float("-inf"), ""),
            ("1e-50", 1e-50, r".*not representable in float32"),
            ("1e39", 1e39, r".*not representable in float32"),
        )
    ],
    ("quantize_scale_channel_zero", "quantize", (X, np.array([1.0, 0.0, 1.0], np.float32)), {"axis": 1}, ValueError, re.escape(SCALE_MSG)),
    ("dequantize_scale_channel_nan", "dequantize", (Q8, np.array([1.0, 1.0, np.nan], np.float32)), {"axis": 1}, ValueError, re.escape(SCALE_MSG)),
    ("quantize_scale_channel_1e39", "quantize", (X, np.array([1.0, 1e39, 1.0])), {"axis": 1}, ValueError, r"not representable"),
    ("scale_str", "quantize", (X, "1.0"), {}, TypeError, r"scale must be a real number"),
    ("scale_bool", "dequantize", (Q8, True), {}, TypeError, r"scale must be a real number"),
    # zero points
    ("zp_int8_128", "quantize", (X, 1.0, 128), {}, ValueError, r"zero_point must lie in \[-128, 127\] for this dtype, got 128"),
    ("zp_int8_-129", "quantize", (X, 1.0, -129), {}, ValueError, r"zero_point must lie in \[-128, 127\]"),
    ("zp_uint8_-1", "quantize", (X, 1.0, -1), {"dtype": np.uint8}, ValueError, r"zero_point must lie in \[0, 255\] for this dtype, got -1"),
    ("zp_uint8_256", "quantize", (X, 1.0, 256), {"dtype": np.uint8}, ValueError, r"zero_point must lie in \[0, 255\]"),
    ("zp_narrow_-128", "quantize", (X, 1.0, -128), {"narrow_range": True}, ValueError, r"zero_point must lie in \[-127, 127\] for this dtype, got -128"),
    ("zp_channel_out", "quantize", (X, 1.0, np.array([0, 300, 0])), {"axis": 1, "dtype": np.uint8}, ValueError, r"zero_point must lie in \[0, 255\] for this dtype, got 300"),
    ("dq_zp_int8_128", "dequantize", (Q8, 1.0, 128), {}, ValueError, r"zero_point must lie in \[-128, 127\]"),
    ("dq_zp_uint8_-1", "dequantize", (QU8, 1.0, -1), {}, ValueError, r"zero_point must lie in \[0, 255\]"),
    ("dq_zp_uint8_256", "dequantize", (QU8, 1.0, 256), {}, ValueError, r"zero_point must lie in \[0, 255\]"),
    ("zp_float", "quantize", (X, 1.0, 0.0), {}, TypeError, r"zero_point must be an integer"),
    ("zp_float_half", "quantize", (X, 1.0, 1.5), {}, TypeError, r"zero_point must be an integer"),
    ("zp_np_float32", "quantize", (X, 1.0, np.float32(2)), {}, TypeError, r"zero_point must be an integer"),
    ("zp_float_array", "quantize", (X, 1.0, np.zeros(3)), {"axis": 1}, TypeError, r"zero_point must be an integer"),
    ("dq_zp_float", "dequantize", (Q8, 1.0, 2.0), {}, TypeError, r"zero_point must be an integer"),
    # per-channel shapes and axes
    ("scale_len", "quantize", (X, np.ones(2, np.float32)), {"axis": 1}, ValueError, r"scale has 2 entries but x\.shape\[1\] is 3"),
    ("scale_len_axis0", "quantize", (X, S3), {"axis": 0}, ValueError, r"scale has 3 entries but x\.shape\[0\] is 2"),
    ("scale_len_neg_axis", "quantize", (X, np.ones(4, np.float32)), {"axis": -1}, ValueError, r"scale has 4 entries but x\.shape\[1\] is 3"),
    ("dq_scale_len", "dequantize", (Q8, np.ones(4, np.float32)), {"axis": 1}, ValueError, r"scale has 4 entries but x\.shape\[1\] is 3"),
    ("zp_len", "quantize", (X, S3, np.zeros(2, np.int32)), {"axis": 1}, ValueError, r"zero_point has 2 entries but x\.shape\[1\] is 3"),
    ("dq_zp_len", "dequantize", (Q8, 1.0, np.zeros(4, np.int32)), {"axis": 1}, ValueError, r"zero_point has 4 entries"),
    ("scale_1d_no_axis", "quantize", (X, S3), {}, ValueError, r"1-D scale or zero_point is per-channel and needs axis="),
    ("zp_1d_no_axis", "quantize", (X, 1.0, np.zeros(3, np.int32)), {}, ValueError, r"needs axis="),
    ("dq_scale_1d_no_axis", "dequantize", (Q8, S3), {}, ValueError, r"needs axis="),
    ("scale_len1_no_axis", "quantize", (X, np.ones(1, np.float32)), {}, ValueError, r"needs axis="),
    ("axis_2", "quantize", (X, 1.0), {"axis": 2}, ValueError, r"axis=2 is out of range for an array of 2 dimension\(s\)"),
    ("axis_-3", "quantize", (X, S3), {"axis": -3}, ValueError, r"axis=-3 is out of range"),
    ("axis_0d", "quantize", (np.float32(1.0), 1.0), {"axis": 0}, ValueError, r"axis=0 is out of range for an array of 0 dimension"),
    ("dq_axis_5", "dequantize", (Q8, 1.0), {"axis": 5}, ValueError, r"axis=5 is out of range"),
    ("axis_float", "quantize", (X, S3), {"axis": 1.0}, TypeError, r"axis must be an integer or None"),
    ("narrow_uint8", "quantize", (X, 1.0, 0), {"dtype": np.uint8, "narrow_range": True}, ValueError, r"narrow_range=True .* not defined for uint8"),
    ("scale_2d", "quantize", (X, np.ones((2, 3), np.float32)), {"axis": 1}, ValueError, r"scale must be a scalar or 1-D \(one value per channel\), got shape \(2, 3\)"),
    ("scale_2d_no_axis", "quantize", (X, np.ones((1, 1), np.float32)), {}, ValueError, r"scale must be a scalar or 1-D"),
    ("dq_scale_2d", "dequantize", (Q8, np.ones((1, 3), np.float32)), {"axis": 1}, ValueError, r"scale must be a scalar or 1-D"),
    ("zp_2d", "quantize", (X, 1.0, np.zeros((1, 3), np.int32)), {"axis": 1}, ValueError, r"zero_point must be a scalar or 1-D"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
@pytest.mark.parametrize("impl", [iq, ref], ids=["fast", "reference"])
def test_errors(impl, case):
    """Fast path and reference reject the same inputs with the same exception type and message."""
    _, op, args, kwargs, exc, pattern = case
    fn = getattr(impl, op)
    with pytest.raises(exc, match=pattern) as info:
        fn(*args, **kwargs)
    # exactly that type (e.g. not a ValueError subclass pretending to be a TypeError)
    assert type(info.value) is exc


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_same_message_on_both_paths(case):
    _, op, args, kwargs, exc, _ = case
    fast, reference = raises_on_both(exc, lambda f: getattr(f, op)(*args, **kwargs))
    assert str(fast) == str(reference)


# --- the forced path really runs ----------------------------------------------------

ISA_SUFFIX = {
    "scalar": "__scalar",
    "avx2": "__avx2",
    "avx_vnni": "__avx2",
    "avx512_vnni": "__avx512vnni",
    "amx": "__avx512vnni",
    "amx_emu": "__avx512vnni",
    "neon": "__neon",
    "neon_dotprod": "__neon",
    "neon_i8mm": "__neon",
}
QUANT_OPS = [
    "quantize",
    "quantize_channels",
    "dequantize_s8",
    "dequantize_u8",
    "dequantize_channels_s8",
    "dequantize_channels_u8",
]


def test_isa_suffix_table_covers_every_isa():
    assert set(ISA_SUFFIX) == set(iq.ISA_NAMES)


def test_kernel_names_suffix_family(every_isa):
    names = iq.kernel_names(every_isa)
    assert set(QUANT_OPS) <= set(names)
    suffix = ISA_SUFFIX[every_isa]
    for op in QUANT_OPS:
        assert names[op].endswith(suffix), f"{every_isa}: {op} -> {names[op]}, expected a '{suffix}' kernel"
    assert len({names[op] for op in QUANT_OPS}) == len(QUANT_OPS)
    assert iq.kernel_names() == iq.kernel_names(every_isa)  # the active one (every_isa is active)


def _forced_cases():
    rng = rng_for("forced")
    x1 = make_x((1000,), 0.1, rng)
    x2 = make_x((40, 25), 0.1, rng)
    s25 = random_scales(25, rng)
    zp25 = rng.integers(0, 128, 25)
    s40 = random_scales(40, rng)
    q8 = make_q((40, 25), np.int8, rng)
    qu = make_q((40, 25), np.uint8, rng)
    big = make_x((3 * 65536 + 5,), 0.1, rng)
    big_q = make_q((3 * 65536 + 5,), np.uint8, rng)
    big2 = make_x((900, 301), 0.1, rng)
    s301 = random_scales(301, rng)
    return [
        # (id, op key, function, args, kwargs)
        ("q_tensor", "quantize", "quantize", (x1, 0.1, 3), {}),
        ("q_tensor_u8", "quantize", "quantize", (x1, 0.1, 3), {"dtype": np.uint8}),
        ("q_tensor_narrow", "quantize", "quantize", (x1, 0.1, 3), {"narrow_range": True}),
        ("q_channels_last", "quantize_channels", "quantize", (x2, s25, zp25), {"axis": 1}),
        ("q_channels_neg", "quantize_channels", "quantize", (x2, s25, zp25), {"axis": -1, "dtype": np.uint8}),
        ("q_scalar_scale_axis_last", "quantize_channels", "quantize", (x2, 0.5, 0), {"axis": 1}),
        ("q_channels_first", "quantize", "quantize", (x2, s40, 0), {"axis": 0}),
        ("dq_s8", "dequantize_s8", "dequantize", (q8, 0.1, 3), {}),
        ("dq_u8", "dequantize_u8", "dequantize", (qu, 0.1, 3), {}),
        ("dq_channels_s8", "dequantize_channels_s8", "dequantize", (q8, s25, zp25), {"axis": 1}),
        ("dq_channels_u8", "dequantize_channels_u8", "dequantize", (qu, s25, zp25), {"axis": -1}),
        ("dq_first_s8", "dequantize_s8", "dequantize", (q8, s40, 1), {"axis": 0}),
        ("dq_first_u8", "dequantize_u8", "dequantize", (qu, s40, 1), {"axis": 0}),
        ("q_big_tensor", "quantize", "quantize", (big, 0.1, 3), {}),
        ("dq_big_u8", "dequantize_u8", "dequantize", (big_q, 0.1, 3), {}),
        ("q_big_channels", "quantize_channels", "quantize", (big2, s301, 5), {"axis": 1}),
    ]


FORCED_CASES = _forced_cases()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", FORCED_CASES, ids=[c[0] for c in FORCED_CASES])
def test_forced_isa_runs_its_kernel(every_isa, case, threads):
    _, op, fn, args, kwargs = case
    iq.set_num_threads(threads)
    expected = iq.kernel_names(every_isa)[op]
    suffix = ISA_SUFFIX[every_isa]
    assert expected.endswith(suffix)
    before = iq.kernel_calls()
    got = getattr(iq, fn)(*args, **kwargs)
    after = iq.kernel_calls()
    assert iq.active_isa() == every_isa
    increased = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert expected in increased, f"{every_isa}: {expected} did not run; ran {increased}"
    others = [k for k in increased if not k.endswith(suffix)]
    assert not others, f"{every_isa}: kernels of another ISA ran: {others}"
    assert set(increased) == {expected}, f"{every_isa}: expected only {expected} to run, ran {increased}"
    assert_same(got, getattr(ref, fn)(*args, **kwargs), f"{every_isa} {case[0]}")


def test_kernel_calls_shape():
    calls = iq.kernel_calls()
    assert isinstance(calls, dict)
    assert all(isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in calls.items())
    # returns a copy: mutating it changes nothing
    calls["quantize_f32_q8__scalar"] = -1
    assert iq.kernel_calls().get("quantize_f32_q8__scalar", 0) >= 0
    # an empty input runs no kernel
    before = iq.kernel_calls()
    iq.quantize(np.empty(0, np.float32), 1.0)
    iq.dequantize(np.empty((0, 4), np.int8), np.ones(4, np.float32), axis=1)
    assert iq.kernel_calls() == before
