// AVX-VNNI GEMM tile kernel: 4 rows x 16 columns (2 ymm) of int32
// accumulators, one 256-bit vpdpbusd per (row, ymm) per group of 4 k.
// 8 accumulators + 2 B vectors + 1 broadcast leave the compiler room: at 6 rows
// (15 of 16 registers live) it spilled inside the loop and ran at half speed.
#include <immintrin.h>

#include "kernels/specialize.h"
#include "simd/x86/gemm_ymm.h"
#include "runtime/kernel_counter.h"

namespace iqk {

namespace {
constexpr size_t MR = 4, NR = 16;
}  // namespace

void gemm_u8s8s32_4x16c4__avxvnni(size_t mr, size_t nr, size_t groups, const void* a_rows, size_t a_stride,
    size_t seg_groups, size_t seg_skip, const void* b_panel, const int32_t* acc_in, int32_t* acc_out, const GemmEpilogue& ep,
    size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY("gemm_u8s8s32_4x16c4__avxvnni");
  const uint8_t* a = static_cast<const uint8_t*>(a_rows);
  const uint8_t* b = static_cast<const uint8_t*>(b_panel);
  // One 256-bit vpdpbusd: 4 unsigned x signed byte products per lane, added in.
  auto dot = [](__m256i acc, __m256i av, __m256i bv) { return _mm256_dpbusd_avx_epi32(acc, av, bv); };
  with_rows<MR>(mr, [&](auto rows) {
    gemm_tile_4x16_ymm<decltype(rows)::value>(nr, groups, a, a_stride, seg_groups, seg_skip, b, acc_in, acc_out, ep,
                                              m0, n0, dot);
  });
}

// The kernel with its tile shape, for the kernel table: the shape is stated
// once, here, next to the code that depends on it.
extern const GemmKernel gemm_kernel__avxvnni{
    .fn = &gemm_u8s8s32_4x16c4__avxvnni,
    .name = "gemm_u8s8s32_4x16c4__avxvnni",
    .shape = {.layout = GemmLayout::vnni4, .mr = int(MR), .nr = int(NR)},
};

}  // namespace iqk
