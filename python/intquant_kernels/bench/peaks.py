"""The peak table: the inner-loop instruction of each path's kernel, its
multiply-accumulates (MACs) per instruction, and how many of it issue per
cycle on the CPU at hand, from a row per microarchitecture class chosen by
what the CPU reports (x86: vendor, family, model; AArch64: the MIDR
implementer and part), with a generic fallback row per architecture for the
CPUs the table does not know.

The peak is the multiply throughput alone: loads, broadcasts, the int16
widening of the AVX2 kernels, the accumulating adds and the epilogue come on
top, so 100% is not reachable; it is an upper bound, not a target. One MAC
counts as 2 operations. Both the peak and the clock it is multiplied by are
estimates.
"""
from __future__ import annotations

import re
from typing import NamedTuple

#: instruction -> (architecture, what one instruction does, MACs per instruction)
INSTRUCTIONS = {
    "tdpbusd tmm": ("x86_64", "a 16x64 u8 by 64x16 s8 tile product into 16x16 int32 (AMX-INT8)", 16 * 16 * 64),
    "vpdpbusd zmm": ("x86_64", "16 int32 lanes x 4 u8*s8 products", 64),
    "vpdpbusd ymm": ("x86_64", "8 int32 lanes x 4 u8*s8 products", 32),
    "vpdpwssd zmm": ("x86_64", "16 int32 lanes x 2 s16*s16 products", 32),
    "vpmaddwd ymm": ("x86_64", "8 int32 lanes x 2 s16*s16 products (plus a vpaddd)", 16),
    "pmaddwd xmm": ("x86_64", "4 int32 lanes x 2 s16*s16 products: SSE2, the x86-64 baseline the compiler may "
                              "vectorize the portable C++ loop to", 8),
    "vfmadd231ps zmm": ("x86_64", "16 float32 lanes, fused multiply-add", 16),
    "vfmadd231ps ymm": ("x86_64", "8 float32 lanes, fused multiply-add", 8),
    "smlal v.4s": ("aarch64", "4 int32 lanes x 1 s16*s16 product (int8 widened to int16; smlal2 alike)", 4),
    "sdot v.4s": ("aarch64", "4 int32 lanes x 4 s8*s8 products (udot: u8*u8)", 16),
    "usdot v.4s": ("aarch64", "4 int32 lanes x 4 u8*s8 products (i8mm)", 16),
    "usmmla v.4s": ("aarch64", "a 2x8 u8 by 8x2 s8 product into 2x2 int32 lanes (smmla, ummla alike; i8mm)", 32),
    "fmla v.4s": ("aarch64", "4 float32 lanes, fused multiply-add", 4),
}

#: (kernel kind, ISA path) -> the inner-loop instruction. 'gemm' is the GEMM
#: tile kernel, which every convolution but the depthwise and small-group
#: ones runs on too; 'dwconv' the depthwise kernel (int16 tap pairs, see
#: _packed_conv.py); 'gconv' the small-group kernel (kernels/conv/conv.h).
#: The scalar path's instruction depends on the architecture: SCALAR_INSTRUCTION.
#: The ARM GEMM rows name the tile kernels' instructions (neon_dotprod runs
#: udot, which issues as sdot does); where an ARM path has no kernel of a kind
#: (depthwise until its NEON kernel lands, small groups), its row says what
#: one would run.
PATH_INSTRUCTION = {
    ("gemm", "avx2"): "vpmaddwd ymm",
    ("gemm", "avx_vnni"): "vpdpbusd ymm",
    ("gemm", "avx512_vnni"): "vpdpbusd zmm",
    ("gemm", "amx"): "tdpbusd tmm",  # GEMMs of fewer than 16 rows: the avx512_vnni kernel (kernel_kind.gemm_kernel)
    ("dwconv", "avx2"): "vpmaddwd ymm",
    ("dwconv", "avx_vnni"): "vpmaddwd ymm",  # the AVX2 depthwise kernel
    ("dwconv", "avx512_vnni"): "vpdpwssd zmm",
    ("dwconv", "amx"): "vpdpwssd zmm",  # the avx512_vnni depthwise kernel
    ("gconv", "avx2"): "vpmaddwd ymm",
    ("gconv", "avx_vnni"): "vpdpbusd ymm",
    ("gconv", "avx512_vnni"): "vpdpbusd zmm",
    ("gconv", "amx"): "vpdpbusd zmm",  # the avx512_vnni small-group kernel
    ("gemm", "neon"): "smlal v.4s",
    ("gemm", "neon_dotprod"): "sdot v.4s",
    ("gemm", "neon_i8mm"): "usmmla v.4s",
    ("dwconv", "neon"): "smlal v.4s",
    ("dwconv", "neon_dotprod"): "smlal v.4s",
    ("dwconv", "neon_i8mm"): "smlal v.4s",
    ("gconv", "neon_dotprod"): "sdot v.4s",
    ("gconv", "neon_i8mm"): "usdot v.4s",
}

#: architecture -> the instruction the compiler may vectorize the portable
#: C++ loops of the scalar path to (GEMM and depthwise alike).
SCALAR_INSTRUCTION = {"x86_64": "pmaddwd xmm", "aarch64": "smlal v.4s"}

#: architecture -> the float32 multiply-add of the float32 baselines.
F32_INSTRUCTION = {"x86_64": "vfmadd231ps ymm", "aarch64": "fmla v.4s"}

#: OpenBLAS kernels (its core names) that run float32 GEMM on zmm FMAs; the others on ymm (or narrower).
_OPENBLAS_ZMM = {"skylakex", "cooperlake", "sapphirerapids"}


class Row(NamedTuple):
    """A microarchitecture class: how many of each inner-loop instruction issue per cycle."""
    key: str
    label: str
    arch: str
    per_cycle: dict  # instruction -> instructions per cycle; absent: the class has no such instruction
    basis: str  # where the figures come from


def _x86(zmm_int, ymm_int, xmm_int, fma_zmm, fma_ymm, amx_int8=None):
    """Figures of an x86 class: zmm and ymm integer multiplies (vpdpbusd, vpdpwssd, vpmaddwd), the SSE2
    pmaddwd, the float32 FMAs and AMX's tdpbusd; None: the class lacks the width or the unit."""
    per = {"vpdpbusd zmm": zmm_int, "vpdpwssd zmm": zmm_int, "vpdpbusd ymm": ymm_int, "vpmaddwd ymm": ymm_int,
           "pmaddwd xmm": xmm_int, "vfmadd231ps zmm": fma_zmm, "vfmadd231ps ymm": fma_ymm, "tdpbusd tmm": amx_int8}
    return {k: v for k, v in per.items() if v is not None}


def _arm(smlal, dot, i8mm, fmla):
    per = {"smlal v.4s": smlal, "sdot v.4s": dot, "usdot v.4s": i8mm, "usmmla v.4s": i8mm, "fmla v.4s": fmla}
    return {k: v for k, v in per.items() if v is not None}


ROWS = {r.key: r for r in (
    Row("amd_zen5", "AMD Zen 5, full 512-bit datapath (EPYC 9005, Ryzen 9000, Strix Halo)", "x86_64",
        _x86(2, 2, 2, 2, 2),
        "four vector pipes, two of which (FP0, FP1) run the multiplies (FMA, vpdpbusd, vpdpwssd, vpmaddwd) "
        "on a whole zmm each: two per cycle at any width"),
    Row("amd_zen5_mobile", "AMD Zen 5 mobile, 256-bit datapath (Strix Point, Krackan Point)", "x86_64",
        _x86(1, 1, 1, 1, 2),
        "zmm run as two 256-bit halves, as on Zen 4; 128/256-bit integer vector ops at half Zen 4's rate "
        "(measured on a Ryzen AI 9 365); FMAs as on Zen 4"),
    Row("amd_zen4", "AMD Zen 4 (EPYC 9004, Ryzen 7000), zmm as 2 x 256-bit", "x86_64",
        _x86(1, 2, 2, 1, 2),
        "two 256-bit multiply pipes (FP0, FP1): two ymm multiplies per cycle, one zmm (two halves)"),
    Row("intel_amx", "Intel server cores with AMX and two 512-bit FMA units (Sapphire/Emerald/Granite Rapids)",
        "x86_64", _x86(2, 2, 2, 2, 2, 1 / 16),
        "zmm multiplies on ports 0 (0+1 fused) and 5; ymm and xmm on ports 0 and 1; the AMX tile unit: one "
        "16x16x64-byte tdpbusd per 16 cycles (1024 int8 multiply-accumulates per cycle, Intel's figure)"),
    Row("intel_avx512_2fma", "Intel server cores with two 512-bit FMA units "
        "(Skylake-SP/Cascade Lake Gold 6xxx/Platinum, Ice Lake-SP)", "x86_64",
        _x86(2, 2, 2, 2, 2),
        "zmm multiplies on ports 0 (0+1 fused) and 5; ymm and xmm on ports 0 and 1"),
    Row("intel_avx512_1fma", "Intel cores with one 512-bit FMA unit (Ice Lake/Tiger Lake/Rocket Lake client; "
        "Xeon Silver/Bronze/Gold 5xxx of Skylake-SP/Cascade Lake)", "x86_64",
        _x86(1, 2, 2, 1, 2),
        "zmm multiplies on port 0 (0+1 fused) only; ymm and xmm on ports 0 and 1"),
    Row("intel_client_avxvnni", "Intel client P-cores with AVX-VNNI, no AVX-512 "
        "(Alder/Raptor/Meteor/Lunar/Arrow Lake)", "x86_64",
        _x86(None, 2, 2, None, 2),
        "Golden Cove and later P-cores: ymm multiplies (vpdpbusd, vpmaddwd, FMA) on ports 0 and 1; "
        "the E-cores of hybrid parts issue fewer"),
    Row("intel_client_avx2", "Intel Skylake-class client cores, AVX2 (Skylake to Comet Lake)", "x86_64",
        _x86(None, 2, 2, None, 2),
        "ymm multiplies (vpmaddwd, FMA) on ports 0 and 1"),
    Row("arm_neoverse_n1", "Arm Neoverse N1 (Graviton2, Ampere Altra)", "aarch64",
        _arm(1, 2, None, 2),
        "Neoverse N1 Software Optimization Guide: two 128-bit pipes (V0, V1); sdot/udot and fmla on both, "
        "smlal on V0 only; no i8mm"),
    Row("arm_neoverse_v1", "Arm Neoverse V1 (Graviton3)", "aarch64",
        _arm(2, 4, 4, 4),
        "Neoverse V1 Software Optimization Guide: four 128-bit pipes (V0-V3); sdot/usdot, smmla/usmmla and "
        "fmla on all four, smlal on V0 and V2"),
    Row("arm_neoverse_v2", "Arm Neoverse V2 (Graviton4, NVIDIA Grace)", "aarch64",
        _arm(2, 4, 4, 4),
        "Neoverse V2 Software Optimization Guide: four 128-bit pipes (V0-V3); sdot/usdot, smmla/usmmla and "
        "fmla on all four, smlal on V0 and V2"),
)}

#: architecture -> the row of the CPUs the table does not know.
GENERIC = {
    "x86_64": Row("generic_x86_64", "generic fallback (a CPU this table does not know)", "x86_64",
                  _x86(2, 2, 2, 2, 2, 1 / 16),
                  "two per cycle at every width and one tdpbusd per 16 cycles, the most any x86 class of this "
                  "table issues: an upper bound, likely above this CPU's real peak"),
    "aarch64": Row("generic_aarch64", "generic fallback (a CPU this table does not know)", "aarch64",
                   _arm(2, 4, 4, 4),
                   "the figures of the widest AArch64 class of this table (Neoverse V1/V2): an upper bound, "
                   "likely above this CPU's real peak"),
}
_NO_TABLE = Row("none", "no peak table for this architecture", "other", {}, "no figures")

#: (vendor, display family, first model, last model, row key): the first match wins.
X86_MODELS = (
    ("AuthenticAMD", 0x1A, 0x20, 0x2F, "amd_zen5_mobile"),  # Strix Point
    ("AuthenticAMD", 0x1A, 0x60, 0x6F, "amd_zen5_mobile"),  # Krackan Point
    ("AuthenticAMD", 0x1A, 0x00, 0x1F, "amd_zen5"),  # Turin, Turin dense
    ("AuthenticAMD", 0x1A, 0x40, 0x4F, "amd_zen5"),  # Granite Ridge, Fire Range
    ("AuthenticAMD", 0x1A, 0x70, 0x7F, "amd_zen5"),  # Strix Halo
    ("AuthenticAMD", 0x19, 0x10, 0x1F, "amd_zen4"),  # Genoa, Storm Peak
    ("AuthenticAMD", 0x19, 0x60, 0xAF, "amd_zen4"),  # Raphael, Phoenix, Dragon Range, Bergamo, Siena
    ("GenuineIntel", 6, 0x55, 0x55, "intel_avx512_2fma"),  # Skylake-SP, Cascade Lake, Cooper Lake
    ("GenuineIntel", 6, 0x6A, 0x6A, "intel_avx512_2fma"),  # Ice Lake-SP
    ("GenuineIntel", 6, 0x6C, 0x6C, "intel_avx512_2fma"),  # Ice Lake-D
    ("GenuineIntel", 6, 0x8F, 0x8F, "intel_amx"),  # Sapphire Rapids
    ("GenuineIntel", 6, 0xCF, 0xCF, "intel_amx"),  # Emerald Rapids
    ("GenuineIntel", 6, 0xAD, 0xAE, "intel_amx"),  # Granite Rapids
    ("GenuineIntel", 6, 0x66, 0x66, "intel_avx512_1fma"),  # Cannon Lake
    ("GenuineIntel", 6, 0x7D, 0x7E, "intel_avx512_1fma"),  # Ice Lake client
    ("GenuineIntel", 6, 0x8C, 0x8D, "intel_avx512_1fma"),  # Tiger Lake
    ("GenuineIntel", 6, 0xA7, 0xA7, "intel_avx512_1fma"),  # Rocket Lake
    ("GenuineIntel", 6, 0x97, 0x97, "intel_client_avxvnni"),  # Alder Lake
    ("GenuineIntel", 6, 0x9A, 0x9A, "intel_client_avxvnni"),  # Alder Lake mobile
    ("GenuineIntel", 6, 0xB7, 0xB7, "intel_client_avxvnni"),  # Raptor Lake
    ("GenuineIntel", 6, 0xBA, 0xBA, "intel_client_avxvnni"),  # Raptor Lake mobile
    ("GenuineIntel", 6, 0xBF, 0xBF, "intel_client_avxvnni"),  # Raptor Lake refresh
    ("GenuineIntel", 6, 0xAA, 0xAC, "intel_client_avxvnni"),  # Meteor Lake
    ("GenuineIntel", 6, 0xBD, 0xBD, "intel_client_avxvnni"),  # Lunar Lake
    ("GenuineIntel", 6, 0xC5, 0xC6, "intel_client_avxvnni"),  # Arrow Lake
    ("GenuineIntel", 6, 0x4E, 0x4E, "intel_client_avx2"),  # Skylake mobile
    ("GenuineIntel", 6, 0x5E, 0x5E, "intel_client_avx2"),  # Skylake desktop
    ("GenuineIntel", 6, 0x8E, 0x8E, "intel_client_avx2"),  # Kaby/Amber/Whiskey/Comet Lake mobile
    ("GenuineIntel", 6, 0x9E, 0x9E, "intel_client_avx2"),  # Kaby/Coffee Lake desktop
    ("GenuineIntel", 6, 0xA5, 0xA6, "intel_client_avx2"),  # Comet Lake
)

#: (MIDR implementer, MIDR part) -> row key.
ARM_PARTS = {
    (0x41, 0xD0C): "arm_neoverse_n1",
    (0x41, 0xD40): "arm_neoverse_v1",
    (0x41, 0xD4F): "arm_neoverse_v2",
}

# Skylake-SP and Cascade Lake Xeons with one 512-bit FMA unit: Bronze, Silver
# and Gold 5xxx, except the Gold 5122 and 5222, which have two.
_ONE_FMA_XEON = re.compile(r"\b(Bronze|Silver)\b|\bGold (?!5122\b|5222\b)5\d{3}")


def _hex(v):
    return "?" if v is None else f"0x{v:02X}"


def select_row(cpu: dict) -> tuple:
    """The row for ``cpu`` (``_core.cpu_id()``) and what chose it: ``(Row, matched_by)``."""
    arch = cpu.get("arch")
    if arch == "x86_64":
        vendor, family, model = cpu.get("vendor"), cpu.get("family"), cpu.get("model")
        what = f"{vendor} family {_hex(family)} model {_hex(model)}"
        for v, f, first, last, key in X86_MODELS:
            if vendor == v and family == f and model is not None and first <= model <= last:
                if key == "intel_avx512_2fma" and model == 0x55 and _ONE_FMA_XEON.search(cpu.get("brand") or ""):
                    return ROWS["intel_avx512_1fma"], f"{what}, {cpu.get('brand')}: one 512-bit FMA unit"
                return ROWS[key], what
        return GENERIC[arch], f"{what}: not in the table"
    if arch == "aarch64":
        implementer, part = cpu.get("midr_implementer"), cpu.get("midr_part")
        if implementer is None or part is None:
            return GENERIC[arch], "MIDR_EL1 not readable (/sys/devices/system/cpu/cpu0/regs/identification)"
        what = f"MIDR implementer {_hex(implementer)} part 0x{part:03X}"
        key = ARM_PARTS.get((implementer, part))
        return (ROWS[key], what) if key else (GENERIC[arch], f"{what}: not in the table")
    return _NO_TABLE, f"architecture {arch!r}"


def path_instruction(kind: str, isa: str, arch: str) -> str | None:
    """The inner-loop instruction of kernel ``kind`` on path ``isa``; None where the path has no entry."""
    if isa == "scalar":
        return SCALAR_INSTRUCTION.get(arch)
    return PATH_INSTRUCTION.get((kind, isa))


class Peaks:
    """The peak table of one CPU: a row of instructions per cycle and what chose it."""

    def __init__(self, row: Row, matched_by: str):
        self.row = row
        self.matched_by = matched_by

    @classmethod
    def for_cpu(cls, cpu: dict | None = None) -> Peaks:
        if cpu is None:
            from .. import _core

            cpu = _core.cpu_id()
        return cls(*select_row(cpu))

    @property
    def generic(self) -> bool:
        return self.row.key not in ROWS

    def instruction(self, kind: str, isa: str) -> str | None:
        return path_instruction(kind, isa, self.row.arch)

    def ops_per_cycle(self, instruction: str | None) -> float | None:
        """2 x MACs per instruction x instructions per cycle; None where the row has no figure."""
        if instruction is None or instruction not in self.row.per_cycle:
            return None
        return 2 * INSTRUCTIONS[instruction][2] * self.row.per_cycle[instruction]

    def f32_instruction(self, openblas_corename: str | None = None, zmm: bool | None = None) -> str | None:
        """The float32 FMA of a baseline: OpenBLAS's by its core name, or ``zmm`` (torch/oneDNN on AVX-512)."""
        if self.row.arch != "x86_64":
            return F32_INSTRUCTION.get(self.row.arch)
        if zmm is None:
            zmm = (openblas_corename or "").lower() in _OPENBLAS_ZMM
        return "vfmadd231ps zmm" if zmm else "vfmadd231ps ymm"

    def assumption(self) -> str:
        return (f"Peak = MACs per instruction x instructions per cycle x 2 ops, per core. Instructions per cycle "
                f"from the table row '{self.row.label}' [{self.row.key}], chosen by {self.matched_by}: "
                f"{self.row.basis}. The multiply throughput alone: loads, widening, adds and epilogues are "
                f"extra, so it is an upper bound; an estimate, as is the clock.")

    def table(self) -> list:
        """The rows of the paths of this architecture with a figure, then the float32 FMAs (for the reports).
        A path whose GEMM instruction this class lacks has no rows (amx on a CPU without AMX, whose
        other kernels are avx512_vnni's)."""
        rows = []
        kinds = ("gemm", "dwconv", "gconv")
        paths = [("scalar", kind) for kind in ("gemm", "dwconv")]
        paths += [(isa, kind) for kind in kinds for (k, isa) in PATH_INSTRUCTION if k == kind]
        for isa, kind in paths:
            instr = self.instruction(kind, isa)
            if isa != "scalar" and self.ops_per_cycle(self.instruction("gemm", isa)) is None:
                continue
            if self.ops_per_cycle(instr) is not None:
                rows.append(self._row(isa, kind, instr))
        for instr in ("vfmadd231ps zmm", "vfmadd231ps ymm", "fmla v.4s"):
            if self.ops_per_cycle(instr) is not None:
                rows.append(self._row("float32", "fma", instr))
        return rows

    def _row(self, path, kind, instr):
        _, what, macs = INSTRUCTIONS[instr]
        return dict(path=path, kernel=kind, instruction=instr, macs_per_instruction=macs,
                    per_cycle=self.row.per_cycle[instr], ops_per_cycle=self.ops_per_cycle(instr), what=what)

    def as_dict(self) -> dict:
        """The ``peaks`` of the bench JSON."""
        return dict(assumption=self.assumption(),
                    row=dict(key=self.row.key, label=self.row.label, arch=self.row.arch, basis=self.row.basis,
                             matched_by=self.matched_by, generic=self.generic),
                    table=self.table())
