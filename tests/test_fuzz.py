"""Differential fuzzing with hypothesis: every public op on every available ISA path against the
NumPy reference.

Each test draws a *recipe* (shapes, dtypes, how the inputs are laid out in memory, a seed for
their contents, scales, zero points, bias, relu, the output kind, whether ``out=`` is given), builds
the arrays from it, runs the op on the reference and on the fast path forced with ``iq.use_isa``,
and requires

- exact agreement (``exact.assert_same``: ints by value, floats bit for bit), or both sides
  raising the same exception type with the same message (both resolve their arguments with the
  same shared checks, documented to "accept, reject and describe the same inputs identically":
  ``_validate.py``, ``_conv_common.py``; the error tables of the other test files check it one
  fault at a time). A K past the exactness bound, a scale product that under- or overflows
  float32, a float bias whose quantized value does not fit int32 are drawn on purpose and must be
  refused identically (the fuzz found two inputs with two faults on which the two named different
  faults; both now check in one order, and the tests at the end of the file pin them);
- inputs unchanged after the call (compared with copies taken before it);
- with ``out=``: the result is ``out``, and the guard bytes around it are untouched (``out`` is a
  view into a larger buffer filled with a sentinel, sometimes one byte off alignment);
- that the forced path really ran: every kernel counted by ``iq.kernel_calls()`` during the call is
  one of the path's own (``iq.kernel_names(isa)``; a path may reuse a lower path's kernel, e.g.
  avx_vnni quantizes with ``__avx2`` kernels, and ``kernel_names`` says so), and, when the output
  is not empty, one of the op's kernels ran: a quantize/dequantize kernel, the path's GEMM kernel
  (``kernel_names(isa)["gemm"]``), or a kernel of ``iq.conv_plan(...).kernels``.

Inputs are strided (``[:, ::2]``), reversed (negative strides), transposed, one byte off
alignment, zero-strided (``broadcast_to``) or read-only views; values at the ends of the dtype
ranges; zero points at the dtype bounds; scales from the smallest float32 denormal to near
FLT_MAX; NaN, +-Inf, -0, ties and saturation edges for quantize. ``out=`` never overlaps an input
(tests/test_overlap_and_errors.py covers that).

Settings (the ``intquant-fuzz`` profile below): ``max_examples`` is ``CI_EXAMPLES`` per test,
that is per op and ISA path (the test ids say which); the environment variable
``INTQUANT_FUZZ_EXAMPLES`` raises it for a long soak, e.g.
``INTQUANT_FUZZ_EXAMPLES=300 python -m pytest tests/test_fuzz.py``. ``deadline=None`` (timings on
a shared 2-core machine are noise) and ``database=None`` (nothing is written into the checkout).
``derandomize=False``: every run draws new examples, so CI keeps exploring rather than replaying
one fixed set; any failure is a real mismatch with the reference (whose contract covers every
input), and hypothesis prints the shrunk falsifying recipe and, with ``print_blob=True``, a
``@reproduce_failure(...)`` line that replays it exactly. The recipe alone is a reproducer too: the
arrays are built from it deterministically (``Arr.build``). ``--hypothesis-seed=N`` replays a whole
run.
"""
from __future__ import annotations

import os
import re
import tempfile
import warnings
from dataclasses import dataclass

# Hypothesis keeps caches (``constants/``, and ``patches/`` after a failure) in its storage
# directory, ``./.hypothesis`` unless told otherwise: keep them out of the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "intquant_kernels-hypothesis"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, assume, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import intquant_kernels as iq  # noqa: E402
from intquant_kernels import _core  # noqa: E402
from intquant_kernels import reference as ref  # noqa: E402

from exact import AVAILABLE_ISAS, assert_same, assert_same_errors, shape_in  # noqa: E402

# On a failure hypothesis' pytest plugin imports its patch writer, which imports libcst where
# installed; some libcst versions warn (DeprecationWarning) on import, and with
# ``filterwarnings = ["error"]`` that warning would replace the report of the failure with an
# INTERNALERROR. Import it here, once, with those warnings silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # no libcst: the plugin skips the patch
        pass

# --- settings ------------------------------------------------------------------------------

#: Examples per test, that is per op and ISA path. The ops: quantize, dequantize, and gemm,
#: qgemm, conv2d, qconv2d each with an array and with packed weights: 10 tests per path; with
#: 4 paths 40 tests, 4000 examples, about 35-40 s on a shared 2-core machine.
CI_EXAMPLES = 100


def _examples() -> int:
    raw = os.environ.get("INTQUANT_FUZZ_EXAMPLES", "").strip()
    if not raw:
        return CI_EXAMPLES
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"INTQUANT_FUZZ_EXAMPLES must be a positive integer, got {raw!r}")
    return n


settings.register_profile(
    "intquant-fuzz",
    max_examples=_examples(),
    deadline=None,
    database=None,
    derandomize=False,
    print_blob=True,
    # The arrays come from a drawn seed, not from hypothesis' bytes, but some recipes are
    # large (K near the exactness bound) and the reference convolution is slow-ish.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
FUZZ = settings.get_profile("intquant-fuzz")

ISAS = pytest.mark.parametrize("isa", AVAILABLE_ISAS)
FORMS = pytest.mark.parametrize("form", ["array", "packed"])

# --- pools of sizes and values -------------------------------------------------------------


def around(*centers) -> list:
    """Every ``c - 1, c, c + 1`` of ``centers`` (>= 0), sorted."""
    return sorted({c + d for c in centers for d in (-1, 0, 1) if c + d >= 0})


PRIMES = [2, 3, 5, 7, 11, 13, 37, 61, 127, 251]
#: 1-D lengths: every vector width (16 floats, 32/64 bytes) and a few multiples, with their neighbours.
LENGTHS = sorted(set(around(0, 1, 2, 4, 8, 16, 32, 48, 64, 128, 256) + PRIMES))
#: Dimensions of multi-dimensional arrays.
DIMS = sorted(set(around(1, 2, 4, 8, 16, 32) + [5, 7, 13]))
#: GEMM rows (each of up to two leading dimensions): around the tile heights 4 and 5.
ROWS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 16, 17]
#: GEMM K: around multiples of 4 (the vnni groups) and of 64 (the slices).
K_SIZES = sorted(set(around(0, 1, 2, 4, 8, 12, 16, 32, 64, 128, 192, 256) + PRIMES + [509]))
#: K near the exactness bounds (|a - a_zp| * |b - b_zp| = 255 * 255, 255 * 128, 128 * 128).
K_BIG = around(33025, 65793, 131071)
#: GEMM N / conv OC: the tile widths 8, 16, 32, 64 of the paths' kernels.
N_SIZES = sorted(set(around(0, 1, 2, 4, 8, 16, 32, 48, 64, 128, 192) + PRIMES[:6]))

F32 = np.finfo(np.float32)
FLT_TRUE_MIN = float(F32.smallest_subnormal)
FLT_MIN = float(F32.tiny)
FLT_MAX = float(F32.max)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
Q_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}

#: Valid scales (finite and > 0 in float32) at and between the extremes.
scales = st.one_of(
    st.sampled_from([FLT_TRUE_MIN, FLT_TRUE_MIN * 3, FLT_MIN, 1e-30, 2.0**-20, 1e-3, 0.1, 0.25, 0.5, 1.0, 3.0,
                     1000.0, 2.0**20, 1e30, 1e37, FLT_MAX]),
    st.floats(min_value=1e-44, max_value=1e37, allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-4, max_value=1e2, allow_nan=False, allow_infinity=False),
)
#: Ordinary scales of the GEMM/conv epilogue (most outputs neither all saturated nor refused).
ordinary_scales = st.one_of(
    st.floats(min_value=1e-4, max_value=1.0, allow_nan=False, allow_infinity=False),
    st.sampled_from([2.0**-12, 2.0**-7, 0.05, 1.0, 16.0]),
)


def channel_values(draw, elements, n: int) -> list:
    """``n`` values (one per channel) made of one to four values drawn from ``elements``, spread
    over the channels from a drawn seed: every channel's value is a drawn one, at a small cost in
    hypothesis draws for hundreds of channels."""
    pool = draw(st.lists(elements, min_size=1, max_size=min(4, n)))
    if n <= len(pool):
        return pool
    pick = np.random.default_rng(draw(SEEDS)).integers(0, len(pool), n)
    return [pool[i] for i in pick]


def chance(draw, percent: int) -> bool:
    """True in about ``percent`` % of the examples: an interior window of 0..99, since hypothesis
    favours the ends of a range."""
    return 10 <= draw(st.integers(0, 99)) < 10 + percent


def ep_scales(draw, n=None):
    """A scale of the epilogue, or ``n`` of them (a list): ordinary ones, or in a fifth of the
    examples from the whole valid range (``scales``), where products may leave float32 and both
    sides must refuse them alike."""
    pool = scales if chance(draw, 20) else ordinary_scales
    if n is None:
        return draw(pool)
    return channel_values(draw, pool, n)


def zero_points(dtype: str):
    lo, hi = Q_RANGE[dtype]
    return st.one_of(st.sampled_from([lo, hi, 0 if lo < 0 else 128, lo + 1, hi - 1]), st.integers(lo, hi))


#: How an array is laid out in memory (Arr.build).
VIEWS = ["c", "offset", "window", "reversed", "step", "fortran", "zero_stride", "readonly"]
INT_FILLS = ["uniform", "low", "high", "extremes", "near_zp", "small"]
FLOAT_FILLS = ["normal", "ties", "ints", "edges", "specials", "tiny", "huge"]
SEEDS = st.integers(0, 2**32 - 1)

# --- arrays from recipes -------------------------------------------------------------------


def _layout(base: np.ndarray, view: str, axis: int) -> np.ndarray:
    """An array equal to ``base`` (``zero_stride``: ``base``'s first slice along ``axis``, repeated)
    laid out as ``view`` says."""
    if base.ndim == 0 or view == "c":
        return np.array(base, copy=True)
    axis %= base.ndim
    if view == "offset":  # C-contiguous, one byte past an allocation's (aligned) start
        buf = np.empty(base.nbytes + 1, np.uint8)
        v = buf[1:].view(base.dtype).reshape(base.shape)
        v[...] = base
        return v
    if view == "window":  # x[1:-2, 1:-2, ...] of a larger array: odd strides, an odd start
        big = np.zeros(tuple(d + 3 for d in base.shape), base.dtype)
        idx = tuple(slice(1, 1 + d) for d in base.shape)
        big[idx] = base
        return big[idx]
    if view == "reversed":
        return np.flip(np.flip(base, axis).copy(), axis)
    if view == "step":
        shape = list(base.shape)
        shape[axis] *= 2
        big = np.zeros(shape, base.dtype)
        idx = tuple(slice(None, None, 2) if i == axis else slice(None) for i in range(base.ndim))
        big[idx] = base
        return big[idx]
    if view == "fortran":
        return np.asfortranarray(base)
    if view == "zero_stride":
        if base.shape[axis] == 0:
            return np.array(base, copy=True)
        return np.broadcast_to(np.take(base, [0], axis=axis), base.shape)
    if view == "readonly":
        v = np.array(base, copy=True)
        v.setflags(write=False)
        return v
    raise AssertionError(view)


@dataclass(frozen=True)
class Arr:
    """A recipe for one input array: its shape and dtype, how its values are drawn (``fill``, from
    ``seed``), and its memory layout (``view`` along ``axis``). ``build`` makes it."""

    shape: tuple
    dtype: str
    fill: str
    seed: int
    view: str = "c"
    axis: int = 0

    def build(self, zp=0, unit=None) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        if self.dtype == "float32":
            base = _float_values(rng, self.shape, self.fill, unit)
        else:
            base = _int_values(rng, self.shape, self.dtype, self.fill, zp)
        return _layout(base, self.view, self.axis)


def _int_values(rng, shape, dtype, fill, zp):
    lo, hi = Q_RANGE[dtype]
    if fill == "uniform":
        v = rng.integers(lo, hi + 1, size=shape)
    elif fill == "low":
        v = np.full(shape, lo)
    elif fill == "high":
        v = np.full(shape, hi)
    elif fill == "extremes":
        v = rng.choice([lo, hi], size=shape)
    elif fill == "near_zp":  # a few steps around the zero point (or points, per channel)
        v = np.clip(np.asarray(zp) + rng.integers(-3, 4, size=shape), lo, hi)
    elif fill == "small":
        v = np.clip(rng.integers(-4, 5, size=shape) + (0 if lo < 0 else 128), lo, hi)
    else:
        raise AssertionError(fill)
    return np.asarray(v).astype(dtype)


_SPECIALS = np.array(
    [0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF, 0xFF800001,  # quiet and signalling NaNs, both signs
     0x7F800000, 0xFF800000, 0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF,  # +-inf, +-0, denormals
     0x7F7FFFFF, 0xFF7FFFFF, 0x4F000000, 0xCF000000, 0x4B000001, 0x4EFFFFFF],  # +-FLT_MAX, +-2**31, ...
    dtype=np.uint32).view(np.float32)


def _float_values(rng, shape, fill, unit):
    """float32 values for quantize: ``fill`` is a "+"-joined set of kinds, each element drawn from
    one of them; values in units of the scale are multiplied by ``unit`` (the scale, broadcast)."""
    kinds = fill.split("+")
    size = int(np.prod(shape, dtype=np.int64))
    pick = rng.integers(0, len(kinds), size=size)
    out = np.empty(size, np.float32)
    u = unit if unit is not None else np.float32(1)
    ub = np.broadcast_to(np.asarray(u, np.float32), shape).reshape(-1)
    for i, kind in enumerate(kinds):
        sel = pick == i
        n = int(sel.sum())
        if kind == "specials":
            out[sel] = rng.choice(_SPECIALS, size=n)
            continue
        if kind == "tiny":
            out[sel] = (rng.integers(-50, 51, size=n) * FLT_TRUE_MIN).astype(np.float32)
            continue
        if kind == "huge":
            out[sel] = (rng.choice([-1.0, 1.0], size=n) * 10.0 ** rng.uniform(9, 38.5, size=n)).astype(np.float32)
            continue
        if kind == "normal":
            units = rng.normal(0.0, 60.0, size=n)
        elif kind == "ties":
            units = rng.integers(-300, 300, size=n) + 0.5
        elif kind == "ints":
            units = rng.integers(-300, 300, size=n).astype(np.float64)
        elif kind == "edges":  # around the saturation points of every dtype and zero point
            units = (rng.choice([-383, -256, -255, -128, -127, 0, 127, 128, 255, 256, 383], size=n)
                     + rng.choice([-1, -0.5, -0.49999997, 0.0, 0.49999997, 0.5, 1], size=n))
        else:
            raise AssertionError(kind)
        with np.errstate(over="ignore", under="ignore"):
            out[sel] = units.astype(np.float32) * ub[sel]
    return out.reshape(shape)


@st.composite
def arrays(draw, shape, dtype, fills=None) -> Arr:
    if fills is None:
        fills = INT_FILLS
    fill = draw(st.sampled_from(fills))
    view = draw(st.sampled_from(VIEWS))
    axis = draw(st.integers(0, max(0, len(shape) - 1)))
    return Arr(tuple(shape), dtype, fill, draw(SEEDS), view, axis)


def float_fill():
    return st.lists(st.sampled_from(FLOAT_FILLS), min_size=1, max_size=4, unique=True).map("+".join)


@dataclass(frozen=True)
class Vec:
    """A 1-D parameter (one value per channel) in a recipe: exact Python numbers and a dtype
    (an array's repr would round them). ``build`` makes the array."""

    values: tuple
    dtype: str

    def build(self) -> np.ndarray:
        return np.array(self.values, dtype=self.dtype)


def per_channel(values, n: int, as_array: bool, dtype):
    """A drawn scalar parameter, or ``n`` of them as a 1-D array of ``dtype`` (a Vec)."""
    return Vec(tuple(values[:n]), np.dtype(dtype).name) if as_array else values[0]


def built(value):
    """A recipe's parameter as the op takes it: Vec and Bias built, dicts entry by entry."""
    if isinstance(value, dict):
        return {k: built(v) for k, v in value.items()}
    return value.build() if isinstance(value, (Vec, Bias)) else value


# --- the differential check ----------------------------------------------------------------

GUARD = 32
SENTINEL = 0xA5


def guarded_out(shape, dtype, misalign: bool):
    """A C-contiguous ``out`` of ``shape`` and ``dtype`` inside a larger byte buffer filled with
    SENTINEL (``GUARD`` bytes on each side; one byte off alignment with ``misalign``)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    start = GUARD + (1 if misalign else 0)
    buf = np.full(start + nbytes + GUARD, SENTINEL, np.uint8)
    out = buf[start:start + nbytes].view(dtype).reshape(shape)
    return out, buf, start, start + nbytes


def _gist(message: str) -> str:
    """An error message without its numbers, for hypothesis' statistics (``event``)."""
    return re.sub(r"-?\d[\d.e+-]*", "N", message.split(":")[0])[:60]


def own_kernels(isa) -> set:
    """Every kernel a call on ``isa`` may count: the path's table (``kernel_names``; some entries
    are lower paths' kernels the path reuses) and the 1x1 NCHW conv driver."""
    return {k for k in iq.kernel_names(isa).values() if k} | {"conv1x1_nchw"}


def same(got, want, what: str) -> None:
    """``exact.assert_same``, failing with an AssertionError: pytest.fail(pytrace=False) would drop
    the notes hypothesis adds to the error (the falsifying recipe, the reproduce_failure blob)."""
    try:
        assert_same(got, want, what)
    except pytest.fail.Exception as e:
        raise AssertionError(str(e)) from None


def differential(isa, what, call, inputs, out_mode=None, threads=None, kernels=None):
    """``call(module, out)`` on the reference and, forced to ``isa``, on the fast path: the same
    result bit for bit or the same exception (type and message); inputs unchanged; ``out``
    (``out_mode`` "out" or "out+1": one byte off alignment) returned and its guard bytes
    untouched; only the path's kernels counted, and ``kernels()`` (the op's kernel names) among
    them when the output is not empty."""
    saved = [np.array(a, copy=True) for a in inputs]
    try:
        want, want_err = call(ref, None), None
    except Exception as e:  # noqa: BLE001 -- compared with the fast path's below
        want, want_err = None, e
    for i, (a, a0) in enumerate(zip(inputs, saved)):
        same(np.array(a, copy=True), a0, f"{what}: input {i} modified by the reference")

    out = buf = None
    if want_err is None and out_mode:
        out, buf, lo, hi = guarded_out(want.shape, want.dtype, out_mode == "out+1")
    with iq.use_isa(isa):
        if threads is not None:
            iq.set_num_threads(threads)
        before, runs = iq.kernel_calls(), _core.parallel_runs()
        try:
            got, got_err = call(iq, out), None
        except Exception as e:  # noqa: BLE001
            got, got_err = None, e
        after, parallel = iq.kernel_calls(), _core.parallel_runs() > runs

    for i, (a, a0) in enumerate(zip(inputs, saved)):
        same(np.array(a, copy=True), a0, f"{what}: input {i} modified by the fast path")

    if want_err is not None or got_err is not None:
        w = None if want_err is None else (type(want_err).__name__, str(want_err))
        g = None if got_err is None else (type(got_err).__name__, str(got_err))
        if w != g:
            raise AssertionError(f"{what}: fast path raised {g}, reference {w}")
        else:
            event(f"both raise {w[0]}: {_gist(w[1])}")
        return None

    same(got, want, what)
    event("results agree" + (" (empty)" if want.size == 0 else ""))
    if parallel:
        event("ran on the thread pool")
    if out is not None:
        assert got is out, f"{what}: the result is not out"
        assert np.all(buf[:lo] == SENTINEL), f"{what}: wrote before out"
        assert np.all(buf[hi:] == SENTINEL), f"{what}: wrote past out"

    ran = {name for name, count in after.items() if count != before.get(name, 0)}
    own = own_kernels(isa)
    assert ran <= own, f"{what}: kernels of another path ran on {isa}: {sorted(ran - own)}"
    if kernels is not None and want.size:
        expected = set(kernels())
        assert ran & expected, f"{what}: none of {sorted(expected)} ran on {isa} (ran {sorted(ran)})"
    return got


# --- quantize / dequantize -----------------------------------------------------------------


@st.composite
def shapes(draw):
    ndim = draw(st.integers(0, 3))
    if ndim == 1:
        return (draw(st.sampled_from(LENGTHS)),)
    return tuple(draw(st.lists(st.sampled_from(DIMS), min_size=ndim, max_size=ndim)))


@st.composite
def quant_params(draw, shape, dtype, narrow):
    """(scale, zero_point, axis): per tensor, per channel (1-D arrays), or a scalar with axis."""
    lo, hi = Q_RANGE[dtype]
    if narrow:
        lo = -127
    gran = draw(st.sampled_from(["tensor", "channel", "scalar_axis"]) if shape else st.just("tensor"))
    axis = None
    n = 1
    if gran != "tensor":
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        n = shape[axis]
    s_vals = channel_values(draw, scales, max(n, 1))
    z_vals = channel_values(draw, st.one_of(st.sampled_from([lo, hi, 0 if lo < 0 else 128]), st.integers(lo, hi)),
                            max(n, 1))
    if gran == "channel":
        s_arr, z_arr = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
        sdt = draw(st.sampled_from([np.float32, np.float64]))
        zdt = draw(st.sampled_from([np.int32, np.int64, np.int8 if dtype == "int8" else np.uint8]))
        return per_channel(s_vals, n, s_arr, sdt), per_channel(z_vals, n, z_arr, zdt), axis
    scale = draw(st.sampled_from([float, np.float32, np.float64]))(s_vals[0])
    return scale, draw(st.sampled_from([int, np.int64]))(z_vals[0]), axis


def along(values, axis, ndim) -> np.ndarray:
    """A scalar or per-channel parameter, shaped to broadcast against an array of ``ndim``
    dimensions (channels along ``axis``)."""
    v = np.asarray(values)
    if v.ndim == 1:
        shape = [1] * ndim
        shape[axis] = v.shape[0]
        v = v.reshape(shape)
    return v


@st.composite
def quantize_cases(draw):
    dtype = draw(st.sampled_from(["int8", "uint8"]))
    narrow = dtype == "int8" and draw(st.booleans())
    shape = draw(shapes())
    scale, zp, axis = draw(quant_params(shape, dtype, narrow))
    x = draw(arrays(shape, "float32", [draw(float_fill())]))
    scaled = draw(st.booleans())
    out = draw(st.sampled_from([None, "out", "out+1"]))
    return dict(x=x, scaled=scaled, scale=scale, zero_point=zp, axis=axis, dtype=dtype, narrow_range=narrow, out=out)


@ISAS
@FUZZ
@given(case=quantize_cases())
def test_quantize(isa, case):
    scale, zp = built(case["scale"]), built(case["zero_point"])
    unit = along(np.asarray(scale, np.float32), case["axis"], len(case["x"].shape))
    x = case["x"].build(unit=unit if case["scaled"] else None)
    kw = dict(axis=case["axis"], dtype=np.dtype(case["dtype"]), narrow_range=case["narrow_range"])
    names = iq.kernel_names(isa)
    differential(isa, f"quantize on {isa}",
                 lambda f, out: f.quantize(x, scale, zp, out=out, **kw),
                 [x, np.asarray(scale), np.asarray(zp)], case["out"],
                 kernels=lambda: {names["quantize"], names["quantize_channels"]})


@st.composite
def dequantize_cases(draw):
    dtype = draw(st.sampled_from(["int8", "uint8"]))
    shape = draw(shapes())
    scale, zp, axis = draw(quant_params(shape, dtype, False))
    q = draw(arrays(shape, dtype))
    out = draw(st.sampled_from([None, "out", "out+1"]))
    return dict(q=q, scale=scale, zero_point=zp, axis=axis, out=out)


@ISAS
@FUZZ
@given(case=dequantize_cases())
def test_dequantize(isa, case):
    scale, zp = built(case["scale"]), built(case["zero_point"])
    q = case["q"].build(zp=along(zp, case["axis"], len(case["q"].shape)))
    names = iq.kernel_names(isa)
    differential(isa, f"dequantize on {isa}",
                 lambda f, out: f.dequantize(q, scale, zp, axis=case["axis"], out=out),
                 [q, np.asarray(scale), np.asarray(zp)], case["out"],
                 kernels=lambda: {v for k, v in names.items() if k.startswith("dequantize")})


# --- the epilogue (qgemm, qconv2d) ---------------------------------------------------------


@st.composite
def epilogues(draw, n: int):
    """qgemm/qconv2d's epilogue arguments for ``n`` output channels: the scales (the second per
    channel or not), the output kind (float32, or requantized to int8/uint8 with out_scale and
    out_zero_point), bias (none, float or int32, per channel or scalar, ordinary or extreme), relu."""
    a_scale = ep_scales(draw)
    per_ch = draw(st.booleans())
    b_vals = ep_scales(draw, max(n, 1))
    b_scale = per_channel(b_vals, n, per_ch, draw(st.sampled_from([np.float32, np.float64])))
    kind = draw(st.sampled_from(["float32", "int8", "uint8"]))
    kw = dict(relu=draw(st.booleans()))
    if kind != "float32":
        kw.update(out_scale=ep_scales(draw), out_zero_point=draw(zero_points(kind)), out_dtype=np.dtype(kind))
    if chance(draw, 15):  # non-finite, huge or past int32: refused when requantizing
        bias = draw(st.sampled_from(["float_extreme"] + (["int32_extreme"] if kind != "float32" else [])))
    else:
        bias = draw(st.sampled_from(["none", "float", "float64", "scalar"] + (["int32"] if kind != "float32" else [])))
    kw["bias"] = None if bias == "none" else Bias(bias, n, draw(SEEDS), draw(st.integers(0, 31)))
    return a_scale, b_scale, kw


@dataclass(frozen=True)
class Bias:
    """A recipe for a bias: its ``kind``, ``n`` values drawn from ``seed`` (int32: below 2**bits)."""

    kind: str
    n: int
    seed: int
    bits: int

    def build(self):
        return _bias(self.kind, self.n, self.seed, self.bits)


def _bias(kind, n, seed, bits):
    rng = np.random.default_rng(seed)
    if kind == "float":
        return (rng.normal(0, 1, n) * 2.0**rng.integers(-20, 20)).astype(np.float32)
    if kind == "float_extreme":
        return rng.choice(np.array([0.0, -0.0, 1e-45, 1e30, -1e30, FLT_MAX, -FLT_MAX, np.inf, -np.inf, np.nan],
                                   np.float32), n)
    if kind == "float64":
        return rng.normal(0, 1000, n)
    if kind == "scalar":
        return float(rng.normal(0, 100))
    if kind == "int32":
        return rng.integers(-(2**bits), 2**bits, n, dtype=np.int64).astype(np.int32)
    if kind == "int32_extreme":
        return rng.choice(np.array([INT32_MIN, INT32_MAX, -1, 0, 1, 2**30], np.int32), n)
    raise AssertionError(kind)


# --- GEMM ----------------------------------------------------------------------------------


@st.composite
def gemm_cases(draw, quantized: bool):
    adt = draw(st.sampled_from(["int8", "uint8"]))
    if chance(draw, 5):  # K at the exactness bounds: one or two rows, a few columns
        lead, k, n = (draw(st.sampled_from([1, 2])),), draw(st.sampled_from(K_BIG)), draw(st.sampled_from([1, 2, 3]))
    elif chance(draw, 4):  # M * N * K >= 20M: enough work for the thread pool (csrc/ops/gemm.cc)
        lead = tuple(draw(st.sampled_from([(128,), (131,), (2, 65)])))
        k, n = draw(st.sampled_from([509, 512, 515])), draw(st.sampled_from([320, 321, 337]))
    else:
        lead = tuple(draw(st.lists(st.sampled_from(ROWS), min_size=0, max_size=2)))
        k, n = draw(st.sampled_from(K_SIZES)), draw(st.sampled_from(N_SIZES))
        assume(int(np.prod(lead)) * k * n <= 1_000_000)  # the int64 reference matmul stays fast
    a_zp = draw(st.sampled_from([int, np.int64, np.int8 if adt == "int8" else np.uint8]))(
        draw(zero_points(adt)))
    zp_vals = channel_values(draw, zero_points("int8"), max(n, 1))
    b_zp = per_channel(zp_vals, n, draw(st.booleans()), draw(st.sampled_from([np.int32, np.int64])))
    case = dict(a=draw(arrays(lead + (k,), adt)), b=draw(arrays((k, n), "int8")), a_zero_point=a_zp,
                b_zero_point=b_zp, pack_isa=draw(st.sampled_from(AVAILABLE_ISAS)),
                threads=draw(st.sampled_from([1, 2, 3])), out=draw(st.sampled_from([None, "out", "out+1"])))
    if quantized:
        case["a_scale"], case["b_scale"], case["kw"] = draw(epilogues(n))
    return case


def _gemm_inputs(case, form):
    """(a, b or PackedWeights, the b_zero_point keyword, the parameters, inputs to check unchanged)."""
    p = built(case)
    a = case["a"].build(zp=p["a_zero_point"])
    b_zp = p["b_zero_point"]
    b = case["b"].build(zp=np.asarray(b_zp).reshape(-1)[0] if np.size(b_zp) else 0)
    params = [np.asarray(p[k]) for k in ("b_zero_point", "b_scale") if k in p]
    if p.get("kw", {}).get("bias") is not None:
        params.append(np.asarray(p["kw"]["bias"]))
    if form == "packed":  # packed under pack_isa: used under another path it packs again
        with iq.use_isa(case["pack_isa"]):
            return a, iq.pack_weights(b, zero_point=b_zp), {}, p, [a, b] + params
    return a, b, {"b_zero_point": b_zp}, p, [a, b] + params


@ISAS
@FORMS
@FUZZ
@given(case=gemm_cases(False))
def test_gemm(isa, form, case):
    a, b, zkw, p, inputs = _gemm_inputs(case, form)
    gemm_kernel = iq.kernel_names(isa)["gemm"]
    differential(isa, f"gemm ({form}) on {isa}",
                 lambda f, out: f.gemm(a, b, a_zero_point=p["a_zero_point"], out=out, **zkw),
                 inputs, case["out"], case["threads"], kernels=lambda: {gemm_kernel})


@ISAS
@FORMS
@FUZZ
@given(case=gemm_cases(True))
def test_qgemm(isa, form, case):
    a, b, zkw, p, inputs = _gemm_inputs(case, form)
    gemm_kernel = iq.kernel_names(isa)["gemm"]
    differential(isa, f"qgemm ({form}) on {isa}",
                 lambda f, out: f.qgemm(a, b, p["a_scale"], p["b_scale"], a_zero_point=p["a_zero_point"], out=out,
                                        **zkw, **p["kw"]),
                 inputs, case["out"], case["threads"], kernels=lambda: {gemm_kernel})


# --- convolution ---------------------------------------------------------------------------

C_SIZES = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33]
OC_SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33]


#: What a convolution case aims at (the plan's kind, as csrc/ops/conv_plan.cc chooses it): any
#: small geometry (most cases), a 1x1 stride-1 unpadded kernel (a plain GEMM: gemm_in_place,
#: conv1x1_nchw), the implicit GEMM (no horizontal dilation, KW * C/groups a multiple of 4,
#: output rows at least twice the vnni4 tile height: wide images), NCHW depthwise on planes
#: (horizontal stride <= 2, KW <= 4, no horizontal dilation; wide images for the plane kernels).
CONV_TARGETS = ["any", "any", "any", "pointwise", "implicit", "depthwise_nchw"]


@st.composite
def conv_cases(draw, quantized: bool):
    xdt = draw(st.sampled_from(["int8", "uint8"]))
    target = draw(st.sampled_from(CONV_TARGETS))
    layout = "NCHW" if target == "depthwise_nchw" else draw(st.sampled_from(["NCHW", "NHWC"]))
    if target == "depthwise_nchw":
        kind = "depthwise"
    elif target == "implicit":  # (groups with C/groups a multiple of 4 take the small-group kernels)
        kind = "dense"
    elif target == "pointwise":
        kind = draw(st.sampled_from(["dense", "dense", "depthwise", "groups", "small_groups"]))
    else:
        kind = draw(st.sampled_from(["dense", "depthwise", "groups", "small_groups"]))
    if kind == "dense":
        groups, c, oc = 1, draw(st.sampled_from(C_SIZES)), draw(st.sampled_from(OC_SIZES))
        if target == "implicit":
            c = draw(st.sampled_from([4, 8, 12, 16, 32]))
    elif kind == "depthwise":
        groups = c = oc = draw(st.sampled_from(C_SIZES + [48, 63, 64, 65]))
    elif kind == "groups":
        groups = draw(st.sampled_from([2, 4]))
        c, oc = groups * draw(st.integers(1, 5)), groups * draw(st.integers(1, 9))
    else:  # C/groups a multiple of 4 (the small-group kernels' lanes)
        groups = draw(st.sampled_from([2, 3, 4, 8]))
        c, oc = groups * draw(st.sampled_from([4, 8])), groups * draw(st.sampled_from([1, 2, 3, 4, 5, 8, 16, 17]))
    pointwise = target == "pointwise"
    kh, kw = (1, 1) if pointwise else (draw(st.integers(1, 5)), draw(st.integers(1, 4 if target == "depthwise_nchw" else 5)))
    sh, sw = (1, 1) if pointwise else (draw(st.integers(1, 3)), draw(st.integers(1, 2 if target == "depthwise_nchw" else 3)))
    dh, dw = draw(st.integers(1, 2)), 1 if target in ("implicit", "depthwise_nchw") else draw(st.integers(1, 2))
    pform = draw(st.sampled_from(["int", "pair", "quad"]))
    pads = [0] * 4 if pointwise else draw(st.lists(st.integers(0, 3), min_size=4, max_size=4))
    pt, pl, pb, pr = {"int": [pads[0]] * 4, "pair": pads[:2] * 2, "quad": pads}[pform]
    padding = {"int": pads[0], "pair": tuple(pads[:2]), "quad": tuple(pads)}[pform]
    # Large enough for the dilated kernel (the rare too-small image is an error on both sides).
    h_min = max(1, dh * (kh - 1) + 1 - pt - pb)
    w_min = max(1, dw * (kw - 1) + 1 - pl - pr)
    wide = target in ("implicit", "depthwise_nchw") and not chance(draw, 30)
    if chance(draw, 4):
        h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    elif wide:  # output rows of 10 (twice the tallest tile) to about 40 columns
        h = draw(st.integers(h_min, max(h_min, 5)))
        w = draw(st.integers(w_min + 9 * sw, w_min + 39 * sw))
    else:
        h, w = draw(st.integers(h_min, max(h_min, 9))), draw(st.integers(w_min, max(w_min, 9)))
    n = 0 if chance(draw, 4) else draw(st.integers(1, 2))
    stride = draw(st.sampled_from([sh, (sh, sw), [sh, sw]]) if sh == sw else st.sampled_from([(sh, sw), [sh, sw]]))
    dilation = draw(st.sampled_from([dh, (dh, dw)]) if dh == dw else st.just((dh, dw)))
    x_zp = draw(st.sampled_from([int, np.int32]))(draw(zero_points(xdt)))
    zp_vals = channel_values(draw, zero_points("int8"), oc)
    w_zp = per_channel(zp_vals, oc, draw(st.booleans()), np.int32)
    case = dict(x=draw(arrays(shape_in(layout, n, c, h, w), xdt)), w=draw(arrays((oc, c // groups, kh, kw), "int8")),
                geometry=dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout),
                x_zero_point=x_zp, w_zero_point=w_zp, pack_isa=draw(st.sampled_from(AVAILABLE_ISAS)),
                threads=draw(st.sampled_from([1, 2, 3])), out=draw(st.sampled_from([None, "out", "out+1"])))
    if quantized:
        case["x_scale"], case["w_scale"], case["kw"] = draw(epilogues(oc))
    return case


def _conv_inputs(case, form):
    """(x, w or PackedConvWeights, the w_zero_point keyword, the weights conv_plan takes, the
    parameters, inputs to check unchanged)."""
    p = built(case)
    x = case["x"].build(zp=p["x_zero_point"])
    w_zp = p["w_zero_point"]
    w = case["w"].build(zp=np.reshape(w_zp, (-1, 1, 1, 1)) if np.ndim(w_zp) else w_zp)
    groups = case["geometry"]["groups"]
    params = [np.asarray(p[k]) for k in ("w_zero_point", "w_scale") if k in p]
    if p.get("kw", {}).get("bias") is not None:
        params.append(np.asarray(p["kw"]["bias"]))
    if form == "packed":
        with iq.use_isa(case["pack_isa"]):
            pw = iq.pack_conv_weights(w, groups=groups, zero_point=w_zp)
        return x, pw, {}, (lambda: pw), p, [x, w] + params
    # conv_plan of the weights conv2d packs for itself (their zero points matter to the plan).
    return (x, w, {"w_zero_point": w_zp}, lambda: iq.pack_conv_weights(w, groups=groups, zero_point=w_zp), p,
            [x, w] + params)


def _plan_kernels(isa, x, plan_w, geometry, out_dtype):
    """The kernels ``iq.conv_plan`` names for this convolution on ``isa``."""
    def kernels():
        with iq.use_isa(isa):
            plan = iq.conv_plan(x, plan_w(), out_dtype=out_dtype, **geometry)
        event(f"plan {plan.kind}")
        return {name for _, name in plan.kernels}
    return kernels


@ISAS
@FORMS
@FUZZ
@given(case=conv_cases(False))
def test_conv2d(isa, form, case):
    x, w, zkw, plan_w, p, inputs = _conv_inputs(case, form)
    geo = case["geometry"]
    differential(isa, f"conv2d ({form}) on {isa}",
                 lambda f, out: f.conv2d(x, w, x_zero_point=p["x_zero_point"], out=out, **geo, **zkw),
                 inputs, case["out"], case["threads"], kernels=_plan_kernels(isa, x, plan_w, geo, np.int32))


@ISAS
@FORMS
@FUZZ
@given(case=conv_cases(True))
def test_qconv2d(isa, form, case):
    x, w, zkw, plan_w, p, inputs = _conv_inputs(case, form)
    geo, kw = case["geometry"], p["kw"]
    differential(isa, f"qconv2d ({form}) on {isa}",
                 lambda f, out: f.qconv2d(x, w, p["x_scale"], p["w_scale"], x_zero_point=p["x_zero_point"],
                                          out=out, **geo, **zkw, **kw),
                 inputs, case["out"], case["threads"],
                 kernels=_plan_kernels(isa, x, plan_w, geo, kw.get("out_dtype", np.float32)))


# --- inputs with two faults that the fuzz found named differently ---------------------------------------------------------


def test_epilogue_column_order():
    """With a requantized output, a column whose multiplier overflows after a column whose float
    bias does not fit int32: both name the multiplier (every column's multiplier is checked first)."""
    a, b = np.zeros((1, 4), np.uint8), np.zeros((4, 2), np.int8)
    x, w = np.zeros((1, 1, 1, 1), np.uint8), np.zeros((2, 1, 1, 1), np.int8)
    kw = dict(out_scale=0.01, out_dtype=np.int8, bias=np.array([1.0, 0.0], np.float32))
    scales = np.array([1e-45, 1e38], np.float32)  # column 0: bias / 1e-45 overflows; column 1: 1e38 / 0.01 does
    assert_same_errors({
        "qgemm": (ValueError, "", lambda f: f.qgemm(a, b, 1.0, scales, **kw)),
        "qconv2d": (ValueError, "", lambda f: f.qconv2d(x, w, 1.0, scales, **kw)),
    })


def test_qconv2d_check_order():
    """qconv2d with both an invalid geometry and an invalid epilogue: both name the geometry."""
    x, w = np.zeros((1, 1, 1, 1), np.uint8), np.zeros((1, 1, 2, 2), np.int8)  # a 2x2 kernel on a 1x1 image
    assert_same_errors({
        "bias": (ValueError, "", lambda f: f.qconv2d(x, w, 1.0, 1e-45, out_scale=1.0, out_dtype=np.int8,
                                                   bias=np.array([1.0], np.float32))),
        "multiplier": (ValueError, "", lambda f: f.qconv2d(x, w, 1e30, 1e8, out_scale=1e-30, out_dtype=np.int8)),
    })
