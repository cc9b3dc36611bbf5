// AVX-VNNI GEMM tile kernel: one 256-bit vpdpbusd per (row, ymm) per group
// of 4 k (vnni4 layout). The 4x16 tile and its epilogue: gemm_ymm.h.
#include <immintrin.h>

#include "simd/x86/gemm_ymm.h"

namespace iqk {

namespace {
struct GemmAvxVnni {
  static constexpr char kName[] = "gemm_u8s8s32_4x16c4__avxvnni";
  // One 256-bit vpdpbusd: 4 unsigned x signed byte products per lane, added in.
  static __m256i dot(__m256i acc, __m256i av, __m256i bv) { return _mm256_dpbusd_avx_epi32(acc, av, bv); }
};
}  // namespace

// The kernel with its tile shape and layout, for the kernel table.
extern const GemmKernel gemm_kernel__avxvnni{
    .fn = &gemm_4x16_ymm<GemmAvxVnni>,
    .name = GemmAvxVnni::kName,
    .shape = {.layout = GemmLayout::vnni4, .mr = int(kGemmYmmMR), .nr = int(kGemmYmmNR)},
};

}  // namespace iqk
