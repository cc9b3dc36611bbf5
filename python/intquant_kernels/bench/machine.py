"""The machine a run measures: CPU, clock, paths, versions."""
from __future__ import annotations

import datetime
import functools
import os
import platform
import types

import numpy as np

import intquant_kernels as iq

from .. import _core
from . import peers

# ---------------------------------------------------------------------------
# The clock.
# ---------------------------------------------------------------------------

def estimate_clock_hz(runs: int = 200, iterations: int = 100_000) -> float | None:
    """The core clock while busy (Hz): the fastest of ``runs`` timed chains of
    dependent integer adds, one add per cycle (``_core.estimate_clock_hz``,
    csrc/runtime/clock.cc; each run about 0.4 ms at 4 GHz). Interruptions only
    slow a run down, so the fastest is the closest to the real clock. Unlike
    the "cpu MHz" of /proc/cpuinfo, which under a hypervisor is often the
    nominal (TSC) frequency, this sees the boost clock. None on architectures
    other than x86-64 and AArch64.
    """
    return _core.estimate_clock_hz(runs, iterations)


def cpuinfo_mhz() -> float | None:
    """The first "cpu MHz" of /proc/cpuinfo (Linux), or None."""
    fields = _cpuinfo_fields()
    try:
        return float(fields["cpu MHz"])
    except (KeyError, ValueError):
        return None


@functools.lru_cache(maxsize=None)
def _cpuinfo_fields() -> types.MappingProxyType:
    """The fields of the first processor of /proc/cpuinfo (empty where there is none), read once."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # first processor only
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return types.MappingProxyType(fields)


# ---------------------------------------------------------------------------
# The machine.
# ---------------------------------------------------------------------------

def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine(threads: int, clock_runs: int = 200) -> dict:
    mhz = cpuinfo_mhz()
    est = estimate_clock_hz(runs=clock_runs)
    if est is not None:
        clock = dict(hz=est, source="estimate: fastest of timed dependent-add loops (1 add per cycle)")
    elif mhz is not None:
        clock = dict(hz=mhz * 1e6, source="/proc/cpuinfo 'cpu MHz' (may be the nominal, not the boost, clock)")
    else:
        clock = dict(hz=None, source="unknown: no ops/cycle figures")
    clock.update(cpuinfo_mhz=mhz, estimated_hz=est)
    cpu = _core.cpu_id()
    return dict(
        cpu_brand=cpu["brand"] or platform.processor() or "unknown",
        cpu_vendor=cpu["vendor"],
        cpu_family=cpu["family"],
        cpu_model=cpu["model"],
        cpu_id=cpu,
        arch=platform.machine(),
        logical_cpus=os.cpu_count(),
        features=[k for k, on in iq.cpu_features().items() if on],
        isas_available=iq.available_isas(),
        isa_default=iq.active_isa(),
        kernels={isa: iq.kernel_names(isa) for isa in iq.available_isas()},
        threads=threads,
        clock=clock,
        openblas_corename=peers.openblas_corename(),
        openblas_coretype_env=os.environ.get("OPENBLAS_CORETYPE"),
        platform=platform.platform(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        versions=dict(
            python=platform.python_version(),
            numpy=np.__version__,
            intquant_kernels=iq.__version__,
            torch=_version("torch"),
            onnxruntime=_version("onnxruntime"),
            onnx=_version("onnx"),
            matplotlib=_version("matplotlib"),
        ),
    )
