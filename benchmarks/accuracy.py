"""Generate benchmarks/ACCURACY.md: int8 through intquant_kernels against float32 on real networks.

    pip install ".[examples]"
    python benchmarks/accuracy.py                       # writes benchmarks/ACCURACY.md and accuracy.json

One run measures everything the file shows (nothing in it is typed by hand):

- the PP-OCR text-direction classifier (examples/ppocr_cls.py) and the digits MLP
  (examples/digits_mlp.py), in float32 and in int8 with each activation
  calibrator of ``intquant_kernels.calibration`` (max, entropy, percentiles
  99.9 / 99.99 / 99.999 / 99.9999, MSE);
- the paper's granularity claims: the CNN with weights per tensor instead of
  per output channel, the MLP with activations per row (dynamic) instead of per
  tensor;
- per-layer sensitivity (one layer in int8 at a time, the paper's partial
  quantization) for a network that misses the 1% target with every calibrator,
  or for every network with ``--sensitivity``;
- the time of the CNN in int8 and in float32 in the same executor, one thread
  (a child process started with one-thread BLAS and kernels, without this
  machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides, so OpenBLAS picks
  its own kernels for this CPU), with onnxruntime's float32 on one thread as a
  reference point.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
TARGET = 1.0  # percentage points of top-1 accuracy

TIMING_ENV_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "INTQUANT_NUM_THREADS")
TIMING_ENV_UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _imports():
    import numpy as np

    sys.path.insert(0, str(EXAMPLES))
    import digits_mlp
    import ppocr_cls
    import qexec

    return np, qexec, ppocr_cls, digits_mlp


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_name():
    try:
        from threadpoolctl import threadpool_info

        for i in threadpool_info():
            if i.get("user_api") == "blas":
                return f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
    except Exception:  # noqa: BLE001 - only descriptive
        pass
    return "unknown"


# --- accuracy -------------------------------------------------------------------


def _scores(np, pred, ref, y):
    return dict(accuracy=float(np.mean(pred == y)), agreement=float(np.mean(pred == ref)))


def sensitivity(np, qexec, graph, quant, x, y, ref, batch=32, worst=5):
    """Each integer layer alone in int8 (the others float32) on ``x``: accuracy and agreement
    with float32; then the whole int8 network with the ``k`` worst layers left in float32."""
    def run(ex):
        return np.concatenate([ex.run(x[i:i + batch]) for i in range(0, len(x), batch)]).argmax(1)

    names = [n.name for n in graph.layers()]
    rows = []
    for name in names:
        pred = run(qexec.Executor(graph, quant, float_layers=[m for m in names if m != name]))
        rows.append(dict(layer=name, **_scores(np, pred, ref, y)))
    rows.sort(key=lambda r: (r["agreement"], r["accuracy"]))
    partial = []
    for k in range(1, worst + 1):
        pred = run(qexec.Executor(graph, quant, float_layers=[r["layer"] for r in rows[:k]]))
        partial.append(dict(float_layers=[r["layer"] for r in rows[:k]], **_scores(np, pred, ref, y)))
    return dict(images=len(x), layers=rows[:worst], partial=partial)


def cnn_accuracy(args, log):
    np, qexec, P, _ = _imports()
    data = P.model_bytes(args.cache)
    graph = P.load_graph(data)
    log("cnn: rendering the text lines")
    xc, xe, ye = P.data(args.calib_lines or P.CALIBRATION_LINES, args.eval_lines)
    log(f"cnn: float32 on {len(xe)} images")
    pf = P.predict(qexec.Executor(graph), xe)
    ref = pf.argmax(1)
    out = dict(model="PP-OCR mobile v2.0 direction classifier", layers=len(graph.layers()),
               calibration_images=len(xc), evaluation_images=len(xe),
               seeds=dict(calibration=P.CALIBRATION_SEED, evaluation=P.EVALUATION_SEED),
               fonts=[Path(f).name for f in P.textlines.fonts()],
               float32=float(np.mean(ref == ye)))
    try:
        po = P.onnxruntime_probs(data, xe)
        out["onnxruntime_max_abs_diff"] = float(np.abs(pf - po).max())
        out["onnxruntime_same_top1"] = float(np.mean(po.argmax(1) == ref))
    except ImportError:
        out["onnxruntime_max_abs_diff"] = None
    log("cnn: calibrating")
    t0 = time.perf_counter()
    stats = qexec.calibrate(graph, P.batches(xc))
    out["calibration_s"] = time.perf_counter() - t0
    out["int8"], out["int8_weights_per_tensor"] = {}, {}
    for m in qexec.METHODS:
        quant = qexec.act_quant(stats, m)
        for key, per_channel in (("int8", True), ("int8_weights_per_tensor", False)):
            log(f"cnn: int8, {m}, weights per {'channel' if per_channel else 'tensor'}")
            ex = qexec.Executor(graph, quant, per_channel_weights=per_channel)
            out[key][m] = _scores(np, P.predict(ex, xe).argmax(1), ref, ye)
            if per_channel and m == "max":
                out["chained_layers"] = len(ex.chained())
    best = max(out["int8"].values(), key=lambda r: r["accuracy"])["accuracy"]
    out["met"] = 100 * (out["float32"] - best) <= TARGET
    # Per-layer sensitivity explains a miss: of every calibrator if all miss (the best one
    # analysed), else of the calibrators that miss while others meet it (the worst one).
    missed = [k for k in qexec.METHODS if 100 * (out["float32"] - out["int8"][k]["accuracy"]) > TARGET]
    if args.sensitivity or missed:
        pick = max if not out["met"] or not missed else min
        m = pick(missed or qexec.METHODS, key=lambda k: out["int8"][k]["accuracy"])
        n = min(len(xe), args.sensitivity_images)
        log(f"cnn: per-layer sensitivity ({m}, {n} images)")
        out["sensitivity"] = dict(calibrator=m, **sensitivity(np, qexec, graph, qexec.act_quant(stats, m),
                                                              xe[:n], ye[:n], ref[:n]))
    return out


def mlp_accuracy(args, log):
    np, qexec, _, M = _imports()
    import intquant_kernels as iq

    log("mlp: training")
    xtr, xte, ytr, yte = M.data()
    clf = M.train(xtr, ytr)
    g = M.graph_of(clf)
    pf = qexec.Executor(g).run(xte)
    ref = pf.argmax(1)
    out = dict(model=f"MLP 64-{'-'.join(map(str, M.HIDDEN))}-10 (scikit-learn MLPClassifier)",
               train_samples=len(xtr), evaluation_images=len(xte), calibration_images=min(256, len(xtr)),
               seed=M.SEED, epochs=int(clf.n_iter_), float32=float(np.mean(ref == yte)),
               sklearn_max_abs_diff=float(np.abs(pf - clf.predict_proba(xte)).max()))
    stats = qexec.calibrate(g, [xtr[:256]])
    out["int8"] = {}
    for m in qexec.METHODS:
        ex = qexec.Executor(g, qexec.act_quant(stats, m))
        out["int8"][m] = _scores(np, ex.run(xte).argmax(1), ref, yte)
        if m == "max":
            out["chained_layers"] = len(ex.chained())
    ex = qexec.Executor(g, qexec.act_quant(stats, "max"), per_row_activations=True)
    out["int8_activations_per_row"] = _scores(np, ex.run(xte).argmax(1), ref, yte)
    best = max(out["int8"].values(), key=lambda r: r["accuracy"])["accuracy"]
    out["met"] = 100 * (out["float32"] - best) <= TARGET
    if args.sensitivity or not out["met"]:
        m = max(qexec.METHODS, key=lambda k: out["int8"][k]["accuracy"])
        out["sensitivity"] = dict(calibrator=m, **sensitivity(np, qexec, g, qexec.act_quant(stats, m),
                                                              xte, yte, ref, batch=len(xte), worst=2))
    return out


# --- timing (a child process: one thread everywhere) ---------------------------------


def timing_child(args):
    """Runs in the child: prints one JSON line with the times of one batch."""
    np, qexec, P, _ = _imports()
    import intquant_kernels as iq

    iq.set_num_threads(1)
    data = P.model_bytes(args.cache)
    graph = P.load_graph(data)
    xc, xe, _ = P.data(64, (args.batch + 1) // 2)
    x = xe[:args.batch]
    stats = qexec.calibrate(graph, P.batches(xc))
    exs = {"float32": qexec.Executor(graph), "int8": qexec.Executor(graph, qexec.act_quant(stats, "entropy"))}
    times = {k: [] for k in exs}
    prof = {k: [] for k in exs}
    for ex in exs.values():  # warm up: packing on first use, page faults
        ex.run(x)
        ex.run(x)
    for _ in range(args.repeats):
        for k, ex in exs.items():  # interleaved, so both see the same machine
            p = {}
            t0 = time.perf_counter()
            ex.run(x, profile=p)
            times[k].append(time.perf_counter() - t0)
            prof[k].append(p)
    out = dict(batch=len(x), repeats=args.repeats, isa=iq.active_isa(), threads=iq.get_num_threads(),
               blas=blas_name(), env={k: os.environ.get(k) for k in TIMING_ENV_THREADS + TIMING_ENV_UNSET})
    for k in exs:
        i = int(np.argsort(times[k])[len(times[k]) // 2])  # the median run, with its breakdown
        out[k] = dict(median_s=float(times[k][i]), min_s=float(min(times[k])), breakdown=prof[k][i])
    try:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        name = s.get_inputs()[0].name
        s.run(None, {name: x})
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            s.run(None, {name: x})
            ts.append(time.perf_counter() - t0)
        out["onnxruntime_float32"] = dict(median_s=float(np.median(ts)), min_s=float(min(ts)))
    except ImportError:
        out["onnxruntime_float32"] = None
    print(json.dumps(out))


def timing(args, log):
    env = {k: v for k, v in os.environ.items() if k not in TIMING_ENV_UNSET}
    env.update({k: "1" for k in TIMING_ENV_THREADS})
    log("cnn: timing (child process, one thread)")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--timing-child", "--batch", str(args.batch),
           "--repeats", str(args.repeats)] + (["--cache", str(args.cache)] if args.cache else [])
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


# --- the report -------------------------------------------------------------------------


def _pct(v):
    return f"{100 * v:.2f}"


def _cell(r, f32):
    return f"{_pct(r['accuracy'])} ({100 * (r['accuracy'] - f32):+.2f})"


def report(res) -> str:
    _, qexec, _, _ = _imports()
    cnn, mlp, tm = res["cnn"], res["mlp"], res["timing"]
    methods = qexec.METHODS
    head = ["max", "entropy"] + [f"{m.split('-')[1]}%" for m in methods if m.startswith("percentile")] + ["MSE"]
    L = []
    L.append("# int8 against float32 on real networks\n")
    L.append("Generated by `python benchmarks/accuracy.py` from one run "
             f"({res['date']}, {res['elapsed_s']:.0f} s); never edited by hand. "
             "The raw numbers are in `benchmarks/accuracy.json`.\n")
    L.append(f"Machine: {res['cpu']}, {res['cores']} cores; intquant_kernels {res['version']} on the "
             f"`{res['isa']}` path; Python {res['python']}, NumPy {res['numpy']}.\n")
    L.append("## Top-1 accuracy (%), and its difference from float32 in points\n")
    L.append("Weights per output channel (max), activations per tensor, calibrated with the calibrator of "
             "the column (`intquant_kernels.calibration`); batch norms folded first. "
             f"Target: int8 within {TARGET:g} point of float32 with at least one calibrator.\n")
    L.append("| model | eval. images | float32 | " + " | ".join(f"int8 {h}" for h in head) + " | target |")
    L.append("|---|---:|---:|" + "---:|" * len(head) + "---|")

    def row(name, n, f32, cells, met=""):
        return f"| {name} | {n} | {f32} | " + " | ".join(cells) + f" | {met} |"

    L.append(row("PP-OCR direction classifier (CNN)", cnn["evaluation_images"], _pct(cnn["float32"]),
                 [_cell(cnn["int8"][m], cnn["float32"]) for m in methods], "met" if cnn["met"] else "missed"))
    L.append(row("digits MLP", mlp["evaluation_images"], _pct(mlp["float32"]),
                 [_cell(mlp["int8"][m], mlp["float32"]) for m in methods], "met" if mlp["met"] else "missed"))
    L.append(row("CNN, weights **per tensor** (max)", cnn["evaluation_images"], _pct(cnn["float32"]),
                 [_cell(cnn["int8_weights_per_tensor"][m], cnn["float32"]) for m in methods]))
    pr = mlp["int8_activations_per_row"]
    L.append(row("MLP, activations **per row** (dynamic max)", mlp["evaluation_images"], _pct(mlp["float32"]),
                 [_cell(pr, mlp["float32"])] + ["–"] * (len(methods) - 1)))
    L.append("")
    L.append("Agreement of the int8 top-1 with float32's (%):\n")
    L.append("| model | " + " | ".join(head) + " |")
    L.append("|---|" + "---:|" * len(head))
    L.append("| CNN | " + " | ".join(_pct(cnn["int8"][m]["agreement"]) for m in methods) + " |")
    L.append("| MLP | " + " | ".join(_pct(mlp["int8"][m]["agreement"]) for m in methods) + " |")
    L.append("| CNN, weights per tensor | " + " | ".join(_pct(cnn["int8_weights_per_tensor"][m]["agreement"])
                                                      for m in methods) + " |")
    L.append("| MLP, activations per row | " + _pct(pr["agreement"]) + " |"
             + " – |" * (len(methods) - 1))
    L.append("")
    L.append("The per-row row has one number: each row of activations is scaled by its own max at run "
             "time (`intquant_kernels.dynamic_quantize`, per-row `a_scale` in `qgemm`), so no calibrator "
             "is involved. Per-row activation scales are not available to convolutions, hence the MLP."
             + "\n")

    L.append("## Models, data, seeds\n")
    ort_diff = cnn.get("onnxruntime_max_abs_diff")
    L.append(f"- **CNN**: `ch_ppocr_mobile_v2.0_cls_infer.onnx` from the `rapidocr-onnxruntime` 1.4.4 wheel "
             f"(PaddleOCR, Apache-2.0): 53 convolutions and one MatMul, {cnn['layers']} integer layers after "
             f"the batch norms are folded; {cnn['chained_layers']} of them requantize their output straight "
             "into the next integer layer (uint8 after a relu, int8 otherwise), the others dequantize "
             "into the float32 ops (hard-swish, squeeze-and-excitation, residual adds, pooling, softmax). "
             f"Data: text lines of public-domain sentences (`examples/data/sentences.txt`) rendered with "
             f"Pillow, upright and rotated by 180 degrees: {cnn['calibration_images']} calibration images "
             f"(seed {cnn['seeds']['calibration']}) and {cnn['evaluation_images']} evaluation images "
             f"(seed {cnn['seeds']['evaluation']}) from disjoint sentences; fonts: "
             f"{', '.join(cnn['fonts'])}. The float32 path of the executor against onnxruntime on the "
             "evaluation images: "
             + (f"max abs difference of the probabilities {ort_diff:.1e}, same top-1 on "
                f"{_pct(cnn['onnxruntime_same_top1'])}%." if ort_diff is not None else "not run "
                                                                                       "(no onnxruntime)."))
    L.append(f"- **MLP**: {mlp['model']}, trained on {mlp['train_samples']} of scikit-learn's digits "
             f"(seed {mlp['seed']}, {mlp['epochs']} epochs), evaluated on the other {mlp['evaluation_images']} "
             f"(stratified split, seed {mlp['seed']}); calibrated on {mlp['calibration_images']} training "
             f"samples; {mlp['chained_layers']} of its 3 layers requantize into the next. Float32 path "
             f"against scikit-learn's `predict_proba`: max abs difference {mlp['sklearn_max_abs_diff']:.1e}.")
    L.append("")

    for key, net in (("CNN", cnn), ("MLP", mlp)):
        s = net.get("sensitivity")
        if not s:
            continue
        f32, full = net["float32"], net["int8"][s["calibrator"]]["accuracy"]
        why = ("every calibrator misses the target" if not net["met"] else
               f"{s['calibrator']} misses the target ({_pct(full)}% against {_pct(f32)}% on all "
               f"{net['evaluation_images']} images) while other calibrators meet it")
        L.append(f"## Per-layer sensitivity, {key}, {s['calibrator']}\n")
        L.append(f"Why: {why}. The paper's partial quantization, on the first {s['images']} evaluation images: "
                 "one layer in int8 at a time (the others float32), the layers sorted by agreement with "
                 "float32; the worst ones:\n")
        L.append("| layer | accuracy | agreement with float32 |")
        L.append("|---|---:|---:|")
        for r in s["layers"]:
            L.append(f"| {r['layer']} | {_pct(r['accuracy'])} | {_pct(r['agreement'])} |")
        L.append("\nThe whole network in int8 but the k worst layers (partial quantization):\n")
        L.append("| k | accuracy | agreement |")
        L.append("|---:|---:|---:|")
        for k, r in enumerate(s["partial"], 1):
            L.append(f"| {k} | {_pct(r['accuracy'])} | {_pct(r['agreement'])} |")
        L.append("")

    L.append("## Time of the CNN, one thread\n")
    f, q, o = tm["float32"], tm["int8"], tm["onnxruntime_float32"]
    b = tm["batch"]
    L.append(f"One batch of {b} evaluation images, median of {tm['repeats']} runs (int8 and float32 "
             "interleaved) in one process with one thread for the kernels and BLAS "
             f"({tm['blas']}; `{'`, `'.join(TIMING_ENV_UNSET)}` unset so that OpenBLAS chooses its kernels "
             "for this CPU). Same executor: the float32 path runs 1x1 convolutions as one matmul, the "
             "others as im2col + matmul, depthwise ones as a sum over taps of strided views (blocked to "
             "stay in cache); the int8 path runs `qconv2d`/`qgemm` with the quantize of float inputs "
             "included in its time.\n")
    L.append("| | float32 | int8 | speed-up |")
    L.append("|---|---:|---:|---:|")
    L.append(f"| whole network, ms per image | {1e3 * f['median_s'] / b:.2f} | {1e3 * q['median_s'] / b:.2f} | "
             f"{f['median_s'] / q['median_s']:.2f}x |")
    for k in ("dense conv", "depthwise conv", "gemm", "float32 ops"):
        fk, qk = f["breakdown"].get(k, 0.0), q["breakdown"].get(k, 0.0)
        what = {"dense conv": "of which dense and 1x1 convolutions",
                "depthwise conv": "of which depthwise convolutions", "gemm": "of which the MatMul",
                "float32 ops": "of which the float32 ops (both paths)"}[k]
        sp = f"{fk / qk:.2f}x" if qk > 0 else "–"
        L.append(f"| {what} | {1e3 * fk / b:.3f} | {1e3 * qk / b:.3f} | {sp} |")
    if o:
        L.append(f"| for reference: onnxruntime float32, one thread | {1e3 * o['median_s'] / b:.2f} | | |")
    L.append("")
    L.append("## Targets\n")
    cm = max(methods, key=lambda m: cnn["int8"][m]["accuracy"])
    mm = max(methods, key=lambda m: mlp["int8"][m]["accuracy"])
    L.append(f"- CNN within {TARGET:g} point of float32 with at least one calibrator: "
             f"**{'met' if cnn['met'] else 'missed'}** (best: {cm}, {_pct(cnn['int8'][cm]['accuracy'])}% "
             f"against {_pct(cnn['float32'])}%).")
    L.append(f"- MLP within {TARGET:g} point of float32 with at least one calibrator: "
             f"**{'met' if mlp['met'] else 'missed'}** (best: {mm}, {_pct(mlp['int8'][mm]['accuracy'])}% "
             f"against {_pct(mlp['float32'])}%).")
    faster = q["median_s"] < f["median_s"]
    L.append(f"- int8 CNN faster than float32 in the same executor, one thread: "
             f"**{'met' if faster else 'missed'}** ({f['median_s'] / q['median_s']:.2f}x).")
    L.append("")
    return "\n".join(L)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE / "ACCURACY.md"))
    p.add_argument("--json", default=str(HERE / "accuracy.json"))
    p.add_argument("--cache", default=None)
    p.add_argument("--calib-lines", type=int, default=None, help="default: as examples/ppocr_cls.py")
    p.add_argument("--eval-lines", type=int, default=None)
    p.add_argument("--sensitivity", action="store_true", help="per-layer sensitivity even where the target is met")
    p.add_argument("--sensitivity-images", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--timing-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.timing_child:
        return timing_child(args)

    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    np, _, _, _ = _imports()
    import intquant_kernels as iq

    res = dict(date=time.strftime("%Y-%m-%d"), cpu=cpu_name(), cores=os.cpu_count(), version=iq.__version__,
               isa=iq.active_isa(), python=platform.python_version(), numpy=np.__version__)
    res["cnn"] = cnn_accuracy(args, log)
    res["mlp"] = mlp_accuracy(args, log)
    res["timing"] = timing(args, log)
    res["elapsed_s"] = time.perf_counter() - t0
    Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    Path(args.out).write_text(report(res))
    log(f"wrote {args.out} and {args.json}")


if __name__ == "__main__":
    main()
