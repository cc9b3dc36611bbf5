"""python -m intquant_kernels [info|validate]: what this CPU gets, and a check
of every available kernel against the NumPy reference."""
from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np

import intquant_kernels as iq


def cmd_info(args) -> int:
    print(f"intquant_kernels {iq.__version__}  (numpy {np.__version__}, Python {platform.python_version()})")
    from intquant_kernels import _core

    print(f"CPU: {_core.cpu_brand() or platform.processor() or 'unknown'} ({_core.cpu_vendor()}, {platform.machine()})")
    flags = [k for k, on in iq.cpu_features().items() if on]
    print(f"features: {' '.join(flags) if flags else '(none detected)'}")
    for name in iq.ISA_NAMES:
        built = _core.isa_built(name)
        cpu = _core.isa_supported_by_cpu(name)
        state = "available" if built and cpu else ("built, not supported by this CPU/OS" if built else "not built")
        print(f"  {name:<13} {state}")
    print(f"available ISAs (best last): {', '.join(iq.available_isas())}")
    print(f"active ISA: {iq.active_isa()}   (override: INTQUANT_ISA=<name>, or set_isa()/use_isa())")
    print(f"threads: {iq.get_num_threads()}   (override: INTQUANT_NUM_THREADS=<n>, or set_num_threads())")
    return 0


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
    """Tails in M, N and K, both activation dtypes, zero points, both epilogues."""
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


def _check(name, fast, ref, args, kwargs):
    got, want = fast(*args, **kwargs), ref(*args, **kwargs)
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"{name}: got {got.dtype}{got.shape}, expected {want.dtype}{want.shape}"
    g = got.view(np.uint32) if got.dtype == np.float32 else got
    w = want.view(np.uint32) if want.dtype == np.float32 else want
    bad = np.flatnonzero(g.reshape(-1) != w.reshape(-1))
    if bad.size:
        i = bad[0]
        return f"{name}: {bad.size} mismatches, first at flat index {i}: got {got.reshape(-1)[i]!r}, expected {want.reshape(-1)[i]!r}"
    return None


def validate(isas, seed=0, out=None) -> bool:
    out = sys.stdout if out is None else out
    ok = True
    for isa in isas:
        for op in ("quantize", "dequantize"):
            rng = np.random.default_rng(seed)
            failure = None
            with iq.use_isa(isa):
                for name, args, kwargs in _quantize_cases(rng):
                    if op == "dequantize":
                        q = iq.reference.quantize(*args, **kwargs)
                        kwargs = {k: v for k, v in kwargs.items() if k == "axis"}
                        args = (q,) + args[1:]
                    failure = _check(name, getattr(iq, op), getattr(iq.reference, op), args, kwargs)
                    if failure:
                        break
            ok &= failure is None
            print(f"{op:<12} {isa:<13} {'PASS' if failure is None else 'FAIL  ' + failure}", file=out)
        for op in ("gemm", "qgemm"):
            rng = np.random.default_rng(seed)
            failure = None
            with iq.use_isa(isa):
                for name, case_op, args, kwargs in _gemm_cases(rng):
                    if case_op == op:
                        failure = _check(name, getattr(iq, op), getattr(iq.reference, op), args, kwargs)
                        if failure:
                            break
            ok &= failure is None
            print(f"{op:<12} {isa:<13} {'PASS' if failure is None else 'FAIL  ' + failure}", file=out)
    return ok


def cmd_validate(args) -> int:
    isas = iq.available_isas() if args.isa == "all" else [args.isa]
    for isa in isas:
        if isa not in iq.available_isas():
            print(f"ISA {isa!r} is not available here; available: {', '.join(iq.available_isas())}", file=sys.stderr)
            return 2
    return 0 if validate(isas, args.seed) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intquant_kernels", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("info", help="version, CPU features, ISAs and threads")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("validate", help="check every kernel against the NumPy reference")
    p.add_argument("--isa", default="all", help="an ISA name, or 'all' (default)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_validate)
    args = parser.parse_args(argv)
    if args.command is None:
        rc = cmd_info(args)
        print()
        return rc or cmd_validate(argparse.Namespace(isa="all", seed=0))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
