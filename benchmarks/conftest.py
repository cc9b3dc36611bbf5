import os

import pytest

import intquant_kernels as iq

#: Under emulation (INTQUANT_EMULATED, set by .ci/aarch64) only the cases of at most this many
#: operations run: emulated, a float32 matmul is up to 400 times slower than native and the int8
#: kernels 10 to 100 times, so the large cases would take minutes each and time nothing real.
#: The smaller ones keep every benchmark's code running on every path.
EMULATED_MAX_OPS = 1_000_000_000
BENCHMARKS = os.path.dirname(os.path.abspath(__file__))


def _case_ops(params):
    """Operations of a benchmark case: a GEMM `shape` (M, K, N) or a conv `layer`; None otherwise."""
    layer, shape = params.get("layer"), params.get("shape")
    if hasattr(layer, "ops"):
        return layer.ops
    if isinstance(shape, tuple) and len(shape) == 3:
        m, k, n = shape
        return 2 * m * k * n
    return None


def pytest_collection_modifyitems(config, items):
    emulated = os.environ.get("INTQUANT_EMULATED")
    if not emulated:
        return
    skip = pytest.mark.skip(reason=f"under emulation (INTQUANT_EMULATED={emulated}): cases of over "
                                   f"{EMULATED_MAX_OPS:.0e} operations are left out")
    for item in items:
        if not str(item.path).startswith(BENCHMARKS + os.sep):
            continue
        callspec = getattr(item, "callspec", None)
        ops = _case_ops(callspec.params) if callspec is not None else None
        if ops is not None and ops > EMULATED_MAX_OPS:
            item.add_marker(skip)


@pytest.fixture
def one_thread():
    """Benchmarks compare single-thread throughput unless they say otherwise."""
    previous = iq.get_num_threads()
    iq.set_num_threads(1)
    yield
    iq.set_num_threads(previous)
