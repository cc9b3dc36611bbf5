"""Checks shared by the test files: exact equality, and the same errors on both paths."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import reference as ref


#: ISA paths compiled in and supported by this CPU, best last.
AVAILABLE_ISAS = tuple(iq.available_isas())
#: The implementations an error table runs on: the fast path under each ISA, and the reference.
IMPLS = [f"fast-{i}" for i in AVAILABLE_ISAS] + ["reference"]
INT32_MAX = 2**31 - 1
Q_RANGE = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}


def rng_for(*key) -> np.random.Generator:
    """A generator seeded from ``key`` (shape and purpose): the same data on every run."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def rand_q(rng, shape, dtype) -> np.ndarray:
    """Random values over the whole range of int8 or uint8."""
    lo, hi = Q_RANGE[np.dtype(dtype)]
    return rng.integers(lo, hi + 1, size=shape, dtype=dtype)


#: (activation dtype, activation fill, activation zero point, weight fill, weight zero point):
#: every value and zero point at an end of its range.
EXTREMES = [
    (np.int8, -128, 0, -128, 0),
    (np.int8, 127, 0, 127, 0),
    (np.int8, -128, 0, 127, 0),
    (np.int8, 127, -128, 127, -128),
    (np.int8, -128, 127, -128, 127),
    (np.int8, -128, 127, 127, -128),
    (np.uint8, 255, 0, -128, 0),
    (np.uint8, 255, 0, 127, 0),
    (np.uint8, 0, 255, -128, 127),
    (np.uint8, 0, 255, 127, -128),
    (np.uint8, 255, 0, 127, -128),
    (np.uint8, 0, 0, -128, 0),
    (np.uint8, 255, 255, -128, 0),
]


def read_only(a) -> np.ndarray:
    """A read-only copy of ``a`` (the caller's array keeps its flags)."""
    a = np.array(a)
    a.setflags(write=False)
    return a


def shape_in(layout: str, n: int, c: int, h: int, w: int) -> tuple:
    """The shape of an (N, C, H, W) image batch in ``layout``: (N, C, H, W) for "NCHW", (N, H, W, C) for "NHWC"."""
    return (n, c, h, w) if layout == "NCHW" else (n, h, w, c)


def assert_same(got, want, what: str) -> None:
    """``got`` equals ``want`` exactly: same type, dtype, shape and bits."""
    assert isinstance(got, np.ndarray), f"{what}: got a {type(got).__name__}, not an ndarray"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    if got.dtype.kind == "f":
        bits = np.dtype(f"u{got.dtype.itemsize}")
        g, w = np.ascontiguousarray(got).view(bits), np.ascontiguousarray(want).view(bits)
    else:
        g, w = got, want
    if not np.array_equal(g, w):
        bad = np.argwhere(g != w)
        first = tuple(int(i) for i in bad[0])
        pytest.fail(
            f"{what}: {len(bad)} of {g.size} elements differ; first at {first}: "
            f"got {got[first]!r}, expected {want[first]!r}",
            pytrace=False,
        )


def check_error(impl: str, exc, pattern: str, call) -> None:
    """``call(module)`` raises ``exc`` matching ``pattern`` on the reference (impl "reference") or
    on the fast path under the ISA of impl "fast-<isa>"."""
    if impl == "reference":
        with pytest.raises(exc, match=pattern):
            call(ref)
    else:
        with iq.use_isa(impl[len("fast-"):]):
            with pytest.raises(exc, match=pattern):
                call(iq)


def raises_on_both(exc, call, match=None) -> list:
    """``call(module)`` raises ``exc`` (matching ``match``, if given) on the fast path and on the
    reference; returns the two exceptions, fast path first."""
    raised = []
    for impl in (iq, ref):
        with pytest.raises(exc, match=match) as info:
            call(impl)
        raised.append(info.value)
    return raised


def assert_same_errors(table: dict) -> None:
    """Every call of ``table`` ({case: (exc, pattern, call)}) raises the same exception type with the
    same message on the fast path and on the reference."""
    differ = []
    for case, (_, _, call) in table.items():
        got = [(type(e).__name__, str(e)) for e in raises_on_both(Exception, call)]
        if got[0] != got[1]:
            differ.append(f"{case}: fast {got[0]} != reference {got[1]}")
    assert not differ, "\n".join(differ)


def epilogue_errors(q, n: int, x: str, w: str) -> dict:
    """The error cases ({case: (exc, pattern, call)}) of the fused epilogue (out_scale, out_dtype,
    out_zero_point, bias, relu) that qgemm and qconv2d share: ``q(f, **kw)`` calls the op of module
    ``f`` on a valid problem with ``n`` output channels and the scales ``{x}_scale`` and ``{w}_scale``."""
    xs, ws = f"{x}_scale", f"{w}_scale"
    return {
        "out_scale_zero": (ValueError, r"out_scale must be finite and > 0",
                           lambda f: q(f, out_scale=0.0, out_dtype=np.int8)),
        "out_scale_with_float32": (ValueError, r"out_dtype must be int8 or uint8",
                                   lambda f: q(f, out_scale=0.5, out_dtype=np.float32)),
        "int8_out_without_out_scale": (ValueError, r"without out_scale", lambda f: q(f, out_dtype=np.int8)),
        "out_zero_point_with_float32": (ValueError, r"out_zero_point applies only",
                                        lambda f: q(f, out_zero_point=3)),
        "int_bias_with_float_output": (TypeError, r"integer bias", lambda f: q(f, bias=np.zeros(n, np.int32))),
        "int64_bias_requantized": (TypeError, r"must be int32",
                                   lambda f: q(f, bias=np.zeros(n, np.int64), out_scale=1.0, out_dtype=np.int8)),
        "bias_wrong_length": (ValueError, rf"bias must be a scalar or have shape \({n},\)",
                              lambda f: q(f, bias=np.zeros(4, np.float32))),
        "bias_complex": (TypeError, r"bias must be a float or int32 array",
                         lambda f: q(f, bias=np.zeros(n, complex))),
        "float_bias_too_large": (ValueError, rf"^bias / \({xs} \* {ws}\) must be finite and fit int32$",
                                 lambda f: q(f, bias=np.full(n, 1e30, np.float32), out_scale=1.0,
                                             out_dtype=np.int8)),
        "requant_multiplier_inf": (ValueError, rf"^{xs} \* {ws} / out_scale must be finite in float32$",
                                   lambda f: q(f, **{xs: 1e30, ws: 1e8}, out_scale=1e-30, out_dtype=np.int8)),
        "relu_not_bool": (TypeError, r"relu must be a bool", lambda f: q(f, relu=1)),
    }
