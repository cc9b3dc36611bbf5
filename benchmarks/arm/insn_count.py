#!/usr/bin/env python3
"""Executed instructions of one int8 GEMM (or convolution) call on each ARM
path, under qemu.

Emulation gives no timings, but it does execute every instruction, and qemu
can log what it executes: with ``-d in_asm,exec,nochain`` it writes the
instructions of each translation block (TB) when it translates it and a line
for every execution of a TB (nochain: every TB returns to qemu's loop, so
none runs unlogged), and ``-dfilter`` keeps both to an address range. This
script (no qemu plugin needed; qemu-user 7.2's static build has none):

1. starts the aarch64 Python once to read where ``_core``'s code is mapped
   (guest addresses are the same on every run of the same script: checked);
2. runs it again with the log on, restricted to ``_core``'s code: a warm-up
   call, two marker calls (``_core.parallel_runs``, which runs nothing else)
   with nothing between them, then a marker, the measured call, a marker;
3. counts, per instruction address, how many times the executed TBs ran it,
   between the markers around the measured call, less the window between the
   first two markers (the markers' own call and return);
4. sorts the instructions by where they are: the kernel's loops that hold
   multiply-accumulates (a GEMM tile's K loops), the rest of the kernel
   (accumulator set-up, row sums, the epilogue and stores), the driver and
   runtime (``iqk::`` outside the kernel: ops/gemm.cc, copying A, the thread
   pool) and the binding (pybind11, ``iqk_binding::``).

Counted is native code of ``_core`` only: the Python wrapper's interpreter
work, NumPy and libc calls (memset, malloc) are outside the filter. One op is
a multiply or an add: 2 per multiply-accumulate, 2 * M * N * K per GEMM. The
instructions are read from the .so with objdump (qemu 7.2's disassembler
shows the dot-product and matrix instructions as .byte).

The kernel is the function the kernel counter names (iq.kernel_calls()); its
helpers in other functions (the depthwise kernels' templates) count as the
kernel only with --build-dir, whose object files tell which functions the
kernel's file holds.

Needs the aarch64 build of the package in <src>/python/intquant_kernels
(/root/.cache/iqk-arm/dev/build.sh <src> <builddir>), qemu-aarch64-static
and the aarch64 binutils. A manual tool, not a test.

  python benchmarks/arm/insn_count.py                       # every ARM path, 256^3, uint8 and int8 A
  python benchmarks/arm/insn_count.py --isa neon_i8mm --cases 64x256x64 --keep-logs /tmp/logs
  python benchmarks/arm/insn_count.py --isa neon --cases mobilenetv2_dw3x3_56x56x144 --build-dir build/arm
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
import mca  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ARM_PATHS = ("neon", "neon_dotprod", "neon_i8mm")

#: Ops (2 per multiply-accumulate) of one multiply-accumulate instruction of
#: each class, on 128-bit registers: the best an instruction can do.
IDEAL_OPS = {"smlal": 8, "mla": 8, "dot": 32, "mmla": 64}

KERNEL_LOOPS = "kernel: loops with multiply-accumulates"
KERNEL_REST = "kernel: the rest"
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
isa, case, variant = sys.argv[2], sys.argv[3], sys.argv[4]
iq.set_num_threads(1)
rng = np.random.default_rng(0)
if "x" in case and case.replace("x", "").isdigit():  # a GEMM, M x K x N; variant: A's dtype
    m, k, n = (int(x) for x in case.split("x"))
    info = np.iinfo(variant)
    a = rng.integers(info.min, info.max + 1, (m, k), dtype=variant)
    b = rng.integers(-127, 128, (k, n), dtype=np.int8)
    out = np.empty((m, n), np.int32)
    with iq.use_isa(isa):
        pw = iq.pack_weights(b)
    call = lambda: iq.gemm(a, pw, out=out)
    check = lambda: np.array_equal(out, a.astype(np.int64) @ b.astype(np.int64))
    ops = 2 * m * k * n
else:  # a bench conv layer, uint8 input as the bench gives it; variant: the layout
    from intquant_kernels.bench import cases
    layer = next(l for l in cases.CONV_LAYERS if l.name == case)
    x = rng.integers(0, 256, (layer.n, layer.c, layer.h, layer.w), dtype=np.uint8)
    if variant == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    w = rng.integers(-127, 128, (layer.oc, layer.c // layer.groups, layer.k, layer.k), dtype=np.int8)
    geo = dict(stride=layer.stride, padding=layer.padding, groups=layer.groups, layout=variant, x_zero_point=128)
    oh, ow = layer.out_hw
    out = np.empty((layer.n, layer.oc, oh, ow) if variant == "NCHW" else (layer.n, oh, ow, layer.oc), np.int32)
    with iq.use_isa(isa):
        pw = iq.pack_conv_weights(w, groups=layer.groups)
    call = lambda: iq.conv2d(x, pw, **geo, out=out)
    check = lambda: np.array_equal(out, iq.reference.conv2d(x, w, **geo))
    ops = layer.ops
marker = _core.parallel_runs
with iq.use_isa(isa):
    call()                                     # warm-up: translations, buffers, plans
    before = iq.kernel_calls()
    marker(); marker()                         # an empty window: the markers' own cost
    marker(); call(); marker()
    after = iq.kernel_calls()
calls = {name: c - before.get(name, 0) for name, c in after.items() if c != before.get(name, 0)}
print("RESULT " + json.dumps(dict(kernels=calls, ops=ops, exact=bool(check()))), flush=True)
'''


def run_guest(args, mode, extra=(), log=None, dfilter=None):
    env = dict(os.environ)
    env["QEMU_CPU"] = args.qemu_cpu
    env["PYTHONPATH"] = os.pathsep.join([str(args.src / "python"), args.site])
    env["INTQUANT_NUM_THREADS"] = "1"
    for key in ("QEMU_LOG", "QEMU_DFILTER", "QEMU_LOG_FILENAME", "INTQUANT_ISA"):
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

    def mangled(self, names: set) -> list:
        return [s for s in self.syms if s[2] in names]


def object_functions(build_dir: Path | None, kernel: str, nm: str, cxxfilt: str) -> set:
    """The mangled names of the functions of the kernel object (in ``build_dir``) that defines
    ``iqk::<kernel>``; empty without a build folder."""
    if build_dir is None:
        return set()
    for obj in sorted((build_dir / "CMakeFiles").rglob("csrc/kernels/**/*.o")):
        out = subprocess.run([nm, "--defined-only", str(obj)], capture_output=True, text=True).stdout
        names = {f[2] for f in (line.split() for line in out.splitlines()) if len(f) == 3 and f[1] in "tTwW"}
        if any(dm.startswith(f"iqk::{kernel}(") for dm in A.demangle(names, cxxfilt).values()):
            return names
    return set()


def parse_log(path: Path, marker: int):
    """(the instruction addresses of each TB, by its first; [Counter of TB starts of each window
    between markers])."""
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


def _mca_text(ins) -> str:
    """objdump's text of an instruction as llvm-mca reads it: branch targets as symbols."""
    if A.BRANCHES.match(ins.mnemonic):
        parts = ins.operands.split(",")
        parts[-1] = " L_" + parts[-1].strip()
        return f"{ins.mnemonic} {','.join(parts).strip()}"
    return ins.text


def per_address(tbs: dict, window: Counter) -> Counter:
    out = Counter()
    for pc, n in window.items():
        for addr in tbs.get(pc, ()):
            out[addr] += n
    return out


def measure(args, isa: str, case: str, variant: str, cache: dict) -> dict:
    extra = (isa, case, variant)
    first = run_guest(args, "map", extra)["MAP"]
    if not first:
        sys.exit("insn_count: _core is not mapped in the guest (is the aarch64 build in <src>/python?)")
    so = first["path"]  # the host's path: the guest reads the package from the host's file system
    base = first["start"] - first["offset"]
    if so not in cache:
        cache[so] = (Symbols(so, args.nm, args.cxxfilt),
                     {i.addr: i for i in A.objdump_function(args.objdump, so, 0, 1 << 40)})
    syms, disasm = cache[so]
    marker_sym = syms.named("iqk::parallel_runs(")
    if marker_sym is None:
        sys.exit("insn_count: iqk::parallel_runs not found in the .so's symbols")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(args.keep_logs or tmp) / f"qemu_{isa}_{case}_{variant}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        got = run_guest(args, "run", extra, log=log, dfilter=f"{first['start']:#x}..{first['end'] - 1:#x}")
        if got["MAP"] != first:
            sys.exit(f"insn_count: _core moved between runs ({first} then {got['MAP']}); cannot filter")
        tbs, windows = parse_log(log, base + marker_sym[0])
        log_bytes = log.stat().st_size
    if len(windows) != 3:
        sys.exit(f"insn_count: expected 3 windows between 4 markers, found {len(windows)}")
    result = got["RESULT"]

    # The kernel: the functions the kernel counter names, with their file's other functions
    # (--build-dir); its loops with multiply-accumulates, from the .so's disassembly.
    kernel_syms = []
    for name in result["kernels"]:
        entry = syms.named(f"iqk::{name}(")
        if entry is None:
            sys.exit(f"insn_count: kernel {name} not found in the .so's symbols")
        kernel_syms += [entry] + syms.mangled(object_functions(args.build_dir, name, args.nm, args.cxxfilt))
    kernel_ranges = sorted({(s[0], s[0] + s[1]) for s in kernel_syms})
    kernel_loops = []
    for lo, hi in kernel_ranges:
        fn = syms.find(lo)
        insns = [disasm[a] for a in range(lo, hi, 4) if a in disasm]
        kernel_loops += [(fn, lp) for lp in A.objdump_loops(fn[2], insns) if lp.macs]
    loop_addrs = {i.addr for _, lp in kernel_loops for i in lp.insns}
    starts = [r[0] for r in kernel_ranges]

    def in_kernel(off):
        i = bisect.bisect_right(starts, off) - 1
        return i >= 0 and off < kernel_ranges[i][1]

    def category(addr):
        off = addr - base
        if in_kernel(off):
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
    loops = []
    for fn, lp in kernel_loops:
        executed = sum(counts.get(base + i.addr, 0) for i in lp.insns)
        iterations = counts.get(base + int(lp.label, 16), 0)
        if not executed:
            continue
        # The hot path: the loop's instructions that ran on at least half of its iterations.
        hot = [i for i in lp.insns if iterations and counts.get(base + i.addr, 0) >= iterations / 2]
        rec = dict(function=A.short_name(syms.names.get(fn[2], fn[2])), start=lp.label,
                   instructions=len(lp.insns), every_iteration=len(lp.every), multiply=lp.mac_summary(),
                   executed=executed, iterations=iterations, hot=len(hot), hot_multiply=lp.mac_summary(hot),
                   mca={})
        hot_macs = [i for i in hot if i.mac]
        for core in args.mca_cores:
            text = [_mca_text(i) for i in hot]
            r = mca.run_mca(args.mca, core, args.mattr, text, 500)
            probe = mca.run_mca(args.mca, core, args.mattr, [_mca_text(i) for i in hot_macs], 500)
            cycles = r["cycles"] / r["iterations"]
            peak = len(hot_macs) / probe["rthroughput"] if probe["rthroughput"] else None
            rec["mca"][core] = dict(cycles=cycles, mac_per_cycle=len(hot_macs) / cycles, peak=peak,
                                    pct=100 * len(hot_macs) / cycles / peak if peak else None)
        loops.append(rec)
    net = Counter(cats)
    net.subtract(empty)
    ops = result["ops"]
    cls = max(macs, key=macs.get)[1] if macs else None
    ideal = IDEAL_OPS.get(cls)
    return dict(
        isa=isa, case=case, variant=variant, ops=ops, kernels=result["kernels"], exact=result["exact"],
        categories=dict(net), marker_overhead=sum(empty.values()), marker_overhead_again=sum(empty2.values()),
        total=sum(net.values()), kernel_total=net[KERNEL_LOOPS] + net[KERNEL_REST],
        mac_instructions={mn: c for (mn, _, _), c in macs.items()},
        macs_executed=sum(c * per for (_, _, per), c in macs.items()), mac_class=cls, ideal_ops=ideal,
        ops_needed_instructions=ops / ideal if ideal else None, log_bytes=log_bytes,
        kernel_functions=len(kernel_ranges), kernel_loops=loops,
        symbols=[dict(category=c, symbol=name, instructions=v) for (c, name), v in by_sym.most_common(args.symbols)])


def markdown(rows) -> str:
    out = ["| path | case | executed instructions | multiply-accumulate instructions (needed) | ops / instruction: "
           "all | kernel | its MAC loops | % of the instruction's ideal: all | kernel | its MAC loops |",
           "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c = r["categories"]
        macs = " + ".join(f"{n:,} {mn}" for mn, n in sorted(r["mac_instructions"].items(), key=lambda t: -t[1]))
        need = f" ({r['ops_needed_instructions']:,.0f})" if r["ops_needed_instructions"] else ""
        per = [r["ops"] / max(1, x) for x in (r["total"], r["kernel_total"], c.get(KERNEL_LOOPS, 0))]
        ideal = r["ideal_ops"]
        pct = [f"{100 * x / ideal:.1f}%" if ideal else "?" for x in per]
        out.append(f"| {r['isa']} | {r['case']} {r['variant']} | {r['total']:,} | {macs}{need} | "
                   + " | ".join(f"{x:.2f}" for x in per) + " | " + " | ".join(pct) + " |")
    out += ["", "| path | case | " + " | ".join(CATEGORIES) + " |", "|---|---|" + "---:|" * len(CATEGORIES)]
    for r in rows:
        c = r["categories"]
        out.append(f"| {r['isa']} | {r['case']} {r['variant']} | " + " | ".join(
            f"{c.get(k, 0):,} ({100 * c.get(k, 0) / r['total']:.1f}%)" for k in CATEGORIES) + " |")
    return "\n".join(out)


def details(rows) -> str:
    out = []
    for r in rows:
        kernels = ", ".join(f"{k} x{n}" for k, n in r["kernels"].items())
        out.append(f"\n{r['isa']}, {r['case']} {r['variant']}: {kernels} ({r['kernel_functions']} kernel "
                   f"function(s)); result exact: {r['exact']}")
        for lp in r["kernel_loops"]:
            per = lp["executed"] / lp["iterations"] if lp["iterations"] else 0
            out.append(f"  loop {lp['function'][:40]} at {lp['start']}: {lp['instructions']} instructions "
                       f"({lp['every_iteration']} on every iteration; {lp['multiply']}), {lp['iterations']:,} "
                       f"iterations, {lp['executed']:,} executed ({per:.1f} per iteration); hot path (run on "
                       f">= half the iterations): {lp['hot']} instructions, {lp['hot_multiply']}")
            for core, m in lp["mca"].items():
                pct = "?" if m["pct"] is None else f"{m['pct']:.0f}%"
                out.append(f"    llvm-mca {core}, hot path: {m['cycles']:.1f} cycles per iteration, "
                           f"{m['mac_per_cycle']:.2f} multiply instructions per cycle, peak {m['peak']:.2f}: {pct}")
        for s in r["symbols"]:
            out.append(f"  {s['instructions']:>10,}  {s['category']:<40} {s['symbol'][:90]}")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, default=REPO, help="tree whose python/ holds the aarch64 build (default: this)")
    p.add_argument("--build-dir", type=Path,
                   help="its build folder: the kernel's object file tells which functions are the kernel's")
    p.add_argument("--isa", default=",".join(ARM_PATHS), help="comma-separated paths (default: the three ARM ones)")
    p.add_argument("--cases", default="256x256x256",
                   help="comma-separated GEMM shapes MxKxN and bench conv layer names (default 256x256x256)")
    p.add_argument("--a-dtype", default="uint8,int8",
                   help="GEMM activation dtypes, comma-separated (default uint8,int8: uint8 rows are read in "
                        "place, int8 rows are copied, shifted by 128, by the driver)")
    p.add_argument("--layout", default="NHWC", help="conv layouts, comma-separated (default NHWC, the bench's)")
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
    p.add_argument("--mca-cores", default="",
                   help="comma-separated llvm-mca -mcpu names: also the llvm-mca throughput of each kernel loop's "
                        "hot path (its instructions that ran on at least half of its iterations)")
    p.add_argument("--mca", default=mca.shutil.which("llvm-mca-19") or "llvm-mca")
    args = p.parse_args(argv)
    args.mca_cores = [c for c in args.mca_cores.split(",") if c]
    args.mattr = "+dotprod,+i8mm"
    args.src = args.src.resolve()
    rows, cache = [], {}
    for isa in [s for s in args.isa.split(",") if s]:
        for case in [c for c in args.cases.split(",") if c]:
            gemm = re.fullmatch(r"\d+x\d+x\d+", case) is not None
            for variant in [v for v in (args.a_dtype if gemm else args.layout).split(",") if v]:
                print(f"insn_count: {isa}, {case} {variant} ...", file=sys.stderr, flush=True)
                rows.append(measure(args, isa, case, variant, cache))
    print(f"One call of each case (int32 output, weights packed beforehand, 1 thread), QEMU_CPU={args.qemu_cpu}. "
          f"Native code of _core only, less the markers' own {rows[0]['marker_overhead'] if rows else 0} "
          "instructions. GEMM variants: A's dtype; conv: the layout.\n")
    print(markdown(rows))
    if args.symbols:
        print(details(rows))
    bad = [r for r in rows if not r["exact"] or r["marker_overhead"] != r["marker_overhead_again"]]
    for r in bad:
        print(f"\nwarning: {r['isa']} {r['case']} {r['variant']}: exact={r['exact']}, marker windows "
              f"{r['marker_overhead']} and {r['marker_overhead_again']}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
