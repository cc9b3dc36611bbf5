"""No op leaks: memory and references stay flat over thousands of calls.

Every public op (quantize, dequantize, gemm, qgemm, conv2d, qconv2d,
pack_weights, pack_conv_weights, conv_plan) is called a few thousand times,
after a warm-up that fills the caches, in its usual forms and along its error
paths (calls that raise ValueError or TypeError, in Python or in the
binding). The resident set size must not grow by more than a small
tolerance, and the reference counts of the arrays passed in must not change
(a reference leaked by the binding keeps its argument alive forever, however
small the object).

The outputs are a few KiB each, so a leaked output or buffer per call adds up
to many MiB over the loop, well past the tolerance.
"""
from __future__ import annotations

import gc
import os
import sys
import types

import numpy as np
import pytest

import intquant_kernels as iq

from exact import rand_q, rng_for

WARMUP = 300
CALLS = 5000  # per op, its forms in turn
TOLERANCE = 2 << 20  # bytes of RSS growth allowed over CALLS calls


def _statm_rss() -> int | None:
    """The resident set size in bytes, from /proc/self/statm (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _under_asan() -> bool:
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


pytestmark = [
    pytest.mark.skipif(_statm_rss() is None,
                       reason="needs /proc/self/statm for the current RSS (resource.getrusage gives only the peak)"),
    pytest.mark.skipif(_under_asan(),
                       reason="under AddressSanitizer freed memory stays resident in its quarantine, so RSS says "
                              "nothing about leaks here (the normal run checks them)"),
]


def _data():
    rng = rng_for("leaks")
    d = types.SimpleNamespace()
    d.x = rng.standard_normal((64, 64)).astype(np.float32)
    d.x64 = d.x.astype(np.float64)
    d.scales = rng.uniform(0.01, 0.1, 64).astype(np.float32)
    d.zps = rng.integers(100, 156, 64).astype(np.int32)
    d.q = rand_q(rng, (64, 64), np.int8)
    d.q_out = np.empty((64, 64), np.int8)
    d.b = rand_q(rng, (96, 64), np.int8)
    d.b3 = d.b.reshape(2, 48, 64)
    d.b_zp = rng.integers(-8, 9, 64).astype(np.int32)
    d.pw = iq.pack_weights(d.b, zero_point=d.b_zp)
    d.a = rand_q(rng, (32, 96), np.uint8)
    d.a_short = np.ascontiguousarray(d.a[:, :95])
    d.a16 = d.a.astype(np.int16)
    d.bias = rng.uniform(-1, 1, 64).astype(np.float32)
    d.bias64 = d.bias.astype(np.int64)
    d.w = rand_q(rng, (16, 8, 3, 3), np.int8)
    d.w3 = d.w.reshape(16, 8, 9)
    d.w_dw = rand_q(rng, (8, 1, 3, 3), np.int8)
    d.pcw = iq.pack_conv_weights(d.w)
    d.pdw = iq.pack_conv_weights(d.w_dw, groups=8)
    d.img = rand_q(rng, (1, 8, 12, 12), np.uint8)
    d.img_nhwc = np.ascontiguousarray(d.img.transpose(0, 2, 3, 1))
    d.img_f = d.img.astype(np.float32)
    d.w_scale = rng.uniform(0.001, 0.01, 16).astype(np.float32)
    return d


def _raises(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc:
        return
    raise AssertionError(f"{fn.__name__} did not raise {exc.__name__}")


#: "op: form" -> call(d, i): one call of an op in one form (i numbers the calls:
#: scales that vary with it fill and evict the epilogue caches).
CASES = {
    "quantize: plain": lambda d, i: iq.quantize(d.x, 0.05),
    "quantize: per channel uint8": lambda d, i: iq.quantize(d.x, d.scales, d.zps, axis=0, dtype=np.uint8),
    "quantize: out": lambda d, i: iq.quantize(d.x, 0.05, narrow_range=True, out=d.q_out),
    "quantize: bad scale": lambda d, i: _raises(ValueError, iq.quantize, d.x, 0.0),
    "quantize: bad dtype": lambda d, i: _raises(TypeError, iq.quantize, d.x64, 0.05),
    "dequantize: plain": lambda d, i: iq.dequantize(d.q, 0.05, 3),
    "dequantize: per channel": lambda d, i: iq.dequantize(d.q, d.scales, axis=1),
    "dequantize: bad input": lambda d, i: _raises(TypeError, iq.dequantize, d.x, 0.05),
    "dequantize: bad axis": lambda d, i: _raises(ValueError, iq.dequantize, d.q, d.scales, axis=2),
    "gemm: packed": lambda d, i: iq.gemm(d.a, d.pw, a_zero_point=3),
    "gemm: raw": lambda d, i: iq.gemm(d.a, d.b, b_zero_point=d.b_zp),
    "gemm: bad k": lambda d, i: _raises(ValueError, iq.gemm, d.a_short, d.pw),
    "gemm: bad dtype": lambda d, i: _raises(TypeError, iq.gemm, d.a16, d.pw),
    "qgemm: float": lambda d, i: iq.qgemm(d.a, d.pw, 0.01 + (i % 97) * 1e-4, d.scales, bias=d.bias, relu=True),
    "qgemm: requantized": lambda d, i: iq.qgemm(d.a, d.pw, 0.01 + (i % 97) * 1e-4, 0.003, bias=d.bias,
                                               out_scale=0.05, out_zero_point=-2, out_dtype=np.int8),
    "qgemm: bad scale": lambda d, i: _raises(ValueError, iq.qgemm, d.a, d.pw, -1.0, 0.003),
    "qgemm: bad bias": lambda d, i: _raises(TypeError, iq.qgemm, d.a, d.pw, 0.01, 0.003, bias=d.bias64,
                                           out_scale=0.05, out_dtype=np.int8),
    "conv2d: packed": lambda d, i: iq.conv2d(d.img, d.pcw, padding=1, x_zero_point=128),
    "conv2d: raw nhwc": lambda d, i: iq.conv2d(d.img_nhwc, d.w, stride=2, padding=1, layout="NHWC"),
    "conv2d: depthwise": lambda d, i: iq.conv2d(d.img, d.pdw, groups=8, padding=1),
    "conv2d: bad stride": lambda d, i: _raises(ValueError, iq.conv2d, d.img, d.pcw, stride=0),
    "conv2d: bad input": lambda d, i: _raises(TypeError, iq.conv2d, d.img_f, d.pcw),
    "qconv2d: float": lambda d, i: iq.qconv2d(d.img, d.pcw, 0.01 + (i % 97) * 1e-4, d.w_scale, padding=1,
                                             x_zero_point=128, bias=d.bias[:16]),
    "qconv2d: requantized": lambda d, i: iq.qconv2d(d.img, d.pdw, 0.01 + (i % 97) * 1e-4, 0.002, groups=8,
                                                   padding=1, out_scale=0.1, out_dtype=np.uint8, relu=True),
    "qconv2d: bad groups": lambda d, i: _raises(ValueError, iq.qconv2d, d.img, d.pcw, 0.01, 0.002, groups=2),
    "qconv2d: bad out dtype": lambda d, i: _raises(ValueError, iq.qconv2d, d.img, d.pcw, 0.01, 0.002,
                                                  out_dtype=np.int8),
    "pack_weights: plain": lambda d, i: iq.pack_weights(d.b, zero_point=d.b_zp),
    "pack_weights: bad shape": lambda d, i: _raises(ValueError, iq.pack_weights, d.b3),
    "pack_weights: bad dtype": lambda d, i: _raises(TypeError, iq.pack_weights, d.a),
    "pack_conv_weights: plain": lambda d, i: iq.pack_conv_weights(d.w),
    "pack_conv_weights: depthwise": lambda d, i: iq.pack_conv_weights(d.w_dw, groups=8),
    "pack_conv_weights: bad shape": lambda d, i: _raises(ValueError, iq.pack_conv_weights, d.w3),
    "conv_plan: arrays": lambda d, i: iq.conv_plan(d.img, d.w, padding=1),
    "conv_plan: packed shape": lambda d, i: iq.conv_plan((1, 8, 12, 12), d.pdw, groups=8, out_dtype=np.float32),
    "conv_plan: bad layout": lambda d, i: _raises(ValueError, iq.conv_plan, d.img, d.pcw, layout="NCWH"),
    "conv_plan: bad dtype": lambda d, i: _raises(TypeError, iq.conv_plan, d.img_f, d.pcw),
}


@pytest.fixture(scope="module")
def data():
    return _data()


def _refcounts(d) -> dict:
    return {name: sys.getrefcount(value) for name, value in vars(d).items()}


OPS = sorted({name.split(":")[0] for name in CASES})


@pytest.mark.parametrize("op", OPS)
def test_no_growth(data, op):
    """CALLS calls of ``op``, its forms (error paths included) taken in turn."""
    forms = [call for name, call in CASES.items() if name.split(":")[0] == op]
    for i in range(WARMUP):
        forms[i % len(forms)](data, i)
    gc.collect()
    refs = _refcounts(data)
    rss = _statm_rss()
    for i in range(WARMUP, WARMUP + CALLS):
        forms[i % len(forms)](data, i)
    gc.collect()
    growth = _statm_rss() - rss
    leaked_refs = {name: n - refs[name] for name, n in _refcounts(data).items() if n != refs[name]}
    assert not leaked_refs, f"{op}: references to its arguments changed over {CALLS} calls: {leaked_refs}"
    assert growth < TOLERANCE, (f"{op}: RSS grew by {growth / 2**20:.2f} MiB over {CALLS} calls "
                                f"({growth / CALLS:.0f} bytes per call; allowed {TOLERANCE / 2**20:.0f} MiB "
                                f"in all): a leak")
