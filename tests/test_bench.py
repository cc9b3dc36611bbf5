"""The bench package (intquant_kernels.bench): how it is imported, and its
parts that need no timing. Correctness only: no timing assertions."""
import platform
import subprocess
import sys

import pytest

from intquant_kernels import _core
from intquant_kernels.bench import machine

HAS_ADD_CHAIN = platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")


def test_import_does_not_import_the_bench():
    code = ("import intquant_kernels, sys\n"
            "loaded = [m for m in sys.modules if m.startswith('intquant_kernels.bench')]\n"
            "assert not loaded, loaded\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.skipif(not HAS_ADD_CHAIN, reason="the add chain is written for x86-64 and AArch64 only")
def test_clock_estimate_is_a_plausible_frequency():
    hz = _core.estimate_clock_hz(3, 200_000)
    assert isinstance(hz, float)
    assert 0.2e9 < hz < 7e9, hz
    assert machine.estimate_clock_hz(runs=2, iterations=100_000) > 0


@pytest.mark.skipif(HAS_ADD_CHAIN, reason="x86-64 and AArch64 have an add chain")
def test_clock_estimate_is_none_elsewhere():
    assert _core.estimate_clock_hz(1, 1000) is None


@pytest.mark.parametrize("runs, iterations", [(0, 1000), (1, 0), (-1, 5)])
def test_clock_estimate_rejects_non_positive_arguments(runs, iterations):
    with pytest.raises(ValueError, match="positive"):
        _core.estimate_clock_hz(runs, iterations)

