// One table of kernels per ISA path, filled once by the path's table file
// (tables/table__<token>.cc). The active path is a process-wide setting
// chosen at import (best available, or INTQUANT_ISA) and changed only by
// set_isa().
#pragma once

#include <string>
#include <vector>

#include "kernels/calibrate/histogram.h"
#include "kernels/conv/conv.h"
#include "kernels/gemm/gemm.h"
#include "kernels/layout/transpose.h"
#include "kernels/quantize/quantize.h"
#include "runtime/emulated_tiles.h"
#include "runtime/isa.h"

namespace iqk {

template <typename Fn>
struct Kernel {
  Fn fn = nullptr;
  const char* name = nullptr;
};

// A kernel function with its name, for a table entry.
#define IQK_KERNEL(fn) \
  { &fn, #fn }

struct KernelTable {
  Isa isa = Isa::scalar;
  Kernel<RangeFn> range;  // dynamic quantization and calibration
  Kernel<QuantizeFn> quantize;
  Kernel<QuantizeChannelsFn> quantize_channels;
  Kernel<DequantizeFn> dequantize_s8, dequantize_u8;
  Kernel<DequantizeChannelsFn> dequantize_channels_s8, dequantize_channels_u8;
  Kernel<AbsHistogramFn> abs_histogram;  // calibration histograms (calibrate.cc)
  GemmKernel gemm;
  // GEMMs of fewer than gemm_small_m_rows rows run gemm_small_m instead
  // (gemm_kernel_for), on the same packed weights: its layout and NR are
  // gemm's (checked when the tables are filled). 0: gemm for every shape.
  GemmKernel gemm_small_m;
  size_t gemm_small_m_rows = 0;
  DwconvKernel dwconv;
  Transpose16x16Fn transpose16x16_b32 = nullptr;  // NCHW output (ops/conv.cc); null: 4 x 4 blocks
  Kernel<GconvRowFn> gconv;                       // small groups (conv.h); null: the grouped GEMM
  PackVnni4Strips64Fn pack_vnni4_strips64 = nullptr;  // 1x1 NCHW (ops/conv.cc); null: 16 columns at a time
  // The emulated tile unit of an emulated path (amx_emu), for the tests;
  // null elsewhere.
  const EmulatedTiles* emulated_tiles = nullptr;
};

// The GEMM kernel of table t for a product of m rows of A (the small-M rule,
// KernelTable::gemm_small_m).
inline const GemmKernel& gemm_kernel_for(const KernelTable& t, size_t m) {
  return t.gemm_small_m.fn && m < t.gemm_small_m_rows ? t.gemm_small_m : t.gemm;
}

// Fills `t` with a path's kernels: each table file defines one, starting
// from the table of the path below it.
#define IQK_DECLARE_TABLE(token) void fill_table__##token(KernelTable& t);

// Was this path compiled into the module (CMakeLists.txt, iqk_add_isa)?
bool isa_built(Isa isa);
// Built and supported by this CPU and OS.
bool isa_available(Isa isa);
// Available ISA names, best last.
std::vector<std::string> available_isas();
// The table of an available path; throws std::invalid_argument otherwise.
const KernelTable& kernel_table(Isa isa);

Isa active_isa();
// Throws std::invalid_argument (naming the available paths) if not available.
void set_active_isa(Isa isa);
// The table of the active path.
const KernelTable& active_kernels();

}  // namespace iqk
