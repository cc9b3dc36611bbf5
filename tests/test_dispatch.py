"""ISA dispatch, CPU features, threads, and the environment variables read at import."""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import intquant_kernels as iq

AVAILABLE = iq.available_isas()
BEST = AVAILABLE[-1]
KNOWN_ISAS = {"amx_emu", "scalar", "avx2", "avx_vnni", "avx512_vnni", "amx", "neon", "neon_dotprod", "neon_i8mm"}
#: Paths that emulate their instructions (tests only): first in the order, never the default.
EMULATED = {"amx_emu"}

# Features each ISA path needs (necessary conditions: an available path must have them all).
REQUIRED_FEATURES = {
    "scalar": [],
    "avx2": ["avx", "avx2", "fma", "f16c"],
    "avx_vnni": ["avx", "avx2", "fma", "f16c", "avx_vnni"],
    "avx512_vnni": ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"],
    "amx": ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "amx_tile", "amx_int8",
            "amx_permitted"],
    # the tile unit emulated; the epilogue and the other kernels are avx512_vnni's
    "amx_emu": ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"],
    "neon": ["neon"],
    "neon_dotprod": ["neon", "neon_dotprod"],
    "neon_i8mm": ["neon", "neon_dotprod", "neon_i8mm"],
}
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
IS_ARM64 = platform.machine().lower() in ("aarch64", "arm64")


# --- ISA names and availability ----------------------------------------------------


def test_isa_names():
    assert isinstance(iq.ISA_NAMES, tuple)
    assert all(isinstance(n, str) for n in iq.ISA_NAMES)
    assert len(set(iq.ISA_NAMES)) == len(iq.ISA_NAMES)
    assert set(iq.ISA_NAMES) == KNOWN_ISAS
    assert set(iq.EMULATED_ISAS) == EMULATED
    # the emulated paths first (the least preferred), then scalar
    assert iq.ISA_NAMES[:len(EMULATED)] == iq.EMULATED_ISAS
    assert iq.ISA_NAMES[len(EMULATED)] == "scalar"


def test_available_isas_order_and_subset():
    avail = iq.available_isas()
    assert isinstance(avail, list)
    assert [n for n in avail if n not in EMULATED][0] == "scalar"
    assert set(avail) <= set(iq.ISA_NAMES)
    assert len(set(avail)) == len(avail)
    assert avail == [n for n in iq.ISA_NAMES if n in avail], "not in ISA_NAMES order (best last)"
    # a fresh list each call
    avail.append("bogus")
    assert "bogus" not in iq.available_isas()


def test_available_isas_per_architecture():
    avail = set(iq.available_isas())
    if IS_X86:
        assert not avail & {"neon", "neon_dotprod", "neon_i8mm"}
    if IS_ARM64:
        assert not avail & {"avx2", "avx_vnni", "avx512_vnni", "amx", "amx_emu"}


def test_active_isa_is_available():
    assert iq.active_isa() in AVAILABLE


def test_set_isa_each_available():
    """set_isa switches from every available path to every available path."""
    for start in AVAILABLE:
        for name in AVAILABLE:
            iq.set_isa(start)
            assert iq.set_isa(name) is None
            assert iq.active_isa() == name, f"set_isa({name!r}) from {start}"
            assert iq.kernel_names() == iq.kernel_names(name)


def test_kernel_names_of_every_available_isa():
    for name in AVAILABLE:
        names = iq.kernel_names(name)
        assert isinstance(names, dict)
        for op in ("range", "quantize", "quantize_channels", "dequantize_s8", "dequantize_u8",
                   "dequantize_channels_s8", "dequantize_channels_u8"):
            assert isinstance(names[op], str) and "__" in names[op], (name, op, names.get(op))


def test_set_isa_unknown_name_lists_available():
    before = iq.active_isa()
    with pytest.raises(ValueError, match=r"unknown ISA 'bogus'") as info:
        iq.set_isa("bogus")
    msg = str(info.value)
    assert ", ".join(AVAILABLE) in msg, msg
    for name in AVAILABLE:
        assert name in msg
    assert iq.active_isa() == before


@pytest.mark.parametrize("name", ["AVX2", "Scalar", "", " scalar", "avx-512", "neon ", "x86"])
def test_set_isa_near_miss_names(name):
    before = iq.active_isa()
    with pytest.raises(ValueError, match=r"unknown ISA") as info:
        iq.set_isa(name)
    assert ", ".join(AVAILABLE) in str(info.value)
    assert iq.active_isa() == before


@pytest.mark.parametrize("name", iq.ISA_NAMES)
def test_set_isa_unavailable(name):
    """A known ISA this machine cannot run: ValueError naming what is available, no change, no fallback."""
    if name in AVAILABLE:
        pytest.skip(f"ISA {name!r} is available on this machine")
    for start in ("scalar", BEST):
        iq.set_isa(start)
        with pytest.raises(ValueError, match=re.escape(name)) as info:
            iq.set_isa(name)
        assert ", ".join(AVAILABLE) in str(info.value), str(info.value)
        assert iq.active_isa() == start
        with pytest.raises(ValueError, match=re.escape(name)):
            with iq.use_isa(name):
                pytest.fail("use_isa entered an unavailable ISA")  # pragma: no cover
        assert iq.active_isa() == start
        with pytest.raises(ValueError, match=re.escape(name)):
            iq.kernel_names(name)


def test_set_isa_unavailable_examples():
    """The brief's examples: 'neon' on x86, 'amx' where AMX is not available, AVX paths on ARM."""
    examples = []
    if IS_X86:
        examples.append("neon")
    if IS_ARM64:
        examples.append("avx2")
    if "amx" not in AVAILABLE:
        examples.append("amx")
    if not examples:
        pytest.skip("no known-unavailable example on this machine")
    before = iq.active_isa()
    for name in examples:
        with pytest.raises(ValueError, match=rf"ISA '{name}' is .*; available: {re.escape(', '.join(AVAILABLE))}"):
            iq.set_isa(name)
        assert iq.active_isa() == before


@pytest.mark.parametrize("bad", [3, None, 2.5, b"avx2", ["scalar"]], ids=["int", "None", "float", "bytes", "list"])
def test_isa_name_must_be_str(bad):
    before = iq.active_isa()
    with pytest.raises(TypeError, match=r"ISA name must be a str"):
        iq.set_isa(bad)
    with pytest.raises(TypeError, match=r"ISA name must be a str"):
        with iq.use_isa(bad):
            pytest.fail("use_isa entered")  # pragma: no cover
    if bad is not None:  # kernel_names(None) means the active ISA
        with pytest.raises(TypeError, match=r"ISA name must be a str"):
            iq.kernel_names(bad)
    assert iq.active_isa() == before


def test_kernel_names_none_is_active(isa):
    assert iq.kernel_names(None) == iq.kernel_names() == iq.kernel_names(isa)


def test_use_isa_sets_and_restores(isa):
    for inner in AVAILABLE:
        with iq.use_isa(inner) as name:
            assert name == inner
            assert iq.active_isa() == inner
        assert iq.active_isa() == isa


def test_use_isa_restores_when_block_raises(isa):
    for inner in AVAILABLE:
        with pytest.raises(RuntimeError, match="boom"):
            with iq.use_isa(inner):
                assert iq.active_isa() == inner
                raise RuntimeError("boom")
        assert iq.active_isa() == isa
    # also when the exception comes from a kernel call's own checks
    with pytest.raises(TypeError):
        with iq.use_isa("scalar"):
            iq.quantize(np.ones(3), 1.0)
    assert iq.active_isa() == isa


def test_use_isa_nested_and_set_inside():
    iq.set_isa(BEST)
    with iq.use_isa("scalar"):
        with iq.use_isa(BEST):
            assert iq.active_isa() == BEST
        assert iq.active_isa() == "scalar"
        iq.set_isa(BEST)  # a set_isa inside the block is undone by its end
        assert iq.active_isa() == BEST
    assert iq.active_isa() == BEST
    with iq.use_isa(BEST):
        iq.set_isa("scalar")
    assert iq.active_isa() == BEST


# --- CPU features ----------------------------------------------------------------------


def test_cpu_features_dict_of_bools():
    f = iq.cpu_features()
    assert isinstance(f, dict)
    assert {"avx2", "avx512_vnni", "amx_int8", "neon"} <= set(f)
    for k, v in f.items():
        assert isinstance(k, str)
        assert type(v) is bool, (k, v)
    # a copy each time
    f["avx2"] = not f["avx2"]
    assert iq.cpu_features()["avx2"] != f["avx2"]


def test_cpu_features_per_architecture():
    f = iq.cpu_features()
    if IS_X86:
        assert not f["neon"] and not f["neon_dotprod"] and not f["neon_i8mm"]
    if IS_ARM64:
        assert f["neon"]
        assert not f["avx2"] and not f["avx512_vnni"] and not f["amx_int8"]


def test_cpu_features_are_internally_consistent():
    f = iq.cpu_features()
    implies = [
        ("avx2", "avx"), ("fma", "avx"), ("avx_vnni", "avx2"), ("avx512bw", "avx512f"),
        ("avx512vl", "avx512f"), ("avx512dq", "avx512f"), ("avx512_vnni", "avx512f"),
        ("amx_permitted", "amx_tile"), ("amx_permitted", "amx_int8"), ("neon_dotprod", "neon"),
        ("neon_i8mm", "neon"),
    ]
    for a, b in implies:
        if a in f and b in f and f[a]:
            assert f[b], f"{a} without {b}"


def test_available_isas_consistent_with_cpu_features():
    f = iq.cpu_features()
    assert set(REQUIRED_FEATURES) == set(iq.ISA_NAMES)
    for name in AVAILABLE:
        missing = [feat for feat in REQUIRED_FEATURES[name] if not f.get(feat, False)]
        assert not missing, f"{name} is available but the CPU lacks {missing}"
    # the converse, for paths that are compiled into this build
    core = getattr(iq, "_core", None)
    if core is None or not hasattr(core, "isa_built"):
        pytest.skip("no _core.isa_built to tell which paths are compiled in")
    for name in iq.ISA_NAMES:
        if core.isa_built(name) and all(f.get(feat, False) for feat in REQUIRED_FEATURES[name]):
            assert name in AVAILABLE, f"{name} is built and the CPU has {REQUIRED_FEATURES[name]}, but not available"
    if IS_X86:
        assert "avx2" in AVAILABLE or not (f["avx2"] and f["fma"] and f["f16c"])


# --- threads -------------------------------------------------------------------------------


def test_num_threads_round_trip():
    for n in (1, 2, 3, 7, 1, 2):
        assert iq.set_num_threads(n) is None
        assert iq.get_num_threads() == n


@pytest.mark.parametrize("bad", [0, -1, -100, 1025, 2**31, 2**70])
def test_set_num_threads_rejects_out_of_range(bad):
    iq.set_num_threads(2)
    with pytest.raises(ValueError, match=rf"number of threads must lie in \[1, 1024\], got {bad}"):
        iq.set_num_threads(bad)
    assert iq.get_num_threads() == 2


@pytest.mark.parametrize("bad", ["2", 2.0, None, True, np.bool_(True), [2]],
                         ids=["str", "float", "None", "bool", "np.bool_", "list"])
def test_set_num_threads_rejects_non_int(bad):
    iq.set_num_threads(2)
    with pytest.raises(TypeError, match=r"number of threads must be an integer"):
        iq.set_num_threads(bad)
    assert iq.get_num_threads() == 2


@pytest.mark.parametrize("n", [np.int64(3), np.int32(3), np.uint8(3)], ids=["int64", "int32", "uint8"])
def test_set_num_threads_takes_numpy_integers(n):
    iq.set_num_threads(n)
    assert iq.get_num_threads() == 3


def test_get_num_threads_is_positive_int():
    n = iq.get_num_threads()
    assert type(n) is int and n >= 1


# --- the environment, read at import (fresh interpreters) ------------------------------

PROBE = textwrap.dedent(
    """
    import json, os, sys
    {prelude}
    try:
        import intquant_kernels as iq
    except Exception as e:
        print(json.dumps({{"error": type(e).__name__, "message": str(e)}}))
        sys.exit(0)
    import numpy as np
    before = iq.kernel_calls()
    iq.quantize(np.ones(100, np.float32), 1.0)
    after = iq.kernel_calls()
    print(json.dumps({{
        "isa": iq.active_isa(),
        "available": iq.available_isas(),
        "threads": iq.get_num_threads(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ran": sorted(k for k in after if after[k] != before.get(k, 0)),
        "expected_kernel": iq.kernel_names()["quantize"],
    }}))
    """
)


def probe(tmp_path, env=None, prelude=""):
    """Import the package in a fresh interpreter with only ``env`` of the INTQUANT_* variables set."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INTQUANT_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(prelude=prelude)],
        env=full_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"probe failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.strip().splitlines()
    assert lines, f"probe printed nothing; stderr:\n{proc.stderr}"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def default_probe(tmp_path_factory):
    """The probe with none of the INTQUANT_* variables set, run once for the tests of the defaults."""
    return probe(tmp_path_factory.mktemp("default_probe"))


def test_default_isa_at_import_is_best(default_probe):
    r = default_probe
    assert "error" not in r, r
    assert r["available"] == AVAILABLE
    assert r["isa"] == r["available"][-1]
    assert r["isa"] not in EMULATED
    assert r["ran"] == [r["expected_kernel"]]


def test_default_threads_is_affinity(default_probe):
    r = default_probe
    assert "error" not in r, r
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("os.sched_getaffinity is not available on this platform")
    assert r["threads"] == r["affinity"] == len(os.sched_getaffinity(0))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity")
def test_default_threads_follows_restricted_affinity(tmp_path):
    """Pinned to one CPU before the import, the default is 1 thread (the affinity, not the CPU count)."""
    prelude = "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})"
    r = probe(tmp_path, prelude=prelude)
    assert "error" not in r, r
    assert r["affinity"] == 1
    assert r["threads"] == 1


@pytest.mark.parametrize("name", iq.ISA_NAMES)
def test_env_isa(tmp_path, name):
    r = probe(tmp_path, {"INTQUANT_ISA": name})
    if name in AVAILABLE:
        assert "error" not in r, r
        assert r["isa"] == name
        # the forced path is the one that ran
        assert r["ran"] == [iq.kernel_names(name)["quantize"]]
        if name == "scalar":  # the portable path, by its full kernel name
            assert r["ran"] == ["quantize_f32_q8__scalar"]
    else:
        # never a silent fallback: the import fails
        assert r.get("error") == "ValueError", r
        assert "INTQUANT_ISA" in r["message"] and name in r["message"], r


def test_env_isa_whitespace_and_empty(tmp_path):
    r = probe(tmp_path, {"INTQUANT_ISA": "  scalar\n"})
    assert r.get("isa") == "scalar", r
    r = probe(tmp_path, {"INTQUANT_ISA": ""})
    assert r.get("isa") == BEST, r


def test_env_isa_bogus_fails_import(tmp_path):
    r = probe(tmp_path, {"INTQUANT_ISA": "bogus"})
    assert r.get("error") == "ValueError", r
    assert "INTQUANT_ISA='bogus'" in r["message"], r
    assert "unknown ISA" in r["message"]
    assert ", ".join(AVAILABLE) in r["message"], r


@pytest.mark.parametrize("value, expected", [("1", 1), ("2", 2), (" 3 ", 3), ("16", 16)])
def test_env_num_threads(tmp_path, value, expected):
    r = probe(tmp_path, {"INTQUANT_NUM_THREADS": value})
    assert "error" not in r, r
    assert r["threads"] == expected


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5", "2x"])
def test_env_num_threads_invalid_fails_import(tmp_path, value):
    r = probe(tmp_path, {"INTQUANT_NUM_THREADS": value})
    assert r.get("error") == "ValueError", r
    assert "INTQUANT_NUM_THREADS" in r["message"] and repr(value) in r["message"], r


def test_env_both(tmp_path):
    r = probe(tmp_path, {"INTQUANT_ISA": "scalar", "INTQUANT_NUM_THREADS": "1"})
    assert "error" not in r, r
    assert (r["isa"], r["threads"]) == ("scalar", 1)


# --- AArch64: the ARM paths follow the CPU's hwcaps ----------------------------------------
# On Linux the package reads the ARM features from getauxval(AT_HWCAP/AT_HWCAP2), which is also
# what qemu's QEMU_CPU changes under emulation (/proc/cpuinfo there describes the host). These
# tests read the hwcaps themselves, through the C library, and compare.

ISAS_BY_ARCH = {
    "arm64": ("neon", "neon_dotprod", "neon_i8mm"),
    "x86": ("avx2", "avx_vnni", "avx512_vnni", "amx"),
}
ARCH_ISAS = ISAS_BY_ARCH["arm64"] if IS_ARM64 else ISAS_BY_ARCH["x86"] if IS_X86 else ()
IS_ARM64_LINUX = IS_ARM64 and sys.platform.startswith("linux")
needs_arm64_linux = pytest.mark.skipif(not IS_ARM64_LINUX, reason="AArch64 Linux only (hwcaps from getauxval)")


def arm_hwcaps():
    """The ARM features of this CPU as the kernel (or qemu) reports them in the auxiliary vector:
    HWCAP_ASIMD (AT_HWCAP bit 1), HWCAP_ASIMDDP (AT_HWCAP bit 20), HWCAP2_I8MM (AT_HWCAP2 bit 13)."""
    import ctypes

    getauxval = ctypes.CDLL(None).getauxval
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    at_hwcap, at_hwcap2 = 16, 26
    hwcap, hwcap2 = getauxval(at_hwcap), getauxval(at_hwcap2)
    return {"asimd": bool(hwcap >> 1 & 1), "asimddp": bool(hwcap >> 20 & 1), "i8mm": bool(hwcap2 >> 13 & 1)}


def arm_paths_the_hwcaps_allow():
    """Each ARM path and whether the CPU supports it, from the hwcaps: Advanced SIMD for neon; and
    the dot product for neon_dotprod; and both with i8mm for neon_i8mm (its kernels use both)."""
    h = arm_hwcaps()
    return {
        "neon": h["asimd"],
        "neon_dotprod": h["asimd"] and h["asimddp"],
        "neon_i8mm": h["asimd"] and h["asimddp"] and h["i8mm"],
    }


@needs_arm64_linux
def test_arm_cpu_features_are_the_hwcaps():
    h = arm_hwcaps()
    f = iq.cpu_features()
    assert f["neon"] == h["asimd"], (f, h)
    assert f["neon_dotprod"] == (h["asimd"] and h["asimddp"]), (f, h)
    assert f["neon_i8mm"] == (h["asimd"] and h["i8mm"]), (f, h)
    assert h["asimd"], "Advanced SIMD is mandatory on AArch64 Linux"


@needs_arm64_linux
def test_arm_paths_supported_as_the_hwcaps_say():
    """isa_supported_by_cpu, which does not depend on whether a path is built yet."""
    from intquant_kernels import _core

    allowed = arm_paths_the_hwcaps_allow()
    for name in ISAS_BY_ARCH["arm64"]:
        assert _core.isa_supported_by_cpu(name) == allowed[name], (name, allowed, iq.cpu_features())
    for name in ISAS_BY_ARCH["x86"]:
        assert not _core.isa_supported_by_cpu(name), name
    assert _core.isa_supported_by_cpu("scalar")


@pytest.mark.skipif(not IS_ARM64, reason="AArch64 only")
def test_arm_available_paths_are_those_built_and_supported():
    from intquant_kernels import _core

    expected = ["scalar"] + [n for n in ISAS_BY_ARCH["arm64"] if _core.isa_built(n) and _core.isa_supported_by_cpu(n)]
    assert AVAILABLE == expected
    for name in ISAS_BY_ARCH["x86"]:
        assert not _core.isa_built(name), f"{name} is built into an AArch64 build"


@pytest.mark.skipif(not IS_ARM64, reason="AArch64 only")
def test_arm_best_path_is_the_default(default_probe):
    """The best ARM path that is built and supported (scalar while none is built) is the one a
    fresh interpreter runs, and runs its quantize kernel."""
    from intquant_kernels import _core

    best = (["scalar"] + [n for n in ISAS_BY_ARCH["arm64"] if _core.isa_built(n) and _core.isa_supported_by_cpu(n)])[-1]
    r = default_probe
    assert "error" not in r, r
    assert AVAILABLE[-1] == best
    assert r["isa"] == best, r
    assert r["ran"] == [iq.kernel_names(best)["quantize"]], r


EXPECT_ISAS = os.environ.get("INTQUANT_EXPECT_ISAS")


@pytest.mark.skipif(EXPECT_ISAS is None,
                    reason="INTQUANT_EXPECT_ISAS is not set (.ci/aarch64 sets it for each emulated CPU)")
def test_cpu_offers_exactly_the_expected_paths():
    """INTQUANT_EXPECT_ISAS names the paths of this architecture that the CPU must support, no
    more and no fewer (e.g. neon for a Cortex-A72; neon,neon_dotprod for a Cortex-A76;
    neon,neon_dotprod,neon_i8mm for qemu's `max` CPU); of them, the built ones are available."""
    from intquant_kernels import _core

    expected = {n.strip() for n in EXPECT_ISAS.split(",") if n.strip()} - {"scalar"}
    assert expected <= set(ARCH_ISAS), f"INTQUANT_EXPECT_ISAS={EXPECT_ISAS!r} names paths of another architecture"
    supported = {n for n in ARCH_ISAS if _core.isa_supported_by_cpu(n)}
    assert supported == expected, f"the CPU supports {sorted(supported)}, INTQUANT_EXPECT_ISAS={EXPECT_ISAS!r}"
    assert set(AVAILABLE) - {"scalar"} == {n for n in expected if _core.isa_built(n)}
