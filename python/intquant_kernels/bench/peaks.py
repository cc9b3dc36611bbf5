"""The peak table: the inner-loop instruction of each path's kernel, its
multiply-accumulates per instruction and how many execute per cycle. Both
the peak and the clock it is multiplied by are estimates."""
from __future__ import annotations

# ---------------------------------------------------------------------------
# The peak table.
#
# Assumption: an AMD Zen 5 core (family 0x1A; EPYC 9005 "Turin", Ryzen 9000)
# with its full 512-bit datapath: of the four vector pipes, two (FP0/FP1) run
# the multiplies (FMA, vpdpbusd, vpdpwssd, vpmaddwd), each on a whole zmm per
# cycle, so two such instructions per cycle at any width. Intel server cores
# with two 512-bit FMA units (ports 0+1 fused and 5) give the same figures.
# The peak is the multiply throughput alone: loads, broadcasts, the int16
# widening of the AVX2 kernels, the accumulating adds and the epilogue come on
# top, so 100% is not reachable; it is an upper bound, not a target.
# One multiply-accumulate (MAC) counts as 2 operations.
# ---------------------------------------------------------------------------

#: instruction -> (what one instruction does, MACs per instruction, instructions per cycle)
INSTRUCTIONS = {
    "vpdpbusd zmm": ("16 int32 lanes x 4 u8*s8 products", 64, 2),
    "vpdpbusd ymm": ("8 int32 lanes x 4 u8*s8 products", 32, 2),
    "vpdpwssd zmm": ("16 int32 lanes x 2 s16*s16 products", 32, 2),
    "vpmaddwd ymm": ("8 int32 lanes x 2 s16*s16 products (plus a vpaddd)", 16, 2),
    "pmaddwd xmm": ("4 int32 lanes x 2 s16*s16 products: SSE2, the x86-64 baseline the compiler may "
                    "vectorize the portable C++ loop to", 8, 2),
    "vfmadd231ps zmm": ("16 float32 lanes, fused multiply-add", 16, 2),
    "vfmadd231ps ymm": ("8 float32 lanes, fused multiply-add", 8, 2),
}

#: (kernel kind, ISA path) -> the inner-loop instruction. 'gemm' is the GEMM
#: tile kernel, which every convolution but the depthwise and small-group
#: ones runs on too; 'dwconv' the depthwise kernel (int16 tap pairs, see
#: _packed_conv.py); 'gconv' the small-group kernel (csrc/conv.h, GconvRow).
PATH_INSTRUCTION = {
    ("gemm", "scalar"): "pmaddwd xmm",
    ("gemm", "avx2"): "vpmaddwd ymm",
    ("gemm", "avx_vnni"): "vpdpbusd ymm",
    ("gemm", "avx512_vnni"): "vpdpbusd zmm",
    ("dwconv", "scalar"): "pmaddwd xmm",
    ("dwconv", "avx2"): "vpmaddwd ymm",
    ("dwconv", "avx_vnni"): "vpmaddwd ymm",  # the AVX2 depthwise kernel
    ("dwconv", "avx512_vnni"): "vpdpwssd zmm",
    ("gconv", "avx2"): "vpmaddwd ymm",
    ("gconv", "avx_vnni"): "vpdpbusd ymm",
    ("gconv", "avx512_vnni"): "vpdpbusd zmm",
}


#: OpenBLAS kernels (its core names) that run float32 GEMM on zmm FMAs; the others on ymm (or narrower).
_OPENBLAS_ZMM = {"skylakex", "cooperlake", "sapphirerapids"}

PEAK_ASSUMPTION = (
    "Peak = MACs per instruction x instructions per cycle x 2 ops, per core, assuming an AMD Zen 5 core "
    "(two 512-bit multiply pipes, FP0/FP1: two vpdpbusd/vpdpwssd/vpmaddwd/FMA per cycle at any width). "
    "The multiply throughput alone: loads, widening, adds and epilogues are extra, so it is an upper bound."
)


def peak_ops_per_cycle(instruction: str | None) -> int | None:
    if instruction is None:
        return None
    _, macs, per_cycle = INSTRUCTIONS[instruction]
    return 2 * macs * per_cycle


def peak_table() -> list:
    """The peak table as rows of dicts (for the JSON and the reports)."""
    rows = []
    for (kind, isa), instr in PATH_INSTRUCTION.items():
        what, macs, per_cycle = INSTRUCTIONS[instr]
        rows.append(dict(path=isa, kernel=kind, instruction=instr, macs_per_instruction=macs,
                         per_cycle=per_cycle, ops_per_cycle=peak_ops_per_cycle(instr), what=what))
    for instr in ("vfmadd231ps zmm", "vfmadd231ps ymm"):
        what, macs, per_cycle = INSTRUCTIONS[instr]
        rows.append(dict(path="float32", kernel="fma", instruction=instr, macs_per_instruction=macs,
                         per_cycle=per_cycle, ops_per_cycle=peak_ops_per_cycle(instr), what=what))
    return rows


def f32_instruction_for_openblas(corename: str) -> str:
    return "vfmadd231ps zmm" if corename.lower() in _OPENBLAS_ZMM else "vfmadd231ps ymm"
