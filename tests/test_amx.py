"""The AMX-INT8 paths: ``amx`` (the tile instructions) and ``amx_emu`` (the same kernel source on a
scalar emulator of the tile unit, available wherever avx512_vnni is).

Every exactness test of the other files runs on both where they are available (they are in
``available_isas()``); this file checks what is particular to them: the emulator's own rules, the
tile state contract (each kernel call configures its tiles and releases them, whatever another
library left configured), the small-M rule that ``gemm_plan`` and ``conv_plan`` expose, convolution
geometries aimed at the tile kernel's K chunks, ``amx`` against ``amx_emu`` bit for bit, and ``amx``
right after torch has used the tiles on the same thread.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import _core
from intquant_kernels import reference as ref
from intquant_kernels.__main__ import VALIDATE_OPS, main as cli_main
from intquant_kernels.bench import runner

from exact import AVAILABLE_ISAS, assert_same, rand_q, rng_for

#: The AMX paths available here: the tile kernel's code runs on each.
AMX_PATHS = [isa for isa in ("amx_emu", "amx") if isa in AVAILABLE_ISAS]
needs_emu = pytest.mark.skipif("amx_emu" not in AVAILABLE_ISAS,
                               reason="amx_emu needs the avx512_vnni path's CPU (AVX-512 F/BW/VL/DQ and VNNI)")
needs_amx = pytest.mark.skipif("amx" not in AVAILABLE_ISAS,
                               reason=f"amx is not available here: {iq._dispatch.unavailable_reason('amx')}")
#: The tile kernel of each AMX path.
TILE_KERNEL = {"amx": "gemm_u8s8s32_32x64c4__amx", "amx_emu": "gemm_u8s8s32_32x64c4__amxemu"}


@pytest.fixture(params=AMX_PATHS, ids=AMX_PATHS)
def amx_isa(request):
    """Each available AMX path, active, with one thread (all kernel calls on the calling thread)."""
    iq.set_num_threads(1)
    with iq.use_isa(request.param):
        yield request.param


def ran(call):
    """The kernels that ``call()`` ran, with their call counts, and its result."""
    before = iq.kernel_calls()
    result = call()
    after = iq.kernel_calls()
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}, result


# --- the path itself -----------------------------------------------------------------------


def test_paths_and_kernel_names():
    assert iq.EMULATED_ISAS == ("amx_emu",)
    assert "amx_emu" not in iq.available_isas()[-1:]  # never the best
    for isa in AMX_PATHS:
        names = iq.kernel_names(isa)
        assert names["gemm"] == TILE_KERNEL[isa]
        # Depthwise, small groups and quantization keep the avx512_vnni kernels.
        vnni = iq.kernel_names("avx512_vnni")
        for op in ("dwconv", "dwconv_nchw", "dwconv3x3", "dwconv_nchw_planes", "gconv", "quantize",
                   "dequantize_s8"):
            assert names[op] == vnni[op], op
        shape = _core.gemm_shape(isa)
        assert shape == dict(layout="vnni4", mr=32, nr=64, k_group=4)
        # B panels as the avx512_vnni kernel's: the small-M kernel reads the same packed weights.
        assert (shape["layout"], shape["nr"]) == tuple(_core.gemm_shape("avx512_vnni")[k] for k in ("layout", "nr"))
    if "amx" in iq.ISA_NAMES and _core.isa_built("amx") and "avx512_vnni" in AVAILABLE_ISAS:
        assert _core.isa_required_features("amx") == _core.isa_required_features("amx_emu") + [
            "amx_tile", "amx_int8", "amx_permitted"]


@needs_emu
def test_info_reports_the_emulated_path(capsys):
    assert cli_main(["info"]) == 0
    line, = [l for l in capsys.readouterr().out.splitlines() if l.split()[:1] == ["amx_emu"]]
    assert "available" in line and "emulated" in line and "never the default" in line


@needs_emu
def test_validate_covers_amx_emu(capsys):
    assert cli_main(["validate", "--isa", "amx_emu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(VALIDATE_OPS) and all(line.split()[1:3] == ["amx_emu", "PASS"] for line in out), out


@needs_emu
def test_bench_never_times_the_emulator(capsys):
    assert cli_main(["bench", "--isa", "amx_emu", "--quick", "--ops", "quantize"]) == 2
    assert "tests only" in capsys.readouterr().err
    with pytest.raises(ValueError, match="amx_emu: emulated"):
        runner.run(ops=["quantize"], isas=["amx_emu"], quick=True)


@pytest.mark.skipif("amx" in AVAILABLE_ISAS, reason="amx is available here")
def test_bench_says_why_amx_is_not_timed():
    arch = _core.cpu_id()["arch"]
    notes = runner._unavailable_notes(arch)
    if arch == "x86_64":
        note, = [n for n in notes if n.startswith("amx:")]
        assert iq._dispatch.unavailable_reason("amx") in note
    assert not [n for n in notes if n.startswith("amx_emu")]


# --- the emulator ---------------------------------------------------------------------------


@needs_emu
def test_emulator_follows_the_architecture():
    """Rows and bytes past a tile's configuration read as zero, stores write only the configured
    shape, tdpbusd wraps modulo 2^32 (a C++ check of the emulator, EmulatedTiles::self_check)."""
    assert _core.emulated_tiles_self_check("amx_emu")
    assert not _core.emulated_tiles_configured("amx_emu")
    assert _core.emulated_tiles_misuse("amx_emu", "not a misuse") is False


#: (misuse, the instruction named, what the message says): each faults on the hardware (#GP or #UD).
MISUSES = [
    ("load_after_release", "tileloadd", "not configured"),
    ("load_unconfigured_tile", "tileloadd", "tmm1 is not configured"),
    ("store_unconfigured_tile", "tilestored", "tmm3 is not configured"),
    ("rows_17", "ldtilecfg", "17 rows"),
    ("colsb_68", "ldtilecfg", "68 bytes per row"),
    ("rows_without_colsb", "ldtilecfg", "both zero or neither"),
    ("reserved_byte", "ldtilecfg", "reserved"),
    ("tile_8", "ldtilecfg", "tile 8"),
    ("palette_2", "ldtilecfg", "palette 2"),
    ("colsb_not_dwords", "tileloadd", "multiple of 4"),
    ("dpbusd_rows", "tdpbusd", "C's rows must be A's"),
    ("dpbusd_k", "tdpbusd", "4 x B's rows"),
    ("dpbusd_n", "tdpbusd", "bytes per row B's"),
    ("dpbusd_same_tile", "tdpbusd", "not distinct"),
]


@needs_emu
@pytest.mark.parametrize("misuse, insn, says", MISUSES, ids=[m[0] for m in MISUSES])
def test_emulator_aborts_where_the_hardware_faults(misuse, insn, says):
    code = f"from intquant_kernels import _core; _core.emulated_tiles_misuse('amx_emu', {misuse!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONFAULTHANDLER=""))
    assert proc.returncode != 0, proc
    assert f"amx_emu: {insn} would fault on AMX hardware" in proc.stderr, proc.stderr
    assert says in proc.stderr, proc.stderr


# --- the tile state contract ------------------------------------------------------------------


def _ops(rng):
    """(name, call) of each op that runs the GEMM tile kernel, on shapes with tails in M, N and K."""
    a = rand_q(rng, (37, 75), np.int8)
    b = rand_q(rng, (75, 70), np.int8)
    x = rand_q(rng, (1, 20, 9, 18), np.uint8)
    w = rand_q(rng, (24, 20, 3, 3), np.int8)
    return [
        ("gemm", lambda: (iq.gemm(a, b, a_zero_point=-3), ref.gemm(a, b, a_zero_point=-3))),
        ("qgemm", lambda: (iq.qgemm(a, b, 0.5, 0.25, out_scale=30.0, out_dtype=np.int8),
                           ref.qgemm(a, b, 0.5, 0.25, out_scale=30.0, out_dtype=np.int8))),
        ("conv2d", lambda: (iq.conv2d(x, w, padding=1, x_zero_point=9), ref.conv2d(x, w, padding=1, x_zero_point=9))),
        ("qconv2d", lambda: (iq.qconv2d(x, w, 0.1, 0.01, padding=1, layout="NCHW", relu=True),
                             ref.qconv2d(x, w, 0.1, 0.01, padding=1, layout="NCHW", relu=True))),
        ("conv1x1_nchw", lambda: (iq.conv2d(x, w[:, :, :1, :1].copy()), ref.conv2d(x, w[:, :, :1, :1].copy()))),
    ]


@needs_emu
def test_every_kernel_call_releases_the_tiles():
    iq.set_num_threads(1)
    with iq.use_isa("amx_emu"):
        for name, call in _ops(rng_for("release")):
            counts, (got, want) = ran(call)
            assert counts.get(TILE_KERNEL["amx_emu"], 0) > 0, (name, counts)
            assert_same(got, want, name)
            assert not _core.emulated_tiles_configured("amx_emu"), f"{name} left the tiles configured"


@needs_emu
def test_a_foreign_tile_configuration_is_replaced():
    """Another library's configuration and tile data on the thread (other shapes, data in every
    tile): each kernel call loads its own."""
    iq.set_num_threads(1)
    with iq.use_isa("amx_emu"):
        for name, call in _ops(rng_for("foreign")):
            _core.emulated_tiles_disturb("amx_emu")
            assert _core.emulated_tiles_configured("amx_emu")
            counts, (got, want) = ran(call)
            assert counts.get(TILE_KERNEL["amx_emu"], 0) > 0, (name, counts)
            assert_same(got, want, f"{name} after a foreign configuration")
            assert not _core.emulated_tiles_configured("amx_emu")


# --- the small-M rule ---------------------------------------------------------------------------


def test_gemm_plan_arguments():
    a = np.zeros((3, 5, 40), np.uint8)
    b = np.zeros((40, 7), np.int8)
    p = iq.gemm_plan(a, b)
    assert isinstance(p, iq.GemmPlan) and p.isa == iq.active_isa()
    assert (p.m, p.k, p.n) == (15, 40, 7)
    assert iq.gemm_plan(a.shape, b.shape) == p == iq.gemm_plan(a, iq.pack_weights(b))
    assert p.kernels == (("gemm", _core.gemm_kernel_for(p.isa, 15)),)
    assert p.kernels[0][1] in str(p)
    with pytest.raises(ValueError, match="K=40 .* K=41"):
        iq.gemm_plan(a, (41, 7))
    with pytest.raises(ValueError, match="2-D"):
        iq.gemm_plan(a, (40,))
    with pytest.raises(TypeError, match="shape tuple"):
        iq.gemm_plan([1, 40], b)


@pytest.mark.parametrize("isa", AVAILABLE_ISAS)
def test_gemm_plan_names_the_kernel_that_runs(isa):
    """Every path: the plan's kernel is the one that runs, at every M around the threshold."""
    iq.set_num_threads(1)
    names = iq.kernel_names(isa)
    rows = _core.gemm_small_m_rows(isa)
    if isa == "amx":
        assert rows == 16 and names["gemm_small_m"] == iq.kernel_names("avx512_vnni")["gemm"]
    else:  # one kernel for every shape (amx_emu included: it exists to test the tile kernel)
        assert names["gemm_small_m"] is None
    rng = rng_for("plan", isa)
    b = rand_q(rng, (70, 90), np.int8)
    pw = iq.pack_weights(b)
    with iq.use_isa(isa):
        for m in (1, 2, 5, 15, 16, 17, 33):
            a = rand_q(rng, (m, 70), np.uint8)
            plan = iq.gemm_plan(a, pw)
            kernel = plan.kernels[0][1]
            assert plan.small_m == (m < rows and names["gemm_small_m"] is not None), plan
            assert kernel == (names["gemm_small_m"] if plan.small_m else names["gemm"]), plan
            counts, got = ran(lambda: iq.gemm(a, pw, a_zero_point=17))
            assert set(k for k in counts if k.startswith("gemm_")) == {kernel}, (m, counts)
            assert_same(got, ref.gemm(a, b, a_zero_point=17), f"{isa} M={m}")


@needs_amx
def test_conv_plan_small_m_on_amx():
    """Convolutions whose GEMMs have fewer than 16 rows run the avx512_vnni kernel on amx; the
    plan says so and the drivers follow it."""
    iq.set_num_threads(1)
    vnni = iq.kernel_names("avx512_vnni")["gemm"]
    rng = rng_for("conv small m")
    w = rand_q(rng, (40, 24, 3, 3), np.int8)
    with iq.use_isa("amx"):
        for shape, layout, small in (((1, 24, 3, 4), "NCHW", True), ((2, 3, 5, 24), "NHWC", True),
                                     ((1, 24, 6, 6), "NCHW", False)):
            x = rand_q(rng, shape, np.uint8)
            plan = iq.conv_plan(x, w, padding=1, layout=layout)
            assert plan.gemm_small_m == small, plan
            assert dict(plan.kernels)["gemm"] == (vnni if small else TILE_KERNEL["amx"]), plan
            counts, got = ran(lambda: iq.conv2d(x, w, padding=1, layout=layout))
            assert {k for k in counts if k.startswith("gemm_")} == {dict(plan.kernels)["gemm"]}
            assert_same(got, ref.conv2d(x, w, padding=1, layout=layout), f"{shape} {layout}")


# --- convolutions aimed at the tile kernel's K chunks --------------------------------------------

#: (x shape NCHW, w shape, stride, padding, dilation, groups), all but one on the implicit GEMM:
#: kernel rows of 3 x 100 bytes (64-byte chunks across kernel rows: copied), of 3 x 64 (whole
#: chunks in place), of 3 x 8 (every chunk copied), K = 4500 (two K slices of whole kernel rows),
#: K = 9 x 480 with 7-wide output rows (im2col rows, two K slices of 540 groups), stride 2 (A rows
#: 2 x C/groups apart), and a grouped GEMM; output channels past whole tiles of 32 and 64.
CONV_GEOMETRIES = [
    ((1, 100, 9, 20), (24, 100, 3, 3), 1, 1, 1, 1),
    ((2, 64, 5, 17), (70, 64, 3, 3), 1, 1, 1, 1),
    ((1, 8, 7, 33), (33, 8, 3, 3), 1, 1, 1, 1),
    ((1, 500, 4, 18), (70, 500, 3, 3), 1, 1, 1, 1),
    ((1, 480, 7, 7), (20, 480, 3, 3), 1, 1, 1, 1),
    ((1, 48, 11, 40), (65, 48, 3, 3), 2, 1, 1, 1),
    ((1, 96, 6, 20), (80, 48, 3, 3), 1, 1, 1, 2),
]


@pytest.mark.parametrize("geometry", CONV_GEOMETRIES, ids=[f"x{g[0]}-w{g[1]}" for g in CONV_GEOMETRIES])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_conv_geometries(amx_isa, geometry, layout):
    shape, wshape, stride, padding, dilation, groups = geometry
    rng = rng_for("amx conv", geometry, layout)
    x = rand_q(rng, shape, np.int8)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    w = rand_q(rng, wshape, np.int8)
    w_zp = rng.integers(-5, 6, wshape[0])
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
    plan = iq.conv_plan(x, w, **kw)
    assert dict(plan.kernels).get("gemm") == TILE_KERNEL[amx_isa], plan
    counts, got = ran(lambda: iq.conv2d(x, w, x_zero_point=-7, w_zero_point=w_zp, **kw))
    assert counts.get(TILE_KERNEL[amx_isa], 0) > 0, counts
    assert_same(got, ref.conv2d(x, w, x_zero_point=-7, w_zero_point=w_zp, **kw), f"{amx_isa} {geometry} {layout}")
    ws = rng.uniform(0.001, 0.01, wshape[0]).astype(np.float32)
    qkw = dict(kw, x_zero_point=3, bias=rng.standard_normal(wshape[0]).astype(np.float32), out_scale=0.7,
               out_zero_point=-4, out_dtype=np.int8)
    assert_same(iq.qconv2d(x, w, 0.02, ws, **qkw), ref.qconv2d(x, w, 0.02, ws, **qkw), f"{amx_isa} qconv2d")


# --- amx itself -------------------------------------------------------------------------------------


@needs_amx
@needs_emu
def test_amx_and_amx_emu_agree_bit_for_bit():
    rng = rng_for("amx vs emu")
    for m, k, n in ((1, 1, 1), (16, 64, 64), (17, 65, 63), (40, 129, 130), (100, 1000, 300), (33, 4100, 70)):
        a = rand_q(rng, (m, k), np.int8)
        b = rand_q(rng, (k, n), np.int8)
        b_zp = rng.integers(-3, 4, n)
        ws = rng.uniform(0.001, 0.01, n).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        out = {}
        for isa in ("amx", "amx_emu"):
            with iq.use_isa(isa):
                out[isa] = (iq.gemm(a, b, a_zero_point=5, b_zero_point=b_zp),
                            iq.qgemm(a, b, 0.03, ws, b_zero_point=b_zp, bias=bias, relu=True),
                            iq.qgemm(a, b, 0.03, ws, out_scale=0.5, out_zero_point=3, out_dtype=np.uint8))
        for got, want in zip(out["amx"], out["amx_emu"]):
            assert_same(got, want, f"amx against amx_emu M={m} K={k} N={n}")
    for geometry in CONV_GEOMETRIES:
        shape, wshape, stride, padding, dilation, groups = geometry
        x = rand_q(rng, shape, np.uint8)
        w = rand_q(rng, wshape, np.int8)
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, x_zero_point=100)
        with iq.use_isa("amx"):
            got = iq.conv2d(x, w, **kw)
        with iq.use_isa("amx_emu"):
            want = iq.conv2d(x, w, **kw)
        assert_same(got, want, f"amx against amx_emu conv {geometry}")


@needs_amx
def test_amx_right_after_torch_used_the_tiles():
    """torch (oneDNN) configures the tiles for its own shapes on the thread that runs a bfloat16
    matmul; the amx kernel on the same thread right after must configure its own."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torch's matmul on this thread
    iq.set_num_threads(1)  # and ours
    rng = rng_for("after torch")
    a = rand_q(rng, (67, 300), np.uint8)
    b = rand_q(rng, (300, 90), np.int8)
    want = ref.gemm(a, b, a_zero_point=128)
    try:
        with iq.use_isa("amx"):
            for size in (64, 96, 256):
                x = torch.randn(size, size).to(torch.bfloat16)
                torch.matmul(x, x)
                counts, got = ran(lambda: iq.gemm(a, b, a_zero_point=128))
                assert counts.get(TILE_KERNEL["amx"], 0) > 0, counts
                assert_same(got, want, f"amx after a {size}x{size} torch bfloat16 matmul")
    finally:
        torch.set_num_threads(threads)


def test_default_is_never_emulated(tmp_path):
    code = textwrap.dedent("""
        import intquant_kernels as iq
        print(iq.active_isa())
    """)
    env = {k: v for k, v in os.environ.items() if k != "INTQUANT_ISA"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    active = proc.stdout.split()[-1]
    assert active not in iq.EMULATED_ISAS
    assert active == [n for n in iq.available_isas() if n not in iq.EMULATED_ISAS][-1]
