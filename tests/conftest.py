"""Shared fixtures: the ISA paths to run on, and process-wide state restored after each test."""
from __future__ import annotations

import pytest

import intquant_kernels as iq

#: ISA paths compiled in and supported by this CPU, best last.
AVAILABLE_ISAS = tuple(iq.available_isas())


@pytest.fixture(autouse=True)
def _restore_isa_and_threads():
    """Every test leaves the active ISA and the thread count as it found them."""
    isa = iq.active_isa()
    threads = iq.get_num_threads()
    try:
        yield
    finally:
        iq.set_isa(isa)
        iq.set_num_threads(threads)


@pytest.fixture(params=AVAILABLE_ISAS, ids=AVAILABLE_ISAS)
def isa(request):
    """Each available ISA path in turn, active (via use_isa) for the whole test."""
    with iq.use_isa(request.param):
        yield request.param


@pytest.fixture(params=iq.ISA_NAMES, ids=iq.ISA_NAMES)
def every_isa(request):
    """Every ISA path the package knows; the ones this machine cannot run are skipped.

    For tests that are about every path: the skip (with its reason) shows in the
    report which paths went untested here.
    """
    name = request.param
    if name not in AVAILABLE_ISAS:
        pytest.skip(
            f"ISA {name!r} is not available on this machine "
            f"(available: {', '.join(AVAILABLE_ISAS)})"
        )
    with iq.use_isa(name):
        yield name
