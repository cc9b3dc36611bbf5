"""Ratio tables from a pytest-benchmark JSON file.

For each benchmark group, prints every benchmark's median time and its ratio
to the group's baseline (the benchmark whose extra_info has baseline=True):
ratio > 1 means faster than the baseline. Also prints GOPS where the benchmark
recorded an operation count in extra_info["ops"] (or, in 1e9 operations,
extra_info["gops"]).

Convolution results (benchmarks/bench_conv.py, groups ``conv-<layer>``) get
two more tables, one row per layer: the speed-ups that the convolution targets
are stated in (against torch float32, torch quantized conv and onnxruntime
QLinearConv, NCHW against NHWC input, qconv2d epilogues against conv2d), and
the thread scaling of the ``conv-threads-<layer>`` groups.

    python benchmarks/summarize.py results.json
"""
import json
import sys
from collections import defaultdict


def main(path):
    with open(path) as f:
        data = json.load(f)
    groups = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b["group"] or b["name"]].append(b)
    for group, benches in groups.items():
        base = next((b for b in benches if b["extra_info"].get("baseline")), None)
        print(f"\n## {group}" + (f" (baseline: {base['name']}"
              + (f", OpenBLAS {base['extra_info']['openblas_core']}" if base["extra_info"].get("openblas_core") else "")
              + ")" if base else ""))
        avx2 = base and base["extra_info"].get("numpy_f32_avx2_seconds")
        print(f"| benchmark | median ms | {'speed-up vs baseline | ' if base else ''}GOPS |"
              + (" vs AVX2 float32 |" if avx2 else ""))
        print("|---|---:|" + ("---:|" if base else "") + "---:|" + ("---:|" if avx2 else ""))
        for b in benches:
            med = b["stats"]["median"]
            ops = _ops(b)
            gops = f"{ops / med / 1e9:.1f}" if ops else ""
            ratio = f" {base['stats']['median'] / med:.2f}x |" if base else ""
            vs_avx2 = f" {avx2 / med:.2f}x |" if avx2 else ""
            print(f"| {b['name']} | {med * 1e3:.3f} |{ratio} {gops} |{vs_avx2}")

    conv_tables(groups)


def _ops(b):
    info = b["extra_info"]
    if info.get("ops"):
        return info["ops"]
    return info["gops"] * 1e9 if info.get("gops") else None


def _find(benches, **want):
    """The first benchmark whose extra_info has every key: value of want."""
    return next((b for b in benches if all(b["extra_info"].get(k) == v for k, v in want.items())), None)


def _x(num, den):
    """Speed-up of den against num (median time of num / median time of den), or '' if either is missing."""
    if num is None or den is None:
        return ""
    return f"{num['stats']['median'] / den['stats']['median']:.2f}x"


def conv_tables(groups):
    layers = {g[len("conv-"):]: b for g, b in groups.items()
              if g.startswith("conv-") and not g.startswith("conv-threads-")}
    if layers:
        print("\n## conv: speed-ups per layer (one thread; > 1: the int8 path is faster)")
        print("default = conv2d on the default ISA, NHWC input, packed weights. NCHW/NHWC is the time of the NCHW\n"
              "input over the NHWC input (1.15 = 15% slower); qconv2d columns: time over conv2d's.")
        print("| layer | baseline | default vs baseline | avx512_vnni vs baseline | default vs torch quantized"
              " | default vs ort QLinearConv | NCHW/NHWC | qconv2d f32 / conv2d | qconv2d u8 / conv2d | default GOPS |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for layer, benches in layers.items():
            base = next((b for b in benches if b["extra_info"].get("baseline")), None)
            nchw = _find(benches, path="conv2d", layout="NCHW")
            isa = nchw["extra_info"]["isa"] if nchw else None
            default = _find(benches, path="conv2d", layout="NHWC", isa=isa) if isa else None
            vnni = _find(benches, path="conv2d", layout="NHWC", isa="avx512_vnni")
            tq = _find(benches, path="torch quantized")
            ort = _find(benches, path="onnxruntime")
            q_f32 = next((b for b in benches if b["extra_info"].get("path") == "qconv2d"
                          and b["extra_info"].get("epilogue", "").startswith("f32")), None)
            q_u8 = next((b for b in benches if b["extra_info"].get("path") == "qconv2d"
                         and b["extra_info"].get("epilogue", "").startswith("requant")), None)
            if base is None:
                base_name = ""
            else:
                bi = base["extra_info"]
                base_name = bi.get("path", base["name"]) + (f" {bi['torch_memory_format']}" if bi.get("torch_memory_format") else "")
            gops = f"{_ops(default) / default['stats']['median'] / 1e9:.1f}" if default and _ops(default) else ""
            print(f"| {layer} | {base_name} | {_x(base, default)} | {_x(base, vnni)} | {_x(tq, default)} "
                  f"| {_x(ort, default)} | {_x(nchw, default)} | {_x(q_f32, default)} | {_x(q_u8, default)} | {gops} |")
    threads = {g[len("conv-threads-"):]: b for g, b in groups.items() if g.startswith("conv-threads-")}
    if threads:
        print("\n## conv: thread scaling of the default path (speed-up over one thread)")
        counts = sorted({b["extra_info"].get("threads") for bs in threads.values() for b in bs} - {None, 1})
        print("| layer | " + " | ".join(f"{t} threads" for t in counts) + " |")
        print("|---|" + "---:|" * len(counts))
        for layer, benches in threads.items():
            one = _find(benches, threads=1)
            print(f"| {layer} | " + " | ".join(_x(one, _find(benches, threads=t)) for t in counts) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results.json")
