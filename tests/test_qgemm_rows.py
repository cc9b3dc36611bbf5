"""qgemm with a per-row a_scale: exact equality with the NumPy reference on every ISA path.

``s[m, n] = float32(a_scale[m]) * float32(b_scale[n])`` in both epilogues, the requantize
multiplier ``s[m, n] / float32(out_scale)`` (see reference.qgemm). Float results are compared by
bit pattern, integers by value (``assert_same``); each sweep also checks, through
``kernel_calls()``, that the kernel ``gemm_plan`` names for the shape is the one that ran. ISA
paths come from conftest's ``isa`` fixture.
"""
from __future__ import annotations

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import _gemm
from intquant_kernels import reference as ref

from exact import IMPLS, assert_same, assert_same_errors, check_error, rand_q, rng_for


def rand_scales(rng, shape, lo=0.002, hi=0.05) -> np.ndarray:
    return rng.uniform(lo, hi, shape).astype(np.float32)


#: The epilogues, as qgemm keywords; "f" and "i" stand for a float32 and an int32 bias.
EPILOGUES = {
    "f32": dict(),
    "f32_bias": dict(bias="f"),
    "f32_bias_relu": dict(bias="f", relu=True),
    "int8": dict(out_scale=0.07, out_zero_point=-5, out_dtype=np.int8),
    "int8_int32_bias_relu": dict(bias="i", relu=True, out_scale=0.07, out_zero_point=-5, out_dtype=np.int8),
    "uint8_int32_bias": dict(bias="i", out_scale=0.11, out_zero_point=128, out_dtype=np.uint8),
}


def epilogue_kw(rng, name, n) -> dict:
    kw = dict(EPILOGUES[name])
    if kw.get("bias") == "f":
        kw["bias"] = (rng.standard_normal(n) * 3).astype(np.float32)
    elif kw.get("bias") == "i":
        kw["bias"] = rng.integers(-3000, 3000, n).astype(np.int32)
    return kw


def gemm_counts() -> dict:
    return {k: v for k, v in iq.kernel_calls().items() if k.startswith("gemm_")}


class KernelsRan:
    """Collects the gemm kernel gemm_plan names for each call and checks, at the end, that each
    ran and no other gemm kernel did."""

    def __init__(self):
        self.expected = set()
        self.before = gemm_counts()

    def plan(self, a, pw):
        self.expected |= {name for _, name in iq.gemm_plan(a, pw).kernels}

    def check(self, where):
        after = gemm_counts()
        ran = {k for k in set(after) | set(self.before) if after.get(k, 0) != self.before.get(k, 0)}
        assert ran == self.expected, f"{where}: gemm kernels that ran {sorted(ran)}, expected {sorted(self.expected)}"


# --- every M in 1..70 (tails, small-M kernels, the AMX threshold of 16), N with tails ------------

SWEEP_N = (1, 7, 16, 17, 64, 65, 130)


@pytest.mark.parametrize("epilogue", list(EPILOGUES))
@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
def test_rows_sweep(isa, a_dtype, epilogue):
    """M in 1..70 by N in SWEEP_N at K = 37 (not a whole k-group), affine weights, random per-row
    scales, against the reference; the planned kernel ran."""
    k = 37
    ran = KernelsRan()
    for n in SWEEP_N:
        rng = rng_for("rows_sweep", np.dtype(a_dtype).name, epilogue, n)
        b = rand_q(rng, (k, n), np.int8)
        b_zp = rng.integers(-3, 4, n).astype(np.int32)
        b_scale = rand_scales(rng, n, 0.001, 0.02)
        a = rand_q(rng, (70, k), a_dtype)
        a_zp = int(rng.integers(-10, 10)) + (0 if a_dtype == np.int8 else 100)
        a_scale = rand_scales(rng, 70)
        kw = epilogue_kw(rng, epilogue, n)
        pw = iq.pack_weights(b, zero_point=b_zp)
        for m in range(1, 71):
            ran.plan(a[:m], pw)
            assert_same(iq.qgemm(a[:m], pw, a_scale[:m], b_scale, a_zero_point=a_zp, **kw),
                        ref.qgemm(a[:m], b, a_scale[:m], b_scale, a_zero_point=a_zp, b_zero_point=b_zp, **kw),
                        f"isa={isa} M={m} N={n} K={k} a={np.dtype(a_dtype)} epilogue={epilogue}")
    ran.check(f"isa={isa}")


@pytest.mark.parametrize("k", [1, 64, 2000], ids=lambda k: f"K={k}")
def test_rows_k_and_raw_weights(isa, k):
    """Raw (unpacked) weights with a scalar and per-column zero point, K of one value, of whole
    groups, and of several K slices (the 16-column kernels); per-column and scalar b_scale."""
    rng = rng_for("rows_k", k)
    m, n = 23, 70
    b = rand_q(rng, (k, n), np.int8)
    a = rand_q(rng, (m, k), np.int8)
    a_scale = rand_scales(rng, m)
    for b_zp in (0, 4, rng.integers(-5, 6, n).astype(np.int32)):
        for b_scale in (0.004, rand_scales(rng, n, 0.001, 0.01)):
            for name in EPILOGUES:
                kw = epilogue_kw(rng, name, n)
                assert_same(iq.qgemm(a, b, a_scale, b_scale, a_zero_point=-3, b_zero_point=b_zp, **kw),
                            ref.qgemm(a, b, a_scale, b_scale, a_zero_point=-3, b_zero_point=b_zp, **kw),
                            f"isa={isa} K={k} b_zero_point={b_zp if np.ndim(b_zp) == 0 else 'per-column'} "
                            f"b_scale={'scalar' if np.ndim(b_scale) == 0 else 'per-column'} epilogue={name}")


# --- leading batch axes and broadcasting ----------------------------------------------------

BATCH_SCALES = {
    "full": (2, 3),
    "broadcast_rows": (2, 1),
    "broadcast_cols": (1, 3),
    "last_axis_only": (3,),
    "one": (1,),
    "one_one": (1, 1),
}


@pytest.mark.parametrize("scale_shape", list(BATCH_SCALES))
def test_rows_batched(isa, scale_shape):
    """a of shape (2, 3, K) with a_scale of shape (2, 3) or broadcastable to it."""
    rng = rng_for("rows_batched", scale_shape)
    k, n = 45, 33
    a = rand_q(rng, (2, 3, k), np.uint8)
    b = rand_q(rng, (k, n), np.int8)
    b_scale = rand_scales(rng, n)
    a_scale = rand_scales(rng, BATCH_SCALES[scale_shape])
    pw = iq.pack_weights(b)
    for name in EPILOGUES:
        kw = epilogue_kw(rng, name, n)
        got = iq.qgemm(a, pw, a_scale, b_scale, a_zero_point=128, **kw)
        want = ref.qgemm(a, b, a_scale, b_scale, a_zero_point=128, **kw)
        assert got.shape == (2, 3, n)
        assert_same(got, want, f"isa={isa} a_scale shape={a_scale.shape} epilogue={name}")
        # The same as a 2-D problem with the scales spelled out per row.
        rows = np.broadcast_to(a_scale, (2, 3)).reshape(6)
        assert_same(got.reshape(6, n), iq.qgemm(a.reshape(6, k), pw, rows, b_scale, a_zero_point=128, **kw),
                    f"isa={isa} a_scale shape={a_scale.shape} epilogue={name} flattened")


def test_rows_other_dtypes_and_forms(isa):
    """a_scale as a list, float64 (rounded to float32 first), integers, non-contiguous views."""
    rng = rng_for("rows_forms")
    m, k, n = 6, 20, 19
    a = rand_q(rng, (m, k), np.uint8)
    b = rand_q(rng, (k, n), np.int8)
    b_scale = rand_scales(rng, n)
    base = rng.uniform(0.01, 0.1, 2 * m)
    forms = {
        "list": list(base[:m]),
        "float64": base[:m],
        "float16": base[:m].astype(np.float16),
        "int": np.arange(1, m + 1),
        "strided": base.astype(np.float32)[::2],
        "reversed": base.astype(np.float32)[m - 1::-1],
    }
    for form, a_scale in forms.items():
        for name in ("f32_bias_relu", "int8_int32_bias_relu"):
            kw = epilogue_kw(rng, name, n)
            want = ref.qgemm(a, b, a_scale, b_scale, **kw)
            assert_same(iq.qgemm(a, b, a_scale, b_scale, **kw), want, f"isa={isa} a_scale={form} epilogue={name}")
            exact = np.asarray(a_scale).astype(np.float32)
            assert_same(want, ref.qgemm(a, b, exact, b_scale, **kw), f"a_scale={form} is its float32 values")


# --- per row with every row's scale equal is per tensor, bit for bit ------------------------------

@pytest.mark.parametrize("m", [1, 5, 16, 33])
def test_rows_all_equal_is_per_tensor(isa, m):
    rng = rng_for("rows_equal", m)
    k, n = 70, 81
    a = rand_q(rng, (m, k), np.int8)
    b = rand_q(rng, (k, n), np.int8)
    pw = iq.pack_weights(b, zero_point=rng.integers(-2, 3, n).astype(np.int32))
    for a_s in (0.0173, 3.0, 1e-3):
        for b_scale in (rand_scales(rng, n), 0.37):
            for name in EPILOGUES:
                kw = epilogue_kw(rng, name, n)
                tensor = iq.qgemm(a, pw, a_s, b_scale, a_zero_point=9, **kw)
                rows = iq.qgemm(a, pw, np.full(m, a_s), b_scale, a_zero_point=9, **kw)
                where = f"isa={isa} M={m} a_scale={a_s} epilogue={name}"
                assert_same(rows, tensor, where)
                assert_same(ref.qgemm(a, pw, np.full(m, a_s), b_scale, a_zero_point=9, **kw),
                            ref.qgemm(a, pw, a_s, b_scale, a_zero_point=9, **kw), f"{where} reference")


def test_rows_requantize_multiplier_per_row(isa):
    """The multiplier is (a_scale[m] * b_scale[n]) / out_scale, two float32 roundings: scales where
    a_scale[m] * (b_scale[n] / out_scale) rounds differently must give the reference's bytes."""
    rng = rng_for("rows_multiplier")
    m, k, n = 40, 64, 48
    a = rand_q(rng, (m, k), np.uint8)
    b = rand_q(rng, (k, n), np.int8)
    a_scale = rand_scales(rng, m, 0.3, 3.0)
    b_scale = rand_scales(rng, n, 0.3, 3.0)
    out_scale = np.float32(0.7)
    s = np.multiply(a_scale[:, None], b_scale, dtype=np.float32)
    other = np.multiply(a_scale[:, None], np.divide(b_scale, out_scale, dtype=np.float32), dtype=np.float32)
    assert (np.divide(s, out_scale, dtype=np.float32) != other).any(), "the data should tell the two orders apart"
    for dt, zp in ((np.int8, 3), (np.uint8, 120)):
        kw = dict(out_scale=out_scale, out_zero_point=zp, out_dtype=dt)
        assert_same(iq.qgemm(a, b, a_scale, b_scale, a_zero_point=128, **kw),
                    ref.qgemm(a, b, a_scale, b_scale, a_zero_point=128, **kw), f"isa={isa} {np.dtype(dt)}")


# --- threads, out=, empty ---------------------------------------------------------------------

@pytest.mark.parametrize("threads", [2, 3])
def test_rows_threads(isa, threads):
    iq.set_num_threads(threads)
    rng = rng_for("rows_threads", threads)
    m, k, n = 300, 700, 200  # large enough to be shared between threads
    a = rand_q(rng, (m, k), np.uint8)
    b = rand_q(rng, (k, n), np.int8)
    pw = iq.pack_weights(b)
    a_scale = rand_scales(rng, m)
    b_scale = rand_scales(rng, n)
    for name in ("f32_bias_relu", "uint8_int32_bias"):
        kw = epilogue_kw(rng, name, n)
        assert_same(iq.qgemm(a, pw, a_scale, b_scale, a_zero_point=100, **kw),
                    ref.qgemm(a, b, a_scale, b_scale, a_zero_point=100, **kw), f"isa={isa} threads={threads} {name}")


def test_rows_out(isa):
    rng = rng_for("rows_out")
    m, k, n = 9, 30, 20
    a = rand_q(rng, (m, k), np.int8)
    b = rand_q(rng, (k, n), np.int8)
    a_scale, b_scale = rand_scales(rng, m), rand_scales(rng, n)
    for name in ("f32_bias", "int8_int32_bias_relu"):
        kw = epilogue_kw(rng, name, n)
        want = ref.qgemm(a, b, a_scale, b_scale, **kw)
        out = np.zeros_like(want)
        assert iq.qgemm(a, b, a_scale, b_scale, out=out, **kw) is out
        assert_same(out, want, f"isa={isa} {name}")


@pytest.mark.parametrize("m,n", [(0, 5), (4, 0), (0, 0)])
def test_rows_empty(isa, m, n):
    rng = rng_for("rows_empty", m, n)
    k = 8
    a = rand_q(rng, (m, k), np.uint8)
    b = rand_q(rng, (k, n), np.int8)
    for name in ("f32_bias_relu", "int8_int32_bias_relu"):
        kw = epilogue_kw(rng, name, n)
        want = ref.qgemm(a, b, np.full(m, 0.5), np.full(n, 0.25, np.float32), **kw)
        assert want.shape == (m, n)
        assert_same(iq.qgemm(a, b, np.full(m, 0.5), np.full(n, 0.25, np.float32), **kw), want,
                    f"isa={isa} M={m} N={n} {name}")


def test_rows_are_not_remembered(isa):
    """Per-row scales change with every call: they never enter the epilogue caches, which keep
    only the per-column part (one entry here, however many row scales)."""
    rng = rng_for("rows_cache")
    a = rand_q(rng, (5, 16), np.uint8)
    pw = iq.pack_weights(rand_q(rng, (16, 8), np.int8))
    b_scale = rand_scales(rng, 8)
    iq.qgemm(a, pw, rand_scales(rng, 5), b_scale)
    per_tensor, per_row = len(_gemm._resolve._cache.keys()), len(_gemm._resolve_rows._cache.keys())
    for _ in range(100):
        a_scale = rand_scales(rng, 5)
        assert_same(iq.qgemm(a, pw, a_scale, b_scale), ref.qgemm(a, pw, a_scale, b_scale), f"isa={isa}")
    assert len(_gemm._resolve._cache.keys()) == per_tensor
    assert len(_gemm._resolve_rows._cache.keys()) == per_row


# --- errors -----------------------------------------------------------------------------------

def _err_data():
    rng = rng_for("rows_errors")
    return rand_q(rng, (2, 3, 6), np.uint8), rand_q(rng, (6, 5), np.int8)


A3, B = _err_data()
ROWS = np.full((2, 3), 0.1, np.float32)


def _q(f, **kw):
    base = dict(a=A3, b=B, a_scale=ROWS, b_scale=0.2)
    base.update(kw)
    a, b, a_s, b_s = base.pop("a"), base.pop("b"), base.pop("a_scale"), base.pop("b_scale")
    return f.qgemm(a, b, a_s, b_s, **base)


def _rows_with(value, at=(1, 2), dtype=np.float32):
    r = ROWS.astype(dtype)
    r[at] = value
    return r


SHAPE = r"a_scale must be a scalar \(per tensor\) or have a shape broadcastable to a.shape\[:-1\] = "
VALUES = r"^a_scale must be finite and > 0 in float32$"
PRODUCTS = r"^a_scale \* b_scale must be finite and > 0 in float32 for every row and column$"
MULTIPLIER = r"^a_scale \* b_scale / out_scale must be finite in float32$"

ERRORS = {
    "shape_wrong_length": (ValueError, SHAPE + r"\(2, 3\) \(per row\), got shape \(4,\)",
                           lambda f: _q(f, a_scale=np.full(4, 0.1))),
    "shape_transposed": (ValueError, SHAPE + r"\(2, 3\) \(per row\), got shape \(3, 2\)",
                         lambda f: _q(f, a_scale=ROWS.T)),
    "shape_keepdims": (ValueError, SHAPE + r"\(2, 3\) \(per row\), got shape \(2, 3, 1\)",
                       lambda f: _q(f, a_scale=ROWS[..., None])),
    "shape_one_row_per_column": (ValueError, SHAPE + r"\(2, 3\) \(per row\), got shape \(2, 3, 5\)",
                                 lambda f: _q(f, a_scale=np.full((2, 3, 5), 0.1))),
    "shape_with_1d_a": (ValueError, SHAPE + r"\(\) \(per row\), got shape \(1,\)",
                        lambda f: _q(f, a=A3[0, 0], a_scale=np.full(1, 0.1))),
    "dtype_complex": (TypeError, r"a_scale must be a real number or an array of them, got dtype complex128",
                      lambda f: _q(f, a_scale=ROWS.astype(complex))),
    "dtype_bool": (TypeError, r"a_scale must be a real number or an array of them, got dtype bool",
                   lambda f: _q(f, a_scale=np.ones((2, 3), bool))),
    "zero": (ValueError, VALUES, lambda f: _q(f, a_scale=_rows_with(0.0))),
    "negative": (ValueError, VALUES, lambda f: _q(f, a_scale=_rows_with(-0.1, (0, 0)))),
    "nan": (ValueError, VALUES, lambda f: _q(f, a_scale=_rows_with(np.nan))),
    "inf": (ValueError, VALUES, lambda f: _q(f, a_scale=_rows_with(np.inf, (1, 0)))),
    "float64_past_float32": (ValueError, VALUES, lambda f: _q(f, a_scale=_rows_with(1e39, dtype=np.float64))),
    "float64_underflows_float32": (ValueError, VALUES, lambda f: _q(f, a_scale=_rows_with(1e-50, dtype=np.float64))),
    "broadcast_zero": (ValueError, VALUES, lambda f: _q(f, a_scale=np.array([[0.1], [0.0]]))),
    "product_underflows": (ValueError, PRODUCTS, lambda f: _q(f, a_scale=_rows_with(1e-30), b_scale=1e-30)),
    "product_overflows": (ValueError, PRODUCTS, lambda f: _q(f, a_scale=_rows_with(1e30), b_scale=1e20)),
    # Only the smallest a_scale with the smallest b_scale underflows; only the largest with the
    # largest overflows: the extremes are what the fast path checks.
    "product_underflows_at_extremes": (ValueError, PRODUCTS, lambda f: _q(
        f, a_scale=_rows_with(1e-25), b_scale=np.array([1.0, 1e-25, 1.0, 1.0, 1.0], np.float32))),
    "product_overflows_at_extremes": (ValueError, PRODUCTS, lambda f: _q(
        f, a_scale=_rows_with(1e25), b_scale=np.array([1.0, 1.0, 1e25, 1.0, 1.0], np.float32))),
    "multiplier_overflows": (ValueError, MULTIPLIER, lambda f: _q(
        f, a_scale=_rows_with(1e20), b_scale=1e10, out_scale=1e-20, out_dtype=np.int8)),
    "multiplier_overflows_at_extremes": (ValueError, MULTIPLIER, lambda f: _q(
        f, a_scale=_rows_with(1e15), b_scale=np.array([1.0, 1.0, 1.0, 1.0, 1e15], np.float32), out_scale=1e-10,
        out_dtype=np.uint8)),
    "b_scale_zero": (ValueError, r"^b_scale must be finite and > 0 in float32",
                     lambda f: _q(f, b_scale=np.array([0.1, 0.0, 0.1, 0.1, 0.1], np.float32))),
    "b_scale_nan": (ValueError, r"^b_scale must be finite and > 0 in float32", lambda f: _q(f, b_scale=np.nan)),
    "b_scale_wrong_length": (ValueError, r"b_scale must be a scalar or have shape \(5,\)",
                             lambda f: _q(f, b_scale=np.full(4, 0.1))),
    "float_bias_requantized": (ValueError, r"float bias with a per-row a_scale and requantized output .* give an "
                                           r"int32 bias .* or request float32 output",
                               lambda f: _q(f, bias=np.zeros(5, np.float32), out_scale=0.5, out_dtype=np.int8)),
    "float64_bias_requantized": (ValueError, r"float bias with a per-row a_scale",
                                 lambda f: _q(f, bias=np.zeros(5), out_scale=0.5, out_dtype=np.uint8)),
    "int_bias_float_output": (TypeError, r"integer bias", lambda f: _q(f, bias=np.zeros(5, np.int32))),
    "a_float": (TypeError, r"a must be an int8 or uint8 array", lambda f: _q(f, a=A3.astype(np.float32))),
    "k_mismatch": (ValueError, r"a has K=6 .* b has K=5", lambda f: _q(f, b=B[:5])),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(ERRORS))
def test_rows_errors(impl, case):
    """The fast path (under each ISA) and the reference reject the same inputs."""
    check_error(impl, *ERRORS[case])


def test_rows_error_messages_agree():
    """Same exception type and message on the fast path and the reference."""
    assert_same_errors(ERRORS)


def test_rows_extremes_accept(isa):
    """Scales whose extremes are far apart but whose every product is fine are accepted: the
    extremes of a_scale meet those of b_scale only in the products that are checked."""
    rng = rng_for("rows_extremes")
    a = rand_q(rng, (3, 8), np.uint8)
    b = rand_q(rng, (8, 4), np.int8)
    a_scale = np.array([1e-20, 1.0, 1e15], np.float32)
    b_scale = np.array([1e-15, 1.0, 1e-3, 1e20], np.float32)
    for kw in (dict(), dict(out_scale=1e10, out_dtype=np.int8)):
        assert_same(iq.qgemm(a, b, a_scale, b_scale, **kw), ref.qgemm(a, b, a_scale, b_scale, **kw),
                    f"isa={isa} {kw}")


def test_qconv2d_x_scale_stays_per_tensor():
    x = np.zeros((1, 2, 3, 3), np.uint8)
    w = np.zeros((4, 2, 1, 1), np.int8)
    for f in (iq, ref):
        with pytest.raises(ValueError, match=r"x_scale must be a scalar"):
            f.qconv2d(x, w, np.full(9, 0.1), 0.1)
