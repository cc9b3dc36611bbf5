"""Which kernels run: ISA selection, introspection and threads."""
from __future__ import annotations

import contextlib
import numbers
import os
import threading

import numpy as np

from . import _core

#: Every ISA name the package knows, in order of preference per architecture.
ISA_NAMES = tuple(_core.isa_names())

#: The paths that emulate their instructions in software (``amx_emu``: the amx
#: kernels on a scalar tile emulator), to test a kernel's code on CPUs without
#: the instructions. Listed by :func:`available_isas` where they can run (so
#: that the tests and ``validate`` cover them), first, as the least preferred;
#: never chosen by default (only by name) and never benchmarked.
EMULATED_ISAS = tuple(n for n in ISA_NAMES if _core.isa_emulated(n))

_isa_lock = threading.Lock()


def cpu_features() -> dict:
    """Feature flags of this CPU, each true only when the OS also supports it."""
    return dict(_core.cpu_features())


def available_isas() -> list:
    """ISA paths that are both compiled in and supported here, best last."""
    return list(_core.available_isas())


def unavailable_reason(name: str) -> str | None:
    """Why ISA path ``name`` cannot be used here (None when it can): not built
    into this module, or the CPU/OS features it lacks."""
    if not _core.isa_built(_check_isa(name)):
        return "not built into this module (another architecture, or a compiler without its instructions)"
    missing = _core.isa_missing_features(name)
    if missing:
        return "built, not supported by this CPU/OS: it lacks " + ", ".join(missing)
    return None


def active_isa() -> str:
    """The ISA path whose kernels run now (process-wide)."""
    return _core.active_isa()


def _check_isa(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"ISA name must be a str, got {type(name).__name__}")
    if name not in ISA_NAMES:
        raise ValueError(
            f"unknown ISA {name!r}; known: {', '.join(ISA_NAMES)}; "
            f"available here: {', '.join(available_isas())}"
        )
    return name


def set_isa(name: str) -> None:
    """Run the kernels of ISA path ``name`` from now on, process-wide.

    Raises ValueError, naming the available paths, when ``name`` is unknown,
    not compiled in, or not supported by this CPU and OS. Never falls back.
    """
    _core.set_isa(_check_isa(name))


@contextlib.contextmanager
def use_isa(name: str):
    """Context manager: run ISA path ``name`` inside the block, then restore.

    The setting is process-wide (like :func:`set_isa`), so nested or
    concurrent uses from several threads should be avoided.
    """
    with _isa_lock:
        previous = active_isa()
        set_isa(name)
    try:
        yield name
    finally:
        with _isa_lock:
            _core.set_isa(previous)


def kernel_names(isa: str | None = None) -> dict:
    """The kernel each op calls on ISA path ``isa`` (default: the active one)."""
    return dict(_core.kernel_names(_check_isa(isa) if isa is not None else active_isa()))


def kernel_calls() -> dict:
    """How many times each kernel has run in this process, by kernel name.

    A kernel appears once it has run at least once. A call of an op may run a
    kernel several times (once per piece of work), so compare counts before
    and after a call to see which kernels it used.
    """
    return dict(_core.kernel_call_counts())


def get_num_threads() -> int:
    """Threads the kernels may use."""
    return _core.get_num_threads()


#: The most threads the kernels may be given.
MAX_THREADS = 1024


def set_num_threads(n) -> None:
    """Let the kernels use ``n`` threads: any integral number (Python or NumPy, not a bool) in
    [1, MAX_THREADS]."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"number of threads must be an integer, got {type(n).__name__}")
    if not 1 <= int(n) <= MAX_THREADS:
        raise ValueError(f"number of threads must lie in [1, {MAX_THREADS}], got {int(n)}")
    _core.set_num_threads(int(n))


def _apply_environment() -> None:
    """Read INTQUANT_ISA and INTQUANT_NUM_THREADS once, at import."""
    isa = os.environ.get("INTQUANT_ISA", "").strip()
    if isa:
        try:
            set_isa(isa)
        except ValueError as e:
            raise ValueError(f"INTQUANT_ISA={isa!r}: {e}") from None
    threads = os.environ.get("INTQUANT_NUM_THREADS", "").strip()
    if threads:
        try:
            n = int(threads)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_THREADS:
            raise ValueError(f"INTQUANT_NUM_THREADS must be an integer in [1, {MAX_THREADS}], got {threads!r}")
        set_num_threads(n)
