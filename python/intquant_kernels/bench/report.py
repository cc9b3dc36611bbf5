"""Reports of a bench document: the same tables for stdout (plain) and
RESULTS.md (Markdown), and the JSON file."""
from __future__ import annotations

import json

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


TITLES = {
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
        out.append(dict(op=op, title=TITLES.get(op, op), columns=cols, rows=rows))
    matmul = [r for r in doc["results"] if r.get("gops_over_matmul") is not None]
    if matmul:
        out.append(dict(
            op="conv_f32_vs_matmul",
            title="float32 conv baselines against numpy.matmul of the same product (im2col rows x weights, "
                  "operands made beforehand), same run",
            columns=["case", "implementation", "GOPS", "matmul GOPS", "baseline / matmul"],
            rows=[[r["case"], r["impl"], fmt(r["gops"]), fmt(r["ops"] / r["matmul_seconds"] / 1e9),
                   fmt(r["gops_over_matmul"], "x")] for r in matmul]))
    affine = [r for r in doc["results"] if r.get("affine_over_scale") is not None]
    if affine:
        out.append(dict(
            op="affine",
            title="Affine weights (a zero point per output column) against scale weights (zero points 0): "
                  "the same path and call, timed side by side in the same run",
            columns=["case", "implementation", "scale ms", "affine ms", "affine / scale"],
            rows=[[r["case"], r["impl"], fmt(r["scale_seconds"] * 1e3), fmt(r["seconds"] * 1e3),
                   fmt(r["affine_over_scale"], "x")] for r in affine]))
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


def _hex(v) -> str:
    return "?" if v is None else f"0x{v:02X}"


def cpu_id_text(m) -> str:
    """What the CPU reports of itself (the key of the peak table), in words."""
    cpu = m.get("cpu_id") or dict(family=m.get("cpu_family"), model=m.get("cpu_model"))
    if cpu.get("midr_implementer") is not None:
        return f"MIDR implementer {_hex(cpu['midr_implementer'])} part {_hex(cpu['midr_part'])}"
    text = f"family {_hex(cpu.get('family'))} model {_hex(cpu.get('model'))}"
    return text + (f" stepping {cpu['stepping']}" if cpu.get("stepping") is not None else "")


def machine_lines(doc) -> list:
    m = doc["machine"]
    v = m["versions"]
    clock = m["clock"]
    peers = ", ".join(f"{k} {v[k]}" if v.get(k) else f"{k} not installed"
                      for k in ("torch", "onnxruntime", "onnx", "matplotlib"))
    row = doc["peaks"].get("row")
    return [
        f"date: {m['date']}",
        f"CPU: {m['cpu_brand']} ({m['cpu_vendor']}, {cpu_id_text(m)}, {m['arch']}, {m['logical_cpus']} logical CPUs)",
    ] + ([f"peak table row: {row['label']} [{row['key']}], chosen by {row['matched_by']} (an estimate)"]
         if row else []) + [
        f"clock: {clock['hz'] / 1e9:.2f} GHz ({clock['source']}); /proc/cpuinfo says "
        f"{clock['cpuinfo_mhz']} MHz" if clock["hz"] else f"clock: unknown ({clock['source']})",
        f"features: {' '.join(m['features'])}",
        f"ISA paths: {', '.join(doc['settings']['isas'])} (available: {', '.join(m['isas_available'])})",
        f"threads: {m['threads']}; OpenBLAS core in process: {m['openblas_corename']}"
        + (f" (OPENBLAS_CORETYPE={m['openblas_coretype_env']})" if m["openblas_coretype_env"] else ""),
        f"versions: intquant_kernels {v['intquant_kernels']}, Python {v['python']}, NumPy {v['numpy']}; {peers}",
        f"mode: {'--quick' if doc['settings']['quick'] else 'full'}; ops: {', '.join(doc['settings']['ops'])}; "
        + (f"cases: {', '.join(doc['settings']['cases'])}; " if doc["settings"].get("cases") else "")
        + f"run took {doc['elapsed_seconds']:.1f} s",
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


def plain(doc) -> str:
    """The plain-text report of ``bench`` (stdout)."""
    parts = ["\n".join(machine_lines(doc))]
    parts += [render_plain(s) for s in sections(doc)]
    parts.append(render_plain(peak_section(doc)))
    parts.append("Notes:\n" + "\n".join(f"- {n}" for n in doc["notes"]))
    return "\n\n".join(parts) + "\n"


def write_json(doc, path) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
