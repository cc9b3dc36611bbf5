"""Ratio tables from a pytest-benchmark JSON file.

For each benchmark group, prints every benchmark's median time and its ratio
to the group's baseline (the benchmark whose extra_info has baseline=True):
ratio > 1 means faster than the baseline. Also prints GOPS where the benchmark
recorded an operation count in extra_info["ops"].

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
            ops = b["extra_info"].get("ops")
            gops = f"{ops / med / 1e9:.1f}" if ops else ""
            ratio = f" {base['stats']['median'] / med:.2f}x |" if base else ""
            vs_avx2 = f" {avx2 / med:.2f}x |" if avx2 else ""
            print(f"| {b['name']} | {med * 1e3:.3f} |{ratio} {gops} |{vs_avx2}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results.json")
