import pytest

import intquant_kernels as iq


@pytest.fixture
def one_thread():
    """Benchmarks compare single-thread throughput unless they say otherwise."""
    previous = iq.get_num_threads()
    iq.set_num_threads(1)
    yield
    iq.set_num_threads(previous)
