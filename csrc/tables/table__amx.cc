// The amx path: the avx512_vnni table with the AMX-INT8 GEMM tile kernel
// (gemm, and through it the dense convolutions), which accumulates as
// vpdpbusd does, so the corrections and epilogues are the same. Depthwise and
// small-group convolutions and quantization keep their AVX-512 kernels.
#include "runtime/kernel_table.h"

namespace iqk {

IQK_DECLARE_TABLE(avx512vnni)
extern const GemmKernel gemm_kernel__amx;

// The small-M rule: a GEMM of fewer rows than one A tile (16) would leave
// tdpbusd's rows mostly empty while it costs a tile configuration and a tile
// of C stored and finished per call; the avx512_vnni kernel (5 rows per
// tile, the same packed weights) runs those. Not measured on AMX hardware: a
// conservative threshold, at least right for M = 1 (GEMV).
constexpr size_t kAmxSmallMRows = 16;

void fill_table__amx(KernelTable& t) {
  fill_table__avx512vnni(t);
  t.gemm_small_m = t.gemm;
  t.gemm_small_m_rows = kAmxSmallMRows;
  t.gemm = gemm_kernel__amx;
}

}  // namespace iqk
