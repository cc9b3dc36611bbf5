"""GEMM: every available ISA against the NumPy reference, exactly."""
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import reference as ref

K_SWEEP = [1, 3, 4, 15, 16, 17, 63, 64, 65, 127, 128, 129]
EDGE = [1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025]


def rng_for(*shape):
    return np.random.default_rng(abs(hash(shape)) % (2**32))


def operands(m, k, n, a_dtype=np.uint8, seed=None):
    rng = rng_for(m, k, n, np.dtype(a_dtype).char) if seed is None else np.random.default_rng(seed)
    info = np.iinfo(a_dtype)
    a = rng.integers(info.min, info.max + 1, (m, k), dtype=a_dtype)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    return a, b


def assert_same(got, want, what):
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, got.shape, want.dtype, want.shape)
    g = got.view(np.uint32) if got.dtype == np.float32 else got
    w = want.view(np.uint32) if want.dtype == np.float32 else want
    bad = np.argwhere(g != w)
    assert bad.size == 0, f"{what}: {len(bad)} mismatches, first at {tuple(bad[0])}: got {got[tuple(bad[0])]!r}, expected {want[tuple(bad[0])]!r}"


@pytest.mark.parametrize("k", K_SWEEP)
def test_sweep_m_n(isa, k):
    """All M, N in 1..40 for this K, int8 and uint8 activations, with zero points."""
    for a_dtype, a_zp in ((np.uint8, 7), (np.int8, -5)):
        a_all, b_all = operands(40, k, 40, a_dtype)
        zp_all = rng_for(k, 1).integers(-128, 128, 40)
        for n in range(1, 41):
            b = b_all[:, :n]
            pw = iq.pack_weights(b, zero_point=zp_all[:n])
            for m in range(1, 41):
                a = a_all[:m]
                assert_same(iq.gemm(a, pw, a_zero_point=a_zp),
                            ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=zp_all[:n]),
                            f"{isa} M={m} N={n} K={k} {np.dtype(a_dtype)}")


@pytest.mark.parametrize("dim", ["M", "K", "N"])
def test_powers_of_two_edges(isa, dim):
    for size in EDGE:
        m, k, n = {"M": (size, 19, 23), "K": (9, size, 21), "N": (7, 33, size)}[dim]
        a, b = operands(m, k, n, np.int8)
        assert_same(iq.gemm(a, b, a_zero_point=3), ref.gemm(a, b, a_zero_point=3), f"{isa} {m}x{k}x{n}")


@pytest.mark.parametrize("shape", [(65, 257, 129), (1, 1025, 513), (1025, 33, 17), (300, 1000, 70)])
def test_odd_large_shapes(isa, shape):
    a, b = operands(*shape)
    zp = rng_for(*shape).integers(-3, 4, shape[2])
    assert_same(iq.gemm(a, b, a_zero_point=128, b_zero_point=zp),
                ref.gemm(a, b, a_zero_point=128, b_zero_point=zp), f"{isa} {shape}")


@pytest.mark.parametrize("a_dtype, a_val, b_val, span", [
    (np.uint8, 255, -128, 255 * 128),
    (np.int8, -128, -128, 128 * 128),
])
def test_deep_k_at_the_exactness_bound(isa, a_dtype, a_val, b_val, span):
    kmax = (2**31 - 1) // span
    a = np.full((2, kmax), a_val, a_dtype)
    b = np.full((kmax, 3), b_val, np.int8)
    got = iq.gemm(a, b)
    assert (got == kmax * a_val * b_val).all(), got
    with pytest.raises(ValueError, match=f"K must be <= {kmax}"):
        iq.gemm(np.full((1, kmax + 1), a_val, a_dtype), np.full((kmax + 1, 1), b_val, np.int8))


def test_zero_points_tighten_the_bound():
    # |a - zp| <= 255 for uint8 with zp 0; with zp 128 it is 128, so K may be larger.
    k = (2**31 - 1) // (255 * 128) + 1
    a = np.zeros((1, k), np.uint8)
    b = np.zeros((k, 1), np.int8)
    with pytest.raises(ValueError):
        iq.gemm(a, b)
    assert iq.gemm(a, b, a_zero_point=128)[0, 0] == 0
    with pytest.raises(ValueError, match="K must be"):
        iq.gemm(np.zeros((1, 40000), np.uint8), np.zeros((40000, 1), np.int8), b_zero_point=127)


@pytest.mark.parametrize("case", ["all_min", "all_max", "u8_all_255"])
def test_all_extreme_values(isa, case):
    m, k, n = 9, 200, 70
    if case == "u8_all_255":
        a = np.full((m, k), 255, np.uint8)
        zps = [(0, 0), (255, -128), (0, 127)]
    else:
        v = -128 if case == "all_min" else 127
        a = np.full((m, k), v, np.int8)
        zps = [(0, 0), (127, -128), (-128, 127)]
    b = np.full((k, n), -128 if case == "all_min" else 127, np.int8)
    for a_zp, b_zp in zps:
        assert_same(iq.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp),
                    ref.gemm(a, b, a_zero_point=a_zp, b_zero_point=b_zp), f"{isa} {case} {a_zp} {b_zp}")


def test_batched_and_strided(isa):
    rng = rng_for(3, 5)
    b = rng.integers(-128, 128, (48, 37), dtype=np.int8)
    for a in (rng.integers(0, 256, (2, 3, 48), dtype=np.uint8),
              rng.integers(0, 256, (5, 1, 48), dtype=np.uint8),
              rng.integers(0, 256, (48,), dtype=np.uint8),
              rng.integers(0, 256, (20, 96), dtype=np.uint8)[:, ::2],
              rng.integers(0, 256, (48, 20), dtype=np.uint8).T,
              rng.integers(0, 256, (20, 48), dtype=np.uint8)[::-1],
              rng.integers(0, 256, (40, 60), dtype=np.uint8)[::3, 5:53]):
        assert_same(iq.gemm(a, b), ref.gemm(a, b), f"{isa} a{a.shape} strides {a.strides}")
    w = rng.integers(-128, 128, (37, 48), dtype=np.int8)  # PyTorch (out, in)
    a = rng.integers(0, 256, (6, 48), dtype=np.uint8)
    assert_same(iq.gemm(a, iq.pack_weights(w.T)), ref.gemm(a, w.T), f"{isa} w.T")


def test_empty(isa):
    b = np.ones((5, 4), np.int8)
    assert iq.gemm(np.zeros((0, 5), np.uint8), b).shape == (0, 4)
    assert (iq.gemm(np.zeros((3, 0), np.uint8), np.zeros((0, 4), np.int8)) == 0).all()


QGEMM_CASES = {
    "f32": dict(),
    "f32_bias": dict(bias="f"),
    "f32_bias_relu": dict(bias="f", relu=True),
    "f32_relu": dict(relu=True),
    "i8_requant": dict(out_scale=0.25, out_zero_point=-3, out_dtype=np.int8),
    "i8_requant_bias_relu": dict(out_scale=0.5, out_zero_point=10, out_dtype=np.int8, bias="f", relu=True),
    "u8_requant_int_bias": dict(out_scale=2.0, out_zero_point=128, out_dtype=np.uint8, bias="i"),
    "u8_requant_relu": dict(out_scale=1.0, out_zero_point=100, out_dtype=np.uint8, relu=True),
}


@pytest.mark.parametrize("case", list(QGEMM_CASES))
@pytest.mark.parametrize("per_column", [False, True], ids=["scalar_scale", "column_scale"])
def test_qgemm_epilogues(isa, case, per_column):
    for m, k, n in ((1, 1, 1), (7, 33, 65), (13, 300, 17), (40, 64, 129)):
        rng = rng_for(m, k, n, case)
        for a_dtype, a_zp in ((np.uint8, 128), (np.int8, 0)):
            a, b = operands(m, k, n, a_dtype)
            kw = dict(QGEMM_CASES[case])
            if kw.get("bias") == "f":
                kw["bias"] = (rng.standard_normal(n) * 4).astype(np.float32)
            elif kw.get("bias") == "i":
                kw["bias"] = rng.integers(-5000, 5000, n).astype(np.int32)
            # Powers of two make exact ties likely in the requantized output.
            b_scale = 2.0 ** rng.integers(-8, -2, n) if per_column else 0.0625
            zp = rng.integers(-2, 3, n)
            args = (a, b, 0.125, b_scale)
            kw.update(a_zero_point=a_zp, b_zero_point=zp)
            assert_same(iq.qgemm(*args, **kw), ref.qgemm(*args, **kw), f"{isa} {case} {m}x{k}x{n} {np.dtype(a_dtype)}")


def test_packed_weights_across_isas_pickle_and_threads():
    rng = rng_for(77)
    b = rng.integers(-128, 128, (150, 90), dtype=np.int8)
    a = rng.integers(0, 256, (33, 150), dtype=np.uint8)
    want = ref.gemm(a, b, a_zero_point=9, b_zero_point=np.arange(90) % 5 - 2)
    for packer in iq.available_isas():
        with iq.use_isa(packer):
            pw = iq.pack_weights(b, zero_point=np.arange(90) % 5 - 2)
        for user in iq.available_isas():
            with iq.use_isa(user):
                assert_same(iq.gemm(a, pw, a_zero_point=9), want, f"packed {packer} used {user}")
        assert set(pw.packed_isas()) == set(iq.available_isas())
    restored = pickle.loads(pickle.dumps(pw))
    assert_same(iq.gemm(a, restored, a_zero_point=9), want, "unpickled")
    with ThreadPoolExecutor(4) as ex:
        for got in ex.map(lambda _: iq.gemm(a, pw, a_zero_point=9), range(16)):
            assert_same(got, want, "threads")


def test_two_threads(isa):
    a, b = operands(300, 200, 700)
    iq.set_num_threads(2)
    assert_same(iq.gemm(a, b, a_zero_point=1), ref.gemm(a, b, a_zero_point=1), f"{isa} 2 threads")


def test_forced_isa_really_ran(isa):
    a, b = operands(8, 16, 8)
    pw = iq.pack_weights(b)
    name = iq.kernel_names(isa)["gemm"]
    token = {"scalar": "__scalar", "avx2": "__avx2", "avx_vnni": "__avxvnni",
             "avx512_vnni": "__avx512vnni", "amx": "__amx"}[isa]
    assert name.endswith(token), name
    before = iq.kernel_calls()
    iq.gemm(a, pw)
    after = iq.kernel_calls()
    ran = {k for k in after if k.startswith("gemm_") and after[k] != before.get(k, 0)}
    assert ran == {name}, ran


@pytest.mark.parametrize("impl", [iq, ref], ids=["fast", "reference"])
def test_errors(impl):
    a = np.zeros((2, 4), np.uint8)
    b = np.zeros((4, 3), np.int8)
    cases = [
        (TypeError, "a must be", lambda: impl.gemm(a.astype(np.float32), b)),
        (TypeError, "b must be", lambda: impl.gemm(a, b.astype(np.int16))),
        (ValueError, "2-D", lambda: impl.gemm(a, b[0])),
        (ValueError, "K=", lambda: impl.gemm(a, b[:3])),
        (ValueError, r"\[0, 255\]", lambda: impl.gemm(a, b, a_zero_point=-1)),
        (ValueError, r"\[-128, 127\]", lambda: impl.gemm(a.view(np.int8), b, a_zero_point=128)),
        (ValueError, "scalar", lambda: impl.gemm(a, b, a_zero_point=[1, 2])),
        (TypeError, "integer", lambda: impl.gemm(a, b, a_zero_point=1.5)),
        (ValueError, "shape", lambda: impl.gemm(a, b, b_zero_point=[1, 2])),
        (ValueError, r"\[-128, 127\]", lambda: impl.gemm(a, b, b_zero_point=200)),
        (ValueError, "PackedWeights", lambda: impl.gemm(a, iq.pack_weights(b), b_zero_point=1)),
        (TypeError, "dtype", lambda: impl.gemm(a, b, out=np.zeros((2, 3), np.float32))),
        (ValueError, "shape", lambda: impl.gemm(a, b, out=np.zeros((3, 2), np.int32))),
        (ValueError, "contiguous", lambda: impl.gemm(a, b, out=np.zeros((2, 6), np.int32)[:, ::2])),
        (ValueError, "b_scale", lambda: impl.qgemm(a, b, 1.0, [1.0, 2.0])),
        (ValueError, "a_scale", lambda: impl.qgemm(a, b, 0.0, 1.0)),
        (ValueError, "b_scale", lambda: impl.qgemm(a, b, 1.0, np.array([1.0, np.nan, 1.0]))),
        (ValueError, "out_dtype", lambda: impl.qgemm(a, b, 1.0, 1.0, out_scale=1.0)),
        (ValueError, "out_scale", lambda: impl.qgemm(a, b, 1.0, 1.0, out_dtype=np.int8)),
        (TypeError, "integer bias", lambda: impl.qgemm(a, b, 1.0, 1.0, bias=np.zeros(3, np.int32))),
        (ValueError, "bias", lambda: impl.qgemm(a, b, 1.0, 1.0, bias=np.zeros(4, np.float32))),
    ]
    for exc, match, call in cases:
        with pytest.raises(exc, match=match):
            call()
