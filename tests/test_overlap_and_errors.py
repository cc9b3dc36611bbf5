"""out= buffers that overlap an input, and the error cases of the hardening review.

Every op with ``out=`` refuses an output that shares memory (``np.may_share_memory``) with an
input that the kernels read in place while they write it (the activations; quantize's and
dequantize's per-channel parameters), with the same ValueError on every path and in the
reference. Weights, their zero points, scales and bias are packed or resolved into copies before
anything is written: an output over them gives the reference's result. Inputs may overlap each
other. Integers too large for NumPy, an int32 bias that leaves no
room in the accumulator, and a float bias that quantizes to 2**31 are refused alike by the fast
path and the reference.
"""
from __future__ import annotations

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import reference as ref

from exact import assert_same

OVERLAP = "out shares memory with"


def _both(isa, call):
    """call(module) on the forced path and on the reference: the exceptions (or None)."""
    errors = []
    for mod, ctx in ((iq, iq.use_isa(isa)), (ref, iq.use_isa(isa))):
        with ctx:
            try:
                call(mod)
                errors.append(None)
            except (ValueError, TypeError) as e:
                errors.append(e)
    return errors


def _assert_refused(isa, call, name):
    fast, want = _both(isa, call)
    for e in (fast, want):
        assert isinstance(e, ValueError) and str(e).startswith(f"{OVERLAP} {name}"), (isa, e)
    assert str(fast) == str(want)


def test_the_reproducers(isa):
    """The review's reproducers: dequantize into a float32 view of its own input's buffer, gemm and
    qgemm into views of a's buffer."""
    buf = np.zeros(256, np.uint8)
    q = buf[:64].view(np.int8)
    q[:] = np.arange(64)
    _assert_refused(isa, lambda m: m.dequantize(q, 1.0, out=buf.view(np.float32)), "q")
    assert_same(q, np.arange(64, dtype=np.int8), "q unchanged")
    buf2 = np.zeros(256, np.uint8)
    a = buf2[:64].reshape(8, 8)
    a[:] = 1
    b = np.ones((8, 8), np.int8)
    _assert_refused(isa, lambda m: m.gemm(a, b, out=buf2.view(np.int32).reshape(8, 8)), "a")
    _assert_refused(isa, lambda m: m.qgemm(a, b, 0.1, 0.1, out_scale=1.0, out_dtype=np.uint8, out=a), "a")
    assert (a == 1).all()


def test_every_op_and_argument(isa):
    big = np.zeros(4096, np.uint8)
    # quantize: out over x, over a per-channel scale.
    x = big[:256].view(np.float32)
    _assert_refused(isa, lambda m: m.quantize(x, 0.1, out=big[:64].view(np.int8)), "x")
    scale = np.full(8, 0.1, np.float32)
    _assert_refused(isa, lambda m: m.quantize(np.zeros((4, 8), np.float32), scale, axis=1,
                                              out=scale.view(np.int8).reshape(4, 8)), "scale")
    # dequantize: out over q.
    _assert_refused(isa, lambda m: m.dequantize(big[:64].view(np.int8), 0.5, out=big[:256].view(np.float32)), "q")
    # gemm / qgemm: out over a.
    a = big[:64].reshape(8, 8)
    b = np.ones((8, 8), np.int8)
    _assert_refused(isa, lambda m: m.gemm(a, b, out=big[:256].view(np.int32).reshape(8, 8)), "a")
    # conv2d / qconv2d: out over x.
    cx = big[:32].reshape(1, 2, 4, 4)
    w = np.ones((2, 2, 1, 1), np.int8)
    _assert_refused(isa, lambda m: m.conv2d(cx, w, out=big[:128].view(np.int32).reshape(1, 2, 4, 4)), "x")
    _assert_refused(isa, lambda m: m.qconv2d(cx, w, 0.1, 0.1, out=big[:128].view(np.float32).reshape(1, 2, 4, 4)),
                    "x")


def _into_overlapping(isa, call, make_args):
    """call(module, *args, out) on the forced path and in the reference, each on fresh arrays from
    make_args() whose out overlaps a copied input: the same result, bit for bit."""
    results = []
    for m in (iq, ref):
        args, out = make_args()
        with iq.use_isa(isa):
            results.append(np.array(call(m, *args, out), copy=True))
    assert_same(results[0], results[1], f"isa={isa}")


def test_out_over_copied_inputs(isa):
    """Outputs over weights, a weight zero point array or a bias: computed as the reference does."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (8, 8), dtype=np.uint8)

    def over_b():
        buf = np.zeros(64, np.int32)
        b = buf.view(np.int8)[:64].reshape(8, 8)
        b[:] = np.random.default_rng(2).integers(-128, 128, (8, 8))
        return (b,), buf.reshape(8, 8)
    _into_overlapping(isa, lambda m, b, out: m.gemm(a, b, out=out), over_b)

    def over_bias():
        out = np.zeros((8, 8), np.float32)
        out[0] = np.random.default_rng(3).standard_normal(8)
        return (out[0],), out
    b = rng.integers(-128, 128, (8, 8), dtype=np.int8)
    _into_overlapping(isa, lambda m, bias, out: m.qgemm(a, b, 0.1, 0.2, bias=bias, out=out), over_bias)

    x = rng.integers(0, 256, (1, 2, 4, 4), dtype=np.uint8)

    def over_w():
        buf = np.zeros(32, np.int32)
        w = buf.view(np.int8)[:4].reshape(2, 2, 1, 1)
        w[:] = np.random.default_rng(4).integers(-128, 128, (2, 2, 1, 1))
        return (w,), buf.reshape(1, 2, 4, 4)
    _into_overlapping(isa, lambda m, w, out: m.conv2d(x, w, out=out), over_w)


def test_inputs_may_overlap_each_other(isa):
    buf = np.arange(64, dtype=np.int8)
    a = buf.view(np.uint8).reshape(8, 8)
    b = buf.reshape(8, 8)  # the same bytes as a, as int8
    with iq.use_isa(isa):
        assert_same(iq.gemm(a, b), ref.gemm(a, b), "a and b share memory")


@pytest.mark.parametrize("case", ["quantize zp", "gemm a_zp", "gemm b_zp", "conv x_zp", "conv w_zp"])
def test_huge_integers_are_out_of_range(case):
    x = np.ones(4, np.float32)
    a, b = np.ones((2, 2), np.uint8), np.ones((2, 2), np.int8)
    cx, cw = np.ones((1, 2, 3, 3), np.uint8), np.ones((2, 2, 1, 1), np.int8)
    calls = {
        "quantize zp": (lambda m: m.quantize(x, 0.1, 2**70), r"zero_point must lie in \[-128, 127\]"),
        "gemm a_zp": (lambda m: m.gemm(a, b, a_zero_point=2**70), r"a_zero_point must lie in \[0, 255\]"),
        "gemm b_zp": (lambda m: m.gemm(a, b, b_zero_point=[2**70, 0]), r"b_zero_point must lie in \[-128, 127\]"),
        "conv x_zp": (lambda m: m.conv2d(cx, cw, x_zero_point=-2**70), r"x_zero_point must lie in \[0, 255\]"),
        "conv w_zp": (lambda m: m.conv2d(cx, cw, w_zero_point=2**64), r"w_zero_point must lie in \[-128, 127\]"),
    }
    call, pattern = calls[case]
    msgs = []
    for m in (iq, ref):
        with pytest.raises(ValueError, match=pattern) as e:
            call(m)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


def test_bias_that_leaves_no_room():
    a, b = np.ones((2, 2), np.uint8), np.ones((2, 2), np.int8)
    bias = np.array([-2**31, 0], np.int32)
    msgs = []
    for m in (iq, ref):
        with pytest.raises(ValueError, match=r"bias: max\|bias\| = 2147483648 leaves no room") as e:
            m.qgemm(a, b, 1.0, 1.0, bias=bias, out_scale=1.0, out_dtype=np.int8)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


def test_float_bias_quantized_to_2_31():
    """bias / s == 2**31 exactly: refused by both as not fitting int32 (float32 cannot hold
    2**31 - 1, so the reference compares in float64, as the C++ does)."""
    a, b = np.ones((2, 2), np.uint8), np.ones((2, 2), np.int8)
    bias = np.array([2.0**31, 0], np.float32)
    msgs = []
    for m in (iq, ref):
        with pytest.raises(ValueError, match=r"bias / \(a_scale \* b_scale\) must be finite and fit int32") as e:
            m.qgemm(a, b, 1.0, 1.0, bias=bias, out_scale=1.0, out_dtype=np.int8)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


def test_unaligned_out_and_input(isa):
    """float32/int32 arrays one byte off their alignment, as ``out`` of every op and as quantize's
    input: the reference's results (the kernels never load or store a misaligned element)."""
    rng = np.random.default_rng(5)

    def unaligned(shape, dtype):
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.zeros(n + 1, np.uint8)[1:].view(dtype).reshape(shape)

    x = unaligned((64,), np.float32)
    x[:] = rng.standard_normal(64) * 4
    q = rng.integers(-128, 128, 64, dtype=np.int8)
    a = rng.integers(0, 256, (5, 24), dtype=np.uint8)
    b = rng.integers(-128, 128, (24, 7), dtype=np.int8)
    cx = rng.integers(0, 256, (1, 4, 6, 6), dtype=np.uint8)
    cw = rng.integers(-128, 128, (5, 4, 3, 3), dtype=np.int8)
    with iq.use_isa(isa):
        cases = {
            "quantize": (lambda m, out: m.quantize(x, 0.05, out=out), unaligned((64,), np.int8)),
            "dequantize": (lambda m, out: m.dequantize(q, 0.5, out=out), unaligned((64,), np.float32)),
            "gemm": (lambda m, out: m.gemm(a, b, out=out), unaligned((5, 7), np.int32)),
            "qgemm": (lambda m, out: m.qgemm(a, b, 0.1, 0.02, out=out), unaligned((5, 7), np.float32)),
            "conv2d": (lambda m, out: m.conv2d(cx, cw, padding=1, out=out), unaligned((1, 5, 6, 6), np.int32)),
            "qconv2d": (lambda m, out: m.qconv2d(cx, cw, 0.1, 0.02, padding=1, out=out),
                        unaligned((1, 5, 6, 6), np.float32)),
        }
        for name, (call, out) in cases.items():
            got = call(iq, out)
            assert got is out, name
            assert_same(out, call(ref, None), f"isa={isa} {name}")
