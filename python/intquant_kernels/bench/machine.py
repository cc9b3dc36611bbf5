"""The machine a run measures: CPU, clock, paths, versions."""
from __future__ import annotations

import ctypes
import datetime
import functools
import math
import mmap
import os
import platform
import time
import types

import numpy as np

import intquant_kernels as iq

from . import peers

# ---------------------------------------------------------------------------
# The clock.
# ---------------------------------------------------------------------------

# x86-64 System V machine code of `uint64_t f(uint64_t n)`: n iterations of a
# chain of 16 dependent register adds, each waiting for the previous one:
#   31 c0              xor   eax, eax
#   ba 01 00 00 00     mov   edx, 1
# loop:
#   48 01 d0  (x16)    add   rax, rdx          ; 1 cycle latency on every x86-64 core
#   48 ff cf           dec   rdi               ; an independent chain, runs alongside
#   75 cb              jnz   loop
#   c3                 ret
# so one iteration takes 16 cycles and 16 * n / seconds is the core clock.
# Register operands on purpose: some cores fold chains of add-immediates.
_ADD_CHAIN = bytes([0x48, 0x01, 0xD0]) * 16 + bytes([0x48, 0xFF, 0xCF])
_ADD_LOOP = bytes([0x31, 0xC0, 0xBA, 1, 0, 0, 0]) + _ADD_CHAIN + bytes([0x75, (-(len(_ADD_CHAIN) + 2)) & 0xFF, 0xC3])


def estimate_clock_hz(runs: int = 20, iterations: int = 2_000_000) -> float | None:
    """The core clock while busy, from a timed dependent-add loop (x86-64 Linux/macOS).

    The fastest of ``runs`` runs (each about 8 ms at 4 GHz): interruptions only
    slow a run down, so the fastest is the closest to the real clock. Unlike
    the "cpu MHz" of /proc/cpuinfo, which under a hypervisor is often the
    nominal (TSC) frequency, this sees the boost clock. None where it cannot
    run (another architecture or OS, or no executable memory).
    """
    if platform.machine().lower() not in ("x86_64", "amd64") or os.name != "posix":
        return None
    try:
        mem = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, ValueError, AttributeError):
        return None
    try:
        mem.write(_ADD_LOOP)
        buf = ctypes.c_char.from_buffer(mem)
        fn = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)(ctypes.addressof(buf))
        best = math.inf
        for _ in range(runs):
            t = time.perf_counter()
            fn(iterations)
            best = min(best, time.perf_counter() - t)
        del fn, buf
        return 16 * iterations / best
    finally:
        try:
            mem.close()
        except BufferError:  # a reference to the buffer survived; leave it to the GC
            pass


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


def machine(threads: int, clock_runs: int = 20) -> dict:
    from .. import _core

    fields = _cpuinfo_fields()
    mhz = cpuinfo_mhz()
    est = estimate_clock_hz(runs=clock_runs)
    if est is not None:
        clock = dict(hz=est, source="estimate: fastest of timed dependent-add loops (1 add per cycle)")
    elif mhz is not None:
        clock = dict(hz=mhz * 1e6, source="/proc/cpuinfo 'cpu MHz' (may be the nominal, not the boost, clock)")
    else:
        clock = dict(hz=None, source="unknown: no ops/cycle figures")
    clock.update(cpuinfo_mhz=mhz, estimated_hz=est)
    family = fields.get("cpu family")
    vendor = _core.cpu_vendor()
    return dict(
        cpu_brand=_core.cpu_brand() or platform.processor() or "unknown",
        cpu_vendor=vendor,
        cpu_family=int(family) if family and family.isdigit() else None,
        cpu_model=int(fields["model"]) if fields.get("model", "").isdigit() else None,
        arch=platform.machine(),
        logical_cpus=os.cpu_count(),
        features=[k for k, on in iq.cpu_features().items() if on],
        isas_available=iq.available_isas(),
        isa_default=iq.active_isa(),
        kernels={isa: iq.kernel_names(isa) for isa in iq.available_isas()},
        threads=threads,
        clock=clock,
        peak_assumption_matches=(vendor == "AuthenticAMD" and family == "26"),
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
