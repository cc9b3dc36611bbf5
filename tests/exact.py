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


def assert_same_errors(table: dict) -> None:
    """Every call of ``table`` ({case: (exc, pattern, call)}) raises the same exception type with the
    same message on the fast path and on the reference."""
    differ = []
    for case, (_, _, call) in table.items():
        got = []
        for impl in (iq, ref):
            with pytest.raises(Exception) as info:
                call(impl)
            got.append((type(info.value).__name__, str(info.value)))
        if got[0] != got[1]:
            differ.append(f"{case}: fast {got[0]} != reference {got[1]}")
    assert not differ, "\n".join(differ)
