"""Calibration: the |x| histogram of 16M float32 against numpy.histogram of
np.abs(x) with the same bins, and the threshold searches over 2048 bins, one
thread. Ratios come from one run (`benchmarks/summarize.py`):

    python -m pytest benchmarks/bench_calibration.py --benchmark-enable --benchmark-json=c.json
    python benchmarks/summarize.py c.json

Targets (issue "Choosing the range"): collect >= 5x numpy.histogram;
compute_amax("entropy") over 2048 bins < 50 ms.
"""
import os

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels.calibration import HistogramCalibrator

#: 16M values natively; under emulation (.ci/aarch64) a small array keeps the code running.
N = 64 * 1024 if os.environ.get("INTQUANT_EMULATED") else 16 * 1024 * 1024
ISAS = [isa for isa in iq.available_isas() if isa not in iq.EMULATED_ISAS]


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal(N).astype(np.float32)


@pytest.fixture(scope="module")
def calibrated(x):
    h = HistogramCalibrator(2048)
    h.collect(x)
    return h


@pytest.mark.benchmark(group="histogram-16M")
def test_numpy_histogram(benchmark, x, calibrated, one_thread):
    """Baseline: numpy.histogram of np.abs(x) with the calibrator's 2048 bin edges."""
    edges = calibrated.bin_edges
    benchmark.extra_info.update({"baseline": True, "elements": N})
    counts, _ = benchmark(lambda: np.histogram(np.abs(x), bins=edges))
    assert counts.sum() == N


@pytest.mark.benchmark(group="histogram-16M")
@pytest.mark.parametrize("isa", ISAS)
def test_collect(benchmark, x, one_thread, isa):
    """HistogramCalibrator.collect of the whole array into a fresh calibrator (range pass + histogram)."""
    benchmark.extra_info.update({"isa": isa, "elements": N})

    def collect():
        h = HistogramCalibrator(2048)
        h.collect(x)
        return h

    with iq.use_isa(isa):
        h = benchmark(collect)
    assert h.counts.sum() == N


@pytest.mark.benchmark(group="calibration-search-2048")
@pytest.mark.parametrize("method", ["entropy", "mse", "percentile"])
def test_compute_amax(benchmark, calibrated, one_thread, method):
    benchmark.extra_info.update({"method": method, "bins": 2048})
    amax = benchmark(calibrated.compute_amax, method)
    assert 0 < amax <= calibrated.bin_edges[-1]
