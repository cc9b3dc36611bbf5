"""Quantize / dequantize of 16M float32 against copying the same array, one thread; and dynamic
quantization of a (4096, 4096) float32 array (per tensor and per row) against copying it.

All figures of one run are comparable with each other; compare ratios, not
absolute times, on a shared machine. `benchmarks/summarize.py` turns the JSON
of a run into ratio tables:

    python -m pytest benchmarks/bench_quantize.py --benchmark-enable --benchmark-json=q.json
    python benchmarks/summarize.py q.json
"""
import numpy as np
import pytest

import intquant_kernels as iq

N = 16 * 1024 * 1024
ISAS = [isa for isa in iq.available_isas() if isa not in iq.EMULATED_ISAS]  # amx_emu: tests only


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(N) * 50).astype(np.float32)
    return {
        "x": x,
        "f32_out": np.empty_like(x),
        "q": iq.quantize(x, 0.5),
        "q_out": np.empty(N, np.int8),
    }


def _info(benchmark, baseline=False, **kw):
    benchmark.extra_info.update({"elements": N, "baseline": baseline, **kw})


@pytest.mark.benchmark(group="quantize-16M")
def test_copyto(benchmark, data, one_thread):
    """Baseline: np.copyto of the float32 array into a preallocated one (8 bytes per element)."""
    _info(benchmark, baseline=True)
    benchmark(np.copyto, data["f32_out"], data["x"])


@pytest.mark.benchmark(group="quantize-16M")
def test_copy_allocating(benchmark, data, one_thread):
    """x.copy(): a copy that, like quantize without out=, also touches fresh output pages."""
    _info(benchmark)
    benchmark(data["x"].copy)


@pytest.mark.benchmark(group="quantize-16M")
@pytest.mark.parametrize("isa", ISAS)
def test_quantize_out(benchmark, data, one_thread, isa):
    _info(benchmark, isa=isa)
    with iq.use_isa(isa):
        benchmark(iq.quantize, data["x"], 0.5, 3, out=data["q_out"])


@pytest.mark.benchmark(group="quantize-16M")
@pytest.mark.parametrize("isa", ISAS)
def test_quantize_allocating(benchmark, data, one_thread, isa):
    _info(benchmark, isa=isa)
    with iq.use_isa(isa):
        benchmark(iq.quantize, data["x"], 0.5, 3)


@pytest.mark.benchmark(group="quantize-16M")
def test_quantize_reference(benchmark, data, one_thread):
    _info(benchmark, isa="numpy-reference")
    benchmark.pedantic(iq.reference.quantize, (data["x"], 0.5, 3), rounds=3, iterations=1)


@pytest.mark.benchmark(group="dequantize-16M")
def test_dequantize_copyto_baseline(benchmark, data, one_thread):
    _info(benchmark, baseline=True)
    benchmark(np.copyto, data["f32_out"], data["x"])


@pytest.mark.benchmark(group="dequantize-16M")
@pytest.mark.parametrize("isa", ISAS)
def test_dequantize_out(benchmark, data, one_thread, isa):
    _info(benchmark, isa=isa)
    with iq.use_isa(isa):
        benchmark(iq.dequantize, data["q"], 0.5, out=data["f32_out"])


@pytest.mark.benchmark(group="dequantize-16M")
def test_dequantize_reference(benchmark, data, one_thread):
    _info(benchmark, isa="numpy-reference")
    benchmark.pedantic(iq.reference.dequantize, (data["q"], 0.5), rounds=3, iterations=1)


# --- dynamic quantization ------------------------------------------------------

SHAPE = (4096, 4096)


@pytest.fixture(scope="module")
def dyn_data():
    x = (np.random.default_rng(1).standard_normal(SHAPE) * 3).astype(np.float32)
    return {"x": x, "f32_out": np.empty_like(x)}


@pytest.mark.benchmark(group="dynamic-quantize-4096x4096")
def test_dynamic_copyto_baseline(benchmark, dyn_data, one_thread):
    """Baseline: np.copyto of the (4096, 4096) float32 array into a preallocated one."""
    benchmark.extra_info.update({"elements": dyn_data["x"].size, "baseline": True})
    benchmark(np.copyto, dyn_data["f32_out"], dyn_data["x"])


@pytest.mark.benchmark(group="dynamic-quantize-4096x4096")
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("axis", [None, -1], ids=["per_tensor", "per_row"])
def test_dynamic_quantize(benchmark, dyn_data, one_thread, isa, axis):
    """Per tensor: uint8, two passes over x (range, then quantize). Per row: int8, one pass."""
    benchmark.extra_info.update({"elements": dyn_data["x"].size, "baseline": False, "isa": isa,
                                 "axis": "none" if axis is None else axis})
    with iq.use_isa(isa):
        benchmark(iq.dynamic_quantize, dyn_data["x"], axis=axis)
