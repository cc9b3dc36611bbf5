"""qgemm with a per-row a_scale against a per-tensor one, side by side in one run.

For each shape, ISA path (the emulated ones excluded, and scalar) and output (float32,
requantized uint8), the two calls alternate, one thread, on the same packed weights and output
array; the table gives the median of each and their ratio (per row / per tensor: 1.00 is the same
speed). Times are the calling thread's CPU time by default (one thread: the kernels run on it),
which on a shared machine leaves out the time other processes hold the core; --clock wall for
wall-clock time.

    python benchmarks/qgemm_rows_ratio.py [--reps 30] [--isa avx512_vnni ...]
"""
import argparse
import platform
import statistics
import time

import numpy as np

import intquant_kernels as iq
from intquant_kernels import _core

SHAPES = [(16, 1024, 1024), (128, 1024, 1024), (1024, 1024, 1024)]


def median_pair(f, g, reps, clock):
    """Medians of f() and g() timed alternately (the same machine state for both)."""
    tf, tg = [], []
    f(), g()  # warm-up
    for _ in range(reps):
        for fn, ts in ((f, tf), (g, tg)):
            t0 = clock()
            fn()
            ts.append(clock() - t0)
    return statistics.median(tf), statistics.median(tg)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=30, help="pairs per shape (a third of them at M = 1024)")
    ap.add_argument("--m", type=int, nargs="*", help="only the shapes of these M")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    ap.add_argument("--isa", nargs="*", default=[i for i in iq.available_isas() if i not in iq.EMULATED_ISAS
                                                  and i != "scalar"])
    args = ap.parse_args()
    iq.set_num_threads(1)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    print(f"CPU: {_core.cpu_id()['brand'] or platform.processor()}; one thread; {args.clock} time; median of "
          f"{args.reps} pairs ({max(5, args.reps // 3)} at M = 1024), alternating")
    print("| shape | ISA | output | per tensor ms | per row ms | per row / per tensor |")
    print("|---|---|---|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for m, k, n in [s for s in SHAPES if not args.m or s[0] in args.m]:
        a = rng.integers(0, 256, (m, k), dtype=np.uint8)
        b = rng.integers(-127, 128, (k, n), dtype=np.int8)
        b_scale = rng.uniform(0.001, 0.01, n).astype(np.float32)
        rows = rng.uniform(0.01, 0.03, m).astype(np.float32)
        bias = np.arange(n, dtype=np.int32) - n // 2
        reps = max(5, args.reps // (3 if m >= 1024 else 1))
        for isa in args.isa:
            with iq.use_isa(isa):
                pw = iq.pack_weights(b)
                for name, kw, dt in (("float32", dict(), np.float32),
                                     ("uint8", dict(bias=bias, out_scale=0.05, out_zero_point=128,
                                                    out_dtype=np.uint8), np.uint8)):
                    out = np.empty((m, n), dt)
                    t, r = median_pair(lambda: iq.qgemm(a, pw, 0.02, b_scale, a_zero_point=128, out=out, **kw),
                                       lambda: iq.qgemm(a, pw, rows, b_scale, a_zero_point=128, out=out, **kw),
                                       reps, clock)
                    print(f"| {m}x{k}x{n} | {isa} | {name} | {t * 1e3:.3f} | {r * 1e3:.3f} | {r / t:.3f} |",
                          flush=True)


if __name__ == "__main__":
    main()
