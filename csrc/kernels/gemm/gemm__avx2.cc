// AVX2 GEMM tile kernel, exact for every int8/uint8 input: A and B are packed
// as int16 pairs of consecutive k (pair16 layout), and vpmaddwd forms
// a[k]*b[k] + a[k+1]*b[k+1] in int32 without the int16 saturation of the
// vpmaddubsw shortcut (255*127*2 does not fit int16). The 4x16 tile and its
// epilogue: gemm_ymm.h.
#include <immintrin.h>

#include "simd/x86/gemm_ymm.h"

namespace iqk {

namespace {
struct GemmAvx2 {
  static constexpr char kName[] = "gemm_u8s8s32_4x16c2__avx2";
  // vpmaddwd on int16 pairs (exact), then an add.
  static __m256i dot(__m256i acc, __m256i av, __m256i bv) { return _mm256_add_epi32(acc, _mm256_madd_epi16(av, bv)); }
};
}  // namespace

// The kernel with its tile shape and layout, for the kernel table.
extern const GemmKernel gemm_kernel__avx2{
    .fn = &gemm_4x16_ymm<GemmAvx2>,
    .name = GemmAvx2::kName,
    .shape = {.layout = GemmLayout::pair16, .mr = int(kGemmYmmMR), .nr = int(kGemmYmmNR)},
};

}  // namespace iqk
