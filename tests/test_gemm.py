"""int8 GEMM (gemm, qgemm, PackedWeights): exact equality with the NumPy reference on every ISA path.

Every comparison is exact: int results by value, float results by bit pattern. Random data comes
from a generator seeded by the test's shape and purpose (see ``rng_for``), so a failure reproduces
from its id alone. ISA paths come from the ``isa`` fixture of conftest.py (each available path,
activated with ``use_isa`` for the whole test; the thread count and active path are restored after
every test by conftest's autouse fixture).
"""
from __future__ import annotations

import concurrent.futures
import pickle

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import _core
from intquant_kernels import reference as ref

from exact import (AVAILABLE_ISAS, EXTREMES, IMPLS, INT32_MAX, Q_RANGE, assert_same, assert_same_errors,
                   check_error, epilogue_errors, raises_on_both, rand_q, read_only, rng_for)


#: The suffix of each ISA path's gemm kernel name.
ISA_TOKENS = {"scalar": "scalar", "avx2": "avx2", "avx_vnni": "avxvnni", "avx512_vnni": "avx512vnni"}


# --- helpers -------------------------------------------------------------------------


def rand_b(rng, k, n) -> np.ndarray:
    return rand_q(rng, (k, n), np.int8)


def rand_b_zp(rng, n) -> np.ndarray:
    return rng.integers(-128, 128, size=n).astype(np.int32)


def shape_id(m, k, n) -> str:
    return f"M={m}-K={k}-N={n}"


def extreme(lo, hi, zp) -> int:
    """The value in [lo, hi] farthest from ``zp`` (the low end on a tie)."""
    return lo if abs(lo - zp) >= abs(hi - zp) else hi


def bound_for(a_dtype, a_zp, b_zp) -> int:
    """Largest K for which the exact result provably fits int32 (README, 'Exactness')."""
    lo, hi = Q_RANGE[np.dtype(a_dtype)]
    amax = max(abs(lo - a_zp), abs(hi - a_zp))
    z = np.atleast_1d(np.asarray(b_zp, np.int64))
    bmax = int(max(np.max(np.abs(-128 - z)), np.max(np.abs(127 - z))))
    return INT32_MAX // (amax * bmax)


# --- every M, N in 1..40 for a range of K ----------------------------------------------

SWEEP_K = (1, 3, 4, 15, 16, 17, 63, 64, 65, 127, 128, 129)
SWEEP_MN = range(1, 41)


@pytest.mark.parametrize("k", SWEEP_K, ids=lambda k: f"K={k}")
def test_sweep_all_small_m_n(isa, k):
    """Every (M, N) in 1..40 x 1..40 at this K, with int8 and uint8 activations, zero points or none.

    One PackedWeights per (K, N) and zero point (without / per-column), reused for every M, with
    uint8 and int8 activations, with and without an activation zero point.
    """
    for n in SWEEP_MN:
        rng = rng_for("sweep", k, n)
        b = rand_b(rng, k, n)
        b_zp = rand_b_zp(rng, n)
        a_u8 = rand_q(rng, (40, k), np.uint8)
        a_s8 = rand_q(rng, (40, k), np.int8)
        u8_zp = int(rng.integers(0, 256))
        s8_zp = int(rng.integers(-128, 128))
        pw0 = iq.pack_weights(b)
        pwz = iq.pack_weights(b, zero_point=b_zp)
        for m in SWEEP_MN:
            for a, a_zp, pw, zp in ((a_u8[:m], 0, pw0, 0), (a_s8[:m], 0, pw0, 0),
                                    (a_u8[:m], u8_zp, pwz, b_zp), (a_s8[:m], s8_zp, pwz, b_zp)):
                got = iq.gemm(a, pw, a_zero_point=a_zp)
                want = ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=zp)
                assert_same(
                    got, want,
                    f"isa={isa} M={m} N={n} K={k} a={a.dtype} a_zero_point={a_zp} "
                    f"b_zero_point={'per-column' if np.ndim(zp) else zp} (seed key ('sweep', {k}, {n}))",
                )


WIDE_K = (5, 64, 131)


@pytest.mark.parametrize("k", WIDE_K, ids=lambda k: f"K={k}")
def test_sweep_wide_n(isa, k):
    """N in 41..140 (every remainder of the 64-column AVX-512 tile after one or two whole panels,
    and of the 16-column tiles many times over), M in 1..12 (remainders of the 4- and 5-row tiles)."""
    for n in range(41, 141):
        rng = rng_for("wide_n", k, n)
        b = rand_b(rng, k, n)
        b_zp = rand_b_zp(rng, n)
        a_u8 = rand_q(rng, (12, k), np.uint8)
        a_s8 = rand_q(rng, (12, k), np.int8)
        pw = iq.pack_weights(b, zero_point=b_zp)
        for m in range(1, 13):
            for a, a_zp in ((a_u8[:m], 77), (a_s8[:m], -1)):
                assert_same(iq.gemm(a, pw, a_zero_point=a_zp), ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp),
                            f"isa={isa} M={m} N={n} K={k} a={a.dtype} a_zero_point={a_zp} "
                            f"(seed key ('wide_n', {k}, {n}))")


EPILOGUES = {
    "f32": dict(),
    "f32_bias_relu": dict(bias="f", relu=True),
    "int8_bias_relu": dict(bias="f", relu=True, out_scale=0.3, out_zero_point=-7, out_dtype=np.int8),
    "uint8_int32_bias": dict(bias="i", out_scale=0.3, out_zero_point=128, out_dtype=np.uint8),
}


@pytest.mark.parametrize("epilogue", list(EPILOGUES))
@pytest.mark.parametrize("k", (7, 64), ids=lambda k: f"K={k}")
def test_sweep_qgemm_epilogues(isa, k, epilogue):
    """Every fused epilogue over every tile remainder: M in 1..12, N in 1..140."""
    for n in range(1, 141):
        rng = rng_for("epilogue_sweep", k, n, epilogue)
        b = rand_b(rng, k, n)
        a = rand_q(rng, (12, k), np.uint8)
        b_scale = rng.uniform(0.001, 0.01, n).astype(np.float32)
        kw = dict(EPILOGUES[epilogue])
        if kw.get("bias") == "f":
            kw["bias"] = (rng.standard_normal(n) * 5).astype(np.float32)
        elif kw.get("bias") == "i":
            kw["bias"] = rng.integers(-2000, 2000, n).astype(np.int32)
        pw = iq.pack_weights(b, zero_point=-2)
        for m in range(1, 13):
            assert_same(iq.qgemm(a[:m], pw, 0.05, b_scale, a_zero_point=120, **kw),
                        ref.qgemm(a[:m], b, 0.05, b_scale, a_zero_point=120, b_zero_point=-2, **kw),
                        f"isa={isa} M={m} N={n} K={k} epilogue={epilogue} "
                        f"(seed key ('epilogue_sweep', {k}, {n}, {epilogue!r}))")


# --- powers of two +-1 up to 1025 in each dimension ------------------------------------------

P2 = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257,
      511, 512, 513, 1023, 1024, 1025)
P2_SHAPES = list(dict.fromkeys(
    [(d, 37, 19) for d in P2]  # M varies
    + [(11, d, 21) for d in P2]  # K varies
    + [(13, 29, d) for d in P2]  # N varies
    + [(65, 257, 129), (1, 1025, 513), (1025, 33, 17), (257, 513, 65), (129, 1023, 255),
       # K past the L1 slice of every kernel (the scalar and VNNI 4x16 kernels slice K at 1536)
       (33, 4097, 47), (6, 1537, 17), (9, 3073, 130), (70, 2049, 80)]
))


@pytest.mark.parametrize("m,k,n", P2_SHAPES, ids=[shape_id(*s) for s in P2_SHAPES])
def test_powers_of_two(isa, m, k, n):
    rng = rng_for("p2", m, k, n)
    b = rand_b(rng, k, n)
    b_zp = rand_b_zp(rng, n)
    a_u8 = rand_q(rng, (m, k), np.uint8)
    a_s8 = rand_q(rng, (m, k), np.int8)
    where = f"isa={isa} M={m} K={k} N={n}"
    # uint8, no zero points, raw b (packed inside the call)
    assert_same(iq.gemm(a_u8, b), ref.gemm(a_u8, b), f"{where} uint8 raw b")
    # int8 with an activation zero point, per-column weight zero points, packed
    pw = iq.pack_weights(b, zero_point=b_zp)
    assert_same(iq.gemm(a_s8, pw, a_zero_point=-3), ref.gemm(a_s8, b, a_zero_point=-3, b_zero_point=b_zp),
                f"{where} int8 a_zp=-3 per-column b_zp")
    # uint8 with a_zero_point 128 and a scalar weight zero point, raw b
    assert_same(iq.gemm(a_u8, b, a_zero_point=128, b_zero_point=5),
                ref.gemm(a_u8, b, a_zero_point=128, b_zero_point=5), f"{where} uint8 a_zp=128 b_zp=5")


# --- deep K at the exactness bound ----------------------------------------------------

# (a dtype, a_zero_point, b_zero_point): the bound is INT32_MAX // (max|a - a_zp| * max|b - b_zp|).
DEEP_CASES = [
    (np.uint8, 0, 0),  # 65793
    (np.int8, 0, 0),  # 131071
    (np.uint8, 0, -128),  # weights span 255: 33025
    (np.uint8, 0, 127),  # 33025
    (np.int8, 127, 0),  # activations span 255: 65793
    (np.int8, -128, 0),  # 65793
    (np.int8, 0, 127),  # 65793
    (np.uint8, 255, -128),  # 33025
    (np.uint8, 128, 0),  # a centred zero point: span 128, bound 131071
    (np.uint8, 0, (0, -128, 5)),  # per column: the widest column sets it, 33025
    (np.int8, 3, (-1, 0, 1)),  # 131 * 129: 127080
]
DEEP_IDS = [f"{np.dtype(d).name}-azp={a}-bzp={'_'.join(map(str, np.atleast_1d(b)))}" for d, a, b in DEEP_CASES]


def test_deep_k_bounds_match_readme():
    assert bound_for(np.uint8, 0, 0) == (2**31 - 1) // (255 * 128) == 65793
    assert bound_for(np.int8, 0, 0) == (2**31 - 1) // (128 * 128) == 131071
    assert bound_for(np.uint8, 0, -128) == (2**31 - 1) // (255 * 255)


@pytest.mark.parametrize("a_dtype,a_zp,b_zp", DEEP_CASES, ids=DEEP_IDS)
def test_deep_k_at_bound_with_extreme_values(isa, a_dtype, a_zp, b_zp):
    """K at the bound with the values farthest from the zero points: the result is exactly
    K * (a - a_zp) * (b - b_zp), as large as int32 allows; K + 1 raises, naming the bound."""
    n = 3
    bound = bound_for(a_dtype, a_zp, b_zp)
    lo, hi = Q_RANGE[np.dtype(a_dtype)]
    zp_cols = np.broadcast_to(np.asarray(b_zp, np.int64), (n,))
    a_ext = extreme(lo, hi, a_zp)
    b_ext = np.array([extreme(-128, 127, int(z)) for z in zp_cols], np.int8)
    b_zp_arg = np.asarray(b_zp, np.int32) if np.ndim(b_zp) else b_zp
    where = f"isa={isa} a={np.dtype(a_dtype)} a_zp={a_zp} b_zp={b_zp} K={bound}"

    for m in (1, 2):
        a = np.full((m, bound), a_ext, a_dtype)
        b = np.ascontiguousarray(np.broadcast_to(b_ext, (bound, n)))
        expect = bound * (a_ext - a_zp) * (b_ext.astype(np.int64) - zp_cols)
        assert np.all(np.abs(expect) <= INT32_MAX)
        assert np.max(np.abs(expect)) > INT32_MAX - (a_ext - a_zp) ** 2 * 256, "not at the bound"
        want = np.broadcast_to(expect.astype(np.int32), (m, n))
        assert_same(ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp_arg), np.array(want), f"{where} reference")
        assert_same(iq.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp_arg), np.array(want), f"{where} M={m}")
        pw = iq.pack_weights(b, zero_point=b_zp_arg)
        assert_same(iq.gemm(a, pw, a_zero_point=a_zp), np.array(want), f"{where} M={m} packed")

    k = bound + 1
    a = np.full((1, k), a_ext, a_dtype)
    b = np.ascontiguousarray(np.broadcast_to(b_ext, (k, n)))
    msg = rf"K={k} could overflow.*K must be <= {bound}$"
    for call in (lambda f: f.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp_arg),
                 lambda f: f.gemm(a, iq.pack_weights(b, zero_point=b_zp_arg), a_zero_point=a_zp),
                 lambda f: f.qgemm(a, b, 1.0, 1.0, a_zero_point=a_zp, b_zero_point=b_zp_arg)):
        raises_on_both(ValueError, call, match=msg)


def test_deep_k_int8_all_minus_128(isa):
    """The brief's second case spelled out: int8 x int8, all -128, K = 131071 gives K * 16384."""
    k = (2**31 - 1) // (128 * 128)
    a = np.full((2, k), -128, np.int8)
    b = np.full((k, 2), -128, np.int8)
    want = np.full((2, 2), k * 128 * 128, np.int32)
    assert_same(iq.gemm(a, b), want, f"isa={isa} K={k}")
    with pytest.raises(ValueError, match=rf"K must be <= {k}$"):
        iq.gemm(np.full((2, k + 1), -128, np.int8), np.full((k + 1, 2), -128, np.int8))


def test_deep_k_uint8_all_255(isa):
    k = (2**31 - 1) // (255 * 128)
    a = np.full((1, k), 255, np.uint8)
    b = np.full((k, 3), -128, np.int8)
    assert_same(iq.gemm(a, b), np.full((1, 3), -k * 255 * 128, np.int32), f"isa={isa} K={k}")
    with pytest.raises(ValueError, match=rf"K must be <= {k}$"):
        iq.gemm(np.full((1, k + 1), 255, np.uint8), np.full((k + 1, 3), -128, np.int8))


def test_deep_k_bound_includes_int32_bias(isa):
    """With a bias, the bound leaves room for |bias|: K = (INT32_MAX - |bias|) // (255 * 128)."""
    bias = np.array([-10**6, 7, 10**6 - 1], np.int32)
    k = (INT32_MAX - 10**6) // (255 * 128)
    a = np.full((2, k), 255, np.uint8)
    b = np.full((k, 3), -128, np.int8)
    kw = dict(bias=bias, out_scale=2.0**25, out_dtype=np.int8)
    assert_same(iq.qgemm(a, b, 1.0, 1.0, **kw), ref.qgemm(a, b, 1.0, 1.0, **kw), f"isa={isa} K={k}")
    a1 = np.full((2, k + 1), 255, np.uint8)
    b1 = np.full((k + 1, 3), -128, np.int8)
    raises_on_both(ValueError, lambda f: f.qgemm(a1, b1, 1.0, 1.0, **kw),
                   match=rf"\|bias\| <= 1000000\): K must be <= {k}$")


# --- shapes: M = 1, N = 1, batches, strides --------------------------------------------

SINGLE_SHAPES = [(1, 1, 1), (1, 7, 1), (1, 1000, 1), (1, 5000, 1), (1, 300, 300), (300, 300, 1), (1, 64, 64),
                 (64, 64, 1)]


@pytest.mark.parametrize("m,k,n", SINGLE_SHAPES, ids=[shape_id(*s) for s in SINGLE_SHAPES])
def test_single_row_or_column(isa, m, k, n):
    rng = rng_for("single", m, k, n)
    b = rand_b(rng, k, n)
    for dt in (np.uint8, np.int8):
        a = rand_q(rng, (m, k), dt)
        assert_same(iq.gemm(a, b, a_zero_point=1, b_zero_point=-2),
                    ref.gemm(a, b, a_zero_point=1, b_zero_point=-2), f"isa={isa} M={m} K={k} N={n} {np.dtype(dt)}")
    a1 = rand_q(rng, (k,), np.uint8)  # 1-D a: (K,) -> (N,)
    got = iq.gemm(a1, b)
    assert got.shape == (n,)
    assert_same(got, ref.gemm(a1, b), f"isa={isa} 1-D a K={k} N={n}")


@pytest.mark.parametrize("batch", [(2, 3), (5, 1), (1, 1, 1), (4, 2, 3)],
                         ids=lambda s: "batch=" + "x".join(map(str, s)))
@pytest.mark.parametrize("k,n", [(17, 9), (64, 70)], ids=["K=17-N=9", "K=64-N=70"])
def test_batched_activations(isa, batch, k, n):
    rng = rng_for("batched", batch, k, n)
    b = rand_b(rng, k, n)
    zp = rand_b_zp(rng, n)
    pw = iq.pack_weights(b, zero_point=zp)
    where = f"isa={isa} a.shape={batch + (k,)} N={n}"
    for dt in (np.uint8, np.int8):
        a = rand_q(rng, batch + (k,), dt)
        want = ref.gemm(a, b, a_zero_point=7, b_zero_point=zp)
        assert want.shape == batch + (n,)
        assert_same(iq.gemm(a, pw, a_zero_point=7), want, f"{where} {np.dtype(dt)}")
        out = np.full(batch + (n,), -1, np.int32)
        res = iq.gemm(a, pw, a_zero_point=7, out=out)
        assert res is out
        assert_same(out, want, f"{where} {np.dtype(dt)} out=")
        # the batch as a strided view (every other row of a larger batch)
        big = rand_q(rng, batch[:-1] + (2 * batch[-1], k), dt)
        av = big[..., ::2, :]
        assert_same(iq.gemm(av, pw, a_zero_point=7), ref.gemm(av, b, a_zero_point=7, b_zero_point=zp),
                    f"{where} {np.dtype(dt)} strided batch")


def _unaligned(rng, m, k, dt):
    buf = rand_q(rng, (m * k + 1,), dt)
    return buf[1:].reshape(m, k)  # rows contiguous, data pointer off by one byte


A_VIEWS = {
    "every_other_column": lambda rng, m, k, dt: rand_q(rng, (m, 2 * k), dt)[:, ::2],
    "transposed": lambda rng, m, k, dt: rand_q(rng, (k, m), dt).T,
    "fortran": lambda rng, m, k, dt: np.asfortranarray(rand_q(rng, (m, k), dt)),
    "reversed_rows": lambda rng, m, k, dt: rand_q(rng, (m, k), dt)[::-1],
    "reversed_columns": lambda rng, m, k, dt: rand_q(rng, (m, k), dt)[:, ::-1],
    "padded_rows": lambda rng, m, k, dt: rand_q(rng, (m, k + 13), dt)[:, :k],
    "every_third_row": lambda rng, m, k, dt: rand_q(rng, (3 * m, k), dt)[::3],
    "offset_view": lambda rng, m, k, dt: rand_q(rng, (m + 2, k + 3), dt)[2:, 3:],
    "unaligned": _unaligned,
    "broadcast_row": lambda rng, m, k, dt: np.broadcast_to(rand_q(rng, (1, k), dt), (m, k)),
    "read_only": lambda rng, m, k, dt: read_only(rand_q(rng, (m, k), dt)),
}


@pytest.mark.parametrize("view", list(A_VIEWS))
@pytest.mark.parametrize("m,k,n", [(37, 70, 45), (5, 129, 70), (1, 33, 17), (2, 1, 3)],
                         ids=[shape_id(*s) for s in [(37, 70, 45), (5, 129, 70), (1, 33, 17), (2, 1, 3)]])
def test_non_contiguous_activations(isa, view, m, k, n):
    rng = rng_for("a_view", view, m, k, n)
    b = rand_b(rng, k, n)
    zp = rand_b_zp(rng, n)
    for dt in (np.uint8, np.int8):
        a = A_VIEWS[view](rng, m, k, dt)
        assert a.shape == (m, k)
        a_copy = a.copy()
        want = ref.gemm(np.ascontiguousarray(a), b, a_zero_point=2, b_zero_point=zp)
        where = f"isa={isa} M={m} K={k} N={n} a={view} {np.dtype(dt)}"
        assert_same(iq.gemm(a, b, a_zero_point=2, b_zero_point=zp), want, where)
        assert_same(ref.gemm(a, b, a_zero_point=2, b_zero_point=zp), want, f"{where} (reference on the view)")
        assert_same(a, a_copy, f"{where}: a was modified")


B_VIEWS = {
    "w_transposed": lambda rng, k, n: rand_q(rng, (n, k), np.int8).T,  # a PyTorch (out, in) weight
    "fortran": lambda rng, k, n: np.asfortranarray(rand_b(rng, k, n)),
    "reversed_rows": lambda rng, k, n: rand_b(rng, k, n)[::-1],
    "every_other_column": lambda rng, k, n: rand_b(rng, k, 2 * n)[:, ::2],
    "padded": lambda rng, k, n: rand_b(rng, k + 3, n + 5)[3:, :n],
}


@pytest.mark.parametrize("view", list(B_VIEWS))
@pytest.mark.parametrize("m,k,n", [(9, 70, 45), (33, 129, 130), (1, 5, 1)],
                         ids=[shape_id(*s) for s in [(9, 70, 45), (33, 129, 130), (1, 5, 1)]])
def test_strided_weights(isa, view, m, k, n):
    rng = rng_for("b_view", view, m, k, n)
    b = B_VIEWS[view](rng, k, n)
    assert b.shape == (k, n)
    bc = np.ascontiguousarray(b)
    zp = rand_b_zp(rng, n)
    a = rand_q(rng, (m, k), np.uint8)
    where = f"isa={isa} M={m} K={k} N={n} b={view}"
    want = ref.gemm(a, bc, b_zero_point=zp)
    assert_same(iq.gemm(a, b, b_zero_point=zp), want, f"{where} raw")
    pw = iq.pack_weights(b, zero_point=zp)
    assert_same(pw.weights, bc, f"{where} PackedWeights.weights")
    assert_same(iq.gemm(a, pw), want, f"{where} packed")
    assert_same(ref.gemm(a, b, b_zero_point=zp), want, f"{where} reference on the view")


# --- dtypes, zero points, extreme values ----------------------------------------------

A_ZPS = {np.uint8: (0, 1, 128, 200, 255), np.int8: (0, -128, -1, 5, 127)}
ZP_CASES = [(dt, azp) for dt, zps in A_ZPS.items() for azp in zps]


@pytest.mark.parametrize("b_zp_kind", ["zero", "scalar", "scalar_min", "scalar_max", "per_column", "per_column_ends"])
@pytest.mark.parametrize("a_dtype,a_zp", ZP_CASES, ids=[f"{np.dtype(d).name}-azp={z}" for d, z in ZP_CASES])
def test_zero_points(isa, a_dtype, a_zp, b_zp_kind):
    m, k, n = 13, 67, 37
    rng = rng_for("zp", np.dtype(a_dtype).name, a_zp, b_zp_kind)
    b = rand_b(rng, k, n)
    a = rand_q(rng, (m, k), a_dtype)
    b_zp = {
        "zero": 0,
        "scalar": -7,
        "scalar_min": -128,
        "scalar_max": 127,
        "per_column": rand_b_zp(rng, n),
        "per_column_ends": np.resize(np.array([-128, 127, 0, -1], np.int16), n),
    }[b_zp_kind]
    where = f"isa={isa} M={m} K={k} N={n} a={np.dtype(a_dtype)} a_zp={a_zp} b_zp={b_zp_kind}"
    want = ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp)
    # the formula, in int64
    lhs = a.astype(np.int64) - a_zp
    rhs = b.astype(np.int64) - np.broadcast_to(np.asarray(b_zp, np.int64), (n,))
    assert_same(want, (lhs @ rhs).astype(np.int32), f"{where}: reference against the formula")
    assert_same(iq.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp), want, f"{where} b_zero_point=")
    pw = iq.pack_weights(b, zero_point=b_zp)
    assert_same(iq.gemm(a, pw, a_zero_point=a_zp), want, f"{where} pack_weights(zero_point=)")
    assert_same(ref.gemm(a, pw, a_zero_point=a_zp), want, f"{where} reference with PackedWeights")
    # zero points given as NumPy integers of other widths
    assert_same(iq.gemm(a, b, a_zero_point=np.int64(a_zp), b_zero_point=np.asarray(b_zp, np.int64)), want,
                f"{where} int64 zero points")


@pytest.mark.parametrize("a_dtype,a_fill,a_zp,b_fill,b_zp", EXTREMES,
                         ids=[f"{np.dtype(d).name}{af}-azp={az}-b{bf}-bzp={bz}" for d, af, az, bf, bz in EXTREMES])
def test_all_extreme_values(isa, a_dtype, a_fill, a_zp, b_fill, b_zp):
    m, k, n = 9, 301, 70
    a = np.full((m, k), a_fill, a_dtype)
    b = np.full((k, n), b_fill, np.int8)
    want = np.full((m, n), k * (a_fill - a_zp) * (b_fill - b_zp), np.int32)
    where = f"isa={isa} M={m} K={k} N={n} a={a_fill} a_zp={a_zp} b={b_fill} b_zp={b_zp}"
    assert_same(ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp), want, f"{where} reference")
    assert_same(iq.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp), want, where)
    assert_same(iq.gemm(a, iq.pack_weights(b, zero_point=b_zp), a_zero_point=a_zp), want, f"{where} packed")


@pytest.mark.parametrize("a_dtype", [np.int8, np.uint8], ids=["int8", "uint8"])
def test_random_range_ends(isa, a_dtype):
    """Values drawn from the two ends of each range only, zero points at the ends, per column."""
    m, k, n = 23, 515, 77
    rng = rng_for("ends", np.dtype(a_dtype).name)
    lo, hi = Q_RANGE[np.dtype(a_dtype)]
    a = rng.choice(np.array([lo, hi], a_dtype), size=(m, k))
    b = rng.choice(np.array([-128, 127], np.int8), size=(k, n))
    b_zp = rng.choice(np.array([-128, 127, 0]), size=n)
    for a_zp in (lo, hi):
        want = ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp)
        assert_same(iq.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp), want,
                    f"isa={isa} M={m} K={k} N={n} {np.dtype(a_dtype)} a_zp={a_zp}")


# --- qgemm ------------------------------------------------------------------------

QGEMM_FLOAT = [(bias, relu) for bias in ("none", "array", "scalar") for relu in (False, True)]
QGEMM_Q8 = [(dt, bias, relu) for dt in ("int8", "uint8") for bias in ("none", "float", "int32")
            for relu in (False, True)]


def _qgemm_data(kind, m, k, n, a_dtype, per_column, key):
    """Activations, weights and scales. 'pow2': small values and power-of-two scales, so that
    many results fall exactly on a rounding tie; 'arbitrary': full-range values, ordinary scales."""
    rng = rng_for("qgemm", kind, m, k, n, np.dtype(a_dtype).name, per_column, key)
    if kind == "pow2":
        lo_a = 0 if a_dtype == np.uint8 else -8
        a = rng.integers(lo_a, lo_a + 17, size=(m, k)).astype(a_dtype)
        a_zp = 8 if a_dtype == np.uint8 else 0
        b = rng.integers(-8, 9, size=(k, n)).astype(np.int8)
        a_scale = 0.5
        b_scale = (2.0 ** -rng.integers(1, 4, n)).astype(np.float32) if per_column else 0.25
        out_scale = 0.25  # multipliers 0.5 (scalar b_scale) or 0.5, 0.25, 0.125 (per column)
    else:
        a = rand_q(rng, (m, k), a_dtype)
        a_zp = 131 if a_dtype == np.uint8 else -3
        b = rand_b(rng, k, n)
        a_scale = 0.0123
        b_scale = rng.uniform(0.001, 0.02, n).astype(np.float32) if per_column else 0.00731
        out_scale = 0.04
    b_zp = rng.integers(-3, 4, n).astype(np.int32)
    return rng, a, a_zp, b, b_zp, a_scale, b_scale, out_scale


def _s(a_scale, b_scale, n):
    return np.broadcast_to(np.multiply(np.float32(a_scale), np.asarray(b_scale, np.float32), dtype=np.float32), (n,))


@pytest.mark.parametrize("scales", ["pow2", "arbitrary"])
@pytest.mark.parametrize("per_column", [False, True], ids=["b_scale_scalar", "b_scale_per_column"])
@pytest.mark.parametrize("bias,relu", QGEMM_FLOAT, ids=[f"bias_{b}-relu={r}" for b, r in QGEMM_FLOAT])
def test_qgemm_float32(isa, scales, per_column, bias, relu):
    m, k, n = 37, 64, 70
    rng, a, a_zp, b, b_zp, a_scale, b_scale, _ = _qgemm_data(scales, m, k, n, np.uint8, per_column, "f32")
    bias_v = {
        "none": None,
        "array": (rng.standard_normal(n) * 3).astype(np.float32),
        "scalar": np.float32(-0.75),
    }[bias]
    kw = dict(a_zero_point=a_zp, b_zero_point=b_zp, bias=bias_v, relu=relu)
    want = ref.qgemm(a, b, a_scale, b_scale, **kw)
    where = f"isa={isa} {shape_id(m, k, n)} scales={scales} per_column={per_column} bias={bias} relu={relu}"
    assert want.dtype == np.float32
    # the formula: float32(acc) * s, then a separate float32 add, then max(0, .)
    acc = ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp)
    y = acc.astype(np.float32) * _s(a_scale, b_scale, n)
    if bias_v is not None:
        y = y + np.broadcast_to(np.float32(bias_v), (n,))
    if relu:
        y = np.maximum(y, np.float32(0))
    assert_same(want, y, f"{where}: reference against the formula")
    if relu:
        assert (want >= 0).all()
    assert_same(iq.qgemm(a, b, a_scale, b_scale, **kw), want, where)
    kw.pop("b_zero_point")
    pw = iq.pack_weights(b, zero_point=b_zp)
    assert_same(iq.qgemm(a, pw, a_scale, b_scale, **kw), want, f"{where} packed")
    out = np.full((m, n), np.nan, np.float32)
    assert iq.qgemm(a, pw, a_scale, b_scale, out=out, **kw) is out
    assert_same(out, want, f"{where} out=")


@pytest.mark.parametrize("scales", ["pow2", "arbitrary"])
@pytest.mark.parametrize("per_column", [False, True], ids=["b_scale_scalar", "b_scale_per_column"])
@pytest.mark.parametrize("out_dt,bias,relu", QGEMM_Q8, ids=[f"{d}-bias_{b}-relu={r}" for d, b, r in QGEMM_Q8])
def test_qgemm_requantized(isa, scales, per_column, out_dt, bias, relu):
    m, k, n = 37, 64, 70
    a_dtype = np.int8 if per_column else np.uint8
    rng, a, a_zp, b, b_zp, a_scale, b_scale, out_scale = _qgemm_data(scales, m, k, n, a_dtype, per_column, "q8")
    odt = np.dtype(out_dt)
    out_zp = -5 if odt == np.int8 else 131
    s = _s(a_scale, b_scale, n)
    bias_v = {
        "none": None,
        # float bias: with power-of-two scales, (j + 0.5) * s is a tie of round(bias / s)
        "float": ((rng.integers(-40, 40, n) + 0.5) * s).astype(np.float32) if scales == "pow2"
        else (rng.standard_normal(n) * 2).astype(np.float32),
        "int32": rng.integers(-3000, 3000, n).astype(np.int32),
    }[bias]
    kw = dict(a_zero_point=a_zp, b_zero_point=b_zp, bias=bias_v, relu=relu, out_scale=out_scale,
              out_zero_point=out_zp, out_dtype=odt)
    where = (f"isa={isa} {shape_id(m, k, n)} scales={scales} per_column={per_column} out={odt} bias={bias} "
             f"relu={relu}")
    want = ref.qgemm(a, b, a_scale, b_scale, **kw)
    assert want.dtype == odt
    # the formula
    acc = ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp).astype(np.int64)
    mult = np.divide(s, np.float32(out_scale), dtype=np.float32)
    if bias_v is not None:
        bq = np.rint(np.divide(bias_v, s, dtype=np.float32)).astype(np.int64) if bias == "float" else bias_v
        acc = acc + bq
    t = np.rint(acc.astype(np.float32) * mult).astype(np.float64) + out_zp
    lo, hi = Q_RANGE[odt]
    expect = np.clip(t, max(lo, out_zp) if relu else lo, hi).astype(odt)
    assert_same(want, expect, f"{where}: reference against the formula")
    if scales == "pow2" and bias == "none":
        prod = acc.astype(np.float32) * mult
        assert np.count_nonzero(prod - np.floor(prod) == 0.5) > 50, "test data has too few ties"
    if relu:
        assert (want >= out_zp).all()
    assert_same(iq.qgemm(a, b, a_scale, b_scale, **kw), want, where)
    kw.pop("b_zero_point")
    pw = iq.pack_weights(b, zero_point=b_zp)
    assert_same(iq.qgemm(a, pw, a_scale, b_scale, **kw), want, f"{where} packed")
    out = np.zeros((m, n), odt)
    assert iq.qgemm(a, pw, a_scale, b_scale, out=out, **kw) is out
    assert_same(out, want, f"{where} out=")


@pytest.mark.parametrize("out_dt,out_zp", [("int8", -128), ("int8", 127), ("uint8", 0), ("uint8", 255)])
@pytest.mark.parametrize("relu", [False, True])
def test_qgemm_out_zero_point_at_range_ends(isa, out_dt, out_zp, relu):
    m, k, n = 11, 40, 33
    rng = rng_for("ozp", out_dt, out_zp, relu)
    a = rand_q(rng, (m, k), np.uint8)
    b = rand_b(rng, k, n)
    kw = dict(a_zero_point=128, relu=relu, out_scale=0.5, out_zero_point=out_zp, out_dtype=out_dt)
    want = ref.qgemm(a, b, 0.01, 0.002, **kw)
    assert_same(iq.qgemm(a, b, 0.01, 0.002, **kw), want, f"isa={isa} out={out_dt} out_zp={out_zp} relu={relu}")


QGEMM_SPECIAL = {
    # s = 1e-40 is a float32 subnormal: every product is subnormal or tiny (no flush to zero)
    "subnormal_scale_f32": dict(a_scale=1e-30, b_scale=1e-10),
    "subnormal_scale_q8": dict(a_scale=1e-30, b_scale=1e-10, out_scale=1e-41, out_dtype=np.int8),
    # s = 1e38: acc * s overflows to +-inf for |acc| >= 4
    "overflow_to_inf_f32": dict(a_scale=1e20, b_scale=1e18),
    "overflow_to_inf_f32_relu": dict(a_scale=1e20, b_scale=1e18, relu=True),
    "huge_multiplier_q8": dict(a_scale=1e20, b_scale=1e10, out_scale=1e-7, out_dtype=np.uint8, out_zero_point=3),
    "tiny_multiplier_q8": dict(a_scale=1e-20, b_scale=1e-10, out_scale=1e10, out_dtype=np.int8),
    "bias_absorbs_product": dict(a_scale=1e-3, b_scale=1e-4, bias=np.float32(1e8)),
    "negative_zero_bias": dict(a_scale=0.5, b_scale=0.5, bias=np.float32(-0.0)),
}


@pytest.mark.parametrize("case", list(QGEMM_SPECIAL))
def test_qgemm_special_float_values(isa, case):
    m, k, n = 7, 20, 35
    rng = rng_for("qspecial", case)
    a = rand_q(rng, (m, k), np.int8)
    b = rand_b(rng, k, n)
    kw = dict(QGEMM_SPECIAL[case])
    a_scale, b_scale = kw.pop("a_scale"), kw.pop("b_scale")
    want = ref.qgemm(a, b, a_scale, b_scale, **kw)
    assert_same(iq.qgemm(a, b, a_scale, b_scale, **kw), want, f"isa={isa} {case}")


# --- PackedWeights -----------------------------------------------------------------

def test_packed_weights_properties(isa):
    rng = rng_for("pw_props")
    b = rand_b(rng, 50, 21)
    zp = rand_b_zp(rng, 21)
    pw = iq.pack_weights(b.T.copy().T, zero_point=zp)
    assert isinstance(pw, iq.PackedWeights)
    assert pw.shape == (50, 21)
    assert_same(pw.weights, b, "weights")
    assert_same(pw.zero_point, zp.astype(np.int32), "zero_point")
    assert_same(pw.column_sums, b.sum(axis=0, dtype=np.int64).astype(np.int32), "column_sums")
    assert not pw.weights.flags.writeable and not pw.zero_point.flags.writeable
    assert pw.packed_isas() == [isa]
    assert_same(iq.pack_weights(b.copy(), zero_point=-4).zero_point, np.full(21, -4, np.int32), "scalar zero_point")
    assert "PackedWeights(K=50, N=21" in repr(pw)


@pytest.mark.parametrize("how", ["contiguous", "contiguous_view"])
def test_pack_weights_leaves_caller_array_alone(isa, how):
    """PackedWeights is immutable: it neither changes the caller's array (e.g. its writeable flag)
    nor follows later writes to it. A raw ``b`` passed to gemm is not changed either."""
    m, k, n = 6, 40, 24
    rng = rng_for("pw_alias", how)
    base = rand_b(rng, k, n)
    b = base if how == "contiguous" else base[:, :]
    b0 = base.copy()
    a = rand_q(rng, (m, k), np.uint8)
    want = ref.gemm(a, b0, b_zero_point=3)

    iq.gemm(a, b, b_zero_point=3)
    assert b.flags.writeable and base.flags.writeable, "gemm(a, b) made the caller's b read-only"
    pw = iq.pack_weights(b, zero_point=3)
    assert b.flags.writeable and base.flags.writeable, "pack_weights(b) made the caller's b read-only"

    base[...] = -base  # the caller reuses its buffer
    assert_same(pw.weights, b0, f"isa={isa}: PackedWeights.weights follows writes to the caller's array")
    for other in AVAILABLE_ISAS:  # including paths this object has not packed for yet
        with iq.use_isa(other):
            assert_same(iq.gemm(a, pw), want, f"packed under {isa}, caller's array then changed, run under {other}")


def _packed_case(purpose, m, k, n):
    """A generator seeded from (purpose, M, K, N), random (K, N) weights and zero points, and the
    weights packed with them."""
    rng = rng_for(purpose, m, k, n)
    b = rand_b(rng, k, n)
    zp = rand_b_zp(rng, n)
    return rng, b, zp, iq.pack_weights(b, zero_point=zp)


def test_packed_weights_reused(isa):
    m, k, n = 19, 130, 66
    rng, b, zp, pw = _packed_case("pw_reuse", m, k, n)
    for i in range(4):
        for dt, a_zp in ((np.uint8, 0), (np.int8, -9), (np.uint8, 250)):
            a = rand_q(rng, (m + i, k), dt)
            where = f"isa={isa} call {i} {np.dtype(dt)} a_zp={a_zp}"
            assert_same(iq.gemm(a, pw, a_zero_point=a_zp), ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=zp), where)
            assert_same(iq.qgemm(a, pw, 0.1, 0.02, a_zero_point=a_zp, out_scale=3.0, out_dtype=np.int8),
                        ref.qgemm(a, b, 0.1, 0.02, a_zero_point=a_zp, b_zero_point=zp, out_scale=3.0,
                                  out_dtype=np.int8), f"{where} qgemm")
    assert_same(pw.weights, b, "weights after use")
    assert pw.packed_isas() == [isa]


def test_packed_weights_pickle(isa):
    m, k, n = 21, 77, 40
    rng, b, zp, pw = _packed_case("pw_pickle", m, k, n)
    a = rand_q(rng, (m, k), np.int8)
    before = iq.gemm(a, pw, a_zero_point=3)
    pw2 = pickle.loads(pickle.dumps(pw))
    assert isinstance(pw2, iq.PackedWeights)
    assert pw2.shape == pw.shape
    assert_same(pw2.weights, pw.weights, "weights")
    assert_same(pw2.zero_point, pw.zero_point, "zero_point")
    assert_same(pw2.column_sums, pw.column_sums, "column_sums")
    want = ref.gemm(a, b, a_zero_point=3, b_zero_point=zp)
    assert_same(before, want, f"isa={isa} before pickling")
    assert_same(iq.gemm(a, pw2, a_zero_point=3), want, f"isa={isa} after pickling")
    assert_same(iq.gemm(a, pw, a_zero_point=3), want, f"isa={isa} original after pickling")
    assert_same(iq.qgemm(a, pw2, 0.5, 0.25, a_zero_point=3), iq.qgemm(a, pw, 0.5, 0.25, a_zero_point=3),
                f"isa={isa} qgemm after pickling")


def test_packed_weights_across_isas(isa):
    """Packed under scalar and used under this path, and packed under this path and used under
    every other: exact each time, and ``packed_isas`` grows with each path used."""
    m, k, n = 29, 133, 83
    rng = rng_for("pw_cross", m, k, n)
    b = rand_b(rng, k, n)
    zp = rand_b_zp(rng, n)
    a = rand_q(rng, (m, k), np.uint8)
    want = ref.gemm(a, b, a_zero_point=100, b_zero_point=zp)

    with iq.use_isa("scalar"):
        from_scalar = iq.pack_weights(b, zero_point=zp)
        assert from_scalar.packed_isas() == ["scalar"]
    assert iq.active_isa() == isa
    assert_same(iq.gemm(a, from_scalar, a_zero_point=100), want, f"packed under scalar, run under {isa}")
    assert from_scalar.packed_isas() == sorted({"scalar", isa})

    here = iq.pack_weights(b, zero_point=zp)
    assert here.packed_isas() == [isa]
    used = {isa}
    for other in AVAILABLE_ISAS:
        with iq.use_isa(other):
            assert_same(iq.gemm(a, here, a_zero_point=100), want, f"packed under {isa}, run under {other}")
            assert_same(iq.gemm(a, from_scalar, a_zero_point=100), want, f"packed under scalar, run under {other}")
        used.add(other)
        assert here.packed_isas() == sorted(used)
    assert from_scalar.packed_isas() == sorted(AVAILABLE_ISAS)
    # back on this path, the cached layout still gives the same
    assert_same(iq.gemm(a, here, a_zero_point=100), want, f"packed under {isa}, run again under {isa}")


def test_packed_weights_from_four_threads(isa):
    """One PackedWeights used from 4 Python threads at once (first use under this path included:
    it was packed under scalar), several calls each, with int8 and uint8 activations."""
    m, k, n = 45, 200, 97
    rng = rng_for("pw_threads", m, k, n)
    b = rand_b(rng, k, n)
    zp = rand_b_zp(rng, n)
    with iq.use_isa("scalar"):
        pw = iq.pack_weights(b, zero_point=zp)
    jobs = []
    for t in range(4):
        for j in range(6):
            dt = np.int8 if (t + j) % 2 else np.uint8
            a = rand_q(rng, (m + t, k), dt)
            a_zp = int(rng.integers(*Q_RANGE[np.dtype(dt)]))
            jobs.append((t, j, a, a_zp, ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=zp)))

    def work(t):
        return [(j, iq.gemm(a, pw, a_zero_point=a_zp)) for tt, j, a, a_zp, _ in jobs if tt == t]

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        results = dict(zip(range(4), ex.map(work, range(4))))
    for t, j, _, a_zp, want in jobs:
        got = dict(results[t])[j]
        assert_same(got, want, f"isa={isa} thread {t} call {j} a_zp={a_zp}")
    assert isa in pw.packed_isas()


# --- threads -------------------------------------------------------------------------

_THREAD_CASES = {}


def _thread_case(m, k, n):
    key = (m, k, n)
    if key not in _THREAD_CASES:
        rng = rng_for("threads", m, k, n)
        b = rand_b(rng, k, n)
        zp = rand_b_zp(rng, n)
        a = rand_q(rng, (m, k), np.int8)
        _THREAD_CASES[key] = (a, b, zp, ref.gemm(a, b, a_zero_point=-20, b_zero_point=zp),
                              ref.qgemm(a, b, 0.02, 0.01, a_zero_point=-20, b_zero_point=zp, out_scale=5.0,
                                        out_zero_point=3, out_dtype=np.uint8))
    return _THREAD_CASES[key]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("m,k,n", [(300, 700, 200), (300, 200, 700)],
                         ids=[shape_id(300, 700, 200), shape_id(300, 200, 700)])
def test_threads(isa, threads, m, k, n):
    a, b, zp, want, want_q = _thread_case(m, k, n)
    previous = iq.get_num_threads()
    iq.set_num_threads(threads)
    try:
        assert iq.get_num_threads() == threads
        where = f"isa={isa} threads={threads} {shape_id(m, k, n)}"
        assert_same(iq.gemm(a, b, a_zero_point=-20, b_zero_point=zp), want, where)
        pw = iq.pack_weights(b, zero_point=zp)
        assert_same(iq.qgemm(a, pw, 0.02, 0.01, a_zero_point=-20, out_scale=5.0, out_zero_point=3,
                             out_dtype=np.uint8), want_q, f"{where} qgemm")
    finally:
        iq.set_num_threads(previous)
    assert iq.get_num_threads() == previous


# --- the forced path really ran ------------------------------------------------------------

def _gemm_counters():
    return {k: v for k, v in iq.kernel_calls().items() if k.startswith("gemm_")}


@pytest.mark.parametrize("op", ["gemm", "gemm_packed", "qgemm_f32", "qgemm_q8"])
def test_forced_kernel_ran(isa, op):
    name = iq.kernel_names(isa)["gemm"]
    assert name.startswith("gemm_")
    assert name.endswith("__" + ISA_TOKENS.get(isa, isa.replace("_", ""))), name
    assert iq.kernel_names()["gemm"] == name
    rng = rng_for("forced", op)
    a = rand_q(rng, (20, 50), np.uint8)
    b = rand_b(rng, 50, 30)
    pw = iq.pack_weights(b)
    call = {
        "gemm": lambda: iq.gemm(a, b),
        "gemm_packed": lambda: iq.gemm(a, pw),
        "qgemm_f32": lambda: iq.qgemm(a, pw, 0.5, 0.5),
        "qgemm_q8": lambda: iq.qgemm(a, pw, 0.5, 0.5, out_scale=100.0, out_dtype=np.int8),
    }[op]
    before = _gemm_counters()
    call()
    after = _gemm_counters()
    assert after.get(name, 0) > before.get(name, 0), f"{name} did not run under {isa}: {before} -> {after}"
    changed = sorted(k for k in set(before) | set(after) if k != name and before.get(k, 0) != after.get(k, 0))
    assert not changed, f"other gemm kernels ran under {isa}: {changed}"


# --- errors -------------------------------------------------------------------------

def _err_data():
    rng = rng_for("errors")
    return rand_q(rng, (4, 6), np.uint8), rand_q(rng, (4, 6), np.int8), rand_b(rng, 6, 5)


A_U8, A_S8, B = _err_data()
PW = iq.pack_weights(B)

GEMM_ERRORS = {
    "a_float": (TypeError, r"a must be an int8 or uint8 array", lambda f: f.gemm(A_U8.astype(np.float32), B)),
    "a_int16": (TypeError, r"a must be an int8 or uint8 array", lambda f: f.gemm(A_U8.astype(np.int16), B)),
    "b_uint8": (TypeError, r"b must be an int8 array", lambda f: f.gemm(A_U8, B.astype(np.uint8))),
    "b_float": (TypeError, r"b must be an int8 array", lambda f: f.gemm(A_U8, B.astype(np.float32))),
    "b_1d": (ValueError, r"b must be 2-D", lambda f: f.gemm(A_U8, B[:, 0])),
    "b_3d": (ValueError, r"b must be 2-D", lambda f: f.gemm(A_U8, B[None])),
    "k_mismatch": (ValueError, r"a has K=6 .* b has K=5", lambda f: f.gemm(A_U8, B[:5])),
    "k_mismatch_packed": (ValueError, r"a has K=5 .* b has K=6", lambda f: f.gemm(A_U8[:, :5], PW)),
    "a_0d": (ValueError, r"at least one dimension", lambda f: f.gemm(np.uint8(3), B)),
    "a_zp_128_int8": (ValueError, r"a_zero_point must lie in \[-128, 127\], got 128",
                      lambda f: f.gemm(A_S8, B, a_zero_point=128)),
    "a_zp_minus1_uint8": (ValueError, r"a_zero_point must lie in \[0, 255\], got -1",
                          lambda f: f.gemm(A_U8, B, a_zero_point=-1)),
    "a_zp_256_uint8": (ValueError, r"a_zero_point must lie in \[0, 255\]",
                       lambda f: f.gemm(A_U8, B, a_zero_point=256)),
    "a_zp_1d": (ValueError, r"a_zero_point must be a scalar", lambda f: f.gemm(A_U8, B, a_zero_point=[1, 2, 3, 4])),
    "a_zp_float": (TypeError, r"a_zero_point must be an integer", lambda f: f.gemm(A_U8, B, a_zero_point=1.0)),
    "b_zp_wrong_length": (ValueError, r"b_zero_point must be a scalar or have shape \(5,\)",
                          lambda f: f.gemm(A_U8, B, b_zero_point=np.zeros(4, np.int32))),
    "b_zp_2d": (ValueError, r"b_zero_point must be a scalar or have shape",
                lambda f: f.gemm(A_U8, B, b_zero_point=np.zeros((1, 5), np.int32))),
    "b_zp_200": (ValueError, r"b_zero_point must lie in \[-128, 127\]", lambda f: f.gemm(A_U8, B, b_zero_point=200)),
    "b_zp_minus129_column": (ValueError, r"b_zero_point must lie in \[-128, 127\]",
                             lambda f: f.gemm(A_U8, B, b_zero_point=[0, 0, -129, 0, 0])),
    "b_zp_float": (TypeError, r"b_zero_point must be an integer", lambda f: f.gemm(A_U8, B, b_zero_point=0.5)),
    "b_zp_with_packed": (ValueError, r"PackedWeights", lambda f: f.gemm(A_U8, PW, b_zero_point=3)),
    "b_zp_array_with_packed": (ValueError, r"PackedWeights",
                               lambda f: f.gemm(A_U8, PW, b_zero_point=np.zeros(5, np.int32))),
    "out_wrong_dtype": (TypeError, r"out must have dtype int32",
                        lambda f: f.gemm(A_U8, B, out=np.zeros((4, 5), np.int64))),
    "out_not_ndarray": (TypeError, r"out must be a numpy.ndarray", lambda f: f.gemm(A_U8, B, out=[[0] * 5] * 4)),
    "out_wrong_shape": (ValueError, r"out must have shape \(4, 5\)",
                        lambda f: f.gemm(A_U8, B, out=np.zeros((5, 4), np.int32))),
    "out_non_contiguous": (ValueError, r"C-contiguous",
                           lambda f: f.gemm(A_U8, B, out=np.zeros((4, 10), np.int32)[:, ::2])),
    "out_fortran": (ValueError, r"C-contiguous", lambda f: f.gemm(A_U8, B, out=np.zeros((5, 4), np.int32).T)),
    "out_read_only": (ValueError, r"read-only", lambda f: f.gemm(A_U8, B, out=read_only(np.zeros((4, 5), np.int32)))),
    "k_past_bound": (ValueError, r"K must be <= 65793",
                     lambda f: f.gemm(np.zeros((1, 65794), np.uint8), np.zeros((65794, 1), np.int8))),
}

def _q(f, **kw):
    base = dict(a=A_U8, b=B, a_scale=0.1, b_scale=0.2)
    base.update(kw)
    a, b, a_s, b_s = base.pop("a"), base.pop("b"), base.pop("a_scale"), base.pop("b_scale")
    return f.qgemm(a, b, a_s, b_s, **base)


QGEMM_ERRORS = {
    "qgemm_a_float": (TypeError, r"a must be an int8 or uint8 array", lambda f: _q(f, a=A_U8.astype(np.float64))),
    "qgemm_b_uint8": (TypeError, r"b must be an int8 array", lambda f: _q(f, b=B.view(np.uint8))),
    "qgemm_k_mismatch": (ValueError, r"a has K=", lambda f: _q(f, b=B[:4])),
    "b_scale_wrong_length": (ValueError, r"b_scale must be a scalar or have shape \(5,\)",
                             lambda f: _q(f, b_scale=np.full(4, 0.1, np.float32))),
    "b_scale_2d": (ValueError, r"b_scale must be a scalar or have shape",
                   lambda f: _q(f, b_scale=np.full((1, 5), 0.1))),
    "a_scale_1d_not_per_row": (ValueError, r"a_scale must be a scalar \(per tensor\) or have a shape broadcastable "
                                         r"to a.shape\[:-1\] = \(4,\) \(per row\), got shape \(3,\)",
                               lambda f: _q(f, a_scale=np.full(3, 0.1))),
    "a_scale_zero": (ValueError, r"a_scale must be finite and > 0", lambda f: _q(f, a_scale=0.0)),
    "a_scale_negative": (ValueError, r"a_scale must be finite and > 0", lambda f: _q(f, a_scale=-1.0)),
    "a_scale_nan": (ValueError, r"a_scale must be finite and > 0", lambda f: _q(f, a_scale=float("nan"))),
    "a_scale_inf": (ValueError, r"a_scale must be finite and > 0", lambda f: _q(f, a_scale=float("inf"))),
    "b_scale_zero": (ValueError, r"b_scale must be finite and > 0", lambda f: _q(f, b_scale=0)),
    "b_scale_column_negative": (ValueError, r"b_scale must be finite and > 0",
                                lambda f: _q(f, b_scale=np.array([0.1, 0.1, -0.1, 0.1, 0.1], np.float32))),
    "b_scale_column_nan": (ValueError, r"b_scale must be finite and > 0",
                           lambda f: _q(f, b_scale=np.array([0.1, np.nan, 0.1, 0.1, 0.1], np.float32))),
    "b_scale_underflows_float32": (ValueError, r"b_scale must be finite and > 0", lambda f: _q(f, b_scale=1e-50)),
    "scale_product_underflows": (ValueError, r"a_scale \* b_scale must be finite and > 0",
                                 lambda f: _q(f, a_scale=1e-30, b_scale=1e-30)),
    **epilogue_errors(_q, 5, "a", "b"),
    "out_scale_nan": (ValueError, r"out_scale must be finite and > 0",
                      lambda f: _q(f, out_scale=float("nan"), out_dtype=np.int8)),
    "uint8_out_without_out_scale": (ValueError, r"without out_scale", lambda f: _q(f, out_dtype=np.uint8)),
    "out_zero_point_out_of_range": (ValueError, r"out_zero_point must lie in \[-128, 127\]",
                                    lambda f: _q(f, out_scale=1.0, out_dtype=np.int8, out_zero_point=128)),
    "qgemm_b_zp_with_packed": (ValueError, r"PackedWeights", lambda f: _q(f, b=PW, b_zero_point=1)),
    "qgemm_out_wrong_dtype": (TypeError, r"out must have dtype int8",
                              lambda f: _q(f, out_scale=1.0, out_dtype=np.int8, out=np.zeros((4, 5), np.uint8))),
    "qgemm_out_float64": (TypeError, r"out must have dtype float32", lambda f: _q(f, out=np.zeros((4, 5)))),
    "qgemm_out_wrong_shape": (ValueError, r"out must have shape", lambda f: _q(f, out=np.zeros((4, 6), np.float32))),
    "qgemm_out_non_contiguous": (ValueError, r"C-contiguous",
                                 lambda f: _q(f, out=np.zeros((8, 5), np.float32)[::2])),
}
ERRORS = {**GEMM_ERRORS, **QGEMM_ERRORS}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(ERRORS))
def test_errors(impl, case):
    """The fast path (under each ISA) and the reference reject the same inputs with the same
    exception type and message."""
    check_error(impl, *ERRORS[case])


def test_error_messages_agree():
    """The fast path and the reference raise the same exception type with the same message."""
    assert_same_errors(ERRORS)


def test_out_untouched_on_error():
    out = np.full((4, 5), 77, np.int32)
    with pytest.raises(ValueError):
        iq.gemm(A_U8, B, a_zero_point=300, out=out)
    assert (out == 77).all()


@pytest.mark.parametrize("case,exc,pattern,kw", [
    ("uint8", TypeError, r"b must be an int8 array", dict(b=B.astype(np.uint8))),
    ("1d", ValueError, r"b must be 2-D", dict(b=B[0])),
    ("zp_200", ValueError, r"zero_point must lie in \[-128, 127\]", dict(zero_point=200)),
    ("zp_wrong_length", ValueError, r"zero_point must be a scalar or have shape \(5,\)", dict(zero_point=[1, 2])),
    ("zp_float", TypeError, r"zero_point must be an integer", dict(zero_point=1.5)),
])
def test_pack_weights_errors(isa, case, exc, pattern, kw):
    kw = dict(kw)
    b = kw.pop("b", B)
    with pytest.raises(exc, match=pattern):
        iq.pack_weights(b, **kw)


# --- empty --------------------------------------------------------------------------

EMPTY_SHAPES = [(0, 5, 4), (0, 64, 70), (3, 0, 4), (1, 0, 1), (40, 0, 70), (3, 5, 0), (0, 0, 0)]


@pytest.mark.parametrize("m,k,n", EMPTY_SHAPES, ids=[shape_id(*s) for s in EMPTY_SHAPES])
def test_empty(isa, m, k, n):
    rng = rng_for("empty", m, k, n)
    b = rand_b(rng, k, n)
    zp = rand_b_zp(rng, n)
    where = f"isa={isa} {shape_id(m, k, n)}"
    for dt, a_zp in ((np.uint8, 0), (np.int8, 0), (np.uint8, 17), (np.int8, -128)):
        a = rand_q(rng, (m, k), dt)
        want = ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=zp)
        assert want.shape == (m, n)
        if k == 0:
            assert_same(want, np.zeros((m, n), np.int32), f"{where} reference")
        assert_same(iq.gemm(a, b, a_zero_point=a_zp, b_zero_point=zp), want, f"{where} {np.dtype(dt)} a_zp={a_zp}")
        assert_same(iq.gemm(a, iq.pack_weights(b, zero_point=zp), a_zero_point=a_zp), want, f"{where} packed")
        ab = rand_q(rng, (2, m, k), dt)  # batched
        assert_same(iq.gemm(ab, b, a_zero_point=a_zp, b_zero_point=zp),
                    ref.gemm(ab, b, a_zero_point=a_zp, b_zero_point=zp), f"{where} batched")


@pytest.mark.parametrize("m,k,n", EMPTY_SHAPES, ids=[shape_id(*s) for s in EMPTY_SHAPES])
def test_empty_qgemm(isa, m, k, n):
    rng = rng_for("empty_q", m, k, n)
    b = rand_b(rng, k, n)
    a = rand_q(rng, (m, k), np.int8)
    where = f"isa={isa} {shape_id(m, k, n)}"
    bias_f = (rng.standard_normal(n) * 4).astype(np.float32)
    bias_i = rng.integers(-500, 500, n).astype(np.int32)
    for kw in (dict(bias=bias_f, relu=True), dict(bias=bias_f),
               dict(bias=bias_i, out_scale=2.0, out_zero_point=-3, out_dtype=np.int8),
               dict(bias=bias_f, out_scale=0.25, out_zero_point=200, out_dtype=np.uint8, relu=True)):
        want = ref.qgemm(a, b, 0.5, 0.25, a_zero_point=1, **kw)
        assert want.shape == (m, n)
        assert_same(iq.qgemm(a, b, 0.5, 0.25, a_zero_point=1, **kw), want, f"{where} {sorted(kw)}")


def test_epilogue_arguments_changed_in_place(isa):
    """Resolved epilogues are remembered by the arguments' contents: scales and bias changed in
    place between calls take effect."""
    rng = rng_for("epilogue-cache", 0)
    a = rng.integers(0, 256, (7, 33), dtype=np.uint8)
    pw = iq.pack_weights(rng.integers(-128, 128, (33, 20), dtype=np.int8))
    b_scale = np.full(20, 0.01, np.float32)
    bias = np.zeros(20, np.float32)
    for out_scale, dtype in ((None, np.float32), (0.5, np.int8)):
        for step in range(3):
            kw = dict(bias=bias, out_scale=out_scale, out_dtype=dtype, a_zero_point=3)
            assert_same(iq.qgemm(a, pw, 0.02, b_scale, **kw),
                        ref.qgemm(a, pw.weights, 0.02, b_scale, **kw), f"step {step} {np.dtype(dtype)}")
            b_scale *= 1.5
            bias += 0.25


def test_threads_share_large_work_only(isa):
    """A GEMM of a few microseconds stays on the calling thread; a large one is shared."""
    iq.set_num_threads(2)
    rng = rng_for("share", 0)
    small = rand_q(rng, (4, 64), np.uint8), rand_b(rng, 64, 16)
    large = rand_q(rng, (300, 700), np.uint8), rand_b(rng, 700, 200)
    for (a, b), shared in ((small, False), (large, True)):
        before = _core.parallel_runs()
        assert_same(iq.gemm(a, b), ref.gemm(a, b), f"isa={isa} {a.shape}")
        assert (_core.parallel_runs() > before) == shared, (isa, a.shape)
