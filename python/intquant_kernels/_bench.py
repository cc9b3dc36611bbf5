"""The measuring code of ``python -m intquant_kernels bench``.

int8 throughput of every ISA path against float32 measured in the same run,
and against the peers (onnxruntime, torch) when they are installed, on the
cases of :mod:`intquant_kernels._bench_cases` (GEMM shapes, convolution
layers) and on quantize/dequantize of 16M elements.

How it measures
---------------
- :func:`measure`: one untimed warm-up call, then calls timed one by one
  (``time.perf_counter``) until at least ``min_reps`` calls and ``min_time``
  seconds (0.2 s and 5 calls; 0.05 s and 3 with ``--quick``); the figure is the
  **median** call (the minimum is kept in the JSON too). The median rather than
  the minimum because the machine may be shared: it is robust to the slow
  outliers of other load without picking one lucky call.
- The int8 ops run on weights packed beforehand (``pack_weights``,
  ``pack_conv_weights``) into a preallocated ``out=``: the figure is the
  kernel and the op's per-call overhead, not packing or allocation. The peers
  run as their libraries run them (prepared sessions / modules, allocating
  their outputs).
- Threads: ``threads`` (default 1) for the kernels, NumPy's OpenBLAS in this
  process and the peers; the OpenBLAS subprocess figures are one thread.

The physical limit
------------------
:data:`INSTRUCTIONS` and :data:`PATH_INSTRUCTION` are the peak table: the
inner-loop instruction of each path's kernel, its multiply-accumulates per
instruction and how many execute per cycle. ``ops/cycle`` of a measurement is
``ops / seconds / (clock * threads)``, with the clock estimated by
:func:`estimate_clock_hz`; both the peak and the clock are estimates, and the
tables say so.
"""
from __future__ import annotations

import ctypes
import datetime
import functools
import json
import math
import mmap
import os
import platform
import statistics
import sys
import time
import types
import zlib

import numpy as np

import intquant_kernels as iq

from . import _bench_cases as cases
from . import _peers

SCHEMA = "intquant_kernels.bench/1"
OPS = ("gemm", "conv", "quantize")

# ---------------------------------------------------------------------------
# The peak table.
#
# Assumption: an AMD Zen 5 core (family 0x1A; EPYC 9005 "Turin", Ryzen 9000)
# with its full 512-bit datapath: of the four vector pipes, two (FP0/FP1) run
# the multiplies (FMA, vpdpbusd, vpdpwssd, vpmaddwd), each on a whole zmm per
# cycle, so two such instructions per cycle at any width. Intel server cores
# with two 512-bit FMA units (ports 0+1 fused and 5) give the same figures.
# The peak is the multiply throughput alone: loads, broadcasts, the int16
# widening of the AVX2 kernels, the accumulating adds and the epilogue come on
# top, so 100% is not reachable; it is an upper bound, not a target.
# One multiply-accumulate (MAC) counts as 2 operations.
# ---------------------------------------------------------------------------

#: instruction -> (what one instruction does, MACs per instruction, instructions per cycle)
INSTRUCTIONS = {
    "vpdpbusd zmm": ("16 int32 lanes x 4 u8*s8 products", 64, 2),
    "vpdpbusd ymm": ("8 int32 lanes x 4 u8*s8 products", 32, 2),
    "vpdpwssd zmm": ("16 int32 lanes x 2 s16*s16 products", 32, 2),
    "vpmaddwd ymm": ("8 int32 lanes x 2 s16*s16 products (plus a vpaddd)", 16, 2),
    "pmaddwd xmm": ("4 int32 lanes x 2 s16*s16 products: SSE2, the x86-64 baseline the compiler may "
                    "vectorize the portable C++ loop to", 8, 2),
    "vfmadd231ps zmm": ("16 float32 lanes, fused multiply-add", 16, 2),
    "vfmadd231ps ymm": ("8 float32 lanes, fused multiply-add", 8, 2),
}

#: (kernel kind, ISA path) -> the inner-loop instruction. 'gemm' is the GEMM
#: tile kernel, which every convolution but the depthwise and small-group
#: ones runs on too; 'dwconv' the depthwise kernel (int16 tap pairs, see
#: _packed_conv.py); 'gconv' the small-group kernel (csrc/conv.h, GconvRow).
PATH_INSTRUCTION = {
    ("gemm", "scalar"): "pmaddwd xmm",
    ("gemm", "avx2"): "vpmaddwd ymm",
    ("gemm", "avx_vnni"): "vpdpbusd ymm",
    ("gemm", "avx512_vnni"): "vpdpbusd zmm",
    ("dwconv", "scalar"): "pmaddwd xmm",
    ("dwconv", "avx2"): "vpmaddwd ymm",
    ("dwconv", "avx_vnni"): "vpmaddwd ymm",  # the AVX2 depthwise kernel
    ("dwconv", "avx512_vnni"): "vpdpwssd zmm",
    ("gconv", "avx2"): "vpmaddwd ymm",
    ("gconv", "avx_vnni"): "vpdpbusd ymm",
    ("gconv", "avx512_vnni"): "vpdpbusd zmm",
}


def conv_kind(layer, isa: str, layout: str = "NHWC") -> str:
    """The kind of kernel (PATH_INSTRUCTION) that runs ``layer`` on ``isa``, from its plan."""
    x_shape = (layer.n, layer.c, layer.h, layer.w) if layout == "NCHW" else (layer.n, layer.h, layer.w, layer.c)
    with iq.use_isa(isa):
        plan = iq.conv_plan(x_shape, (layer.oc, layer.c // layer.groups, layer.k, layer.k), stride=layer.stride,
                            padding=layer.padding, groups=layer.groups, layout=layout)
    return "dwconv" if plan.kind.startswith("depthwise") else "gconv" if plan.kind == "small_groups" else "gemm"


#: OpenBLAS kernels (its core names) that run float32 GEMM on zmm FMAs; the others on ymm (or narrower).
_OPENBLAS_ZMM = {"skylakex", "cooperlake", "sapphirerapids"}

PEAK_ASSUMPTION = (
    "Peak = MACs per instruction x instructions per cycle x 2 ops, per core, assuming an AMD Zen 5 core "
    "(two 512-bit multiply pipes, FP0/FP1: two vpdpbusd/vpdpwssd/vpmaddwd/FMA per cycle at any width). "
    "The multiply throughput alone: loads, widening, adds and epilogues are extra, so it is an upper bound."
)


def peak_ops_per_cycle(instruction: str | None) -> int | None:
    if instruction is None:
        return None
    _, macs, per_cycle = INSTRUCTIONS[instruction]
    return 2 * macs * per_cycle


def peak_table() -> list:
    """The peak table as rows of dicts (for the JSON and the reports)."""
    rows = []
    for (kind, isa), instr in PATH_INSTRUCTION.items():
        what, macs, per_cycle = INSTRUCTIONS[instr]
        rows.append(dict(path=isa, kernel=kind, instruction=instr, macs_per_instruction=macs,
                         per_cycle=per_cycle, ops_per_cycle=peak_ops_per_cycle(instr), what=what))
    for instr in ("vfmadd231ps zmm", "vfmadd231ps ymm"):
        what, macs, per_cycle = INSTRUCTIONS[instr]
        rows.append(dict(path="float32", kernel="fma", instruction=instr, macs_per_instruction=macs,
                         per_cycle=per_cycle, ops_per_cycle=peak_ops_per_cycle(instr), what=what))
    return rows


def _f32_instruction_for_openblas(corename: str) -> str:
    return "vfmadd231ps zmm" if corename.lower() in _OPENBLAS_ZMM else "vfmadd231ps ymm"


# ---------------------------------------------------------------------------
# The clock.
# ---------------------------------------------------------------------------

# x86-64 System V machine code of `uint64_t f(uint64_t n)`: n iterations of a
# chain of 16 dependent register adds, each waiting for the previous one:
#   31 c0              xor   eax, eax
#   ba 01 00 00 00     mov   edx, 1
# loop:
#   48 01 d0  (x16)    add   rax, rdx          ; 1 cycle latency on every x86-64 core
#   48 ff cf           dec   rdi               ; an independent chain, runs alongside
#   75 cb              jnz   loop
#   c3                 ret
# so one iteration takes 16 cycles and 16 * n / seconds is the core clock.
# Register operands on purpose: some cores fold chains of add-immediates.
_ADD_CHAIN = bytes([0x48, 0x01, 0xD0]) * 16 + bytes([0x48, 0xFF, 0xCF])
_ADD_LOOP = bytes([0x31, 0xC0, 0xBA, 1, 0, 0, 0]) + _ADD_CHAIN + bytes([0x75, (-(len(_ADD_CHAIN) + 2)) & 0xFF, 0xC3])


def estimate_clock_hz(runs: int = 20, iterations: int = 2_000_000) -> float | None:
    """The core clock while busy, from a timed dependent-add loop (x86-64 Linux/macOS).

    The fastest of ``runs`` runs (each about 8 ms at 4 GHz): interruptions only
    slow a run down, so the fastest is the closest to the real clock. Unlike
    the "cpu MHz" of /proc/cpuinfo, which under a hypervisor is often the
    nominal (TSC) frequency, this sees the boost clock. None where it cannot
    run (another architecture or OS, or no executable memory).
    """
    if platform.machine().lower() not in ("x86_64", "amd64") or os.name != "posix":
        return None
    try:
        mem = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, ValueError, AttributeError):
        return None
    try:
        mem.write(_ADD_LOOP)
        buf = ctypes.c_char.from_buffer(mem)
        fn = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)(ctypes.addressof(buf))
        best = math.inf
        for _ in range(runs):
            t = time.perf_counter()
            fn(iterations)
            best = min(best, time.perf_counter() - t)
        del fn, buf
        return 16 * iterations / best
    finally:
        try:
            mem.close()
        except BufferError:  # a reference to the buffer survived; leave it to the GC
            pass


def cpuinfo_mhz() -> float | None:
    """The first "cpu MHz" of /proc/cpuinfo (Linux), or None."""
    fields = _cpuinfo_fields()
    try:
        return float(fields["cpu MHz"])
    except (KeyError, ValueError):
        return None


@functools.lru_cache(maxsize=None)
def _cpuinfo_fields() -> types.MappingProxyType:
    """The fields of the first processor of /proc/cpuinfo (empty where there is none), read once."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # first processor only
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return types.MappingProxyType(fields)


# ---------------------------------------------------------------------------
# Timing.
# ---------------------------------------------------------------------------

class Settings:
    """How long to measure: ``quick`` for ``bench --quick``."""

    def __init__(self, quick: bool):
        self.quick = quick
        self.min_time = 0.05 if quick else 0.2
        self.min_reps = 3 if quick else 5
        self.max_reps = 10_000
        self.warmup = 1
        self.subprocess_reps = 3 if quick else 7

    def as_dict(self) -> dict:
        return dict(quick=self.quick, warmup_calls=self.warmup, min_seconds=self.min_time,
                    min_repeats=self.min_reps, statistic="median",
                    timer="time.perf_counter around each call")


def measure(fn, settings: Settings) -> dict:
    """Median and minimum seconds of ``fn()`` (see the module docstring)."""
    for _ in range(settings.warmup):
        fn()
    times = []
    total = 0.0
    while len(times) < settings.min_reps or (total < settings.min_time and len(times) < settings.max_reps):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        times.append(dt)
        total += dt
    return dict(seconds=statistics.median(times), seconds_min=min(times), repeats=len(times))


# ---------------------------------------------------------------------------
# Threads of OpenBLAS (inside NumPy) in this process.
# ---------------------------------------------------------------------------

def _openblas_threads(n: int | None) -> int | None:
    """Set OpenBLAS's thread count in this process (if n) and return the previous one, or None."""
    libs = _peers.openblas_libs()
    if not libs:
        return None
    lib = libs[0]
    for suffix in ("64_", ""):
        for prefix in ("scipy_openblas", "openblas"):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                previous = int(get())
                if n is not None:
                    put(ctypes.c_int(n))
                return previous
    return None


# ---------------------------------------------------------------------------
# The machine.
# ---------------------------------------------------------------------------

def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine(threads: int, clock_runs: int = 20) -> dict:
    from . import _core

    fields = _cpuinfo_fields()
    mhz = cpuinfo_mhz()
    est = estimate_clock_hz(runs=clock_runs)
    if est is not None:
        clock = dict(hz=est, source="estimate: fastest of timed dependent-add loops (1 add per cycle)")
    elif mhz is not None:
        clock = dict(hz=mhz * 1e6, source="/proc/cpuinfo 'cpu MHz' (may be the nominal, not the boost, clock)")
    else:
        clock = dict(hz=None, source="unknown: no ops/cycle figures")
    clock.update(cpuinfo_mhz=mhz, estimated_hz=est)
    family = fields.get("cpu family")
    vendor = _core.cpu_vendor()
    return dict(
        cpu_brand=_core.cpu_brand() or platform.processor() or "unknown",
        cpu_vendor=vendor,
        cpu_family=int(family) if family and family.isdigit() else None,
        cpu_model=int(fields["model"]) if fields.get("model", "").isdigit() else None,
        arch=platform.machine(),
        logical_cpus=os.cpu_count(),
        features=[k for k, on in iq.cpu_features().items() if on],
        isas_available=iq.available_isas(),
        isa_default=iq.active_isa(),
        kernels={isa: iq.kernel_names(isa) for isa in iq.available_isas()},
        threads=threads,
        clock=clock,
        peak_assumption_matches=(vendor == "AuthenticAMD" and family == "26"),
        openblas_corename=_peers.openblas_corename(),
        openblas_coretype_env=os.environ.get("OPENBLAS_CORETYPE"),
        platform=platform.platform(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        versions=dict(
            python=platform.python_version(),
            numpy=np.__version__,
            intquant_kernels=iq.__version__,
            torch=_version("torch"),
            onnxruntime=_version("onnxruntime"),
            onnx=_version("onnx"),
            matplotlib=_version("matplotlib"),
        ),
    )


# ---------------------------------------------------------------------------
# Progress on stderr.
# ---------------------------------------------------------------------------

class Progress:
    """A one-line indicator on a terminal; one line per case otherwise (logs)."""

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.where = ""

    def case(self, op, i, n, name):
        self.where = f"bench {op} {i}/{n} {name}"
        if not self.tty:
            print(f"[{time.perf_counter() - self.start:5.1f}s] {self.where}", file=self.stream, flush=True)

    def item(self, what):
        if self.tty:
            line = f"[{time.perf_counter() - self.start:5.1f}s] {self.where}: {what}"
            self.stream.write("\r\033[K" + line[:150])
            self.stream.flush()

    def done(self):
        if self.tty:
            self.stream.write("\r\033[K")
        print(f"bench: done in {time.perf_counter() - self.start:.1f}s", file=self.stream, flush=True)


# ---------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------

#: The scalar path is the portable fallback, not a performance path: with
#: every ISA selected, it runs only the cases of at most this many operations
#: (2 * 512**3: the GEMMs up to 512^3 and all single-image conv layers).
SCALAR_MAX_OPS = 2 * 512**3


class _Run:
    def __init__(self, isas, settings, threads, clock_hz, progress, scalar_all):
        self.isas = isas
        self.best = isas[-1]
        self.settings = settings
        self.threads = threads
        self.clock_hz = clock_hz
        self.progress = progress
        self.scalar_all = scalar_all
        self.results = []
        self.notes = []
        self.corename = _peers.openblas_corename()

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def isas_for(self, ops):
        if self.scalar_all or ops <= SCALAR_MAX_OPS or "scalar" not in self.isas:
            return self.isas
        self.note(f"scalar path: only the cases of at most {SCALAR_MAX_OPS:.3g} operations (GEMMs up to 512^3, "
                  "single-image conv layers): the portable fallback, not a performance path; "
                  "`--isa scalar` runs every case")
        return [isa for isa in self.isas if isa != "scalar"]

    def add(self, op, case, impl, role, timing, *, ops=None, isa=None, kernel=None, instruction=None,
            threads=None, **extra):
        threads = self.threads if threads is None else threads
        rec = dict(op=op, case=case, impl=impl, role=role, isa=isa, kernel=kernel, threads=threads,
                   seconds=timing["seconds"], seconds_min=timing.get("seconds_min"),
                   repeats=timing.get("repeats"), ops=ops, gops=None, ops_per_cycle=None,
                   instruction=instruction, peak_ops_per_cycle=peak_ops_per_cycle(instruction),
                   fraction_of_peak=None)
        if ops:
            rec["gops"] = ops / timing["seconds"] / 1e9
            if self.clock_hz:
                rec["ops_per_cycle"] = ops / timing["seconds"] / (self.clock_hz * threads)
                if rec["peak_ops_per_cycle"]:
                    rec["fraction_of_peak"] = rec["ops_per_cycle"] / rec["peak_ops_per_cycle"]
                    if rec["fraction_of_peak"] > 1.0:
                        self.note(f"{impl} on {case} measured above the assumed peak: the clock estimate "
                                  "or the peak table's assumption does not hold for this CPU")
        rec.update(extra)
        self.results.append(rec)
        return rec

    def timed(self, fn):
        return measure(fn, self.settings)

    def peer(self, builder_name, *args, **kwargs):
        """A peer's zero-argument callable, or None (with a note) when it is unavailable."""
        builder = getattr(_peers, builder_name, None)
        if builder is None:
            self.note(f"{builder_name}: not in this version of intquant_kernels._peers; skipped")
            return None
        try:
            return builder(*args, **kwargs)
        except _peers.PeerUnavailable as e:
            self.note(f"{builder_name} skipped: {e}")
        except Exception as e:  # a peer that breaks is reported, not fatal
            self.note(f"{builder_name} failed and was skipped: {type(e).__name__}: {e}")
        return None

    def run_peer(self, op, case, impl, builder_name, *args, ops, **kwargs):
        fn = self.peer(builder_name, *args, threads=self.threads, **kwargs)
        if fn is None:
            return None
        self.progress.item(impl)
        try:
            t = self.timed(fn)
        except Exception as e:
            self.note(f"{impl} failed on {case} and was skipped: {type(e).__name__}: {e}")
            return None
        return self.add(op, case, impl, "peer", t, ops=ops)


def _gemm(run: _Run, shapes):
    s = run.settings
    forced_core = os.environ.get("OPENBLAS_CORETYPE")
    for i, (m, k, n) in enumerate(shapes, 1):
        case = f"{m}x{k}x{n}"
        ops = 2 * m * k * n
        run.progress.case("gemm", i, len(shapes), case)
        rng = np.random.default_rng(m * 1_000_003 + k * 1009 + n)
        a = rng.integers(0, 256, (m, k), dtype=np.uint8)
        b = rng.integers(-127, 128, (k, n), dtype=np.int8)
        w_scale = rng.uniform(0.001, 0.01, n).astype(np.float32)

        af, bf = a.astype(np.float32), b.astype(np.float32)
        out_f = np.empty((m, n), np.float32)
        run.progress.item("float32 numpy.matmul")
        haswell = run.corename.lower() == "haswell"
        base = run.add("gemm", case, f"float32 numpy.matmul (OpenBLAS {run.corename}{' = AVX2' if haswell else ''}, "
                       "in process)",
                       "f32_baseline", run.timed(lambda: np.matmul(af, bf, out=out_f)), ops=ops,
                       instruction=_f32_instruction_for_openblas(run.corename),
                       avx2=haswell)
        del af, bf, out_f
        # OpenBLAS in a fresh one-thread process: its AVX2 kernel (for the avx2
        # path), and its own choice when the environment forces this process's.
        subprocess_runs = []
        if run.threads != 1:
            run.note("float32 numpy.matmul in a subprocess (OpenBLAS's AVX2 kernel, its own choice) is measured "
                     "with one thread only: skipped with --threads > 1")
        elif not base["avx2"]:
            subprocess_runs.append(("Haswell", "OpenBLAS Haswell = AVX2"))
        if forced_core and run.threads == 1:
            subprocess_runs.append((None, "OpenBLAS's own choice"))
        for coretype, label in subprocess_runs:
            run.progress.item(f"float32 numpy.matmul, {label}, subprocess")
            r = _peers.numpy_matmul_time(m, k, n, coretype=coretype, reps=s.subprocess_reps)
            core = r.get("corename", "unknown")
            if coretype is None and core == run.corename:
                continue  # the same kernel as in process
            which = ", AVX2" if coretype else ", its own choice"
            run.add("gemm", case, f"float32 numpy.matmul (OpenBLAS {core}{which}, subprocess, 1 thread)", "f32",
                    dict(seconds=r["median"], repeats=s.subprocess_reps),
                    ops=ops, threads=1, instruction=_f32_instruction_for_openblas(core),
                    avx2=core.lower() == "haswell")

        out = np.empty((m, n), np.int32)
        for isa in run.isas_for(ops):
            with iq.use_isa(isa):
                run.progress.item(f"int8 gemm {isa}")
                pw = iq.pack_weights(b)
                t = run.timed(lambda: iq.gemm(a, pw, out=out))
                run.add("gemm", case, f"int8 gemm {isa}", "int8", t, ops=ops, isa=isa,
                        kernel=iq.kernel_names(isa)["gemm"], instruction=PATH_INSTRUCTION.get(("gemm", isa)))
        # What torch's quantized Linear computes: requantized uint8 output.
        with iq.use_isa(run.best):
            run.progress.item(f"int8 qgemm->uint8 {run.best}")
            pw = iq.pack_weights(b)
            bias = np.linspace(-1, 1, n, dtype=np.float32)
            out_u8 = np.empty((m, n), np.uint8)
            t = run.timed(lambda: iq.qgemm(a, pw, 0.02, w_scale, a_zero_point=128, bias=bias, out_scale=0.05,
                                           out_zero_point=128, out_dtype=np.uint8, out=out_u8))
            run.add("gemm", case, f"int8 qgemm->uint8 {run.best}", "int8", t, ops=ops, isa=run.best,
                    kernel=iq.kernel_names(run.best)["gemm"],
                    instruction=PATH_INSTRUCTION.get(("gemm", run.best)), epilogue="requantize to uint8")
        run.run_peer("gemm", case, "onnxruntime MatMulInteger", "onnxruntime_matmulinteger", a, b, ops=ops)
        run.run_peer("gemm", case, "torch quantized Linear (x86)", "torch_quantized_linear", a, b, w_scale,
                     ops=ops)


#: The layout the conv2d of every ISA path is timed in (and qconv2d); the best
#: path is also timed on the NCHW input (the peers' ONNX/torch layout).
CONV_LAYOUT = "NHWC"
#: Activation scale and zero point of the conv cases (as in benchmarks/bench_conv.py).
X_SCALE, X_ZP = 0.02, 128


def _conv(run: _Run, layers):
    for i, layer in enumerate(layers, 1):
        case = layer.name
        ops = layer.ops
        run.progress.case("conv", i, len(layers), case)
        rng = np.random.default_rng(zlib.crc32(layer.name.encode()))
        x = rng.integers(0, 256, (layer.n, layer.c, layer.h, layer.w), dtype=np.uint8)  # NCHW
        w = rng.integers(-127, 128, (layer.oc, layer.c // layer.groups, layer.k, layer.k), dtype=np.int8)
        w_scale = rng.uniform(0.001, 0.01, layer.oc).astype(np.float32)
        geometry = dict(stride=layer.stride, padding=layer.padding, groups=layer.groups)
        peer_args = (layer.stride, layer.padding, layer.groups)

        # float32: torch in the faster of its two memory formats for this layer
        # (both are rows), else NumPy's im2col + matmul.
        xf = (x.astype(np.float32) - X_ZP) * X_SCALE
        wf = w.astype(np.float32) * w_scale[:, None, None, None]
        f32 = []
        for fmt, channels_last in (("NCHW", False), ("channels_last", True)):
            fn = run.peer("torch_conv2d_f32", xf, wf, *peer_args, threads=run.threads, channels_last=channels_last)
            if fn is not None:
                run.progress.item(f"float32 torch.conv2d {fmt}")
                # oneDNN runs zmm FMAs where the CPU has AVX-512 (an assumption about torch's build).
                instr = "vfmadd231ps zmm" if iq.cpu_features().get("avx512f") else "vfmadd231ps ymm"
                f32.append((run.timed(fn), f"float32 torch.conv2d ({fmt})", instr))
        if not f32:
            fn = run.peer("numpy_conv2d_f32", xf, wf, *peer_args)
            if fn is not None:
                run.progress.item("float32 NumPy im2col + matmul")
                f32.append((run.timed(fn), f"float32 NumPy im2col + matmul (OpenBLAS {run.corename})",
                            _f32_instruction_for_openblas(run.corename)))
        fastest = min(f32, key=lambda f: f[0]["seconds"]) if f32 else None
        for f in f32:
            t, label, instr = f
            run.add("conv", case, label, "f32_baseline" if f is fastest else "f32", t, ops=ops, instruction=instr)
        del xf, wf

        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        oh, ow = layer.out_hw
        out_shape = {"NCHW": (layer.n, layer.oc, oh, ow), "NHWC": (layer.n, oh, ow, layer.oc)}
        inputs = {"NCHW": x, "NHWC": x_nhwc}
        for isa in run.isas_for(ops):
            with iq.use_isa(isa):
                pw = iq.pack_conv_weights(w, groups=layer.groups)
                layouts = [CONV_LAYOUT] + ([l for l in ("NCHW", "NHWC") if l != CONV_LAYOUT] if isa == run.best else [])
                for layout in layouts:
                    run.progress.item(f"int8 conv2d {layout} {isa}")
                    out = np.empty(out_shape[layout], np.int32)
                    xin = inputs[layout]
                    t = run.timed(lambda: iq.conv2d(xin, pw, **geometry, layout=layout, x_zero_point=X_ZP, out=out))
                    kind = conv_kind(layer, isa)
                    run.add("conv", case, f"int8 conv2d {layout} {isa}", "int8", t, ops=ops, isa=isa,
                            kernel=iq.kernel_names(isa)[kind], instruction=PATH_INSTRUCTION.get((kind, isa)),
                            layout=layout)
        # What the peers compute: requantized uint8 output (bias, relu).
        with iq.use_isa(run.best):
            run.progress.item(f"int8 qconv2d->uint8 {CONV_LAYOUT} {run.best}")
            pw = iq.pack_conv_weights(w, groups=layer.groups)
            bias = np.linspace(-1, 1, layer.oc, dtype=np.float32)
            out_scale = _peers.conv_out_scale(layer.c // layer.groups * layer.k * layer.k, X_SCALE, w_scale)
            out_u8 = np.empty(out_shape[CONV_LAYOUT], np.uint8)
            xin = inputs[CONV_LAYOUT]
            t = run.timed(lambda: iq.qconv2d(xin, pw, X_SCALE, w_scale, **geometry, layout=CONV_LAYOUT,
                                             x_zero_point=X_ZP, bias=bias, relu=True, out_scale=out_scale,
                                             out_zero_point=128, out_dtype=np.uint8, out=out_u8))
            kind = conv_kind(layer, run.best)
            run.add("conv", case, f"int8 qconv2d->uint8 {CONV_LAYOUT} {run.best}", "int8", t, ops=ops, isa=run.best,
                    kernel=iq.kernel_names(run.best)[kind], instruction=PATH_INSTRUCTION.get((kind, run.best)),
                    layout=CONV_LAYOUT, epilogue="bias, relu, requantize to uint8")
        peer_kw = dict(x_scale=X_SCALE, x_zero_point=X_ZP)
        rec = run.run_peer("conv", case, "torch quantized Conv2d (x86, channels_last)", "torch_quantized_conv2d",
                           x, w, w_scale, *peer_args, ops=ops, **peer_kw)
        if rec is not None and layer.depthwise:
            rec["note"] = "fbgemm's depthwise kernel saturates int16 pair sums on full-range uint8"
            run.note("torch quantized Conv2d, depthwise layers: fbgemm saturates int16 pair sums on full-range "
                     "uint8 activations (wrong results, same speed; see _peers.torch_quantized_conv2d)")
        run.run_peer("conv", case, "onnxruntime QLinearConv (NCHW)", "onnxruntime_qlinearconv", x, w, w_scale,
                     *peer_args, ops=ops, **peer_kw)


#: Elements of the quantize/dequantize case (the size of benchmarks/bench_quantize.py).
QUANTIZE_N = 16 * 1024 * 1024


def _quantize(run: _Run):
    n = QUANTIZE_N
    run.progress.case("quantize", 1, 1, f"{n >> 20}M elements")
    rng = np.random.default_rng(0)
    x = rng.random(n, dtype=np.float32)
    x -= 0.5
    x *= 200.0
    y = np.empty_like(x)
    q = np.empty(n, np.int8)
    run.progress.item("np.copyto")
    copy = run.timed(lambda: np.copyto(y, x))
    for op in ("quantize", "dequantize"):
        case = f"{op} {n >> 20}M"
        src_bytes = 4 if op == "quantize" else 1
        dst_bytes = 5 - src_bytes
        run.add(op, case, "np.copyto float32 (baseline, 8 bytes per element)", "copy_baseline", copy, threads=1,
                elements=n, bytes=8 * n)
        for isa in run.isas:
            with iq.use_isa(isa):
                run.progress.item(f"{op} {isa}")
                if op == "quantize":
                    t = run.timed(lambda: iq.quantize(x, 0.5, 3, out=q))
                    kernel = iq.kernel_names(isa)["quantize"]
                else:
                    t = run.timed(lambda: iq.dequantize(q, 0.5, out=y))
                    kernel = iq.kernel_names(isa)["dequantize_s8"]
                run.add(op, case, f"int8 {op} {isa}", "int8", t, isa=isa, kernel=kernel, elements=n,
                        bytes=(src_bytes + dst_bytes) * n)
        run.progress.item(f"{op} NumPy reference")
        ref = getattr(iq.reference, op)
        ref_args = (x, 0.5, 3) if op == "quantize" else (q, 0.5)  # the arguments of the int8 rows
        t = run.timed(lambda: ref(*ref_args))
        run.add(op, case, f"NumPy reference {op} (intquant_kernels.reference)", "reference", t, threads=1,
                elements=n, bytes=(src_bytes + dst_bytes) * n)


def _derive(results):
    """Ratios within each case: against the float32 baseline, the AVX2 and the best
    float32 figure (GEMM, conv), or against np.copyto (quantize)."""
    by_case = {}
    for r in results:
        by_case.setdefault((r["op"], r["case"]), []).append(r)
    for recs in by_case.values():
        base = next((r for r in recs if r["role"] == "f32_baseline"), None)
        f32 = [r for r in recs if r["role"] in ("f32_baseline", "f32")]
        avx2 = next((r for r in f32 if r.get("avx2")), None)
        best = min(f32, key=lambda r: r["seconds"]) if f32 else None
        copy = next((r for r in recs if r["role"] == "copy_baseline"), None)
        for r in recs:
            t = r["seconds"]
            if r.get("elements"):
                r["gelements_per_s"] = r["elements"] / t / 1e9
                r["gbytes_per_s"] = r["bytes"] / t / 1e9
                r["speedup_vs_copy"] = copy["seconds"] / t if copy else None
            else:
                r["speedup_vs_f32"] = base["seconds"] / t if base else None
                r["speedup_vs_f32_avx2"] = avx2["seconds"] / t if avx2 else None
                r["speedup_vs_best_f32"] = best["seconds"] / t if best else None


def run(ops=OPS, isas=None, quick=False, threads=1, progress=None, scalar_all=None) -> dict:
    """Run the benchmark; returns the whole JSON document (machine, settings, peaks, results, notes).

    ``isas``: the ISA paths (default: all available). The scalar path runs
    every case only when it was asked for alone (``scalar_all``, default:
    ``isas == ['scalar']``); otherwise only the small ones.
    """
    isas = list(iq.available_isas() if isas is None else isas)
    scalar_all = isas == ["scalar"] if scalar_all is None else scalar_all
    settings = Settings(quick)
    progress = Progress() if progress is None else progress
    started = time.perf_counter()
    mach = machine(threads, clock_runs=10 if quick else 20)
    r = _Run(isas, settings, threads, mach["clock"]["hz"], progress, scalar_all)

    previous_threads = iq.get_num_threads()
    previous_blas = _openblas_threads(threads)
    iq.set_num_threads(threads)
    if previous_blas is None:
        r.note("could not set OpenBLAS's thread count in this process (OPENBLAS_NUM_THREADS applies)")
    try:
        if "gemm" in ops:
            _gemm(r, cases.GEMM_QUICK if quick else cases.GEMM_SHAPES)
        if "conv" in ops:
            wanted = set(cases.CONV_QUICK) if quick else None
            _conv(r, [l for l in cases.CONV_LAYERS if wanted is None or l.name in wanted])
        if "quantize" in ops:
            _quantize(r)
    finally:
        iq.set_num_threads(previous_threads)
        if previous_blas is not None:
            _openblas_threads(previous_blas)
        progress.done()
    _derive(r.results)
    notes = [
        "int8 ops are timed on weights packed beforehand, into a preallocated out=: the kernel plus the op's "
        "per-call overhead, no packing or allocation. Peers run as their libraries run them.",
        f"Figures: the median of >= {settings.min_reps} calls and >= {settings.min_time} s after a warm-up call; "
        f"{threads} thread(s) unless a row says otherwise. GOPS count 2 ops per multiply-accumulate.",
        "ops/cycle = GOPS / (clock x threads), per core, with the clock "
        f"{'%.2f GHz' % (mach['clock']['hz'] / 1e9) if mach['clock']['hz'] else 'unknown'} "
        f"({mach['clock']['source']}): an estimate, as is the peak (see the peak table).",
    ] + r.notes
    if not mach["peak_assumption_matches"]:
        notes.append("The peak table assumes an AMD Zen 5 core; this CPU is not one, so its peaks may differ.")
    return dict(
        schema=SCHEMA,
        machine=mach,
        settings=dict(settings.as_dict(), ops=list(ops), isas=isas, threads=threads,
                      scalar_max_ops=None if scalar_all else SCALAR_MAX_OPS, conv_layout=CONV_LAYOUT,
                      quantize_elements=QUANTIZE_N),
        peaks=dict(assumption=PEAK_ASSUMPTION, table=peak_table()),
        results=r.results,
        notes=notes,
        elapsed_seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------
# Reports: the same tables for stdout (plain) and RESULTS.md (Markdown).
# ---------------------------------------------------------------------------

def fmt(v, kind="num"):
    """The one formatting of a figure, shared by the table, RESULTS.md and the tests."""
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    if kind == "x":
        return f"{v:.2f}x"
    if kind == "pct":
        return f"{100 * v:.0f}%"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


_TITLES = {
    "gemm": "GEMM: uint8 x int8 -> int32 (M x K x N), against float32 numpy.matmul",
    "conv": "Convolution: uint8 x int8 -> int32, against float32 conv2d",
    "quantize": "quantize float32 -> int8",
    "dequantize": "dequantize int8 -> float32",
}


def sections(doc) -> list:
    """The report tables: a list of dicts with title, columns, rows (strings)."""
    out = []
    by_op = {}
    for r in doc["results"]:
        by_op.setdefault(r["op"], []).append(r)
    for op, recs in by_op.items():
        if op in ("gemm", "conv"):
            cols = ["case", "implementation", "ms", "GOPS", "ops/cycle (est.)", "peak ops/cycle", "% of peak",
                    "x f32"]
            # The other ratios only where they say something x f32 does not.
            extra = [(key, col) for key, col in (("speedup_vs_f32_avx2", "x f32 AVX2"),
                                                 ("speedup_vs_best_f32", "x best f32"))
                     if any(r.get(key) is not None and fmt(r.get(key), "x") != fmt(r.get("speedup_vs_f32"), "x")
                            for r in recs)]
            cols += [col for _, col in extra]
            rows = []
            for r in recs:
                row = [r["case"], r["impl"], fmt(r["seconds"] * 1e3), fmt(r["gops"]), fmt(r["ops_per_cycle"]),
                       fmt(r["peak_ops_per_cycle"]), fmt(r["fraction_of_peak"], "pct"),
                       fmt(r.get("speedup_vs_f32"), "x")]
                row += [fmt(r.get(key), "x") for key, _ in extra]
                rows.append(row)
        else:
            cols = ["case", "implementation", "ms", "G elements/s", "GB/s", "x np.copyto"]
            rows = [[r["case"], r["impl"], fmt(r["seconds"] * 1e3), fmt(r["gelements_per_s"]),
                     fmt(r["gbytes_per_s"]), fmt(r.get("speedup_vs_copy"), "x")] for r in recs]
        out.append(dict(op=op, title=_TITLES.get(op, op), columns=cols, rows=rows))
    return out


def peak_section(doc) -> dict:
    hz = doc["machine"]["clock"]["hz"]
    rows = []
    for p in doc["peaks"]["table"]:
        rows.append([p["path"], p["kernel"], p["instruction"], str(p["macs_per_instruction"]), str(p["per_cycle"]),
                     str(p["ops_per_cycle"]), fmt(p["ops_per_cycle"] * hz / 1e9) if hz else "-", p["what"]])
    return dict(title="Peak per core (an estimate). " + doc["peaks"]["assumption"],
                columns=["path", "kernel", "instruction", "MACs/instr", "instr/cycle", "ops/cycle",
                         "GOPS at the clock", "what one instruction does"], rows=rows)


def machine_lines(doc) -> list:
    m = doc["machine"]
    v = m["versions"]
    clock = m["clock"]
    peers = ", ".join(f"{k} {v[k]}" if v.get(k) else f"{k} not installed"
                      for k in ("torch", "onnxruntime", "onnx", "matplotlib"))
    return [
        f"date: {m['date']}",
        f"CPU: {m['cpu_brand']} ({m['cpu_vendor']}, family {m['cpu_family']} model {m['cpu_model']}, {m['arch']}, "
        f"{m['logical_cpus']} logical CPUs)",
        f"clock: {clock['hz'] / 1e9:.2f} GHz ({clock['source']}); /proc/cpuinfo says "
        f"{clock['cpuinfo_mhz']} MHz" if clock["hz"] else f"clock: unknown ({clock['source']})",
        f"features: {' '.join(m['features'])}",
        f"ISA paths: {', '.join(doc['settings']['isas'])} (available: {', '.join(m['isas_available'])})",
        f"threads: {m['threads']}; OpenBLAS core in process: {m['openblas_corename']}"
        + (f" (OPENBLAS_CORETYPE={m['openblas_coretype_env']})" if m["openblas_coretype_env"] else ""),
        f"versions: intquant_kernels {v['intquant_kernels']}, Python {v['python']}, NumPy {v['numpy']}; {peers}",
        f"mode: {'--quick' if doc['settings']['quick'] else 'full'}; ops: {', '.join(doc['settings']['ops'])}; "
        f"run took {doc['elapsed_seconds']:.1f} s",
    ]


def render_plain(section) -> str:
    cols, rows = section["columns"], section["rows"]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    text_cols = {0, 1} if cols[0] in ("case", "path") else {0}
    text_cols |= {i for i, c in enumerate(cols) if c in ("kernel", "instruction", "what one instruction does")}

    def line(cells):
        return "  ".join(c.ljust(w) if i in text_cols else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [section["title"], line(cols), line(["-" * w for w in widths])]
    previous = None
    for r in rows:
        if cols[0] == "case" and previous is not None and r[0] != previous:
            out.append("")
        previous = r[0]
        out.append(line(r))
    return "\n".join(out)


def render_markdown(section) -> str:
    cols, rows = section["columns"], section["rows"]
    align = ["---" if c in ("case", "implementation", "path", "kernel", "instruction", "what one instruction does")
             else "---:" for c in cols]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def report(doc) -> str:
    """The plain-text report of ``bench`` (stdout)."""
    parts = ["\n".join(machine_lines(doc))]
    parts += [render_plain(s) for s in sections(doc)]
    parts.append(render_plain(peak_section(doc)))
    parts.append("Notes:\n" + "\n".join(f"- {n}" for n in doc["notes"]))
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------
# The plot.
# ---------------------------------------------------------------------------

_ROLE_ORDER = {"f32_baseline": 0, "f32": 0, "copy_baseline": 0, "int8": 1, "peer": 2, "reference": 3}


def _plot_panel(op):
    return "quantize" if op in ("quantize", "dequantize") else op


def _plot_series(r):
    """The legend entry of a bar: the same implementation across the cases of a panel."""
    if _plot_panel(r["op"]) != "quantize":
        return r["impl"]
    return {"copy_baseline": "np.copyto float32 (8 bytes per element)", "int8": f"int8 {r['isa']}",
            "reference": "NumPy reference"}.get(r["role"], r["impl"])


def plot(doc, path) -> None:
    """One PNG, a panel per op kind: bars per case and implementation, GOPS
    (log scale) with the estimated peak of each bar's instruction as a black
    line for GEMM and conv, GB/s for quantize/dequantize. Raises ImportError without
    matplotlib."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
    from matplotlib.ticker import ScalarFormatter

    isa_rank = {isa: i for i, isa in enumerate(doc["machine"]["isas_available"])}
    hz = doc["machine"]["clock"]["hz"]
    panels = {}
    for r in doc["results"]:
        panels.setdefault(_plot_panel(r["op"]), []).append(r)
    if not panels:
        raise ValueError("no results to plot")
    most = max(len({r["case"] for r in recs}) for recs in panels.values())
    fig = Figure(figsize=(max(14, 4 + 1.5 * most), 5.0 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (panel, recs) in zip(axes, panels.items()):
        rate = (lambda r: r["gbytes_per_s"]) if panel == "quantize" else (lambda r: r["gops"])
        case_names = list(dict.fromkeys(r["case"] for r in recs))
        first = {}
        for r in recs:
            first.setdefault(_plot_series(r), r)
        series = sorted(first, key=lambda s: (_ROLE_ORDER.get(first[s]["role"], 9),
                                              isa_rank.get(first[s]["isa"], -1)))
        bar_w = 0.85 / len(series)
        peak_x, peak_y = [], []
        for j, name in enumerate(series):
            xs, ys = [], []
            for r in recs:
                if _plot_series(r) == name and rate(r):
                    x = case_names.index(r["case"]) + (j - (len(series) - 1) / 2) * bar_w
                    xs.append(x)
                    ys.append(rate(r))
                    if panel != "quantize" and r["peak_ops_per_cycle"] and hz:
                        peak_x.append(x)
                        peak_y.append(r["peak_ops_per_cycle"] * hz * r["threads"] / 1e9)
            role = first[name]["role"]
            hatch = {"int8": None, "peer": "..", "reference": "xx"}.get(role, "//")
            ax.bar(xs, ys, bar_w, label=name, hatch=hatch, edgecolor="black", linewidth=0.3)
        if peak_x:
            ax.hlines(peak_y, [x - bar_w / 2 for x in peak_x], [x + bar_w / 2 for x in peak_x], colors="black",
                      linewidths=2, label="peak of the bar's instruction (estimate, see the peak table)", zorder=3)
        ax.set_xticks(range(len(case_names)))
        ax.set_xticklabels(case_names, fontsize=8, rotation=12 if len(case_names) > 4 else 0,
                           ha="right" if len(case_names) > 4 else "center")
        if panel == "quantize":
            ax.set_ylabel("GB/s (bytes read + written)")
            ax.set_title("quantize float32 -> int8 and dequantize int8 -> float32, against np.copyto", fontsize=10)
        else:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.set_ylabel("GOPS (2 ops per multiply-accumulate)")
            ax.set_title(_TITLES.get(panel, panel), fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    m = doc["machine"]
    fig.suptitle(f"intquant_kernels {m['versions']['intquant_kernels']}: int8 against float32 and peers; "
                 f"{m['cpu_brand']}, {m['threads']} thread(s), {m['date'][:10]}", fontsize=11)
    fig.savefig(path, dpi=100)


def write_json(doc, path) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
