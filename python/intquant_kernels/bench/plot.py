"""The PNG of a bench document (needs matplotlib)."""
from __future__ import annotations

from .report import TITLES

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


def write_png(doc, path) -> None:
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
            ax.set_title(TITLES.get(panel, panel), fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    m = doc["machine"]
    fig.suptitle(f"intquant_kernels {m['versions']['intquant_kernels']}: int8 against float32 and peers; "
                 f"{m['cpu_brand']}, {m['threads']} thread(s), {m['date'][:10]}", fontsize=11)
    fig.savefig(path, dpi=100)
