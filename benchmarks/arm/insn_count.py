#!/usr/bin/env python3
"""Executed instructions of one int8 GEMM call on each ARM path, under qemu.

Emulation gives no timings, but it does execute every instruction, and qemu
can log what it executes: with ``-d in_asm,exec,nochain`` it writes the
instructions of each translation block (TB) when it translates it and a line
for every execution of a TB (nochain: every TB returns to qemu's loop, so
none runs unlogged), and ``-dfilter`` keeps both to an address range. This
script (no qemu plugin needed; qemu-user 7.2's static build has none):

1. starts the aarch64 Python once to read where ``_core``'s code is mapped
   (guest addresses are the same on every run of the same script: checked);
2. runs it again with the log on, restricted to ``_core``'s code: a warm-up
   GEMM, two marker calls (``_core.parallel_runs``, which runs nothing else)
   with nothing between them, then a marker, the measured GEMM, a marker;
3. counts, per instruction address, how many times the executed TBs ran it,
   between the markers around the measured call, less the window between the
   first two markers (the markers' own call and return);
4. sorts the instructions by where they are: the tile kernel's loops that
   hold multiply-accumulates (its K loops), the rest of the kernel function
   (accumulator set-up, row sums, the epilogue and stores), the driver and
   runtime (``iqk::`` outside the kernel: ops/gemm.cc, packing or copying A,
   the thread pool) and the binding (pybind11, ``iqk_binding::``).

Counted is native code of ``_core`` only: the Python wrapper's interpreter
work, NumPy and libc calls (memset, malloc) are outside the filter. One op is
a multiply or an add: 2 per multiply-accumulate, 2 * M * N * K per GEMM.

Needs the aarch64 build of the package in <src>/python/intquant_kernels
(/root/.cache/iqk-arm/dev/build.sh <src> <builddir>), qemu-aarch64-static
and the aarch64 binutils. A manual tool, not a test.

  python benchmarks/arm/insn_count.py                        # every ARM path, 256^3, uint8 and int8 A
  python benchmarks/arm/insn_count.py --isa neon_i8mm --shape 64,256,64 --keep-logs /tmp/logs
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import asmloops as A  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ARM_PATHS = ("neon", "neon_dotprod", "neon_i8mm")

#: Ops (2 per multiply-accumulate) of one multiply-accumulate instruction of
#: each class, on 128-bit registers: the best an instruction can do.
IDEAL_OPS = {"smlal": 8, "mla": 8, "dot": 32, "mmla": 64}

KERNEL_LOOPS = "tile kernel: loops with multiply-accumulates"
KERNEL_REST = "tile kernel: the rest"
DRIVER = "driver and runtime"
BINDING = "binding"
OTHER = "other"
CATEGORIES = (KERNEL_LOOPS, KERNEL_REST, DRIVER, BINDING, OTHER)

GUEST = r'''
import json, sys
import numpy as np
import intquant_kernels as iq
from intquant_kernels import _core

def mapping():
    for line in open("/proc/self/maps"):
        f = line.split()
        if len(f) >= 6 and "x" in f[1] and f[5].endswith(".so") and "/_core." in f[5]:
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            return dict(path=f[5], start=lo, end=hi, offset=int(f[2], 16))

print("MAP " + json.dumps(mapping()), flush=True)
if sys.argv[1] == "map":
    sys.exit(0)
isa, dtype = sys.argv[2], sys.argv[3]
m, k, n = (int(x) for x in sys.argv[4].split(","))
iq.set_num_threads(1)
rng = np.random.default_rng(0)
info = np.iinfo(dtype)
a = rng.integers(info.min, info.max + 1, (m, k), dtype=dtype)
b = rng.integers(-127, 128, (k, n), dtype=np.int8)
out = np.empty((m, n), np.int32)
marker = _core.parallel_runs
with iq.use_isa(isa):
    kernel = iq.kernel_names(isa)["gemm"]
    pw = iq.pack_weights(b)
    iq.gemm(a, pw, out=out)                    # warm-up: translations, buffers
    before = iq.kernel_calls().get(kernel, 0)
    marker(); marker()                         # an empty window: the markers' own cost
    marker(); iq.gemm(a, pw, out=out); marker()
    calls = iq.kernel_calls().get(kernel, 0) - before
ok = bool(np.array_equal(out, a.astype(np.int64) @ b.astype(np.int64)))
print("RESULT " + json.dumps(dict(kernel=kernel, tile_calls=calls, exact=ok)), flush=True)
'''


def run_guest(args, mode, extra=(), log=None, dfilter=None):
    env = dict(os.environ)
    env["QEMU_CPU"] = args.qemu_cpu
    env["PYTHONPATH"] = os.pathsep.join([str(args.src / "python"), args.site])
    env["INTQUANT_NUM_THREADS"] = "1"
    for key in ("QEMU_LOG", "QEMU_DFILTER", "QEMU_LOG_FILENAME"):
        env.pop(key, None)
    if log:
        env.update(QEMU_LOG="in_asm,exec,nochain", QEMU_DFILTER=dfilter, QEMU_LOG_FILENAME=str(log))
    r = subprocess.run([args.python, "-c", GUEST, mode, *extra], env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"insn_count: the guest failed ({mode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    found = {}
    for line in r.stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key in ("MAP", "RESULT"):
            found[key] = json.loads(rest)
    return found


class Symbols:
    """The function symbols of the .so (nm), to find which function an address is in."""

    def __init__(self, so: str, nm: str, cxxfilt: str):
        out = subprocess.run([nm, "-S", "--defined-only", so], capture_output=True, text=True, check=True).stdout
        syms = []
        for line in out.splitlines():
            f = line.split()
            if len(f) == 4 and f[2] in "tTwW":
                syms.append((int(f[0], 16), int(f[1], 16), f[3]))
        syms.sort()
        self.syms = syms
        self.starts = [s[0] for s in syms]
        self.names = A.demangle({s[2] for s in syms}, cxxfilt)

    def find(self, addr: int):
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.syms[i][0] + self.syms[i][1]:
            return self.syms[i]
        return None

    def named(self, prefix: str):
        for s in self.syms:
            if self.names.get(s[2], s[2]).startswith(prefix):
                return s
        return None


def parse_log(path: Path, marker: int):
    """(the instruction addresses of each TB, by its first; [Counter of TB starts of each window between
    markers]). The instructions themselves are read from objdump: qemu 7.2's disassembler shows the
    dot-product and matrix instructions as .byte."""
    tbs, windows = {}, []
    cur = None  # the TB being read from an IN: block
    counts = None  # executions since the last marker
    insn = re.compile(r"^0x([0-9a-f]+):\s+[0-9a-f]{8}\s")
    trace = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("Trace"):
                m = trace.match(line)
                if not m:
                    continue
                pc = int(m.group(1), 16)
                if pc == marker:
                    if counts is not None:
                        windows.append(counts)
                    counts = Counter()
                elif counts is not None:
                    counts[pc] += 1
                continue
            m = insn.match(line)
            if m:
                addr = int(m.group(1), 16)
                if cur is None:
                    cur = addr
                    tbs[cur] = []
                tbs[cur].append(addr)
            elif not line.strip() or line.startswith("---") or line.startswith("IN:"):
                cur = None
    return tbs, windows


def per_address(tbs: dict, window: Counter) -> Counter:
    out = Counter()
    for pc, n in window.items():
        for addr in tbs.get(pc, ()):
            out[addr] += n
    return out


def measure(args, isa: str, dtype: str, syms_cache: dict, disasm_cache: dict) -> dict:
    m, k, n = args.shape
    extra = (isa, dtype, f"{m},{k},{n}")
    first = run_guest(args, "map", extra)["MAP"]
    if not first:
        sys.exit("insn_count: _core is not mapped in the guest (is the aarch64 build in <src>/python?)")
    so = first["path"]  # the host's path: the guest reads the package from the host's file system
    base = first["start"] - first["offset"]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(args.keep_logs or tmp) / f"qemu_{isa}_{dtype}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        dfilter = f"{first['start']:#x}..{first['end'] - 1:#x}"
        got = run_guest(args, "run", extra, log=log, dfilter=dfilter)
        if got["MAP"] != first:
            sys.exit(f"insn_count: _core moved between runs ({first} then {got['MAP']}); cannot filter")
        if so not in syms_cache:
            syms_cache[so] = Symbols(so, args.nm, args.cxxfilt)
        syms = syms_cache[so]
        marker_sym = syms.named("iqk::parallel_runs(")
        if marker_sym is None:
            sys.exit("insn_count: iqk::parallel_runs not found in the .so's symbols")
        tbs, windows = parse_log(log, base + marker_sym[0])
        log_bytes = log.stat().st_size
    if len(windows) != 3:
        sys.exit(f"insn_count: expected 3 windows between 4 markers, found {len(windows)}")
    result = got["RESULT"]
    kernel_sym = syms.named(f"iqk::{result['kernel']}(")
    if kernel_sym is None:
        sys.exit(f"insn_count: kernel {result['kernel']} not found in the .so's symbols")
    k_lo, k_size = kernel_sym[0], kernel_sym[1]
    # The kernel's loops with multiply-accumulates, from the .so's disassembly.
    insns = A.objdump_function(args.objdump, so, k_lo, k_size)
    kernel_loops = [lp for lp in A.objdump_loops(kernel_sym[2], insns) if lp.macs]
    loop_addrs = {i.addr for lp in kernel_loops for i in lp.insns}
    if so not in disasm_cache:
        disasm_cache[so] = {i.addr: i for i in A.objdump_function(args.objdump, so, 0, 1 << 40)}
    disasm = disasm_cache[so]

    def category(addr):
        off = addr - base
        if k_lo <= off < k_lo + k_size:
            return KERNEL_LOOPS if off in loop_addrs else KERNEL_REST
        s = syms.find(off)
        name = syms.names.get(s[2], s[2]) if s else ""
        if "pybind11" in name or name.startswith("iqk_binding::"):
            return BINDING
        if "iqk::" in name or name.startswith("__aarch64_"):
            return DRIVER
        return OTHER

    def symbol(addr):
        s = syms.find(addr - base)
        return A.short_name(syms.names.get(s[2], s[2])) if s else "(no symbol: PLT stubs)"

    def tally(window):
        cats, macs, by_sym = Counter(), Counter(), Counter()
        for addr, cnt in per_address(tbs, window).items():
            c = category(addr)
            cats[c] += cnt
            by_sym[(c, symbol(addr))] += cnt
            ins = disasm.get(addr - base)
            info = ins.mac if ins else None
            if info:
                macs[(ins.mnemonic, info[0], info[1])] += cnt
        return cats, macs, by_sym

    empty, _, _ = tally(windows[0])
    empty2, _, _ = tally(windows[1])
    cats, macs, by_sym = tally(windows[2])
    counts = per_address(tbs, windows[2])
    loops = [dict(start=f"{lp.insns[0].addr:#x}", instructions=len(lp.insns), multiply=lp.mac_summary(),
                  executed=sum(counts.get(base + i.addr, 0) for i in lp.insns),
                  iterations=counts.get(base + lp.insns[0].addr, 0))
             for lp in kernel_loops]
    net = Counter(cats)
    net.subtract(empty)
    ops = 2 * m * k * n
    mac_total = sum(macs.values())
    cls = max(macs, key=macs.get)[1] if macs else None
    ideal = IDEAL_OPS.get(cls)
    kernel_insns = net[KERNEL_LOOPS] + net[KERNEL_REST]
    total = sum(v for v in net.values())
    return dict(
        isa=isa, a_dtype=dtype, shape=[m, k, n], ops=ops, kernel=result["kernel"], tile_calls=result["tile_calls"],
        exact=result["exact"], categories=dict(net), marker_overhead=sum(empty.values()),
        marker_overhead_again=sum(empty2.values()), total=total, kernel_total=kernel_insns,
        mac_instructions={f"{mn}": c for (mn, _, _), c in macs.items()}, mac_total=mac_total,
        macs_executed=sum(c * per for (_, _, per), c in macs.items()), mac_class=cls, ideal_ops=ideal,
        ops_needed_instructions=ops / ideal if ideal else None, log_bytes=log_bytes,
        kernel_loops=[lp for lp in loops if lp["executed"]],
        symbols=[dict(category=c, symbol=name, instructions=v) for (c, name), v in by_sym.most_common(args.symbols)])


def markdown(rows) -> str:
    out = ["| path | A | executed instructions | multiply instructions (needed) | ops / instruction: all "
           "| tile kernel | K loops | % of the instruction's ideal: all | tile kernel | K loops |",
           "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c = r["categories"]
        macs = " + ".join(f"{n:,} {mn}" for mn, n in sorted(r["mac_instructions"].items(), key=lambda t: -t[1]))
        need = f" ({r['ops_needed_instructions']:,.0f})" if r["ops_needed_instructions"] else ""
        per = [r["ops"] / max(1, x) for x in (r["total"], r["kernel_total"], c.get(KERNEL_LOOPS, 0))]
        ideal = r["ideal_ops"]
        pct = [f"{100 * x / ideal:.1f}%" if ideal else "?" for x in per]
        out.append(f"| {r['isa']} | {r['a_dtype']} | {r['total']:,} | {macs}{need} | "
                   + " | ".join(f"{x:.2f}" for x in per) + " | " + " | ".join(pct) + " |")
    out += ["", "| path | A | " + " | ".join(CATEGORIES) + " |", "|---|---|" + "---:|" * len(CATEGORIES)]
    for r in rows:
        c = r["categories"]
        out.append(f"| {r['isa']} | {r['a_dtype']} | " + " | ".join(
            f"{c.get(k, 0):,} ({100 * c.get(k, 0) / r['total']:.1f}%)" for k in CATEGORIES) + " |")
    return "\n".join(out)


def details(rows) -> str:
    out = []
    for r in rows:
        out.append(f"\n{r['isa']}, {r['a_dtype']} A: kernel {r['kernel']} ({r['tile_calls']} tile calls, "
                   f"result exact: {r['exact']})")
        for lp in r["kernel_loops"]:
            out.append(f"  loop at {lp['start']}: {lp['instructions']} instructions ({lp['multiply']}), "
                       f"{lp['iterations']:,} iterations, {lp['executed']:,} executed")
        for s in r["symbols"]:
            out.append(f"  {s['instructions']:>10,}  {s['category']:<45} {s['symbol'][:90]}")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, default=REPO, help="tree whose python/ holds the aarch64 build (default: this)")
    p.add_argument("--isa", default=",".join(ARM_PATHS), help="comma-separated paths (default: the three ARM ones)")
    p.add_argument("--shape", default="256,256,256", help="M,K,N (default 256,256,256)")
    p.add_argument("--a-dtype", default="uint8,int8",
                   help="activation dtypes, comma-separated (default uint8,int8: uint8 rows are read in place, "
                        "int8 rows are copied, shifted by 128, by the driver)")
    p.add_argument("--python", default="/root/.cache/iqk-arm/dev/python-wrapper",
                   help="the emulated python3 (a wrapper that runs it under qemu-aarch64-static)")
    p.add_argument("--site", default="/root/.cache/iqk-arm/site-packages", help="the guest's NumPy, on PYTHONPATH")
    p.add_argument("--qemu-cpu", default="max,sme=off")
    p.add_argument("--nm", default="aarch64-linux-gnu-nm")
    p.add_argument("--objdump", default="aarch64-linux-gnu-objdump")
    p.add_argument("--cxxfilt", default="aarch64-linux-gnu-c++filt")
    p.add_argument("--keep-logs", type=Path, help="keep qemu's logs in this folder")
    p.add_argument("--json", type=Path, help="write the rows as JSON")
    p.add_argument("--symbols", type=int, default=12, help="functions listed per run, most executed first "
                                                             "(default 12; 0: none)")
    args = p.parse_args(argv)
    args.src = args.src.resolve()
    args.shape = [int(x) for x in args.shape.split(",")]
    rows, cache, disasm = [], {}, {}
    for isa in [s for s in args.isa.split(",") if s]:
        for dtype in [d for d in args.a_dtype.split(",") if d]:
            print(f"insn_count: {isa}, {dtype} A ...", file=sys.stderr, flush=True)
            r = measure(args, isa, dtype, cache, disasm)
            rows.append(r)
    m, k, n = args.shape
    print(f"One {m}x{k}x{n} iq.gemm call (int32 out, B packed beforehand, 1 thread), QEMU_CPU={args.qemu_cpu}; "
          f"{2 * m * k * n:,} ops. Native code of _core only, less the markers' own "
          f"{rows[0]['marker_overhead'] if rows else 0} instructions.\n")
    print(markdown(rows))
    if args.symbols:
        print(details(rows))
    bad = [r for r in rows if not r["exact"] or r["marker_overhead"] != r["marker_overhead_again"]]
    for r in bad:
        print(f"\nwarning: {r['isa']} {r['a_dtype']}: exact={r['exact']}, marker windows "
              f"{r['marker_overhead']} and {r['marker_overhead_again']}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
