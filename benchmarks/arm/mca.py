#!/usr/bin/env python3
"""Static throughput of the ARM kernels' inner loops, from llvm-mca.

Each ARM kernel file (csrc/kernels/**/*__neon*.cc: whichever exist) is
cross-compiled to assembly with its path's flags, as CMake compiles it. The
innermost loops of each kernel function with the most multiply-accumulate
instructions (smlal, sdot/udot, usmmla, ...) are handed to llvm-mca for the
cores the path targets, and a markdown table gives, per loop and core:
instructions and multiply-accumulates per iteration, llvm-mca's cycles per
iteration, multiply-accumulate instructions per cycle against the core's
multiply-port peak, and the resource llvm-mca finds busiest.

The peak is llvm-mca's own: the block reciprocal throughput of the loop's
multiply-accumulate instructions alone (the ports its scheduling model gives
them), beside the figure of the package's peak table
(python/intquant_kernels/bench/peaks.py, from Arm's Software Optimization
Guides) where it has a row for the core.

A loop whose blocks do not all run on every iteration (a tail store, a
call) is shown twice: with every block, as laid out (an upper bound on its
work per iteration), and with only the blocks that run on every iteration
(those that dominate its back edges: a lower bound).

Needs aarch64-linux-gnu-g++ and llvm-mca (19 or later for the Neoverse V2
model). A manual tool, not a test: nothing here is collected by pytest.

  python benchmarks/arm/mca.py                       # every ARM kernel file of this tree
  python benchmarks/arm/mca.py --src /path/to/tree --build-dir /path/to/build  # exact CMake flags
  python benchmarks/arm/mca.py --files gemm --loops 4 --show-loops
"""
from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import asmloops as A  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

#: What CMake passes to every file of the module in a Release build (seen in
#: compile_commands.json of a cross build), besides the include path and the
#: path's own flags.
COMMON_FLAGS = ["-O3", "-DNDEBUG", "-std=gnu++20", "-fPIC", "-fvisibility=hidden", "-ffp-contract=off"]

#: The paths' flags when CMakeLists.txt cannot be read for them.
FALLBACK_FLAGS = {
    "neon": ["-march=armv8-a"],
    "neondotprod": ["-march=armv8.2-a+dotprod"],
    "neoni8mm": ["-march=armv8.2-a+dotprod+i8mm"],
}

#: The cores each path is measured on (--all-cores adds the rest of ALL_CORES
#: that can run it).
CORES = {
    "neon": ["cortex-a72", "neoverse-n1"],
    "neondotprod": ["neoverse-n1"],
    "neoni8mm": ["neoverse-v1", "neoverse-v2"],
}
ALL_CORES = {
    "neon": ["cortex-a72", "neoverse-n1", "neoverse-v1", "neoverse-v2"],
    "neondotprod": ["neoverse-n1", "neoverse-v1", "neoverse-v2"],
    "neoni8mm": ["neoverse-v1", "neoverse-v2"],
}
MATTR = {"neon": "", "neondotprod": "+dotprod", "neoni8mm": "+dotprod,+i8mm"}

#: bench/peaks.py row of each core (Cortex-A72 has none).
PEAKS_ROW = {"neoverse-n1": "arm_neoverse_n1", "neoverse-v1": "arm_neoverse_v1", "neoverse-v2": "arm_neoverse_v2"}

#: The issue's targets, % of the multiply ports' peak, by kind of kernel.
TARGETS = {"gemm": 85, "gconv": 85, "dwconv": 50}


def kernel_kind(rel: str) -> str:
    name = Path(rel).name
    if rel.startswith("csrc/kernels/gemm/"):
        return "gemm"
    if name.startswith("dwconv"):
        return "dwconv"
    if name.startswith("gconv"):
        return "gconv"
    return Path(rel).parent.name


def path_token(rel: str) -> str | None:
    m = re.search(r"__(neon\w*)\.cc$", rel)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------
# Compiling
# ---------------------------------------------------------------------------

def _call_args(text: str, start: int) -> str:
    """The argument text of the call whose '(' is at ``start`` (balanced, quotes skipped)."""
    depth, i, quoted = 0, start, False
    while i < len(text):
        ch = text[i]
        if ch == '"' and text[i - 1] != "\\":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
        i += 1
    return text[start + 1:]


def cmake_isa_flags(cmakelists: Path) -> dict:
    """token -> FLAGS of each iqk_add_isa() call of CMakeLists.txt."""
    text = re.sub(r"#[^\n]*", "", cmakelists.read_text())
    out = {}
    for m in re.finditer(r"iqk_add_isa\s*\(", text):
        args = shlex.split(_call_args(text, m.end() - 1))
        if not args or args[0] == "token":
            continue
        flags, section = [], None
        for a in args[1:]:
            if a in ("BASE", "FLAGS", "CHECK", "SOURCES"):
                section = a
            elif section == "FLAGS":
                flags.append(a)
        if flags and not any("${" in f for f in flags):
            out[args[0]] = flags
    return out


def compile_commands(build_dir: Path | None) -> dict:
    """Source path relative to its tree (csrc/...) -> the compiler's arguments, from a build's
    compile_commands.json (configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)."""
    if build_dir is None:
        return {}
    path = build_dir / "compile_commands.json"
    if not path.exists():
        sys.exit(f"mca: {path} not found (configure the build with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)")
    out = {}
    for entry in json.loads(path.read_text()):
        f = entry["file"]
        i = f.find("/csrc/")
        if i >= 0:
            out[f[i + 1:]] = (entry.get("arguments") or shlex.split(entry["command"]), entry["directory"])
    return out


def to_assembly(src: Path, rel: str, flags: list, commands: dict, cxx: str, out: Path) -> tuple:
    """Compiles one kernel file to ``out``; returns (command, how the flags were chosen)."""
    if rel in commands:
        args, cwd = commands[rel]
        cmd, skip = [], False
        for a in args:
            if skip:
                skip = False
                continue
            if a in ("-o", "-c"):
                skip = True
                continue
            cmd.append(a)
        cmd += ["-S", "-o", str(out), args[args.index("-c") + 1] if "-c" in args else str(src / rel)]
        how = "compile_commands.json"
    else:
        cmd, cwd = [cxx, "-I", str(src / "csrc"), *COMMON_FLAGS, *flags, "-S", "-o", str(out), str(src / rel)], None
        how = "CMakeLists.txt flags"
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{rel}: compile failed:\n{r.stderr[-3000:]}")
    return cmd, how


# ---------------------------------------------------------------------------
# llvm-mca
# ---------------------------------------------------------------------------

# A byte-vector movi as objdump writes a negative byte (0xffffffffffffff80), which
# llvm-mca's assembler refuses: the byte itself is meant.
_MOVI_BYTE = re.compile(r"^(\s*movi\s+v\d+\.(?:8|16)b,\s*)0x(f{8,}[0-9a-f]{2})\b", re.I)


def _mca_line(line: str) -> str:
    return _MOVI_BYTE.sub(lambda m: f"{m.group(1)}{int(m.group(2), 16) & 0xFF:#x}", line)


def run_mca(mca: str, core: str, mattr: str, lines: list, iterations: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        f.write("\n".join(_mca_line(line) for line in lines) + "\n")
        name = f.name
    try:
        cmd = [mca, "-mtriple=aarch64", f"-mcpu={core}", f"-iterations={iterations}", "-resource-pressure",
               "-instruction-info=false", name]
        if mattr:
            cmd.insert(3, f"-mattr={mattr}")
        r = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        os.unlink(name)
    if r.returncode:
        raise RuntimeError(f"llvm-mca failed ({core}): {r.stderr[-2000:]}")
    return parse_mca(r.stdout)


def parse_mca(text: str) -> dict:
    def num(key):
        m = re.search(rf"^{key}:\s+([\d.]+)", text, re.M)
        return float(m.group(1)) if m else None

    res = dict(iterations=num("Iterations"), instructions=num("Instructions"), cycles=num("Total Cycles"),
               rthroughput=num("Block RThroughput"), ipc=num("IPC"), text=text)
    names = dict(re.findall(r"^\[([\d.]+)\]\s+-\s+(\S+)", text, re.M))
    m = re.search(r"Resource pressure per iteration:\n(.*)\n(.*)\n", text)
    pressure = {}
    if m:
        ids = re.findall(r"\[([\d.]+)\]", m.group(1))
        vals = m.group(2).split()
        for i, v in zip(ids, vals):
            pressure[names.get(i, i)] = 0.0 if v == "-" else float(v)
    res["pressure"] = pressure
    return res


def load_peaks(src: Path):
    """python/intquant_kernels/bench/peaks.py as a module (it imports nothing of the package at load)."""
    path = src / "python/intquant_kernels/bench/peaks.py"
    if not path.exists():
        path = REPO / "python/intquant_kernels/bench/peaks.py"
    spec = importlib.util.spec_from_file_location("iqk_peaks", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def guide_peak(peaks, core: str, cls: str):
    row = peaks.ROWS.get(PEAKS_ROW.get(core, ""))
    instr = A.PEAKS_INSTRUCTION.get(cls)
    if row is None or instr is None:
        return None
    return row.per_cycle.get(instr)


# ---------------------------------------------------------------------------
# Selecting loops
# ---------------------------------------------------------------------------

def pick_loops(loops: list, names: dict, n: int, all_epilogues: bool) -> list:
    """Per kernel function, its ``n`` innermost loops with the most multiply-accumulates. The
    epilogue-kind instances of a template (GemmOut 0/1/2) are all kept with ``all_epilogues``,
    otherwise only the int32 one (what conv2d and gemm run)."""
    by_fn = {}
    for lp in loops:
        if lp.macs:
            by_fn.setdefault(lp.function, []).append(lp)
    out = []
    for fn, ls in by_fn.items():
        dm = names.get(fn, fn)
        if not all_epilogues and re.search(r"\(iqk::GemmOut\)[12]\b", dm):
            continue
        ls.sort(key=lambda lp: (-lp.mac_count, len(lp.insns)))
        out += ls[:n]
    return out


def pick_plain_loops(loops: list, names: dict) -> list:
    """Per function of a file without multiply-accumulates, its innermost loop with the most SIMD instructions."""
    by_fn = {}
    for lp in loops:
        by_fn.setdefault(lp.function, []).append(lp)
    out = []
    for fn, ls in by_fn.items():
        ls = [lp for lp in ls if sum(i.simd for i in lp.insns)]
        if ls:
            out.append(max(ls, key=lambda lp: (sum(i.simd for i in lp.insns), -len(lp.insns))))
    return out


# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, default=REPO, help="source tree (default: this one)")
    p.add_argument("--build-dir", type=Path,
                   help="a cross build configured with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON: its exact compile "
                        "commands (default: the flags of CMakeLists.txt's iqk_add_isa calls and COMMON_FLAGS)")
    p.add_argument("--files", default="", help="only kernel files whose path contains one of these "
                                               "comma-separated strings (e.g. gemm,dwconv)")
    p.add_argument("--loops", type=int, default=1, help="loops per kernel function (default 1: the hottest)")
    p.add_argument("--all-epilogues", action="store_true",
                   help="every epilogue instance (i32, f32, q8) of templated kernels, not only i32")
    p.add_argument("--all-cores", action="store_true",
                   help="also the later cores that run a path (Neoverse V1/V2 for neon and neon_dotprod)")
    p.add_argument("--cores", help="comma-separated llvm-mca -mcpu names for every file instead")
    p.add_argument("--iterations", type=int, default=500, help="llvm-mca iterations (default 500)")
    p.add_argument("--cxx", default="aarch64-linux-gnu-g++")
    p.add_argument("--mca", default=shutil.which("llvm-mca-19") or "llvm-mca")
    p.add_argument("--cxxfilt", default="aarch64-linux-gnu-c++filt")
    p.add_argument("--save", type=Path, help="keep the assembly, each loop and llvm-mca's output in this folder")
    p.add_argument("--show-loops", action="store_true", help="print each selected loop's instructions")
    p.add_argument("--json", type=Path, help="write the rows as JSON")
    args = p.parse_args(argv)

    src = args.src.resolve()
    for tool in (args.cxx, args.mca):
        if not shutil.which(tool):
            sys.exit(f"mca: {tool} not found")
    files = sorted(str(f.relative_to(src)) for f in (src / "csrc/kernels").rglob("*__neon*.cc"))
    wanted = [w for w in args.files.split(",") if w]
    files = [f for f in files if path_token(f) and (not wanted or any(w in f for w in wanted))]
    if not files:
        sys.exit("mca: no ARM kernel files found")
    cm = src / "CMakeLists.txt"
    isa_flags = {**FALLBACK_FLAGS, **(cmake_isa_flags(cm) if cm.exists() else {})}
    commands = compile_commands(args.build_dir)
    peaks = load_peaks(src)

    work = Path(tempfile.mkdtemp(prefix="iqk_mca_")) if args.save is None else args.save
    work.mkdir(parents=True, exist_ok=True)

    def build(rel):
        out = work / (Path(rel).stem + ".s")
        cmd, how = to_assembly(src, rel, isa_flags.get(path_token(rel), []), commands, args.cxx, out)
        return rel, out, cmd, how

    print(f"compiling {len(files)} kernel file(s) of {src} ...", file=sys.stderr)
    with concurrent.futures.ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as ex:
        built = list(ex.map(build, files))

    rows, plain_rows, notes = [], [], []
    for rel, asm, cmd, how in built:
        token = path_token(rel)
        kind = kernel_kind(rel)
        flags = " ".join(a for a in cmd if a.startswith("-march"))
        notes.append(f"{rel}: {flags} ({how})")
        loops = A.gcc_loops(asm.read_text())
        names = A.demangle({lp.function for lp in loops}, args.cxxfilt)
        cores = args.cores.split(",") if args.cores else (ALL_CORES if args.all_cores else CORES)[token]
        picked = pick_loops(loops, names, args.loops, args.all_epilogues)
        if not picked:
            for lp in pick_plain_loops(loops, names):
                fn = A.short_name(names.get(lp.function, lp.function))
                if args.show_loops:
                    print(f"\n# {rel} {fn} loop {lp.label}: {len(lp.insns)} instructions")
                    print("\n".join("\t" + i.text for i in lp.insns))
                tag = f"{Path(rel).stem}_{lp.label.lstrip('.')}"
                if args.save:
                    (work / f"{tag}.s").write_text("\n".join(i.text for i in lp.insns) + "\n")
                for core in cores:
                    r = run_mca(args.mca, core, MATTR[token], [i.text for i in lp.insns], args.iterations)
                    if args.save:
                        (work / f"{tag}_{core}.mca.txt").write_text(r["text"])
                    plain_rows.append(dict(file=rel, function=fn,
                                           loop=lp.label, core=core, insns=len(lp.insns),
                                           simd=sum(i.simd for i in lp.insns),
                                           cycles=r["cycles"] / r["iterations"], ipc=r["ipc"],
                                           busiest=_busiest(r["pressure"])))
            continue
        for lp in picked:
            fn = A.short_name(names.get(lp.function, lp.function))
            variants = [("all", lp.insns)] + ([("every", lp.every)] if lp.branchy else [])
            if args.show_loops:
                print(f"\n# {rel} {fn} loop {lp.label}: {len(lp.insns)} instructions "
                      f"({len(lp.every)} on every iteration), {lp.mac_summary()}")
                print("\n".join("\t" + i.text for i in lp.insns))
            for path, insns in variants:
                macs = [i for i in insns if i.mac]
                if not macs:
                    continue
                cls = macs[0].mac[0]
                tag = f"{Path(rel).stem}_{lp.label.lstrip('.')}_{path}"
                if args.save:
                    (work / f"{tag}.s").write_text("\n".join(i.text for i in insns) + "\n")
                for core in cores:
                    r = run_mca(args.mca, core, MATTR[token], [i.text for i in insns], args.iterations)
                    probe = run_mca(args.mca, core, MATTR[token], [i.text for i in macs], args.iterations)
                    if args.save:
                        (work / f"{tag}_{core}.mca.txt").write_text(r["text"])
                    cyc = r["cycles"] / r["iterations"]
                    peak = len(macs) / probe["rthroughput"] if probe["rthroughput"] else None
                    ports = [k for k, v in probe["pressure"].items() if v > 0]
                    per_cycle = len(macs) / cyc
                    rows.append(dict(
                        file=rel, kind=kind, path=token, function=fn, loop=lp.label,
                        blocks="every block" if path == "all" else "blocks run every iteration",
                        branchy=lp.branchy, core=core, insns=len(insns), mac_insns=len(macs),
                        mac_summary=lp.mac_summary(insns), macs=sum(i.mac[1] for i in macs), mac_class=cls,
                        cycles=cyc, mac_per_cycle=per_cycle, peak=peak, peak_ports=ports,
                        guide_peak=guide_peak(peaks, core, cls),
                        pct=100 * per_cycle / peak if peak else None, target=TARGETS.get(kind),
                        busiest=_busiest(r["pressure"]), ipc=r["ipc"]))

    print(markdown(rows, plain_rows, notes, args.mca))
    if args.json:
        args.json.write_text(json.dumps(dict(rows=rows, plain=plain_rows, notes=notes), indent=1))
    if args.save is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _busiest(pressure: dict) -> str:
    if not pressure:
        return "?"
    name, v = max(pressure.items(), key=lambda t: t[1])
    return f"{_ports([name])} {v:.1f}"


def _ports(names):
    short = [re.sub(r"^(A57|N1|V1|V2|N2)Unit", "", n) for n in names]
    return ",".join(short)


def markdown(rows, plain_rows, notes, mca) -> str:
    version = subprocess.run([mca, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"LLVM version ([\d.]+)", version)
    out = [f"llvm-mca {m.group(1) if m else '?'}; per iteration of each loop. Peak: the loop's multiply-accumulate "
           "instructions alone through llvm-mca (its ports in brackets); SWOG: bench/peaks.py's figure "
           "(Arm Software Optimization Guide) where it has the core.", ""]
    out.append("| kernel | loop | core | instructions | multiply-accumulates | cycles (llvm-mca) | MAC insns/cycle "
               "| peak (llvm-mca) | SWOG | % of peak | target | busiest resource (cycles) |")
    out.append("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        loop = r["loop"] + ("" if not r["branchy"] else (" (all blocks)" if r["blocks"] == "every block"
                                                        else " (every-iteration blocks)"))
        peak = f"{r['peak']:.2f} [{_ports(r['peak_ports'])}]" if r["peak"] else "?"
        guide = "–" if r["guide_peak"] is None else f"{r['guide_peak']:g}"
        pct = "?" if r["pct"] is None else f"{r['pct']:.0f}%"
        target = "" if r["target"] is None else f"≥{r['target']}%"
        out.append(f"| {Path(r['file']).stem} `{r['function']}` | {loop} | {r['core']} | {r['insns']} "
                   f"| {r['mac_summary']} | {r['cycles']:.1f} | {r['mac_per_cycle']:.2f} | {peak} | {guide} "
                   f"| {pct} | {target} | {r['busiest']} |")
    if plain_rows:
        out += ["", "Loops without multiply-accumulates (the innermost loop with the most SIMD instructions of each "
                "function):", "",
                "| file | function | loop | core | instructions | SIMD | cycles (llvm-mca) | IPC | busiest resource |",
                "|---|---|---|---|---:|---:|---:|---:|---|"]
        for r in plain_rows:
            out.append(f"| {Path(r['file']).stem} | `{r['function']}` | {r['loop']} | {r['core']} | {r['insns']} "
                       f"| {r['simd']} | {r['cycles']:.1f} | {r['ipc']:.2f} | {r['busiest']} |")
    out += ["", "Compiled:"] + [f"- {n}" for n in notes]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
