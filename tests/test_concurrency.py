"""Many Python threads on the same packed weights, with the kernels' pool at 2 threads.

The package promises that PackedWeights and PackedConvWeights are shareable
between threads and that every kernel call releases the GIL. Here 8 threads
call gemm, qgemm, conv2d and qconv2d at once on one PackedWeights and one
PackedConvWeights (a dense and a depthwise layer), each call with a scale of
its own (so that the resolved epilogues differ from call to call, and the
caches of the Python layer are filled, read and evicted concurrently), and
every result must equal, bit for bit, the one computed beforehand on one
thread, one call at a time. Any exception in a thread fails the test.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback

import numpy as np

import intquant_kernels as iq
from intquant_kernels import _core

from exact import rand_q, rng_for

THREADS = 8
CALLS_PER_THREAD = 48
#: The threads go through their calls this many times (the expected results are computed once).
ROUNDS = 3
POOL_THREADS = 2
#: A deadlock or a wedged pool fails the test instead of hanging the run. Under emulation
#: (INTQUANT_EMULATED, .ci/aarch64) the calls take 10 to 100 times longer: a longer wait.
JOIN_TIMEOUT_S = 1200.0 if os.environ.get("INTQUANT_EMULATED") else 120.0


def _same_bits(got: np.ndarray, want: np.ndarray) -> bool:
    return (got.dtype == want.dtype and got.shape == want.shape
            and np.array_equal(got.view(np.uint8), want.view(np.uint8)))


def _workload():
    """The shared weights and inputs, and one list of calls per thread.

    Shapes are large enough for the pool to take part (a call estimated at
    over 50 us on one thread) and small enough to keep the test at a few
    seconds, also under the sanitizers.
    """
    rng = rng_for("concurrency")
    k, n = 512, 256
    pw = iq.pack_weights(rand_q(rng, (k, n), np.int8), zero_point=rng.integers(-8, 9, n))
    a_u8 = rand_q(rng, (192, k), np.uint8)
    a_s8 = rand_q(rng, (2, 96, k), np.int8)
    b_scale = rng.uniform(0.001, 0.01, n).astype(np.float32)
    bias = rng.uniform(-2, 2, n).astype(np.float32)

    c, oc = 64, 64
    pcw = iq.pack_conv_weights(rand_q(rng, (oc, c, 3, 3), np.int8))
    pdw = iq.pack_conv_weights(rand_q(rng, (c, 1, 3, 3), np.int8), groups=c)
    x_nchw = rand_q(rng, (1, c, 28, 28), np.uint8)
    x_nhwc = rand_q(rng, (1, 56, 56, c), np.int8)
    x_dw_nhwc = rand_q(rng, (1, 104, 104, c), np.int8)
    x_dw_nchw = rand_q(rng, (1, c, 104, 104), np.uint8)
    x_small = rand_q(rng, (1, c, 6, 6), np.uint8)
    w_scale = rng.uniform(0.001, 0.01, oc).astype(np.float32)
    conv_bias = rng.uniform(-2, 2, oc).astype(np.float32)
    read_only = (a_u8, a_s8, b_scale, bias, x_nchw, x_nhwc, x_dw_nhwc, x_dw_nchw, x_small, w_scale, conv_bias)
    for arr in read_only:
        arr.setflags(write=False)

    kinds = [
        lambda s: iq.gemm(a_u8, pw, a_zero_point=128),
        lambda s: iq.qgemm(a_u8, pw, s, b_scale, a_zero_point=128, bias=bias, relu=True),
        lambda s: iq.qgemm(a_s8, pw, s, 0.004, a_zero_point=-3, bias=bias, out_scale=0.05,
                           out_zero_point=7, out_dtype=np.int8),
        lambda s: iq.conv2d(x_nchw, pcw, padding=1, x_zero_point=128),
        lambda s: iq.qconv2d(x_nchw, pcw, s, w_scale, padding=1, x_zero_point=128, bias=conv_bias),
        lambda s: iq.qconv2d(x_nhwc, pcw, s, w_scale, stride=2, padding=1, layout="NHWC", x_zero_point=5,
                             bias=conv_bias, relu=True, out_scale=0.1, out_zero_point=128, out_dtype=np.uint8),
        lambda s: iq.conv2d(x_dw_nhwc, pdw, groups=c, padding=1, layout="NHWC"),
        lambda s: iq.qconv2d(x_dw_nchw, pdw, s, w_scale[:c], groups=c, padding=1, x_zero_point=128,
                             out_scale=0.2, out_dtype=np.int8),
        # Small calls (on the calling thread alone): mostly argument checks and
        # epilogue caches, so the threads' Python code interleaves all the more.
        lambda s: iq.qgemm(a_u8[:2], pw, s, b_scale, a_zero_point=128, bias=bias, out_scale=0.03,
                           out_dtype=np.uint8, out_zero_point=128),
        lambda s: iq.qconv2d(x_small, pcw, s, w_scale, padding=1, x_zero_point=128, bias=conv_bias, relu=True),
    ]
    calls = []
    for t in range(THREADS):
        # A scale drawn per call: in one round no two calls resolve the same epilogue, and the
        # THREADS * CALLS_PER_THREAD of them overflow the epilogue caches, which evict all along.
        scales = rng.uniform(0.01, 0.1, CALLS_PER_THREAD)
        calls.append([(kinds[(t + i) % len(kinds)], float(scales[i]), (t + i) % len(kinds))
                      for i in range(CALLS_PER_THREAD)])
    return calls


def test_threads_share_packed_weights():
    calls = _workload()

    # The results of one thread, one call at a time, first.
    iq.set_num_threads(1)
    expected = [[fn(s) for fn, s, _ in thread_calls] for thread_calls in calls]

    iq.set_num_threads(POOL_THREADS)
    barrier = threading.Barrier(THREADS)
    errors = []  # (thread, call, kind, message); list.append is atomic
    done = [0] * THREADS  # calls that returned, per thread

    def worker(t):
        try:
            barrier.wait()
            for _ in range(ROUNDS):
                for i, (fn, s, kind) in enumerate(calls[t]):
                    try:
                        y = fn(s)
                    except Exception:
                        errors.append((t, i, kind, traceback.format_exc()))
                        continue
                    done[t] += 1
                    if not _same_bits(y, expected[t][i]):
                        errors.append((t, i, kind, f"result differs from the single-threaded one "
                                                   f"({np.count_nonzero(y != expected[t][i])} elements)"))
        except Exception:
            errors.append((t, None, None, traceback.format_exc()))

    # Switch between Python threads as often as possible, so that the pure-Python
    # parts of the calls (argument checks, caches) interleave too.
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        runs_before = _core.parallel_runs()
        start = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(t,), name=f"iq-{t}", daemon=True)
                   for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(JOIN_TIMEOUT_S)
        elapsed = time.perf_counter() - start
        parallel_runs = _core.parallel_runs() - runs_before
    finally:
        sys.setswitchinterval(old_interval)

    alive = [th.name for th in threads if th.is_alive()]
    assert not alive, f"threads still running after {JOIN_TIMEOUT_S} s (deadlock?): {alive}"
    assert not errors, (f"{len(errors)} of {ROUNDS * THREADS * CALLS_PER_THREAD} concurrent calls failed "
                        f"({elapsed:.2f} s); first ones:\n"
                        + "\n".join(f"thread {t}, call {i}, kind {k}: {m}" for t, i, k, m in errors[:5]))
    assert done == [ROUNDS * CALLS_PER_THREAD] * THREADS, done
    # The shapes are chosen so that a call has the pool's help when the pool is free.
    assert parallel_runs > 0, "no call ran on the pool: the test did not exercise it"


def test_threads_share_packed_weights_every_isa(isa):
    """A shorter round on each ISA path: every path's kernels and packed layouts under load."""
    rng = rng_for("concurrency-isa", isa)
    k, n = 256, 96
    pw = iq.pack_weights(rand_q(rng, (k, n), np.int8))
    pcw = iq.pack_conv_weights(rand_q(rng, (32, 16, 3, 3), np.int8))
    a = rand_q(rng, (48, k), np.uint8)
    x = rand_q(rng, (1, 16, 16, 16), np.uint8)
    scales = rng.uniform(0.01, 0.1, (THREADS, 8))

    def run(t):
        return [(iq.gemm(a, pw, a_zero_point=1), iq.qgemm(a, pw, float(s), 0.003),
                 iq.conv2d(x, pcw, padding=1), iq.qconv2d(x, pcw, float(s), 0.002, padding=1, out_scale=0.5,
                                                          out_dtype=np.uint8, out_zero_point=100))
                for s in scales[t]]

    iq.set_num_threads(1)
    expected = [run(t) for t in range(THREADS)]
    iq.set_num_threads(POOL_THREADS)
    got = [None] * THREADS
    errors = []

    def worker(t):
        try:
            got[t] = run(t)
        except Exception:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(JOIN_TIMEOUT_S)
    assert not any(th.is_alive() for th in threads), f"threads still running after {JOIN_TIMEOUT_S} s"
    assert not errors, f"isa={isa}: {len(errors)} threads failed; first:\n{errors[0]}"
    for t in range(THREADS):
        for i, (g, e) in enumerate(zip(got[t], expected[t])):
            for j, (gy, ey) in enumerate(zip(g, e)):
                assert _same_bits(gy, ey), f"isa={isa} thread {t} call {i} op {j}: differs from one thread"
