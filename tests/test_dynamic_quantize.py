"""dynamic_quantize and the range kernels: every ISA path against the NumPy reference, bit for bit;
the reference against ONNX's own DynamicQuantizeLinear cases, the ONNX reference evaluator and
onnxruntime.

Conventions as in test_quantize.py: exact comparisons (float32 by bit pattern, NumPy scalars by
type and bits), random data seeded by the case.
"""
from __future__ import annotations

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import _core
from intquant_kernels import reference as ref

from exact import assert_same, rng_for

F32 = np.float32
MAX32 = float(np.finfo(np.float32).max)
TINY32 = 2.0**-149  # smallest float32 denormal
GRAIN = 1 << 16  # elements per task of the threaded drivers (csrc/ops/quantize.cc, kGrain)


# --- helpers ------------------------------------------------------------------


def same_scalar(got, want, what):
    """A NumPy scalar result: same type and the same bits."""
    assert type(got) is type(want), f"{what}: got {type(got).__name__}, expected {type(want).__name__}"
    assert_same(np.asarray(got), np.asarray(want), what)


def check(x, what="", **kw):
    """iq.dynamic_quantize(x, **kw) == reference.dynamic_quantize(x, **kw), every output; returns it."""
    got = iq.dynamic_quantize(x, **kw)
    want = ref.dynamic_quantize(x, **kw)
    assert isinstance(got, tuple) and len(got) == len(want) == (3 if kw.get("axis") is None else 2), what
    assert_same(got[0], want[0], f"{what} q")
    if len(want) == 3:
        same_scalar(got[1], want[1], f"{what} scale")
        same_scalar(got[2], want[2], f"{what} zero_point")
    else:
        assert_same(got[1], want[1], f"{what} scales")
    return got


def ran(call):
    """The kernels that ``call()`` ran, with how many times each; and its result."""
    before = iq.kernel_calls()
    result = call()
    after = iq.kernel_calls()
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}, result


def data(kind, shape, rng):
    """float32 test data of one kind: signs mixed or not, zeros, wide magnitudes."""
    n = int(np.prod(shape))
    if kind == "normal":
        x = rng.standard_normal(n) * 3
    elif kind == "negative":
        x = -rng.uniform(0.01, 5, n)
    elif kind == "positive":
        x = rng.uniform(0.01, 5, n)
    elif kind == "zeros":
        x = np.zeros(n)
    elif kind == "signed_zeros":
        x = np.where(rng.random(n) < 0.5, -0.0, 0.0)
    elif kind == "wide":  # magnitudes from denormal to near the float32 maximum
        x = rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-44, 37, n)
    elif kind == "sparse":  # mostly zeros, a few outliers
        x = np.where(rng.random(n) < 0.05, rng.standard_normal(n) * 100, 0.0)
    else:
        raise AssertionError(kind)
    return np.asarray(x, np.float32).reshape(shape)


KINDS = ["normal", "negative", "positive", "zeros", "signed_zeros", "wide", "sparse"]


# --- the range kernels ------------------------------------------------------------


def test_range_kernel_of_every_path(every_isa):
    """Each path's table has a range kernel of the same ISA family as its quantize kernel."""
    names = iq.kernel_names(every_isa)
    suffix = names["quantize"].rsplit("__", 1)[1]
    assert names["range"] == f"range_f32__{suffix}", names


def _np_range(x):
    if x.size == 0:
        return np.inf, -np.inf
    return float(np.min(x)), float(np.max(x))


@pytest.mark.parametrize("sentinel", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_value_range_every_length(every_isa, sentinel):
    """Every length up to past two steps of the widest kernel, inside a buffer whose guard
    elements are non-finite: a read outside x would show as all_finite False or a wrong extreme."""
    kernel = iq.kernel_names(every_isa)["range"]
    guard = 24
    for n in range(0, 200):
        rng = rng_for("range", n)
        buf = np.full(n + 2 * guard, sentinel, np.float32)
        x = buf[guard:guard + n]
        x[...] = data(KINDS[n % len(KINDS)], (n,), rng)
        calls, (lo, hi, finite) = ran(lambda: _core.value_range(every_isa, x))
        assert calls == ({kernel: 1} if n else {}), (n, calls)  # an empty x runs no kernel
        assert finite is True, n
        assert (lo, hi) == _np_range(x), (n, lo, hi)


def test_value_range_finds_every_non_finite(every_isa):
    """A NaN, +Inf or -Inf at any position (every lane, every tail) makes all_finite False; an
    extreme at any position is found."""
    for n in (1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100):
        rng = rng_for("range-pos", n)
        base = rng.uniform(-1, 1, n).astype(np.float32)
        for i in range(n):
            for bad in (np.nan, np.inf, -np.inf):
                x = base.copy()
                x[i] = bad
                assert _core.value_range(every_isa, x)[2] is False, (n, i, bad)
            for extreme in (-7.0, 7.0, MAX32, -MAX32):
                x = base.copy()
                x[i] = extreme
                lo, hi, finite = _core.value_range(every_isa, x)
                assert finite and (lo, hi) == _np_range(x), (n, i, extreme, lo, hi)


def test_value_range_threads_and_shapes(isa):
    """Large arrays run in tasks of GRAIN elements over threads: the extremes and a non-finite
    value are found in any task; any shape is taken as its elements in order."""
    n = 3 * GRAIN + 5
    rng = rng_for("range-big")
    x = rng.standard_normal(n).astype(np.float32)
    iq.set_num_threads(2)
    runs = _core.parallel_runs()
    for where in (0, GRAIN - 1, GRAIN, 2 * GRAIN + 7, n - 1):
        y = x.copy()
        y[where] = -50.0
        y[(where + GRAIN) % n] = 60.0
        assert _core.value_range(isa, y) == (-50.0, 60.0, True), where
        y[(where + 2 * GRAIN) % n] = np.nan
        assert _core.value_range(isa, y)[2] is False, where
    assert _core.parallel_runs() > runs, "no call ran on more than one thread"
    iq.set_num_threads(1)
    block = x[:5000].reshape(5, 1000)[:, :500]
    assert _core.value_range(isa, block.copy()) == _np_range(block) + (True,)
    assert _core.value_range(isa, np.array(-2.5, np.float32)) == (-2.5, -2.5, True)
    assert _core.value_range(isa, np.empty((3, 0), np.float32)) == (np.inf, -np.inf, True)


def test_value_range_arguments():
    x = np.arange(6, dtype=np.float32)
    with pytest.raises(TypeError, match="float32"):
        _core.value_range("scalar", x.astype(np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.value_range("scalar", x[::2])
    misaligned = np.zeros(29, np.uint8)[1:].view(np.float32)
    with pytest.raises(ValueError, match="aligned"):
        _core.value_range("scalar", misaligned)
    with pytest.raises(ValueError, match="unknown ISA"):
        _core.value_range("bogus", x)


# --- ONNX's DynamicQuantizeLinear cases (onnx/backend/test/case/node/dynamicquantizelinear.py) ---


def _f32(bits):
    return np.array(bits, np.uint32).view(np.float32)[()]


# (name, x, expected q, expected scale as float32 bits, expected zero point); the expected values
# are ONNX's own formula evaluated on these inputs (the scales are float32(5 / 255) and
# float32(4 / 255)).
ONNX_CASES = [
    ("dynamicquantizelinear", [0, 2, -3, -2.5, 1.34, 0.5],
     [153, 255, 0, 26, 221, 179], 0x3CA0A0A1, 153),
    ("max_adjusted", [-1.0, -2.1, -1.3, -2.5, -3.34, -4.0],
     [191, 121, 172, 96, 42, 0], 0x3C808081, 255),
    ("min_adjusted", np.reshape([1, 2.1, 1.3, 2.5, 3.34, 4.0, 1.5, 2.6, 3.9, 4.0, 3.0, 2.345], (3, 4)),
     [[64, 134, 83, 159], [213, 255, 96, 166], [249, 255, 191, 149]], 0x3C808081, 0),
]


@pytest.mark.parametrize("case", ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_onnx_cases(isa, case):
    _, x, q, scale_bits, zp = case
    x = np.asarray(x, np.float32)
    got = check(x, f"{isa} onnx {case[0]}")
    want_scale = _f32(scale_bits)
    assert want_scale == F32(5.0 if scale_bits == 0x3CA0A0A1 else 4.0) / F32(255.0)
    assert_same(got[0], np.array(q, np.uint8), "q")
    same_scalar(got[1], want_scale, "scale")
    same_scalar(got[2], np.uint8(zp), "zero_point")


def _onnx_reference_evaluator():
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (an optional peer: the 'bench' extra)")
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "y_scale", "y_zero_point"])
    graph = helper.make_graph(
        [node], "dql", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None),
         helper.make_tensor_value_info("y_scale", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("y_zero_point", TensorProto.UINT8, None)])
    return onnx, ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]))


def test_onnx_reference_evaluator():
    """The ONNX reference implementation agrees on its own cases and on random data; on an all-zero
    x it returns the scale 1/255 where onnxruntime (and this package) return 1.0 (README)."""
    _, ev = _onnx_reference_evaluator()
    inputs = [np.asarray(c[1], np.float32) for c in ONNX_CASES]
    for seed in range(20):
        rng = rng_for("onnx-ref", seed)
        inputs.append(data(KINDS[seed % 3], (int(rng.integers(1, 300)),), rng))
    for x in inputs:
        q, scale, zp = ref.dynamic_quantize(x)
        oq, oscale, ozp = ev.run(None, {"x": x})
        assert_same(q, oq, f"onnx reference q {x[:4]}")
        assert_same(np.asarray(scale), np.asarray(oscale), "scale")
        assert_same(np.asarray(zp), np.asarray(ozp), "zero_point")
    oq, oscale, ozp = ev.run(None, {"x": np.zeros(5, np.float32)})
    q, scale, zp = ref.dynamic_quantize(np.zeros(5, np.float32))
    assert_same(q, oq, "all zeros q")
    assert int(ozp) == int(zp) == 0
    assert float(oscale) == float(F32(1) / F32(255)) and scale == F32(1.0)


# --- onnxruntime ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ort_session():
    ort = pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not importable (an optional peer: the 'bench' extra)")
    pytest.importorskip("onnx", reason="onnx (to build the model for onnxruntime) is not installed")
    from onnx import TensorProto, helper

    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "y_scale", "y_zero_point"])
    graph = helper.make_graph(
        [node], "dql", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None),
         helper.make_tensor_value_info("y_scale", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("y_zero_point", TensorProto.UINT8, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _tie_data(rng, n):
    """x whose range makes the scale a power of two, so that many x / scale are exact .5 ties."""
    s = F32(2.0 ** int(rng.integers(-8, 4)))
    neg = int(rng.integers(0, 256))  # lo = -neg * s, hi = (255 - neg) * s: scale == s exactly
    k = rng.integers(-neg, 255 - neg, n).astype(np.float32)
    x = (k + F32(0.5)) * s
    x[: min(n, 2)] = [-neg * s, (255 - neg) * s][: min(n, 2)]
    return x


def ort_inputs():
    for seed in range(60):
        rng = rng_for("ort", seed)
        n = int(rng.integers(1, 5000))
        kind = KINDS[seed % len(KINDS)]
        yield pytest.param(f"{kind}-{seed}", data(kind, (n,), rng), id=f"{kind}-{seed}")
        yield pytest.param(f"ties-{seed}", _tie_data(rng, n), id=f"ties-{seed}")
    yield pytest.param("denormal", np.array([1e-40, 5e-41, -3e-41, 0.0], np.float32), id="denormal")
    yield pytest.param("single", np.array([-3.25], np.float32), id="single")
    yield pytest.param("2d", rng_for("ort-2d").standard_normal((37, 41)).astype(np.float32), id="2d")


@pytest.mark.parametrize("name, x", list(ort_inputs()))
def test_onnxruntime_bit_exact(ort_session, isa, name, x):
    oq, oscale, ozp = ort_session.run(None, {"x": x})
    q, scale, zp = check(x, f"{isa} {name}")
    assert_same(q, oq, f"{isa} {name}: q against onnxruntime")
    assert_same(np.asarray(scale), np.asarray(oscale, np.float32), f"{name}: scale against onnxruntime")
    assert_same(np.asarray(zp), np.asarray(ozp, np.uint8), f"{name}: zero_point against onnxruntime")


# --- per tensor: every path against the reference ------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_per_tensor_every_length(every_isa, kind):
    """Every length through the SIMD tails, and the path's range and quantize kernels ran."""
    names = iq.kernel_names(every_isa)
    for n in list(range(1, 71)) + [127, 128, 129, 1000]:
        x = data(kind, (n,), rng_for("tensor", kind, n))
        calls, _ = ran(lambda: check(x, f"{every_isa} {kind} n={n}"))
        assert calls.get(names["range"], 0) >= 1 and calls.get(names["quantize"], 0) >= 1, calls
        assert set(calls) == {names["range"], names["quantize"]}, calls


def test_per_tensor_ties(isa):
    for seed in range(20):
        rng = rng_for("tensor-ties", seed)
        x = _tie_data(rng, int(rng.integers(3, 700)))
        q, scale, zp = check(x, f"{isa} ties {seed}")
        assert np.log2(scale) == int(np.log2(scale)), scale  # the scale is the power of two


def test_per_tensor_known_values():
    """Pinned by hand: lo, hi, scale and zero point in exact binary fractions."""
    # lo = -1, hi = 254 / 128: hi - lo = 382 / 128, scale = 382 / 128 / 255 (rounded to float32)
    x = np.array([-1.0, 0.0, 254 / 128], np.float32)
    q, scale, zp = check(x)
    assert scale == (F32(254 / 128) - F32(-1.0)) / F32(255)
    assert zp == round(1 / float(scale))
    # all positive: lo = 0, zero point 0; all negative: hi = 0, zero point 255
    assert check(np.array([2.0, 4.0], np.float32))[2] == 0
    assert check(np.array([-2.0, -4.0], np.float32))[2] == 255
    # all zeros, either sign, and empty: scale 1, zero point 0, as onnxruntime
    for x in (np.zeros(7, np.float32), -np.zeros(7, np.float32), np.zeros((0, 3), np.float32)):
        q, scale, zp = check(x)
        assert scale == F32(1.0) and zp == 0 and not q.any() and q.shape == x.shape
    # a range so small that (hi - lo) / 255 is 0 in float32: scale 1 as for all zeros (onnxruntime
    # returns scale 0 and zero point 255 here)
    q, scale, zp = check(np.array([TINY32, 0.0, -TINY32], np.float32))
    assert scale == F32(1.0) and zp == 0 and not q.any()
    # one element, 0-d
    q, scale, zp = check(np.array(-3.0, np.float32))
    assert q.shape == () and int(q) == 0 and zp == 255 and scale == F32(3.0) / F32(255)
    # the largest finite range: hi - lo == MAX32 exactly
    check(np.array([MAX32, 0.0, -1.0], np.float32))


def test_per_tensor_types():
    q, scale, zp = iq.dynamic_quantize(np.ones((2, 3), np.float32))
    assert q.dtype == np.uint8 and q.shape == (2, 3) and q.flags.c_contiguous
    assert type(scale) is np.float32 and type(zp) is np.uint8
    assert iq.dynamic_quantize(np.ones(3, np.float32), dtype=np.uint8)[0].dtype == np.uint8


@pytest.mark.parametrize("threads", [1, 2])
def test_per_tensor_large(isa, threads):
    """Arrays over several tasks: the extremes in any task set the scale; threads change nothing."""
    iq.set_num_threads(threads)
    n = 3 * GRAIN + 17
    rng = rng_for("tensor-large", isa)
    x = data("normal", (n,), rng)
    for where in (5, GRAIN + 3, n - 1):
        y = x.copy()
        y[where] = -40.0
        y[(where + 2 * GRAIN) % n] = 25.0
        check(y, f"{isa} threads={threads} extremes at {where}")
    check(_tie_data(rng, n).reshape(-1, 11 * 13), f"{isa} threads={threads} ties")


def test_non_contiguous_input(isa):
    x = rng_for("strided").standard_normal((40, 30)).astype(np.float32)
    check(x[:, ::3], f"{isa} strided")
    check(x.T, f"{isa} transposed", axis=-1)
    check(x[::2], f"{isa} strided rows", axis=1)


# --- per slice (symmetric int8) --------------------------------------------------------


ROW_SHAPES = [(1, 1), (3, 5), (7, 64), (5, 65), (4, 129), (2, 1000), (17, 33), (1, 70), (300, 1)]


@pytest.mark.parametrize("kind", KINDS)
def test_per_row_last_axis(every_isa, kind):
    """One scale per row; the range kernel ran once per row and the path's quantize kernel ran."""
    names = iq.kernel_names(every_isa)
    for shape in ROW_SHAPES + [(1, n) for n in range(1, 71)]:
        x = data(kind, shape, rng_for("rows", kind, shape))
        calls, (q, scales) = ran(lambda: check(x, f"{every_isa} {kind} {shape}", axis=-1))
        assert scales.shape == shape[:-1]
        assert calls.get(names["range"]) == shape[0], calls
        assert calls.get(names["quantize"]) == shape[0], calls


AXIS_CASES = [((3, 5, 7), 0), ((3, 5, 7), 1), ((3, 5, 7), 2), ((3, 5, 7), -2), ((3, 5, 7), -3),
              ((2, 3, 4, 5), 1), ((2, 3, 4, 5), 2), ((40,), 0), ((9, 1), 0), ((1, 9), 1), ((6, 70), 0)]


@pytest.mark.parametrize("shape, axis", AXIS_CASES, ids=[f"{s}-{a}" for s, a in AXIS_CASES])
def test_per_slice_axes(isa, shape, axis):
    """axis is the axis reduced over: scales has x's shape without it; each slice on its own equals
    the per-row result of that slice."""
    x = data("normal", shape, rng_for("axes", shape, axis))
    q, scales = check(x, f"{isa} {shape} axis={axis}", axis=axis)
    want_shape = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
    assert q.shape == shape and q.flags.c_contiguous and scales.shape == want_shape
    moved = np.moveaxis(x, axis, -1)
    for idx in np.ndindex(*want_shape):
        row = np.ascontiguousarray(moved[idx])
        s = np.max(np.abs(row)) / F32(127)
        assert scales[idx] == s
        assert_same(np.moveaxis(q, axis, -1)[idx], iq.quantize(row, s, narrow_range=True), f"slice {idx}")


def test_per_row_ties_and_zero_rows(isa):
    rng = rng_for("row-ties")
    rows = []
    for r in range(30):
        s = F32(2.0 ** int(rng.integers(-8, 4)))
        k = rng.integers(-127, 127, 50).astype(np.float32)
        row = (k + F32(0.5)) * s
        row[0] = 127 * s * (1 if r % 2 else -1)  # amax = 127 s: scale == s, every other x/s a tie
        rows.append(row)
    x = np.stack(rows)
    x[3] = 0.0
    x[7] = -0.0
    x[11] = TINY32 * np.sign(rng.standard_normal(50))  # amax / 127 underflows to 0: scale 1
    q, scales = check(x, f"{isa} ties", axis=1)
    assert scales[3] == scales[7] == scales[11] == F32(1.0)
    assert not q[3].any() and not q[7].any() and not q[11].any()
    assert np.all(np.abs(q.astype(int)) <= 127)


def test_per_row_known_values():
    x = np.array([[-2.54, 1.0, 0.5], [0.0, 0.0, 0.0], [1.27, -0.0, 0.635]], np.float32)
    q, scales = check(x, axis=-1)
    assert scales.tolist() == [F32(2.54) / F32(127), 1.0, F32(1.27) / F32(127)]
    assert q[0, 0] == -127 and q[2, 0] == 127 and q[1].tolist() == [0, 0, 0]
    # a 1-D x has one slice: scales is 0-d
    q, scales = check(np.array([1.0, -4.0], np.float32), axis=0)
    assert scales.shape == () and scales == F32(4.0) / F32(127) and q.tolist() == [32, -127]
    # empty slices and no slices
    assert check(np.zeros((3, 0), np.float32), axis=1)[1].tolist() == [1.0, 1.0, 1.0]
    assert check(np.zeros((0, 4), np.float32), axis=1)[1].shape == (0,)
    assert check(np.zeros((0, 4), np.float32), axis=0)[1].tolist() == [1.0] * 4


@pytest.mark.parametrize("threads", [1, 2])
def test_per_row_large(isa, threads):
    """Many rows over several tasks (and rows longer than a task): threads change nothing."""
    iq.set_num_threads(threads)
    for shape in [(4096, 40), (300, 1001), (3, GRAIN + 9)]:
        x = data("normal", shape, rng_for("rows-large", shape))
        x[shape[0] // 2] = 0.0
        check(x, f"{isa} threads={threads} {shape}", axis=-1)
        check(x, f"{isa} threads={threads} {shape} axis=0", axis=0)


# --- errors -------------------------------------------------------------------------


def raises_same(exc, match, *args, **kw):
    """Both implementations raise exc with the same message, matching ``match``."""
    msgs = []
    for impl in (iq, ref):
        with pytest.raises(exc, match=match) as info:
            impl.dynamic_quantize(*args, **kw)
        msgs.append(str(info.value))
    assert msgs[0] == msgs[1], msgs


@pytest.mark.parametrize("axis", [None, -1, 0])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_is_an_error(isa, axis, bad):
    for shape, pos in [((5,), (4,)), ((3, 70), (2, 69)), ((3, 70), (0, 0)), ((200, 17), (150, 3))]:
        x = data("normal", shape, rng_for("bad", shape))
        x[pos] = bad
        where = ", ".join(map(str, pos))
        raises_same(ValueError, rf"x must be finite, got x\[{where}\] = {bad}", x, axis=axis)


def test_range_overflow_is_an_error():
    raises_same(ValueError, "overflows float32", np.array([MAX32, -1e38], np.float32))
    # per slice, the same values have a finite scale (amax / 127)
    check(np.array([MAX32, -MAX32], np.float32), axis=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int8, np.int32, np.uint8, bool])
def test_wrong_input_dtype_is_a_type_error(dtype):
    x = np.ones((2, 3), dtype)
    raises_same(TypeError, "x must be a float32 array", x)
    raises_same(TypeError, "x must be a float32 array", x, axis=1)
    raises_same(TypeError, "x must be a float32 array", [[1.0, 2.0]])  # a list is float64


def test_bad_axis_and_dtype():
    x = np.ones((2, 3), np.float32)
    raises_same(ValueError, r"axis=2 is out of range", x, axis=2)
    raises_same(ValueError, r"axis=-3 is out of range", x, axis=-3)
    raises_same(ValueError, r"axis=0 is out of range", np.float32(1.0), axis=0)
    raises_same(TypeError, "axis must be an integer", x, axis=1.0)
    raises_same(ValueError, "dtype must be np.int8|got dtype=uint8", x, axis=1, dtype=np.uint8)
    raises_same(ValueError, "ONNX DynamicQuantizeLinear, which gives uint8; got dtype=int8", x, dtype=np.int8)
    raises_same(TypeError, "dtype must be int8 or uint8", x, dtype=np.float32)
    raises_same(TypeError, "dtype must be int8 or uint8", x, axis=0, dtype=np.int16)
    # positional axis / dtype are not accepted (keyword-only, as in quantize)
    with pytest.raises(TypeError):
        iq.dynamic_quantize(x, 1)
