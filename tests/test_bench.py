"""The bench package (intquant_kernels.bench): how it is imported, what it
reports and computes. Correctness only: no timing assertions."""
import io
import json
import platform
import subprocess
import sys

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import _core
from intquant_kernels.bench import cases, machine, measure, peaks, peers, report, runner

HAS_ADD_CHAIN = platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")


def test_import_does_not_import_the_bench():
    code = ("import intquant_kernels, sys\n"
            "loaded = [m for m in sys.modules if m.startswith('intquant_kernels.bench')]\n"
            "assert not loaded, loaded\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.skipif(not HAS_ADD_CHAIN, reason="the add chain is written for x86-64 and AArch64 only")
def test_clock_estimate_is_a_plausible_frequency():
    hz = _core.estimate_clock_hz(3, 200_000)
    assert isinstance(hz, float)
    assert 0.2e9 < hz < 7e9, hz
    assert machine.estimate_clock_hz(runs=2, iterations=100_000) > 0


@pytest.mark.skipif(HAS_ADD_CHAIN, reason="x86-64 and AArch64 have an add chain")
def test_clock_estimate_is_none_elsewhere():
    assert _core.estimate_clock_hz(1, 1000) is None


@pytest.mark.parametrize("runs, iterations", [(0, 1000), (1, 0), (-1, 5)])
def test_clock_estimate_rejects_non_positive_arguments(runs, iterations):
    with pytest.raises(ValueError, match="positive"):
        _core.estimate_clock_hz(runs, iterations)



# --- what the CPU reports, and the peak table row it chooses ---------------------

def _cpuinfo():
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def test_cpu_id_says_what_the_cpu_is():
    cpu = _core.cpu_id()
    assert set(cpu) == {"arch", "vendor", "brand", "family", "model", "stepping", "midr_implementer",
                        "midr_variant", "midr_part", "midr_revision"}
    assert cpu["vendor"] == _core.cpu_vendor() and cpu["brand"] == _core.cpu_brand()
    if cpu["arch"] == "x86_64":
        assert isinstance(cpu["family"], int) and isinstance(cpu["model"], int)
        assert cpu["midr_implementer"] is None
        fields = _cpuinfo()  # Linux combines the cpuid fields the same way
        if fields.get("cpu family", "").isdigit():
            assert cpu["family"] == int(fields["cpu family"]) and cpu["model"] == int(fields["model"])
    elif cpu["arch"] == "aarch64":
        assert cpu["family"] is None
        if cpu["midr_implementer"] is not None:
            fields = _cpuinfo()
            if "CPU implementer" in fields:
                assert cpu["midr_implementer"] == int(fields["CPU implementer"], 16)
                assert cpu["midr_part"] == int(fields["CPU part"], 16)


def _x86(vendor, family, model, brand=""):
    return dict(arch="x86_64", vendor=vendor, brand=brand, family=family, model=model)


def _arm(implementer, part):
    return dict(arch="aarch64", vendor="arm", brand="", midr_implementer=implementer, midr_part=part)


@pytest.mark.parametrize("cpu, key", [
    (_x86("AuthenticAMD", 0x1A, 0x02, "AMD EPYC 9555"), "amd_zen5"),
    (_x86("AuthenticAMD", 0x1A, 0x11), "amd_zen5"),
    (_x86("AuthenticAMD", 0x1A, 0x44, "AMD Ryzen 9 9950X"), "amd_zen5"),
    (_x86("AuthenticAMD", 0x1A, 0x70), "amd_zen5"),
    (_x86("AuthenticAMD", 0x1A, 0x24, "AMD Ryzen AI 9 365"), "amd_zen5_mobile"),
    (_x86("AuthenticAMD", 0x1A, 0x60), "amd_zen5_mobile"),
    (_x86("AuthenticAMD", 0x19, 0x11, "AMD EPYC 9654"), "amd_zen4"),
    (_x86("AuthenticAMD", 0x19, 0x61, "AMD Ryzen 9 7950X"), "amd_zen4"),
    (_x86("GenuineIntel", 6, 0x8F, "Intel(R) Xeon(R) Platinum 8480+"), "intel_amx"),
    (_x86("GenuineIntel", 6, 0xCF), "intel_amx"),
    (_x86("GenuineIntel", 6, 0x6A), "intel_avx512_2fma"),
    (_x86("GenuineIntel", 6, 0x55, "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz"), "intel_avx512_2fma"),
    (_x86("GenuineIntel", 6, 0x55, "Intel(R) Xeon(R) Gold 5122 CPU @ 3.60GHz"), "intel_avx512_2fma"),
    (_x86("GenuineIntel", 6, 0x55, "Intel(R) Xeon(R) Gold 5118 CPU @ 2.30GHz"), "intel_avx512_1fma"),
    (_x86("GenuineIntel", 6, 0x55, "Intel(R) Xeon(R) Silver 4114 CPU @ 2.20GHz"), "intel_avx512_1fma"),
    (_x86("GenuineIntel", 6, 0x8C), "intel_avx512_1fma"),
    (_x86("GenuineIntel", 6, 0x97, "12th Gen Intel(R) Core(TM) i9-12900K"), "intel_client_avxvnni"),
    (_x86("GenuineIntel", 6, 0x9E), "intel_client_avx2"),
    (_x86("AuthenticAMD", 0x17, 0x31, "AMD EPYC 7742"), "generic_x86_64"),
    (_x86("HygonGenuine", 0x18, 0x01), "generic_x86_64"),
    (_arm(0x41, 0xD0C), "arm_neoverse_n1"),
    (_arm(0x41, 0xD40), "arm_neoverse_v1"),
    (_arm(0x41, 0xD4F), "arm_neoverse_v2"),
    (_arm(0x61, 0x022), "generic_aarch64"),
    (_arm(None, None), "generic_aarch64"),
    (dict(arch="other", vendor="", brand=""), "none"),
])
def test_peak_table_row_is_chosen_by_what_the_cpu_reports(cpu, key):
    p = peaks.Peaks.for_cpu(cpu)
    assert p.row.key == key, p.matched_by
    assert p.generic == key.startswith(("generic", "none"))
    assert p.row.label in p.assumption() and p.matched_by in p.assumption()
    d = p.as_dict()
    assert d["row"]["key"] == key and d["row"]["generic"] == p.generic
    for row in d["table"]:
        assert peaks.INSTRUCTIONS[row["instruction"]][0] == p.row.arch
        assert row["ops_per_cycle"] == 2 * row["macs_per_instruction"] * row["per_cycle"] > 0


def test_peak_rows_name_only_instructions_of_their_architecture():
    for row in list(peaks.ROWS.values()) + list(peaks.GENERIC.values()):
        assert row.per_cycle, row.key
        for instr, per_cycle in row.per_cycle.items():
            assert peaks.INSTRUCTIONS[instr][0] == row.arch and per_cycle > 0, (row.key, instr)
    for instr in peaks.PATH_INSTRUCTION.values():
        assert instr in peaks.INSTRUCTIONS
    # The generic fallback is an upper bound: at least every known row of its architecture.
    for row in peaks.ROWS.values():
        generic = peaks.GENERIC[row.arch]
        for instr, per_cycle in row.per_cycle.items():
            assert generic.per_cycle[instr] >= per_cycle, (row.key, instr)


def test_the_neon_paths_have_peak_entries():
    n1, v2 = peaks.Peaks.for_cpu(_arm(0x41, 0xD0C)), peaks.Peaks.for_cpu(_arm(0x41, 0xD4F))
    for isa in ("neon", "neon_dotprod", "neon_i8mm"):
        for kind in ("gemm", "dwconv"):
            assert v2.ops_per_cycle(v2.instruction(kind, isa)) is not None, (kind, isa)
    assert v2.ops_per_cycle(v2.instruction("gemm", "neon_dotprod")) == 2 * 16 * 4  # sdot: 4 per cycle
    assert v2.ops_per_cycle(v2.instruction("gemm", "neon_i8mm")) == 2 * 32 * 4  # usmmla: 4 per cycle
    assert n1.ops_per_cycle(n1.instruction("gemm", "neon_dotprod")) == 2 * 16 * 2
    assert n1.ops_per_cycle(n1.instruction("gemm", "neon_i8mm")) is None  # no i8mm on N1
    assert v2.instruction("gemm", "scalar") == "smlal v.4s"
    assert v2.f32_instruction("whatever") == "fmla v.4s"


# --- the float32 NumPy conv baseline ----------------------------------------------

def _conv_f64(x, w, stride, padding, groups):
    """Direct float64 convolution, NCHW in, NHWC out: the oracle of the NumPy baseline."""
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    ocg = oc // groups
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, oh, ow, oc))
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                v = xp[:, g * cg:(g + 1) * cg, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
                out[..., g * ocg:(g + 1) * ocg] += np.einsum("nchw,oc->nhwo", v, w[g * ocg:(g + 1) * ocg, :, i, j])
    return out


@pytest.mark.parametrize("n, c, h, w, oc, k, stride, padding, groups, method", [
    (2, 8, 7, 9, 12, 1, 1, 0, 1, "numpy matmul (1x1)"),
    (1, 8, 7, 9, 12, 1, 2, 0, 1, "numpy im2col(strided view)+matmul"),
    (2, 6, 9, 8, 10, 3, 1, 1, 1, "numpy im2col(strided view)+matmul"),
    (1, 12, 9, 9, 8, 3, 1, 0, 1, "numpy im2col(strided view)+matmul"),
    (1, 6, 9, 8, 10, 3, 2, 1, 2, "numpy im2col(strided view)+batched matmul (2 groups)"),
    (1, 16, 10, 10, 8, 3, 1, 1, 4, "numpy im2col(strided view)+batched matmul (4 groups)"),
    (1, 4, 8, 8, 6, 5, 1, 2, 2, "numpy im2col(strided view)+batched matmul (2 groups)"),
    (1, 6, 7, 7, 12, 3, 1, 1, 6, "numpy im2col(strided view)+batched matmul (6 groups)"),  # channel multiplier 2
    (2, 5, 9, 7, 5, 3, 1, 1, 5, "numpy depthwise (sum of 3x3 strided views)"),
    (1, 6, 11, 10, 6, 3, 2, 1, 6, "numpy depthwise (sum of 3x3 strided views)"),
])
def test_numpy_conv_baseline_computes_the_convolution(n, c, h, w, oc, k, stride, padding, groups, method):
    rng = np.random.default_rng(n * 1000 + c * 100 + k * 10 + groups)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((oc, c // groups, k, k)).astype(np.float32)
    run = peers.numpy_conv2d_f32(x, wt, stride, padding, groups)
    assert run.method == method
    got = run()
    want = _conv_f64(x, wt, stride, padding, groups)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(run(), want, rtol=1e-4, atol=1e-4)  # a second call: the same result


def test_numpy_conv_baseline_runs_the_product_the_runner_compares_with():
    """The baseline's matmul is exactly the 'same product' the bench times numpy.matmul on."""
    for layer in cases.CONV_LAYERS:
        x = np.zeros((layer.n, layer.c, layer.h, layer.w), np.float32)
        w = np.zeros((layer.oc, layer.c // layer.groups, layer.k, layer.k), np.float32)
        run = peers.numpy_conv2d_f32(x, w, layer.stride, layer.padding, layer.groups)
        assert run.product == (None if layer.depthwise else runner.im2col_product(layer)), layer.name
        g, rows, k, cols = runner.im2col_product(layer)
        assert 2 * g * rows * k * cols == layer.ops


# --- a run on small cases: the rows it adds, not their speed ------------------------

TINY_LAYERS = [
    cases.ConvLayer("tiny_1x1", 1, 16, 8, 8, 32, 1, 1, 0, 1),
    cases.ConvLayer("tiny_3x3", 1, 16, 8, 8, 16, 3, 1, 1, 1),
    cases.ConvLayer("tiny_3x3_g4", 1, 16, 8, 8, 16, 3, 1, 1, 4),
    cases.ConvLayer("tiny_dw3x3s2", 1, 16, 8, 8, 16, 3, 2, 1, 16),
]


@pytest.fixture(scope="module")
def tiny_run():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cases, "GEMM_QUICK", [(8, 64, 32)])
        mp.setattr(cases, "CONV_LAYERS", TINY_LAYERS)
        mp.setattr(cases, "CONV_QUICK", [layer.name for layer in TINY_LAYERS])
        return runner.run(ops=["gemm", "conv"], isas=[iq.available_isas()[-1]], quick=True,
                          progress=measure.Progress(io.StringIO()))


def test_run_times_affine_against_scale_weights_side_by_side(tiny_run):
    best = iq.available_isas()[-1]
    affine = [r for r in tiny_run["results"] if r.get("weights") == "affine"]
    assert {(r["op"], r["case"]) for r in affine} == {("gemm", "8x64x32")} | {
        ("conv", layer.name) for layer in TINY_LAYERS if not layer.depthwise}
    for r in affine:
        assert r["isa"] == best and r["role"] == "int8" and "affine weights (zero points in [-8, 8])" in r["impl"]
        assert r["scale_seconds"] > 0 and r["affine_over_scale"] == pytest.approx(r["seconds"] / r["scale_seconds"])
    text = report.plain(tiny_run)
    assert "Affine weights (a zero point per output column) against scale weights" in text
    for r in affine:
        assert report.fmt(r["affine_over_scale"], "x") in text


def test_run_compares_the_float32_conv_baseline_with_the_same_matmul(tiny_run):
    conv = [r for r in tiny_run["results"] if r["op"] == "conv"]
    for layer in TINY_LAYERS:
        recs = [r for r in conv if r["case"] == layer.name]
        base = next(r for r in recs if r["role"] == "f32_baseline")
        matmul = [r for r in recs if r["role"] == "f32_matmul"]
        if layer.depthwise:
            assert not matmul and "gops_over_matmul" not in base
            continue
        g, rows, k, cols = runner.im2col_product(layer)
        assert len(matmul) == 1 and f"({rows}x{k} @ {k}x{cols}" in matmul[0]["impl"]
        assert matmul[0]["ops"] == base["ops"] == layer.ops
        assert base["gops_over_matmul"] == pytest.approx(matmul[0]["seconds"] / base["seconds"])
        if not peers.available("torch"):
            method = peers.numpy_conv2d_f32(np.zeros((layer.n, layer.c, layer.h, layer.w), np.float32),
                                            np.zeros((layer.oc, layer.c // layer.groups, layer.k, layer.k),
                                                     np.float32), layer.stride, layer.padding, layer.groups).method
            assert base["impl"].startswith(f"float32 {method}")
    # The int8 ratios are against the conv baseline, never against the reference matmul.
    for r in conv:
        if r["role"] == "int8":
            base = next(b for b in conv if b["case"] == r["case"] and b["role"] == "f32_baseline")
            assert r["speedup_vs_f32"] == pytest.approx(base["seconds"] / r["seconds"])
    assert "float32 conv baselines against numpy.matmul of the same product" in report.plain(tiny_run)


def test_run_document_names_the_peak_row_and_is_json(tiny_run, tmp_path):
    here = peaks.Peaks.for_cpu()
    assert tiny_run["peaks"]["row"]["key"] == here.row.key
    assert tiny_run["machine"]["cpu_id"] == _core.cpu_id()
    report.write_json(tiny_run, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["peaks"]["row"]["label"] == here.row.label


def test_measure_pair_alternates_the_two_calls():
    calls = []
    ta, tb = measure.measure_pair(lambda: calls.append("a"), lambda: calls.append("b"), measure.Settings(quick=True))
    assert calls == ["a", "b"] * (len(calls) // 2)
    assert ta["repeats"] == tb["repeats"] >= 3 and len(calls) == 2 * (ta["repeats"] + 1)  # plus the warm-up


# --- choosing cases (bench --cases) -------------------------------------------------

def test_select_cases_takes_gemm_shapes_layers_and_quantize():
    layer = cases.CONV_LAYERS[0]
    shapes, layers, quantize = runner.select_cases(["64x32x16", layer.name, "1x1x1"])
    assert shapes == [(64, 32, 16), (1, 1, 1)] and layers == [layer] and not quantize
    assert runner.select_cases([runner.QUANTIZE_CASE]) == ([], [], True)
    for bad in (["64x32"], ["0x8x8"], ["resnet"], ["8x8x8", "nope"]):
        with pytest.raises(ValueError, match="unknown case"):
            runner.select_cases(bad)


def test_run_of_named_cases_runs_only_them(monkeypatch):
    """A run restricted to one GEMM shape: no conv or quantize rows though their ops were asked for,
    no row of another shape; the settings say which cases."""
    monkeypatch.setattr(cases, "GEMM_QUICK", [(8, 64, 32)])
    doc = runner.run(ops=["gemm", "conv", "quantize"], isas=[iq.available_isas()[-1]], quick=True,
                     progress=measure.Progress(io.StringIO()), cases=["4x32x16"])
    assert {(r["op"], r["case"]) for r in doc["results"]} == {("gemm", "4x32x16")}
    assert doc["settings"]["cases"] == ["4x32x16"]
    assert "cases: 4x32x16;" in report.plain(doc)


def test_bench_cli_takes_cases(capsys):
    from intquant_kernels import __main__ as cli

    for bad in ("nope", "8x8", ","):
        with pytest.raises(SystemExit) as e:
            cli.main(["bench", "--cases", bad])
        assert e.value.code == 2
    assert "unknown case" in capsys.readouterr().err
    assert cli.main(["bench", "--quick", "--ops", "gemm", "--isa", iq.available_isas()[-1],
                     "--cases", "4x32x16"]) == 0
    out = capsys.readouterr().out
    assert "4x32x16" in out and "512x512x512" not in out


def test_arm_runs_no_avx2_openblas_subprocess(monkeypatch):
    """OpenBLAS's Haswell (AVX2) kernel is an x86 baseline: on AArch64 no subprocess is forced to it
    and no row is labelled AVX2."""
    real = runner.machine

    def arm_machine(threads, clock_runs=200):
        m = real(threads, clock_runs=1)
        m["cpu_id"] = dict(m["cpu_id"], arch="aarch64", midr_implementer=0x41, midr_part=0xD0C)
        return m

    coretypes = []

    def fake_matmul_time(m, k, n, coretype=None, reps=7):
        coretypes.append(coretype)
        return dict(median=1e-3, corename="armv8")

    monkeypatch.setattr(runner, "machine", arm_machine)
    monkeypatch.setattr(peers, "numpy_matmul_time", fake_matmul_time)
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.setattr(peers, "openblas_corename", lambda: "armv8")
    doc = runner.run(ops=["gemm"], isas=[iq.available_isas()[-1]], quick=True,
                     progress=measure.Progress(io.StringIO()), cases=["4x32x16"])
    assert "Haswell" not in coretypes
    assert doc["peaks"]["row"]["key"] == "arm_neoverse_n1"
    assert not [r["impl"] for r in doc["results"] if "AVX2" in r["impl"]]
