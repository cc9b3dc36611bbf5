"""A run of ``python -m intquant_kernels bench``: every case, every path.

int8 throughput of every ISA path against float32 measured in the same run,
and against the peers (onnxruntime, torch) when they are installed, on the
cases of :mod:`intquant_kernels.bench.cases` (GEMM shapes, convolution
layers) and on quantize/dequantize of 16M elements.

How it measures
---------------
- :func:`~intquant_kernels.bench.measure.measure`: one untimed warm-up call,
  then calls timed one by one (``time.perf_counter``) until at least
  ``min_reps`` calls and ``min_time`` seconds (0.2 s and 5 calls; 0.05 s and
  3 with ``--quick``); the figure is the **median** call (the minimum is kept
  in the JSON too). The median rather than the minimum because the machine
  may be shared: it is robust to the slow outliers of other load without
  picking one lucky call.
- The int8 ops run on weights packed beforehand (``pack_weights``,
  ``pack_conv_weights``) into a preallocated ``out=``: the figure is the
  kernel and the op's per-call overhead, not packing or allocation. The peers
  run as their libraries run them (prepared sessions / modules, allocating
  their outputs).
- Threads: ``threads`` (default 1) for the kernels, NumPy's OpenBLAS in this
  process and the peers; the OpenBLAS subprocess figures are one thread.

The physical limit
------------------
:mod:`intquant_kernels.bench.peaks` is the peak table: the inner-loop
instruction of each path's kernel, its multiply-accumulates per instruction
and how many execute per cycle. ``ops/cycle`` of a measurement is
``ops / seconds / (clock * threads)``, with the clock estimated by
:func:`intquant_kernels.bench.machine.estimate_clock_hz`; both the peak and
the clock are estimates, and the tables say so.
"""
from __future__ import annotations

import os
import re
import time
import zlib

import numpy as np

import intquant_kernels as iq
from intquant_kernels import _core
from intquant_kernels._dispatch import unavailable_reason

from . import cases, peers
from .kernel_kind import conv_plan, gemm_kernel, kernels_of, kind_of, path_of
from .machine import machine
from .measure import Progress, Settings, measure, measure_pair
from .peaks import Peaks

SCHEMA = "intquant_kernels.bench/1"
OPS = ("gemm", "conv", "quantize")


# ---------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------

#: The scalar path is the portable fallback, not a performance path: with
#: every ISA selected, it runs only the cases of at most this many operations
#: (2 * 512**3: the GEMMs up to 512^3 and all single-image conv layers).
SCALAR_MAX_OPS = 2 * 512**3


class _Run:
    def __init__(self, isas, settings, threads, clock_hz, peaks, progress, scalar_all, arch=None):
        self.isas = isas
        self.arch = arch  # _core.cpu_id()'s: 'x86_64', 'aarch64', ...
        self.best = isas[-1]
        self.settings = settings
        self.threads = threads
        self.clock_hz = clock_hz
        self.peaks = peaks
        self.progress = progress
        self.scalar_all = scalar_all
        self.results = []
        self.notes = []
        self.corename = peers.openblas_corename()

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
                   instruction=instruction, peak_ops_per_cycle=self.peaks.ops_per_cycle(instruction),
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
        builder = getattr(peers, builder_name, None)
        if builder is None:
            self.note(f"{builder_name}: not in this version of intquant_kernels.bench.peers; skipped")
            return None
        try:
            return builder(*args, **kwargs)
        except peers.PeerUnavailable as e:
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
                       instruction=run.peaks.f32_instruction(run.corename),
                       avx2=haswell)
        del af, bf, out_f
        # OpenBLAS in a fresh one-thread process: its AVX2 kernel (for the avx2
        # path), and its own choice when the environment forces this process's.
        subprocess_runs = []
        if run.threads != 1:
            run.note("float32 numpy.matmul in a subprocess (OpenBLAS's AVX2 kernel, its own choice) is measured "
                     "with one thread only: skipped with --threads > 1")
        elif not base["avx2"] and run.arch == "x86_64":  # OpenBLAS's AVX2 kernel exists on x86 only
            subprocess_runs.append(("Haswell", "OpenBLAS Haswell = AVX2"))
        if forced_core and run.threads == 1:
            subprocess_runs.append((None, "OpenBLAS's own choice"))
        for coretype, label in subprocess_runs:
            run.progress.item(f"float32 numpy.matmul, {label}, subprocess")
            r = peers.numpy_matmul_time(m, k, n, coretype=coretype, reps=s.subprocess_reps)
            core = r.get("corename", "unknown")
            if coretype is None and core == run.corename:
                continue  # the same kernel as in process
            which = ", AVX2" if coretype else ", its own choice"
            run.add("gemm", case, f"float32 numpy.matmul (OpenBLAS {core}{which}, subprocess, 1 thread)", "f32",
                    dict(seconds=r["median"], repeats=s.subprocess_reps),
                    ops=ops, threads=1, instruction=run.peaks.f32_instruction(core),
                    avx2=core.lower() == "haswell")

        out = np.empty((m, n), np.int32)
        for isa in run.isas_for(ops):
            with iq.use_isa(isa):
                run.progress.item(f"int8 gemm {isa}")
                pw = iq.pack_weights(b)
                t = run.timed(lambda: iq.gemm(a, pw, out=out))
                kernel, kernel_isa = gemm_kernel(isa, m, k, n)
                run.add("gemm", case, f"int8 gemm {isa}", "int8", t, ops=ops, isa=isa,
                        kernel=kernel, instruction=run.peaks.instruction("gemm", kernel_isa))
        kernel, kernel_isa = gemm_kernel(run.best, m, k, n)
        _affine(run, "gemm", case, f"int8 gemm {run.best}", ops, "gemm", n,
                pack=lambda zp: iq.pack_weights(b, zero_point=zp), call=lambda pw: iq.gemm(a, pw, out=out),
                kernel=kernel, kernel_isa=kernel_isa)
        # What torch's quantized Linear computes: requantized uint8 output.
        with iq.use_isa(run.best):
            run.progress.item(f"int8 qgemm->uint8 {run.best}")
            pw = iq.pack_weights(b)
            bias = np.linspace(-1, 1, n, dtype=np.float32)
            out_u8 = np.empty((m, n), np.uint8)
            t = run.timed(lambda: iq.qgemm(a, pw, 0.02, w_scale, a_zero_point=128, bias=bias, out_scale=0.05,
                                           out_zero_point=128, out_dtype=np.uint8, out=out_u8))
            kernel, kernel_isa = gemm_kernel(run.best, m, k, n)
            run.add("gemm", case, f"int8 qgemm->uint8 {run.best}", "int8", t, ops=ops, isa=run.best,
                    kernel=kernel, instruction=run.peaks.instruction("gemm", kernel_isa),
                    epilogue="requantize to uint8")
        run.run_peer("gemm", case, "onnxruntime MatMulInteger", "onnxruntime_matmulinteger", a, b, ops=ops)
        run.run_peer("gemm", case, "torch quantized Linear (x86)", "torch_quantized_linear", a, b, w_scale,
                     ops=ops)


#: Weight zero points of the affine rows: one per output column (channel), uniform in [-AFFINE_ZP, AFFINE_ZP].
AFFINE_ZP = 8


def _affine(run: _Run, op, case, impl, ops, kind, columns, *, pack, call, kernel=None, kernel_isa=None, **extra):
    """Affine weights (``pack(zero_points)``) against scale weights (``pack(0)``) on the best
    selected path, ``call(packed)`` of each timed side by side: one row, the affine timing,
    with the scale timing and affine / scale."""
    isa = run.best
    zp = np.random.default_rng(zlib.crc32(case.encode())).integers(-AFFINE_ZP, AFFINE_ZP + 1, columns)
    with iq.use_isa(isa):
        run.progress.item(f"{impl}: affine against scale weights")
        scale_w, affine_w = pack(0), pack(zp)
        t_scale, t_affine = measure_pair(lambda: call(scale_w), lambda: call(affine_w), run.settings)
    return run.add(op, case, f"{impl}, affine weights (zero points in [-{AFFINE_ZP}, {AFFINE_ZP}])", "int8",
                   t_affine, ops=ops, isa=isa, kernel=kernel or iq.kernel_names(isa)[kind],
                   instruction=run.peaks.instruction(kind, kernel_isa or isa), weights="affine",
                   scale_seconds=t_scale["seconds"], scale_seconds_min=t_scale["seconds_min"],
                   affine_over_scale=t_affine["seconds"] / t_scale["seconds"], **extra)


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
        # (both are rows), else NumPy (peers.numpy_conv2d_f32 says how).
        xf = (x.astype(np.float32) - X_ZP) * X_SCALE
        wf = w.astype(np.float32) * w_scale[:, None, None, None]
        f32 = []
        for fmt, channels_last in (("NCHW", False), ("channels_last", True)):
            fn = run.peer("torch_conv2d_f32", xf, wf, *peer_args, threads=run.threads, channels_last=channels_last)
            if fn is not None:
                run.progress.item(f"float32 torch.conv2d {fmt}")
                # oneDNN runs zmm FMAs where the CPU has AVX-512 (an assumption about torch's build).
                instr = run.peaks.f32_instruction(zmm=bool(iq.cpu_features().get("avx512f")))
                f32.append((run.timed(fn), f"float32 torch.conv2d ({fmt})", instr))
        if not f32:
            fn = run.peer("numpy_conv2d_f32", xf, wf, *peer_args)
            if fn is not None:
                # The depthwise sum runs NumPy's own multiply and add loops, not OpenBLAS's FMA kernels.
                blas = fn.product is not None
                label = f"float32 {fn.method}" + (f", OpenBLAS {run.corename}" if blas else "")
                run.progress.item(label)
                f32.append((run.timed(fn), label, run.peaks.f32_instruction(run.corename) if blas else None))
        fastest = min(f32, key=lambda f: f[0]["seconds"]) if f32 else None
        f32_recs = []
        for f in f32:
            t, label, instr = f
            f32_recs.append(run.add("conv", case, label, "f32_baseline" if f is fastest else "f32", t, ops=ops,
                                    instruction=instr))
        del xf, wf
        if not layer.depthwise:
            ref = _same_matmul(run, case, layer)
            for rec in f32_recs:
                rec["matmul_seconds"] = ref["seconds"]
                rec["gops_over_matmul"] = ref["seconds"] / rec["seconds"]

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
                    plan = conv_plan(layer, isa, layout)
                    run.add("conv", case, f"int8 conv2d {layout} {isa}", "int8", t, ops=ops, isa=isa,
                            kernel=kernels_of(plan), instruction=run.peaks.instruction(kind_of(plan), path_of(plan)),
                            layout=layout)
        if not layer.depthwise:
            out = np.empty(out_shape[CONV_LAYOUT], np.int32)
            xin = inputs[CONV_LAYOUT]
            plan = conv_plan(layer, run.best, CONV_LAYOUT)
            _affine(run, "conv", case, f"int8 conv2d {CONV_LAYOUT} {run.best}", ops, kind_of(plan),
                    layer.oc, pack=lambda zp: iq.pack_conv_weights(w, groups=layer.groups, zero_point=zp),
                    call=lambda pw: iq.conv2d(xin, pw, **geometry, layout=CONV_LAYOUT, x_zero_point=X_ZP, out=out),
                    kernel=kernels_of(plan), kernel_isa=path_of(plan), layout=CONV_LAYOUT)
        # What the peers compute: requantized uint8 output (bias, relu).
        with iq.use_isa(run.best):
            run.progress.item(f"int8 qconv2d->uint8 {CONV_LAYOUT} {run.best}")
            pw = iq.pack_conv_weights(w, groups=layer.groups)
            bias = np.linspace(-1, 1, layer.oc, dtype=np.float32)
            out_scale = peers.conv_out_scale(layer.c // layer.groups * layer.k * layer.k, X_SCALE, w_scale)
            out_u8 = np.empty(out_shape[CONV_LAYOUT], np.uint8)
            xin = inputs[CONV_LAYOUT]
            t = run.timed(lambda: iq.qconv2d(xin, pw, X_SCALE, w_scale, **geometry, layout=CONV_LAYOUT,
                                             x_zero_point=X_ZP, bias=bias, relu=True, out_scale=out_scale,
                                             out_zero_point=128, out_dtype=np.uint8, out=out_u8))
            plan = conv_plan(layer, run.best, CONV_LAYOUT, np.uint8)
            run.add("conv", case, f"int8 qconv2d->uint8 {CONV_LAYOUT} {run.best}", "int8", t, ops=ops, isa=run.best,
                    kernel=kernels_of(plan), instruction=run.peaks.instruction(kind_of(plan), path_of(plan)),
                    layout=CONV_LAYOUT, epilogue="bias, relu, requantize to uint8")
        peer_kw = dict(x_scale=X_SCALE, x_zero_point=X_ZP)
        rec = run.run_peer("conv", case, "torch quantized Conv2d (x86, channels_last)", "torch_quantized_conv2d",
                           x, w, w_scale, *peer_args, ops=ops, **peer_kw)
        if rec is not None and layer.depthwise:
            rec["note"] = "fbgemm's depthwise kernel saturates int16 pair sums on full-range uint8"
            run.note("torch quantized Conv2d, depthwise layers: fbgemm saturates int16 pair sums on full-range "
                     "uint8 activations (wrong results, same speed; see peers.torch_quantized_conv2d)")
        run.run_peer("conv", case, "onnxruntime QLinearConv (NCHW)", "onnxruntime_qlinearconv", x, w, w_scale,
                     *peer_args, ops=ops, **peer_kw)


def im2col_product(layer) -> tuple:
    """(groups, rows, K, columns) of the float32 matmul a dense conv layer amounts to:
    per group, the (N*OH*OW, KH*KW*C/groups) im2col rows by the (K, OC/groups) weights."""
    oh, ow = layer.out_hw
    return (layer.groups, layer.n * oh * ow, layer.k * layer.k * (layer.c // layer.groups),
            layer.oc // layer.groups)


def _same_matmul(run: _Run, case, layer) -> dict:
    """numpy.matmul of the product a dense conv layer amounts to, float32, on operands made
    beforehand: what a float32 conv baseline could reach at best, measured in the same run."""
    g, rows, k, cols = im2col_product(layer)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((g, rows, k), dtype=np.float32)
    b = rng.standard_normal((g, k, cols), dtype=np.float32)
    out = np.empty((g, rows, cols), np.float32)
    if g == 1:
        a, b, out = a[0], b[0], out[0]
    label = (f"float32 numpy.matmul of the same product ({rows}x{k} @ {k}x{cols}"
             + (f", {g} groups batched" if g > 1 else "") + f"; OpenBLAS {run.corename}), for reference")
    run.progress.item("float32 numpy.matmul of the same product")
    t = run.timed(lambda: np.matmul(a, b, out=out))
    return run.add("conv", case, label, "f32_matmul", t, ops=layer.ops,
                   instruction=run.peaks.f32_instruction(run.corename))


#: Elements of the quantize/dequantize case (the size of benchmarks/bench_quantize.py).
QUANTIZE_N = 16 * 1024 * 1024

#: The name of the quantize/dequantize case in ``cases`` (run(), ``bench --cases``).
QUANTIZE_CASE = "quantize"


def select_cases(names) -> tuple:
    """``(GEMM shapes, conv layers, quantize)`` of case names: ``MxKxN`` (any GEMM shape, e.g.
    ``64x64x64``), the name of a layer of ``cases.CONV_LAYERS``, or ``quantize`` (quantize and
    dequantize of QUANTIZE_N elements). ValueError names the unknown ones."""
    layers = {layer.name: layer for layer in cases.CONV_LAYERS}
    shapes, chosen, quantize, bad = [], [], False, []
    for name in names:
        m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", name)
        if m and all(int(g) > 0 for g in m.groups()):
            shapes.append(tuple(int(g) for g in m.groups()))
        elif name in layers:
            chosen.append(layers[name])
        elif name == QUANTIZE_CASE:
            quantize = True
        else:
            bad.append(name)
    if bad:
        raise ValueError(f"unknown case(s) {', '.join(map(repr, bad))}: a GEMM shape MxKxN (positive integers), "
                         f"'{QUANTIZE_CASE}', or a conv layer: {', '.join(layers)}")
    return shapes, chosen, quantize


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


def _all_cases(quick) -> tuple:
    """``(GEMM shapes, conv layers, quantize)`` of a run of every case (the quick subsets with ``quick``)."""
    wanted = set(cases.CONV_QUICK) if quick else None
    return (cases.GEMM_QUICK if quick else cases.GEMM_SHAPES,
            [layer for layer in cases.CONV_LAYERS if wanted is None or layer.name in wanted], True)


#: architecture -> a feature every path of it but scalar needs (how a path's architecture is told).
_ARCH_FEATURE = {"x86_64": "avx2", "aarch64": "neon"}


def _unavailable_notes(arch) -> list:
    """Why each path of this architecture that is not available here is not benchmarked (amx on a CPU
    without AMX, say)."""
    feature = _ARCH_FEATURE.get(arch)
    available = iq.available_isas()
    notes = []
    for name in iq.ISA_NAMES:
        if name in available or name in iq.EMULATED_ISAS or feature not in _core.isa_required_features(name):
            continue
        notes.append(f"{name}: not benchmarked, not available here: {unavailable_reason(name)}")
    return notes


def run(ops=OPS, isas=None, quick=False, threads=1, progress=None, scalar_all=None, cases=None) -> dict:
    """Run the benchmark; returns the whole JSON document (machine, settings, peaks, results, notes).

    ``isas``: the ISA paths (default: all available but the emulated ones,
    which are never benchmarked: ValueError). The scalar path runs
    every case only when it was asked for alone (``scalar_all``, default:
    ``isas == ['scalar']``); otherwise only the small ones. ``cases``: names
    of the only cases to run (:func:`select_cases`; an op of ``ops`` with
    none of them runs nothing); default: every case of the ops (their quick
    subsets with ``quick``).
    """
    if cases is None:
        gemm_shapes, layers, quantize = _all_cases(quick)
    else:
        cases = list(cases)
        gemm_shapes, layers, quantize = select_cases(cases)
    isas = list([n for n in iq.available_isas() if n not in iq.EMULATED_ISAS] if isas is None else isas)
    emulated = [n for n in isas if n in iq.EMULATED_ISAS]
    if emulated:
        raise ValueError(f"{', '.join(emulated)}: emulated (tests only), not a performance path: not benchmarked")
    scalar_all = isas == ["scalar"] if scalar_all is None else scalar_all
    settings = Settings(quick)
    progress = Progress() if progress is None else progress
    started = time.perf_counter()
    mach = machine(threads, clock_runs=100 if quick else 200)
    r = _Run(isas, settings, threads, mach["clock"]["hz"], Peaks.for_cpu(mach["cpu_id"]), progress, scalar_all,
             arch=mach["cpu_id"].get("arch"))

    previous_threads = iq.get_num_threads()
    previous_blas = peers.openblas_threads(threads)
    iq.set_num_threads(threads)
    if previous_blas is None:
        r.note("could not set OpenBLAS's thread count in this process (OPENBLAS_NUM_THREADS applies)")
    try:
        if "gemm" in ops and gemm_shapes:
            _gemm(r, gemm_shapes)
        if "conv" in ops and layers:
            _conv(r, layers)
        if "quantize" in ops and quantize:
            _quantize(r)
    finally:
        iq.set_num_threads(previous_threads)
        if previous_blas is not None:
            peers.openblas_threads(previous_blas)
        progress.done()
    _derive(r.results)
    notes = [
        "int8 ops are timed on weights packed beforehand, into a preallocated out=: the kernel plus the op's "
        "per-call overhead, no packing or allocation. Peers run as their libraries run them.",
        f"Figures: the median of >= {settings.min_reps} calls and >= {settings.min_time} s after a warm-up call; "
        f"{threads} thread(s) unless a row says otherwise. GOPS count 2 ops per multiply-accumulate.",
        "ops/cycle = GOPS / (clock x threads), per core, with the clock "
        f"{'%.2f GHz' % (mach['clock']['hz'] / 1e9) if mach['clock']['hz'] else 'unknown'} "
        f"({mach['clock']['source']}): an estimate, as is the peak (the peak table, row "
        f"'{r.peaks.row.label}', chosen by {r.peaks.matched_by}).",
    ] + r.notes + _unavailable_notes(mach["cpu_id"]["arch"])
    if r.peaks.generic:
        notes.append(f"This CPU is not in the peak table ({r.peaks.matched_by}): its peaks are the generic "
                     f"fallback row, {r.peaks.row.basis}.")
    return dict(
        schema=SCHEMA,
        machine=mach,
        settings=dict(settings.as_dict(), ops=list(ops), isas=isas, threads=threads, cases=cases,
                      scalar_max_ops=None if scalar_all else SCALAR_MAX_OPS, conv_layout=CONV_LAYOUT,
                      quantize_elements=QUANTIZE_N),
        peaks=r.peaks.as_dict(),
        results=r.results,
        notes=notes,
        elapsed_seconds=time.perf_counter() - started,
    )


