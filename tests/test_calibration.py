"""intquant_kernels.calibration against its NumPy reference: the same histogram
counts exactly and the same chosen thresholds, on every ISA path; the data
rules; scale_zero_point."""
from __future__ import annotations

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import calibration as cal
from intquant_kernels import reference as ref

from exact import rng_for

PERCENTILES = (99.9, 99.99, 99.999, 99.9999)


def _data(name: str, n: int = 60_000) -> np.ndarray:
    rng = rng_for("calibration", name, n)
    if name == "normal":
        x = rng.standard_normal(n)
    elif name == "laplace":
        x = rng.laplace(size=n)
    elif name == "student_t":
        x = rng.standard_t(3, n)
    elif name == "all_equal":
        x = np.full(n, -0.37)
    elif name == "all_zero":
        x = np.zeros(n)
    elif name == "outliers":
        x = rng.standard_normal(n)
        x[rng.choice(n, 5, replace=False)] = rng.choice([-1, 1], 5) * rng.uniform(200, 1000, 5)
    elif name == "relu":
        x = np.maximum(rng.standard_normal(n), 0)
    else:
        raise KeyError(name)
    return x.astype(np.float32)


DATA = ("normal", "laplace", "student_t", "all_equal", "all_zero", "outliers", "relu")


def _pair(num_bins, unsigned, x, batches):
    """The fast calibrator and the reference fed the same batches."""
    fast = cal.HistogramCalibrator(num_bins, unsigned=unsigned)
    slow = ref.HistogramCalibrator(num_bins, unsigned=unsigned)
    for b in np.array_split(x, batches):
        fast.collect(b)
        slow.collect(b)
    return fast, slow


def _methods():
    yield "entropy", {}
    yield "mse", {}
    for p in PERCENTILES:
        yield "percentile", {"percentile": p}


@pytest.mark.parametrize("batches", [1, 100])
@pytest.mark.parametrize("name", DATA)
def test_histogram_equals_reference(name, batches):
    x = _data(name)
    num_bins = 2048 if batches == 1 else 512  # the reference searches take O(bins^2)
    fast, slow = _pair(num_bins, name == "relu", x, batches)
    np.testing.assert_array_equal(fast.counts, slow.counts)
    assert fast.counts.sum() == x.size
    if name == "all_zero":
        assert fast.bin_edges is None and slow.bin_edges is None
    else:
        np.testing.assert_array_equal(fast.bin_edges, slow.bin_edges)
    for method, kw in _methods():
        got, want = fast.compute_amax(method, **kw), slow.compute_amax(method, **kw)
        assert got == want, (method, kw, got, want)
        if name == "all_zero":
            assert got == 0.0
        else:
            assert 0 < got <= fast.bin_edges[-1]


@pytest.mark.parametrize("name", ["normal", "laplace", "outliers", "relu"])
def test_search_options_equal_reference(name):
    x = _data(name, 20_000)
    fast, slow = _pair(1024, name == "relu", x, 3)
    for start_bin, stride in [(1, 1), (128, 7), (300, 3), (1024, 1)]:
        for method in ("entropy", "mse"):
            if method == "entropy" and start_bin == 1:
                continue  # the same candidates as 128 (entropy starts at the levels)
            got = fast.compute_amax(method, start_bin=start_bin, stride=stride)
            assert got == slow.compute_amax(method, start_bin=start_bin, stride=stride), (method, start_bin, stride)


def test_entropy_candidates_start_at_the_levels():
    x = _data("laplace", 20_000)
    for unsigned, levels in [(False, 128), (True, 256)]:
        fast, slow = _pair(2048, unsigned, x, 1)
        edges = fast.bin_edges
        # start_bin below the number of levels is raised to it
        assert fast.compute_amax("entropy", start_bin=1) == fast.compute_amax("entropy", start_bin=levels)
        assert fast.compute_amax("entropy", start_bin=2048) == edges[2048]
        assert fast.compute_amax("entropy") >= edges[levels]


def test_percentile_within_one_bin_of_numpy():
    """Within one bin width of numpy.percentile with method="inverted_cdf": the
    smallest sample with at least p % of the samples at or below it, the rule the
    histogram applies to its bins. (NumPy's default interpolates linearly between
    two samples, which can lie several bins apart in a sparse tail.)"""
    for name in ("normal", "laplace", "student_t", "outliers", "relu"):
        x = _data(name, 200_000)
        h = cal.HistogramCalibrator(2048)
        h.collect(x)
        width = h.bin_edges[1]
        a = np.abs(x).astype(np.float64)
        for p in PERCENTILES + (50.0, 100.0):
            got = h.compute_amax("percentile", percentile=p)
            want = np.percentile(a, p, method="inverted_cdf")
            assert want <= got <= want + width, (name, p)


def test_percentile_rule_by_hand():
    h = ref.HistogramCalibrator(4)
    h.collect(np.array([0.1, 0.1, 0.6, 0.6, 0.6, 0.9, 1.5, 1.9], np.float32))  # range 1.9, width 0.475
    np.testing.assert_array_equal(h.counts, [2, 4, 0, 2])
    w = h.bin_edges[1]
    assert h.compute_amax("percentile", percentile=25) == 1 * w
    assert h.compute_amax("percentile", percentile=25.1) == 2 * w
    assert h.compute_amax("percentile", percentile=75) == 2 * w
    assert h.compute_amax("percentile", percentile=75.1) == 4 * w


def test_entropy_by_hand():
    """Four bins, two levels: the divergences written out."""
    counts = np.array([4, 2, 0, 2], np.int64)

    h = ref.HistogramCalibrator(4)
    # i = 2: P = [4, 4] (2 clipped into bin 1), levels {0}, {1}: Q = [4, 2] -> p = [.5, .5], q = [2/3, 1/3]
    # i = 3: bin 2 gets the clipped 2 but is empty as counted -> inf
    # i = 4: P = [4, 2, 0, 2]; levels {0, 1}, {2, 3}: Q = [3, 3, 0, 2]
    d = h._divergences(counts, np.array([2, 3, 4]), 2)
    p2, q2 = np.array([0.5, 0.5]), np.array([2 / 3, 1 / 3])
    p4, q4 = np.array([4, 2, 2]) / 8, np.array([3, 3, 2]) / 8
    assert d[0] == pytest.approx(np.sum(p2 * np.log(p2 / q2)), rel=1e-15)
    assert d[1] == np.inf
    assert d[2] == pytest.approx(np.sum(p4 * np.log(p4 / q4)), rel=1e-15)
    got = iq._core.histogram_divergences(counts, np.array([2, 3, 4], np.int64), 2)
    assert got[1] == np.inf and got[0] == pytest.approx(d[0], rel=1e-13) and got[2] == pytest.approx(d[2], rel=1e-13)


@pytest.mark.parametrize("impl", [cal, ref], ids=["fast", "reference"])
def test_entropy_ignores_the_spike_of_zeros(impl):
    """Bin 0 takes bin 1's count before the search: more exact zeros change nothing."""
    x = _data("relu", 20_000)
    h = impl.HistogramCalibrator(1024, unsigned=True)
    h.collect(x)
    amax = h.compute_amax("entropy")
    counts = h.counts
    counts[0] = counts[1]
    candidates = np.arange(256, 1025, dtype=np.int64)
    score = h._divergences(counts, candidates, 256)
    assert amax == candidates[candidates.size - 1 - np.argmin(score[::-1])] * h.bin_edges[1]
    h.collect(np.zeros(50_000, np.float32))
    assert h.compute_amax("entropy") == amax
    assert h.compute_amax("mse") != amax  # the other searches see the zeros


def test_mse_by_hand():
    counts = np.array([3, 0, 1, 0], np.int64)
    # i = 2, qmax = 1: step 2; centres 0.5 -> 0, 2.5 -> min(round(1.25), 1) * 2 = 2 -> errors .25*3 + .25*1
    got = iq._core.histogram_mse(counts, np.array([2], np.int64), 1.0)
    assert got[0] == (3 * 0.25 + 0.25) / 4


def test_all_equal_data_keeps_the_whole_range():
    x = _data("all_equal")
    h = cal.HistogramCalibrator()
    h.collect(x)
    rng_ = h.bin_edges[-1]
    assert rng_ == pytest.approx(0.37, rel=1e-6)
    assert h.compute_amax("entropy") == rng_
    # the top two thresholds are both half a bin from the data: a tie up to rounding
    assert h.compute_amax("mse") >= h.bin_edges[-2]


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000, 70_001])
@pytest.mark.parametrize("threads", [1, 2])
def test_histogram_kernel_every_isa(every_isa, n, threads):
    iq.set_num_threads(threads)
    rng = rng_for("hist-kernel", n)
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    if n > 2:
        x[0], x[1] = 0.0, -0.0
    name = iq.kernel_names(every_isa)["abs_histogram"]
    assert name.startswith("abs_histogram_f32__")
    counts = np.zeros(97, np.int64)
    before = iq.kernel_calls().get(name, 0)
    iq._core.abs_histogram(every_isa, x, counts, 97 / 5.0)
    assert iq.kernel_calls().get(name, 0) > before or n == 0
    # the reference's bins, straight from the definition
    want = np.bincount(np.minimum(np.floor(np.abs(x).astype(np.float64) * (97 / 5.0)), 96).astype(np.int64),
                       minlength=97)
    np.testing.assert_array_equal(counts, want)


def test_histogram_kernel_edges_exact(every_isa):
    """Values on and next to bin edges, and at the top of the range."""
    w = 0.1
    k = np.arange(0, 40, dtype=np.float64)
    x = np.concatenate([k * w, np.nextafter(k * w, 0), np.nextafter(k * w, 10), [4.0, 3.9999998, 1e30]])
    x = np.concatenate([x, -x]).astype(np.float32)
    counts = np.zeros(40, np.int64)
    iq._core.abs_histogram(every_isa, x, counts, 1 / w)
    want = np.bincount(np.minimum(np.floor(np.abs(x).astype(np.float64) * (1 / w)), 39).astype(np.int64),
                       minlength=40)
    np.testing.assert_array_equal(counts, want)


def test_histogram_calibrator_every_isa(every_isa):
    x = _data("student_t", 100_000)
    fast, slow = _pair(2048, False, x, 7)
    name = iq.kernel_names(every_isa)["abs_histogram"]
    assert iq.kernel_calls().get(name, 0) > 0
    np.testing.assert_array_equal(fast.counts, slow.counts)
    for method, kw in _methods():
        assert fast.compute_amax(method, **kw) == slow.compute_amax(method, **kw)


def test_growth_rebins_and_memory_is_fixed():
    fast, slow = cal.HistogramCalibrator(64), ref.HistogramCalibrator(64)
    batches = [np.float32([0.0, 0.0]), np.float32([0.5, -1.0, 0.25]), np.float32([3.0, 0.1]),
               np.float32([1e30, -0.7]), np.float32([2e-30])]
    for b in batches:
        fast.collect(b)
        slow.collect(b)
        np.testing.assert_array_equal(fast.counts, slow.counts)
        assert fast.counts.size == 64 and fast._counts.size == 64
    assert fast.counts.sum() == sum(b.size for b in batches)
    # range 1.0 doubled until it covers 1e30: a power of two times the first range
    r = fast.bin_edges[-1]
    assert r >= 1e30 and np.log2(r) == int(np.log2(r))
    assert fast.compute_amax("percentile", percentile=100) == slow.compute_amax("percentile", percentile=100)


def test_first_range_from_first_nonzero_batch():
    h = cal.HistogramCalibrator(8)
    h.collect(np.zeros(5, np.float32))
    assert h.bin_edges is None and h.counts[0] == 5
    assert h.compute_amax("entropy", start_bin=1) == 0.0
    h.collect(np.float32([0.8]))
    assert h.bin_edges[-1] == np.float32(0.8)
    np.testing.assert_array_equal(h.counts, [5, 0, 0, 0, 0, 0, 0, 1])


@pytest.mark.parametrize("impl", [cal, ref], ids=["fast", "reference"])
def test_bad_data(impl):
    for calib in (impl.HistogramCalibrator(16), impl.MaxCalibrator(), impl.MaxCalibrator(axis=0)):
        calib.collect(np.ones((2, 3), np.float32))
        before = calib.compute_amax("percentile") if isinstance(calib, ref.HistogramCalibrator) else calib.compute_amax()
        for bad in (np.float32([1, np.nan]), np.float32([np.inf, 0]), np.float32([-np.inf, 2])):
            with pytest.raises(ValueError, match="NaN or Inf"):
                calib.collect(np.stack([bad, bad, bad], axis=1) if getattr(calib, "axis", None) == 0 else bad)
        for bad in (np.ones(3, np.float64), np.ones(3, np.int32), np.ones(3, np.float16), [1.0, 2.0]):
            with pytest.raises(TypeError, match="float32"):
                calib.collect(bad)
        after = calib.compute_amax("percentile") if isinstance(calib, ref.HistogramCalibrator) else calib.compute_amax()
        np.testing.assert_array_equal(after, before)  # nothing of the bad batches was collected
    h = impl.HistogramCalibrator(16)
    h.collect(np.float32([3.0, 2.0]))
    counts = h.counts
    with pytest.raises(ValueError):
        h.collect(np.float32([1.0, np.nan, 50.0]))
    np.testing.assert_array_equal(h.counts, counts)
    assert h.bin_edges[-1] == 3.0


@pytest.mark.parametrize("impl", [cal, ref], ids=["fast", "reference"])
def test_empty_and_nothing_collected(impl):
    h, m = impl.HistogramCalibrator(16), impl.MaxCalibrator()
    for c in (h, m):
        c.collect(np.empty(0, np.float32))
        c.collect(np.empty((3, 0), np.float32))
    with pytest.raises(RuntimeError, match="no data collected"):
        h.compute_amax("entropy")
    with pytest.raises(RuntimeError, match="no data collected"):
        m.compute_amax()


@pytest.mark.parametrize("impl", [cal, ref], ids=["fast", "reference"])
def test_bad_arguments(impl):
    for bad, exc in [(0, ValueError), (2**24 + 1, ValueError), (2.0, TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="num_bins"):
            impl.HistogramCalibrator(bad)
    with pytest.raises(TypeError, match="unsigned"):
        impl.HistogramCalibrator(16, unsigned=1)
    with pytest.raises(TypeError, match="axis"):
        impl.MaxCalibrator(axis=1.0)
    h = impl.HistogramCalibrator(64)
    h.collect(np.float32([1, 2, 3]))
    with pytest.raises(ValueError, match="method"):
        h.compute_amax("kl")
    for p in (0, -1, 100.5, float("nan")):
        with pytest.raises(ValueError, match="percentile"):
            h.compute_amax("percentile", percentile=p)
    with pytest.raises(TypeError, match="percentile"):
        h.compute_amax("percentile", percentile="99")
    for kw in ({"start_bin": 0}, {"stride": 0}):
        with pytest.raises(ValueError):
            h.compute_amax("mse", **kw)
    with pytest.raises(ValueError, match="no candidate"):
        h.compute_amax("mse", start_bin=65)
    with pytest.raises(ValueError, match="no candidate"):
        h.compute_amax("entropy")  # 64 bins < 128 levels
    m = impl.MaxCalibrator(axis=1)
    m.collect(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="length 3 along axis 1"):
        m.collect(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        impl.MaxCalibrator(axis=2).collect(np.ones((2, 3), np.float32))


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_max_calibrator(isa, axis):
    rng = rng_for("max", axis)
    batches = [(rng.standard_t(2, (30, 17)) * 0.1).astype(np.float32) for _ in range(5)]
    fast, slow = cal.MaxCalibrator(axis), ref.MaxCalibrator(axis)
    for b in batches:
        fast.collect(b)
        slow.collect(b)
    allx = np.abs(np.concatenate(batches, axis=1 if axis == 0 else 0))
    if axis is None:
        assert fast.compute_amax() == slow.compute_amax() == float(allx.max())
    else:
        others = tuple(d for d in range(2) if d != axis % 2)
        want = allx.max(axis=others)
        got = fast.compute_amax()
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(slow.compute_amax(), want)
        got[0] = -1  # a copy
        assert fast.compute_amax()[0] == want[0]


def test_max_calibrator_all_zero_and_signs():
    m = cal.MaxCalibrator()
    m.collect(np.zeros(10, np.float32))
    assert m.compute_amax() == 0.0
    m.collect(np.float32([-7.5, 2.0]))
    assert m.compute_amax() == 7.5


# --- scale_zero_point -------------------------------------------------------


def test_scale_from_amax():
    s, z = cal.scale_zero_point(2.54)
    assert s == np.float32(np.float32(2.54) / np.float32(127)) and type(s) is np.float32
    assert z == 0 and z.dtype == np.int8
    s, z = cal.scale_zero_point(2.55, dtype=np.uint8)
    assert s == np.float32(np.float32(2.55) / np.float32(255)) and z.dtype == np.uint8
    s, z = cal.scale_zero_point(1.27, dtype=np.int8, narrow_range=True)
    assert s == np.float32(np.float32(1.27) / np.float32(127))
    assert cal.scale_zero_point(0.0) == (np.float32(1), 0)
    s, z = cal.scale_zero_point(np.array([1.0, 0.0, 254.0]))
    np.testing.assert_array_equal(s, np.float32([1 / 127, 1, 2]))
    assert s.dtype == np.float32 and z.dtype == np.int8 and z.shape == (3,)


def test_scale_and_zero_point_from_range_follow_onnx():
    def onnx_style(lo, hi, qmin, qmax):
        lo, hi = np.float32(min(lo, 0)), np.float32(max(hi, 0))
        scale = np.float32(1) if lo == hi else np.float32((hi - lo) / np.float32(qmax - qmin))
        zp = np.rint(np.clip(np.float32(qmin) - lo / scale, qmin, qmax))
        return scale, zp

    rng = rng_for("szp")
    cases = [(-3.0, 2.0), (0.5, 4.0), (-4.0, -1.0), (0.0, 0.0), (-1e-3, 1e3), (-2.5, 2.5)]
    cases += [tuple(sorted(rng.normal(0, 5, 2))) for _ in range(50)]
    for dtype, narrow, qmin, qmax in [(np.uint8, False, 0, 255), (np.int8, False, -128, 127),
                                      (np.int8, True, -127, 127)]:
        for lo, hi in cases:
            s, z = cal.scale_zero_point(min_val=lo, max_val=hi, dtype=dtype, narrow_range=narrow)
            ws, wz = onnx_style(lo, hi, qmin, qmax)
            assert s == ws and int(z) == int(wz) and z.dtype == dtype, (dtype, lo, hi)
            # 0 is exactly representable: quantize(0) == zero point
            assert iq.quantize(np.float32([0.0]), s, z, dtype=dtype, narrow_range=narrow)[0] == z
    s, z = cal.scale_zero_point(min_val=np.float32([-1, 0]), max_val=np.float32([1, 2]), dtype=np.uint8)
    assert s.shape == z.shape == (2,)


def test_scale_zero_point_errors():
    with pytest.raises(TypeError, match="either amax"):
        cal.scale_zero_point()
    with pytest.raises(TypeError, match="either amax"):
        cal.scale_zero_point(1.0, min_val=0, max_val=1)
    with pytest.raises(TypeError, match="both"):
        cal.scale_zero_point(min_val=0)
    with pytest.raises(ValueError, match="amax must be >= 0"):
        cal.scale_zero_point(-1.0)
    for bad in (np.nan, np.inf, 1e39):
        with pytest.raises(ValueError, match="finite"):
            cal.scale_zero_point(bad)
    with pytest.raises(ValueError, match="not finite and > 0"):
        cal.scale_zero_point(1e-45)
    with pytest.raises(TypeError, match="int8 or uint8"):
        cal.scale_zero_point(1.0, dtype=np.int16)
    with pytest.raises(ValueError, match="narrow_range"):
        cal.scale_zero_point(1.0, dtype=np.uint8, narrow_range=True)
    with pytest.raises(ValueError, match="1-D"):
        cal.scale_zero_point(np.ones((2, 2)))
    with pytest.raises(TypeError, match="real number"):
        cal.scale_zero_point("1.0")


def test_workflow_calibrate_quantize_qgemm():
    """The README's workflow: collect, amax, scale, quantize, qgemm."""
    rng = rng_for("workflow")
    w = rng.standard_normal((64, 32)).astype(np.float32)
    batches = [rng.standard_normal((16, 64)).astype(np.float32) for _ in range(4)]
    wcal = cal.MaxCalibrator(axis=1)
    wcal.collect(w)
    w_scale, _ = cal.scale_zero_point(wcal.compute_amax())
    wq = iq.quantize(w, w_scale, axis=1)
    acts = cal.HistogramCalibrator()
    for b in batches:
        acts.collect(b)
    a_scale, a_zp = cal.scale_zero_point(acts.compute_amax("percentile", percentile=99.99))
    x = batches[0]
    y = iq.qgemm(iq.quantize(x, a_scale, a_zp), wq, a_scale, w_scale)
    exact = x @ w
    assert np.abs(y - exact).max() < 0.05 * np.abs(exact).max()
