"""The command line: info, validate (and that it catches a broken kernel), bench
(JSON, table, plot) and benchmarks/results.py. Correctness only: no timing
assertions."""
import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import __main__ as cli
from intquant_kernels.bench import cases, kernel_kind, machine, measure, peaks, report, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEST = iq.available_isas()[-1]


def test_info_runs(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"active ISA: {iq.active_isa()}" in out
    for name in iq.ISA_NAMES:
        assert name in out


@pytest.mark.parametrize("command", [None, "info", "validate", "bench"])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as e:
        cli.main(([command] if command else []) + ["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out
    expected = {None: ["info", "validate", "bench"], "info": ["thread"], "validate": ["--isa", "--seed"],
                "bench": ["--quick", "--ops", "--isa", "--threads", "--json", "--plot", "results.py"]}[command]
    for word in expected:
        assert word in out, word


# --- validate -------------------------------------------------------------------

def _lines(out, op):
    return [line for line in out.splitlines() if line.split()[:1] == [op]]


def test_validate_passes_on_every_isa(capsys):
    assert cli.main(["validate"]) == 0
    out = capsys.readouterr().out
    for isa in iq.available_isas():
        for op in cli.VALIDATE_OPS:
            assert any(line.split()[:3] == [op, isa, "PASS"] for line in out.splitlines()), (op, isa)
    assert len(out.splitlines()) == len(cli.VALIDATE_OPS) * len(iq.available_isas())


def test_validate_covers_the_awkward_conv_cases():
    cases = [c for c in cli._all_cases(0) if c[0] in ("conv2d", "qconv2d", "depthwise")]
    kw = [c[4] for c in cases]
    assert {k["layout"] for k in kw} == {"NCHW", "NHWC"}
    assert {c[3][0].dtype for c in cases} == {np.dtype(np.int8), np.dtype(np.uint8)}
    assert any(k["stride"] != 1 for k in kw) and any(k["dilation"] != 1 for k in kw)
    assert any(isinstance(k["padding"], tuple) and len(k["padding"]) == 4 for k in kw)
    assert any(k["x_zero_point"] != 0 for k in kw) and any("w_zero_point" in k for k in kw)
    assert any(1 < k["groups"] < c[3][0].shape[1 if k["layout"] == "NCHW" else 3] for c, k in zip(cases, kw))
    depthwise = [c for c in cases if c[0] == "depthwise"]
    assert {c[2] for c in depthwise} == {"conv2d", "qconv2d"}
    requant = [k for c, k in zip(cases, kw) if c[2] == "qconv2d" and "out_scale" in k]
    assert requant and any(k.get("relu") for c, k in zip(cases, kw) if c[2] == "qconv2d")


def test_validate_unavailable_isa_is_an_error(capsys):
    missing = next(n for n in iq.ISA_NAMES if n not in iq.available_isas())
    assert cli.main(["validate", "--isa", missing]) == 2


def _off_by_one(fn):
    def broken(*args, **kwargs):
        y = fn(*args, **kwargs)
        if y.size:
            y.reshape(-1)[-1] += 1
        return y

    return broken


def test_validate_fails_on_a_wrong_gemm(monkeypatch, capsys):
    monkeypatch.setattr(iq, "gemm", _off_by_one(iq.gemm))
    assert cli.main(["validate", "--isa", BEST]) == 1
    out = capsys.readouterr().out
    fail = [line for line in out.splitlines() if line.startswith("gemm") and "FAIL" in line]
    assert fail and "mismatch" in fail[0]


def test_validate_fails_on_a_wrong_quantize(monkeypatch, capsys):
    original = iq.quantize

    def nan_not_zero_point(x, *args, **kwargs):
        y = original(x, *args, **kwargs)
        y[np.isnan(x)] = 0 if y.dtype == np.uint8 else 1
        return y

    monkeypatch.setattr(iq, "quantize", nan_not_zero_point)
    assert cli.main(["validate", "--isa", "scalar"]) == 1
    line, = _lines(capsys.readouterr().out, "quantize")
    assert line.split()[:3] == ["quantize", "scalar", "FAIL"], line


def test_validate_fails_on_a_wrong_histogram(monkeypatch, capsys):
    from intquant_kernels import calibration

    original = calibration.HistogramCalibrator._add

    def drops_the_first_value(self, x):
        original(self, x[1:])

    monkeypatch.setattr(calibration.HistogramCalibrator, "_add", drops_the_first_value)
    assert cli.main(["validate", "--isa", "scalar"]) == 1
    line, = _lines(capsys.readouterr().out, "calibrate")
    assert line.split()[:3] == ["calibrate", "scalar", "FAIL"] and "mismatch" in line, line


def test_validate_fails_on_a_wrong_dynamic_quantize(monkeypatch, capsys):
    original = iq.dynamic_quantize

    def scale_off(x, **kw):
        q, *rest = original(x, **kw)
        return (q, *[r * np.float32(1.0000001) if np.asarray(r).dtype == np.float32 else r for r in rest])

    monkeypatch.setattr(iq, "dynamic_quantize", scale_off)
    assert cli.main(["validate", "--isa", "scalar"]) == 1
    line, = _lines(capsys.readouterr().out, "dynamic_quantize")
    assert line.split()[:3] == ["dynamic_quantize", "scalar", "FAIL"] and "mismatch" in line, line


def test_validate_fails_on_a_wrong_conv2d(monkeypatch, capsys):
    monkeypatch.setattr(iq, "conv2d", _off_by_one(iq.conv2d))
    assert cli.main(["validate", "--isa", BEST]) == 1
    out = capsys.readouterr().out
    for op in ("conv2d", "depthwise"):  # the depthwise line runs conv2d too
        line, = _lines(out, op)
        assert line.split()[:3] == [op, BEST, "FAIL"] and "mismatch" in line, line
    # qconv2d is a separate function: untouched, still passes.
    assert _lines(out, "qconv2d")[0].split()[2] == "PASS"


def test_validate_reports_a_kernel_that_raises(monkeypatch, capsys):
    def raises(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(iq, "qconv2d", raises)
    assert cli.main(["validate", "--isa", "scalar"]) == 1
    line, = _lines(capsys.readouterr().out, "qconv2d")
    assert "FAIL" in line and "raised RuntimeError: boom" in line


# --- bench ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quantize_bench(tmp_path_factory):
    """One tiny bench run (--quick --ops quantize on the best path), with --json and --plot."""
    tmp = tmp_path_factory.mktemp("bench")
    paths = dict(json=str(tmp / "r.json"), plot=str(tmp / "r.png"))
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(["bench", "--quick", "--ops", "quantize", "--isa", BEST, "--json", paths["json"],
                       "--plot", paths["plot"]])
    with open(paths["json"]) as f:
        doc = json.load(f)
    return dict(rc=rc, stdout=out.getvalue(), stderr=err.getvalue(), doc=doc, **paths)


def test_bench_json_has_the_expected_keys(quantize_bench):
    assert quantize_bench["rc"] == 0
    doc = quantize_bench["doc"]
    assert doc["schema"] == runner.SCHEMA
    assert {"machine", "settings", "peaks", "results", "notes", "elapsed_seconds"} <= doc.keys()
    m = doc["machine"]
    for key in ("cpu_brand", "cpu_id", "features", "isas_available", "threads", "date", "openblas_corename",
                "clock"):
        assert key in m, key
    assert set(m["versions"]) >= {"python", "numpy", "intquant_kernels", "torch", "onnxruntime", "onnx",
                                  "matplotlib"}
    assert m["versions"]["intquant_kernels"] == iq.__version__
    assert doc["settings"]["quick"] is True and doc["settings"]["isas"] == [BEST]
    assert doc["settings"]["ops"] == ["quantize"]
    here = peaks.Peaks.for_cpu()
    assert doc["peaks"]["row"]["key"] == here.row.key and doc["peaks"]["row"]["matched_by"] == here.matched_by
    assert here.row.label in doc["peaks"]["assumption"]
    table = {(p["path"], p["kernel"]): p for p in doc["peaks"]["table"]}
    for isa in iq.available_isas():
        if isa in iq.EMULATED_ISAS:  # never benchmarked: no peak
            assert (isa, "gemm") not in table
            continue
        instr = here.instruction("gemm", isa)
        assert table[(isa, "gemm")]["ops_per_cycle"] == 2 * peaks.INSTRUCTIONS[instr][2] * here.row.per_cycle[instr]
    assert f"peak table row: {here.row.label} [{here.row.key}]" in quantize_bench["stdout"]
    impls = {(r["op"], r["role"], r["isa"]) for r in doc["results"]}
    for op in ("quantize", "dequantize"):
        assert {(op, "copy_baseline", None), (op, "int8", BEST), (op, "reference", None)} <= impls
    for r in doc["results"]:
        assert r["seconds"] > 0 and r["repeats"] >= 3
        assert r["gbytes_per_s"] == pytest.approx(r["bytes"] / r["seconds"] / 1e9)


def test_bench_table_agrees_with_the_json(quantize_bench):
    lines = quantize_bench["stdout"].splitlines()
    doc = quantize_bench["doc"]
    assert doc["results"]
    for r in doc["results"]:
        row = next(line for line in lines if line.startswith(r["case"]) and r["impl"] in line)
        cells = row[row.index(r["impl"]) + len(r["impl"]):].split()
        assert cells == [report.fmt(r["seconds"] * 1e3), report.fmt(r["gelements_per_s"]),
                         report.fmt(r["gbytes_per_s"]), report.fmt(r["speedup_vs_copy"], "x")], row
    assert "bench: done" in quantize_bench["stderr"]  # the progress went to stderr


def test_bench_writes_a_png(quantize_bench):
    pytest.importorskip("matplotlib")
    with open(quantize_bench["plot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_bench_plot_without_matplotlib_is_a_note(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(runner, "run", lambda **kw: _tiny_doc())
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert cli.main(["bench", "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png")]) == 0
    captured = capsys.readouterr()
    assert "plot skipped: matplotlib is not installed" in captured.err
    assert (tmp_path / "r.json").exists() and not (tmp_path / "r.png").exists()
    assert "implementation" in captured.out


def _tiny_doc():
    """A bench document for the report and plot code, without timing anything."""
    rec = dict(op="gemm", case="8x8x8", impl="int8 gemm scalar", role="int8", isa="scalar", threads=1,
               seconds=1e-3, ops=1024, gops=1.024e-3, ops_per_cycle=None, peak_ops_per_cycle=32,
               fraction_of_peak=None, speedup_vs_f32=2.0, speedup_vs_f32_avx2=None, speedup_vs_best_f32=2.0)
    base = dict(rec, impl="float32 numpy.matmul", role="f32_baseline", isa=None, seconds=2e-3, gops=0.512e-3,
                speedup_vs_f32=1.0, speedup_vs_best_f32=1.0, peak_ops_per_cycle=None)
    m = machine.machine(1, clock_runs=1)
    return dict(schema=runner.SCHEMA, machine=m,
                settings=dict(measure.Settings(True).as_dict(), ops=["gemm"], isas=["scalar"], threads=1),
                peaks=peaks.Peaks.for_cpu().as_dict(),
                results=[base, rec], notes=["a note"], elapsed_seconds=0.5)


def test_bench_rejects_bad_arguments(capsys):
    missing = next(n for n in iq.ISA_NAMES if n not in iq.available_isas())
    assert cli.main(["bench", "--isa", missing]) == 2
    for bad in (["--ops", "gemm,fft"], ["--threads", "0"]):
        with pytest.raises(SystemExit) as e:
            cli.main(["bench"] + bad)
        assert e.value.code == 2


def test_measure_takes_the_median_of_enough_calls():
    calls = []
    t = measure.measure(lambda: calls.append(1), measure.Settings(quick=True))
    assert t["repeats"] >= 3 and len(calls) == t["repeats"] + 1  # plus the warm-up
    assert 0 <= t["seconds_min"] <= t["seconds"]


def test_peak_table_covers_every_available_path():
    here = peaks.Peaks.for_cpu()
    for isa in [n for n in iq.available_isas() if n not in iq.EMULATED_ISAS]:
        for kind in ("gemm", "dwconv"):
            instr = here.instruction(kind, isa)
            assert instr in peaks.INSTRUCTIONS, (kind, isa)
            assert peaks.INSTRUCTIONS[instr][0] == here.row.arch, (kind, isa, instr)


def test_conv_kind_of_every_bench_layer():
    """Every bench layer names the kernel kind that runs it on every path, with a peak to compare
    (the small-group layer: the small-group kernel where the path has one), and the kernels its
    plan runs, all of that path's."""
    for isa in iq.available_isas():
        names = iq.kernel_names(isa)
        for layer in cases.CONV_LAYERS:
            for layout in ("NHWC", "NCHW"):
                kind = kernel_kind.conv_kind(layer, isa, layout)
                want = ("dwconv" if layer.depthwise else
                        "gconv" if layer.groups > 1 and names["gconv"] else "gemm")
                assert kind == want, (isa, layer.name, layout, kind)
                kernels = kernel_kind.conv_kernels(layer, isa, layout).split(", ")
                assert kernels and set(kernels) <= set(names.values()), (isa, layer.name, layout, kernels)


# --- benchmarks/results.py ----------------------------------------------------------

def _results_module():
    spec = importlib.util.spec_from_file_location("bench_results", os.path.join(ROOT, "benchmarks", "results.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_results_md_from_a_bench_json(quantize_bench, tmp_path, capsys):
    results = _results_module()
    out = tmp_path / "RESULTS.md"
    assert results.main([quantize_bench["json"], "-o", str(out), "--plot", quantize_bench["plot"]]) == 0
    md = out.read_text()
    doc = quantize_bench["doc"]
    assert doc["machine"]["date"] in md and doc["machine"]["cpu_brand"] in md
    assert f"NumPy {np.__version__}" in md and "Peak per core" in md
    assert "| case | implementation | ms |" in md
    for r in doc["results"]:
        assert re.search(rf"\| {re.escape(r['case'])} \| {re.escape(r['impl'])} \| "
                         rf"{re.escape(report.fmt(r['seconds'] * 1e3))} \|", md), r["impl"]
    assert f"]({os.path.relpath(quantize_bench['plot'], tmp_path)})" in md
    assert "python benchmarks/results.py benchmarks/results.json" in md


def test_results_md_of_gemm_rows_has_peaks_and_ratios(tmp_path):
    results = _results_module()
    md = results.markdown(_tiny_doc())
    row = next(line for line in md.splitlines() if "int8 gemm scalar" in line)
    assert row.strip("| ").split(" | ")[5:8] == ["32", "-", "2.00x"], row


def test_results_rejects_another_json(tmp_path):
    results = _results_module()
    with pytest.raises(ValueError, match="schema"):
        results.markdown({"benchmarks": []})


# --- the module entry point and the main job -----------------------------------------

def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "intquant_kernels", "info"], capture_output=True, text=True)
    assert r.returncode == 0 and "available ISAs" in r.stdout


@pytest.mark.skipif(bool(os.environ.get("INTQUANT_EMULATED")),
                    reason="under emulation (INTQUANT_EMULATED): the quick bench alone takes minutes there and "
                           "times nothing real; .ci/aarch64 runs `validate` as a step of its own, "
                           "test_module_entry_point runs `info`")
def test_main_job_info_validate_and_quick_bench():
    """`python -m intquant_kernels` with no command: info, validate, bench --quick (about 10-30 s)."""
    r = subprocess.run([sys.executable, "-m", "intquant_kernels"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "available ISAs" in out
    for isa in iq.available_isas():
        for op in cli.VALIDATE_OPS:
            assert any(line.split()[:3] == [op, isa, "PASS"] for line in out.splitlines()), (op, isa)
    for title in ("GEMM:", "Convolution:", "float32 conv baselines against numpy.matmul of the same product",
                  "quantize float32", "Peak per core", "peak table row:"):
        assert title in out
    assert "mode: --quick" in out and "bench: done" in r.stderr
