"""python -m intquant_kernels [info|validate|bench]: what this CPU gets, a check
of every available kernel against the NumPy reference, and int8 throughput
against float32 and the peers.

With no command: info, validate, then bench --quick."""
from __future__ import annotations

import argparse
import platform
import sys

import numpy as np

import intquant_kernels as iq
from intquant_kernels._dispatch import unavailable_reason


def cmd_info(args) -> int:
    print(f"intquant_kernels {iq.__version__}  (numpy {np.__version__}, Python {platform.python_version()})")
    from intquant_kernels import _core

    cpu = _core.cpu_id()
    if cpu["family"] is not None:
        ident = f", family 0x{cpu['family']:02X} model 0x{cpu['model']:02X}"
    elif cpu["midr_implementer"] is not None:
        ident = f", MIDR implementer 0x{cpu['midr_implementer']:02X} part 0x{cpu['midr_part']:03X}"
    else:
        ident = ""
    print(f"CPU: {cpu['brand'] or platform.processor() or 'unknown'} ({cpu['vendor']}{ident}, {platform.machine()})")
    flags = [k for k, on in iq.cpu_features().items() if on]
    print(f"features: {' '.join(flags) if flags else '(none detected)'}")
    for name in iq.ISA_NAMES:
        state = unavailable_reason(name) or "available"
        if name in iq.EMULATED_ISAS:
            state += " (emulated: the amx kernels on a scalar tile emulator; tests only, never the default)"
        print(f"  {name:<13} {state}")
    print(f"available ISAs (best last): {', '.join(iq.available_isas())}")
    print(f"active ISA: {iq.active_isa()}   (override: INTQUANT_ISA=<name>, or set_isa()/use_isa())")
    print(f"threads: {iq.get_num_threads()}   (override: INTQUANT_NUM_THREADS=<n>, or set_num_threads())")
    return 0


# ---------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------

#: One output line per (op, ISA). 'depthwise' is conv2d and qconv2d with groups == C == OC;
#: 'calibrate' is HistogramCalibrator's counts and chosen thresholds.
VALIDATE_OPS = ("quantize", "dequantize", "dynamic_quantize", "gemm", "qgemm", "conv2d", "qconv2d", "depthwise",
                "calibrate")


def _as_bytes(results) -> np.ndarray:
    """Results of several types (a tuple of arrays and scalars) as one byte array, to compare exactly."""
    return np.concatenate([np.ascontiguousarray(np.asarray(r)).reshape(-1).view(np.uint8) for r in results])


def _dynamic_quantize(module):
    return lambda x, **kw: _as_bytes(module.dynamic_quantize(x, **kw))


def _calibrate(module):
    """counts, edges and every method's threshold of a HistogramCalibrator fed `batches` batches of x."""
    def run(x, *, num_bins, unsigned, batches):
        h = module.HistogramCalibrator(num_bins, unsigned=unsigned)
        for b in np.array_split(x, batches):
            h.collect(b)
        amax = [h.compute_amax(m, percentile=p) for m, p in (("entropy", 99.99), ("mse", 99.99),
                                                             ("percentile", 99.9), ("percentile", 99.9999))]
        return _as_bytes((h.counts, h.bin_edges, np.array(amax)))
    return run


#: Lines whose functions are not the op of the same name: (fast, reference) by line.
def _functions(op):
    from . import calibration

    if op == "dynamic_quantize":
        return _dynamic_quantize(iq), _dynamic_quantize(iq.reference)
    if op == "calibrate":
        return _calibrate(calibration), _calibrate(iq.reference)
    return getattr(iq, op, None), getattr(iq.reference, op, None)


def _dynamic_cases(rng):
    """Per tensor (uint8, as ONNX) and per row (int8), with tails, ties and all-zero rows."""
    for n in (1, 15, 16, 17, 63, 64, 65, 1000, 100_003):
        x = (rng.standard_normal(n) * 3).astype(np.float32)
        yield f"per tensor n={n}", (x,), {}
    x = (rng.standard_normal((37, 301)) * 3).astype(np.float32)
    x[5] = 0
    x[7, :4] = [2.5, -2.5, 0.5, 127.0]
    for axis in (-1, 0):
        yield f"per row {x.shape} axis={axis}", (x,), dict(axis=axis)


def _calibrate_cases(rng):
    """Heavy-tailed data in one and in several batches (growing range), signed and unsigned."""
    x = (rng.standard_t(3, 50_000)).astype(np.float32)
    for num_bins, unsigned, batches in ((2048, False, 1), (512, True, 9)):
        yield f"student-t n={x.size} bins={num_bins} batches={batches}", (x,), dict(
            num_bins=num_bins, unsigned=unsigned, batches=batches)


def _quantize_cases(rng):
    """Awkward shapes and values: tails, ties, saturation, non-finite."""
    for n in (0, 1, 15, 16, 17, 63, 64, 65, 1000, 100_003):
        x = (rng.standard_normal(n) * 60).astype(np.float32)
        x[: min(n, 6)] = np.array([np.nan, np.inf, -np.inf, 2.5, -3.5, 1e30], np.float32)[: min(n, 6)]
        for dtype, zp, narrow in ((np.int8, 0, True), (np.int8, -7, False), (np.uint8, 128, False)):
            yield f"n={n} {np.dtype(dtype)} zp={zp}", (x, 0.5, zp), dict(dtype=dtype, narrow_range=narrow)
    x = (rng.standard_normal((5, 33, 7)) * 60).astype(np.float32)
    for axis in (0, 1, 2):
        c = x.shape[axis]
        scale = rng.uniform(0.05, 2.0, c).astype(np.float32)
        zp = rng.integers(0, 256, c)
        yield f"per-channel axis={axis}", (x, scale, zp), dict(axis=axis, dtype=np.uint8)


def _gemm_cases(rng):
    """Tails in M, N and K, both activation dtypes, zero points, both epilogues, per-tensor and
    per-row a_scale."""
    for m, k, n in ((1, 1, 1), (3, 17, 65), (7, 64, 129), (16, 4097, 33), (37, 300, 70)):
        b = rng.integers(-128, 128, (k, n), dtype=np.int8)
        w_scale = rng.uniform(0.001, 0.02, n).astype(np.float32)
        for dtype, a_zp in ((np.uint8, 128), (np.int8, -3)):
            info = np.iinfo(dtype)
            a = rng.integers(info.min, info.max + 1, (m, k), dtype=dtype)
            b_zp = rng.integers(-4, 5, n)
            yield f"{m}x{k}x{n} {np.dtype(dtype)}", "gemm", (a, b), dict(a_zero_point=a_zp, b_zero_point=b_zp)
            bias = rng.standard_normal(n).astype(np.float32)
            yield f"{m}x{k}x{n} {np.dtype(dtype)} f32+bias+relu", "qgemm", (a, b, 0.05, w_scale), dict(
                a_zero_point=a_zp, bias=bias, relu=True)
            yield f"{m}x{k}x{n} {np.dtype(dtype)} requant", "qgemm", (a, b, 0.05, w_scale), dict(
                a_zero_point=a_zp, b_zero_point=b_zp, bias=bias, out_scale=2.0, out_zero_point=5,
                out_dtype=np.int8)
            # Per-row a_scale (from a generator of its own: the other cases keep their data).
            rows = np.random.default_rng((m, k, n)).uniform(0.02, 0.08, m).astype(np.float32)
            yield f"{m}x{k}x{n} {np.dtype(dtype)} per-row a_scale f32+bias+relu", "qgemm", (a, b, rows, w_scale), dict(
                a_zero_point=a_zp, bias=bias, relu=True)
            yield f"{m}x{k}x{n} {np.dtype(dtype)} per-row a_scale requant", "qgemm", (a, b, rows, w_scale), dict(
                a_zero_point=a_zp, b_zero_point=b_zp, bias=np.rint(bias * 100).astype(np.int32), out_scale=2.0,
                out_zero_point=5, out_dtype=np.int8)


#: (N, C, H, W, OC, (KH, KW), stride, padding, dilation, groups): odd channel
#: counts, rectangular kernels and images, every padding form, strides and
#: dilations, 1x1 (the NHWC GEMM path), grouped and depthwise.
_CONV_SHAPES = (
    (1, 3, 7, 9, 5, (3, 3), 1, 1, 1, 1),
    (2, 5, 11, 6, 7, (3, 2), (2, 1), (1, 0), 1, 1),
    (1, 17, 8, 5, 33, (1, 1), 1, 0, 1, 1),
    (1, 19, 6, 7, 13, (1, 1), 2, (0, 1, 1, 0), 1, 1),
    (1, 6, 10, 9, 9, (3, 3), 1, 2, 2, 3),
    (1, 67, 5, 13, 3, (5, 5), 3, (2, 1, 0, 2), (1, 2), 1),
    (3, 16, 9, 9, 16, (3, 3), 1, 1, 1, 1),
    (1, 70, 20, 23, 130, (3, 3), 1, 1, 1, 1),  # several row and column tiles, their tails
    (1, 300, 6, 6, 20, (3, 3), 1, 1, 1, 1),  # K = 2700: more than one K slice
    (1, 13, 9, 11, 13, (3, 3), 1, 1, 1, 13),
    (2, 33, 8, 8, 33, (5, 5), 2, 2, 1, 33),
    (1, 64, 7, 7, 64, (3, 3), 1, 2, 2, 64),
    (1, 17, 6, 5, 17, (1, 1), 1, 0, 1, 17),
    (1, 40, 12, 7, 40, (3, 5), (2, 1), (1, 2, 0, 1), (2, 1), 40),
    (2, 100, 15, 17, 100, (3, 3), 2, 1, 1, 100),  # channel tails of the 16- and 32-wide depthwise kernels
)


def _conv_cases(rng):
    """conv2d and qconv2d (float32 and requantize epilogues) in both layouts,
    int8 and uint8 activations with zero points; the depthwise shapes go to
    the 'depthwise' line."""
    for n, c, h, w, oc, (kh, kw), stride, padding, dilation, groups in _CONV_SHAPES:
        line = "depthwise" if groups == c == oc else None
        wt = rng.integers(-128, 128, (oc, c // groups, kh, kw), dtype=np.int8)
        w_zp = rng.integers(-4, 5, oc)
        w_scale = rng.uniform(0.001, 0.02, oc).astype(np.float32)
        bias = rng.standard_normal(oc).astype(np.float32)
        geo = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        for layout, dtype, x_zp in (("NCHW", np.uint8, 128), ("NHWC", np.int8, -3), ("NHWC", np.uint8, 7),
                                    ("NCHW", np.int8, 0)):
            info = np.iinfo(dtype)
            shape = (n, c, h, w) if layout == "NCHW" else (n, h, w, c)
            x = rng.integers(info.min, info.max + 1, shape, dtype=dtype)
            name = (f"x{shape} {np.dtype(dtype)} {layout} w{wt.shape} stride={stride} padding={padding} "
                    f"dilation={dilation} groups={groups}")
            kw_ = dict(geo, layout=layout, x_zero_point=x_zp)
            yield name, line or "conv2d", "conv2d", (x, wt), dict(kw_, w_zero_point=w_zp)
            yield f"{name} f32+bias+relu", line or "qconv2d", "qconv2d", (x, wt, 0.05, w_scale), dict(
                kw_, bias=bias, relu=True)
            out_dtype = np.uint8 if dtype == np.uint8 else np.int8
            yield f"{name} requant", line or "qconv2d", "qconv2d", (x, wt, 0.05, w_scale), dict(
                kw_, w_zero_point=w_zp, bias=bias, out_scale=2.0, out_zero_point=5, out_dtype=out_dtype)


def _all_cases(seed):
    """(line, name, function name, args, kwargs) of every check; the same on every ISA."""
    rng = np.random.default_rng(seed)
    for op in ("quantize", "dequantize"):
        for name, args, kwargs in _quantize_cases(np.random.default_rng(seed)):
            if op == "dequantize":
                q = iq.reference.quantize(*args, **kwargs)
                kwargs = {k: v for k, v in kwargs.items() if k == "axis"}
                args = (q,) + args[1:]
            yield op, name, op, args, kwargs
    for name, args, kwargs in _dynamic_cases(np.random.default_rng(seed)):
        yield "dynamic_quantize", name, "dynamic_quantize", args, kwargs
    for name, op, args, kwargs in _gemm_cases(rng):
        yield op, name, op, args, kwargs
    for name, args, kwargs in _calibrate_cases(np.random.default_rng(seed)):
        yield "calibrate", name, "calibrate", args, kwargs
    for name, line, op, args, kwargs in _conv_cases(rng):
        yield line, name, op, args, kwargs


def _check(name, fast, ref, args, kwargs):
    try:
        got = fast(*args, **kwargs)
    except Exception as e:
        return f"{name}: raised {type(e).__name__}: {e}"
    want = ref(*args, **kwargs)
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"{name}: got {got.dtype}{got.shape}, expected {want.dtype}{want.shape}"
    g = got.view(np.uint32) if got.dtype == np.float32 else got
    w = want.view(np.uint32) if want.dtype == np.float32 else want
    bad = np.flatnonzero(g.reshape(-1) != w.reshape(-1))
    if bad.size:
        i = bad[0]
        where = np.unravel_index(i, got.shape) if got.ndim > 1 else i
        return (f"{name}: {bad.size} mismatches, first at index {where}: got {got.reshape(-1)[i]!r}, "
                f"expected {want.reshape(-1)[i]!r}")
    return None


def validate(isas, seed=0, out=None) -> bool:
    """One line per (op, ISA): PASS, or FAIL and the first mismatch. True if all pass."""
    out = sys.stdout if out is None else out
    ok = True
    checks = {line: [] for line in VALIDATE_OPS}  # line -> [(index, name, op, args, kwargs)]
    for i, (line, *check) in enumerate(_all_cases(seed)):
        if line in checks:
            checks[line].append((i, *check))
    ref_cache = {}
    for isa in isas:
        for line in VALIDATE_OPS:
            failure = None
            with iq.use_isa(isa):
                for i, name, op, args, kwargs in checks[line]:
                    fast, ref = _functions(op)
                    if fast is None or ref is None:
                        failure = f"intquant_kernels{'' if fast is None else '.reference'} has no {op}()"
                        break
                    if i not in ref_cache:  # the reference does not depend on the ISA
                        try:
                            ref_cache[i] = ref(*args, **kwargs)
                        except Exception as e:
                            failure = f"{name}: the reference raised {type(e).__name__}: {e}"
                            break
                    want = ref_cache[i]
                    failure = _check(name, fast, lambda *a, **k: want, args, kwargs)
                    if failure:
                        break
            ok &= failure is None
            print(f"{line:<16} {isa:<13} {'PASS' if failure is None else 'FAIL  ' + failure}", file=out, flush=True)
    return ok


def _isas_arg(value, parser_name, emulated=True) -> list | None:
    """The ISA list of --isa, or None after printing the error (exit status 2).
    ``emulated``: whether the emulated paths (EMULATED_ISAS) may be in it."""
    available = [n for n in iq.available_isas() if emulated or n not in iq.EMULATED_ISAS]
    if value == "all":
        return available
    if not emulated and value in iq.EMULATED_ISAS:
        print(f"{parser_name}: ISA {value!r} emulates its instructions (tests only): it is not a performance "
              f"path; available: {', '.join(available)}", file=sys.stderr)
        return None
    if value not in available:
        print(f"{parser_name}: ISA {value!r} is not available here; available: {', '.join(available)}",
              file=sys.stderr)
        return None
    return [value]


def cmd_validate(args) -> int:
    isas = _isas_arg(args.isa, "validate")
    if isas is None:
        return 2
    return 0 if validate(isas, args.seed) else 1


# ---------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------

def _ops_arg(value: str) -> list:
    from .bench.runner import OPS

    ops = [o.strip() for o in value.split(",") if o.strip()]
    bad = [o for o in ops if o not in OPS]
    if bad or not ops:
        raise argparse.ArgumentTypeError(f"unknown op(s) {', '.join(bad) or '(none)'}; choose from {','.join(OPS)}")
    return [o for o in OPS if o in ops]


def _cases_arg(value: str) -> list:
    from .bench.runner import select_cases

    names = [c.strip() for c in value.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError("no case named")
    try:
        select_cases(names)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return names


def _threads_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}")
    return n


def cmd_bench(args) -> int:
    from .bench import plot, report, runner

    isas = _isas_arg(args.isa, "bench", emulated=False)
    if isas is None:
        return 2
    doc = runner.run(ops=args.ops, isas=isas, quick=args.quick, threads=args.threads, cases=args.cases)
    sys.stdout.write(report.plain(doc))
    sys.stdout.flush()
    if args.json:
        report.write_json(doc, args.json)
        print(f"bench: wrote {args.json}", file=sys.stderr)
    if args.plot:
        try:
            plot.write_png(doc, args.plot)
        except ImportError:
            print("bench: plot skipped: matplotlib is not installed "
                  "(pip install 'intquant_kernels[bench]')", file=sys.stderr)
        else:
            print(f"bench: wrote {args.plot}", file=sys.stderr)
    return 0


BENCH_EPILOG = """\
Cases: the GEMM shapes and conv layers of intquant_kernels/bench/cases.py
(their quick subsets with --quick) and quantize/dequantize of 16M elements.
Per case: the int8 throughput of each ISA path (GOPS; weights packed once,
preallocated out=, so the kernel is what is timed), the float32 baseline
measured in the same run (numpy.matmul; torch.conv2d or a NumPy conv, beside
numpy.matmul of the same product; np.copyto for quantize), their ratio, affine
against scale weights on the best path, the peers (onnxruntime, torch) when
installed, and ops per cycle against the path's peak (both estimates; the peak
table row is chosen by the CPU's family and model). Figures are medians of
repeated calls after a warm-up. The scalar path runs only the small cases
unless it is asked for alone. Progress goes to stderr, the table to stdout.
--cases runs only the cases it names, e.g. one small GEMM where time is
short (under emulation: `bench --quick --cases 64x64x64`).

  python -m intquant_kernels bench --json benchmarks/results.json --plot benchmarks/results.png
  python benchmarks/results.py benchmarks/results.json      # -> benchmarks/RESULTS.md
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intquant_kernels", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="{info,validate,bench}")
    p = sub.add_parser("info", help="version, CPU features, ISAs and threads",
                       description="Version, CPU model and feature flags, the ISA paths (available and active) "
                                   "and the thread count, with how to override each.")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("validate", help="check every kernel against the NumPy reference",
                       description="Run every op (quantize, dequantize, gemm, qgemm, conv2d, qconv2d, depthwise "
                                   "convolution) on every selected ISA path against intquant_kernels.reference on "
                                   "random inputs with awkward shapes; one line per (op, ISA), PASS or FAIL with "
                                   "the first mismatch. Exit status 1 if anything fails, 2 for an unavailable ISA. "
                                   "'all' includes the emulated paths available here (amx_emu: the amx kernels on "
                                   "a scalar tile emulator).")
    p.add_argument("--isa", default="all", help="an ISA name, or 'all' (default: every available path, the "
                                                "emulated ones included)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("bench", help="int8 throughput against float32 and peers: table, JSON, plot",
                       description="Time int8 against float32 (and onnxruntime/torch when installed) on every "
                                   "ISA path.", epilog=BENCH_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the quick subsets and shorter timing (under a minute)")
    p.add_argument("--ops", type=_ops_arg, default=["gemm", "conv", "quantize"], metavar="LIST",
                   help="comma-separated subset of gemm,conv,quantize (default: all three)")
    p.add_argument("--cases", type=_cases_arg, metavar="LIST",
                   help="only these comma-separated cases: GEMM shapes MxKxN (any, e.g. 64x64x64), conv layer "
                        "names of bench/cases.py, 'quantize'; an op with none of them runs nothing "
                        "(default: every case of the ops)")
    p.add_argument("--isa", default="all", help="an ISA name, or 'all' (default: every available path but the "
                                                "emulated ones, which are never benchmarked)")
    p.add_argument("--threads", type=_threads_arg, default=1, metavar="N",
                   help="threads for the kernels, NumPy's OpenBLAS and the peers (default 1)")
    p.add_argument("--json", metavar="PATH", help="write every figure and the machine description as JSON")
    p.add_argument("--plot", metavar="PATH.png",
                   help="draw int8 against float32 and the peers (needs matplotlib; skipped with a note if missing)")
    p.set_defaults(func=cmd_bench)
    args = parser.parse_args(argv)
    if args.command is None:
        # The main job: each command with its parser's defaults (bench with --quick).
        rc = cmd_info(args)
        print()
        rc = rc or cmd_validate(sub.choices["validate"].parse_args([]))
        if rc:
            print("validation failed: not benchmarking kernels that are wrong", file=sys.stderr)
            return rc
        print()
        return cmd_bench(sub.choices["bench"].parse_args(["--quick"]))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
