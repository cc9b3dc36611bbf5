// AVX-VNNI GEMM tile kernel: 6 rows x 16 columns (2 ymm) of int32
// accumulators, one 256-bit vpdpbusd per (row, ymm) per group of 4 k.
// 12 accumulators + 2 B vectors + 1 broadcast fit the 16 ymm registers.
#include <immintrin.h>

#include "gemm_store_avx2.h"
#include "kernel_counter.h"

namespace iqk {

namespace {

constexpr size_t MR = 6, NR = 16;

template <size_t R>
void tile(size_t nr, size_t groups, const uint8_t* a, const int8_t* b, const GemmEpilogue& ep,
          size_t m0, size_t n0) {
  __m256i acc[R][2];
  for (size_t i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  for (size_t g = 0; g < groups; ++g, a += MR * 4, b += NR * 4) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32));
    for (size_t i = 0; i < R; ++i) {
      int32_t a4;
      __builtin_memcpy(&a4, a + 4 * i, 4);
      const __m256i av = _mm256_set1_epi32(a4);
      acc[i][0] = _mm256_dpbusd_avx_epi32(acc[i][0], av, b0);
      acc[i][1] = _mm256_dpbusd_avx_epi32(acc[i][1], av, b1);
    }
  }
  for (size_t j = 0; j < 2 && 8 * j < nr; ++j) {
    const size_t cols = nr - 8 * j < 8 ? nr - 8 * j : 8;
    for (size_t i = 0; i < R; ++i) gemm_store8_avx2(ep, m0 + i, n0 + 8 * j, acc[i][j], cols);
  }
}

}  // namespace

void gemm_u8s8s32_6x16c4__avxvnni(size_t mr, size_t nr, size_t groups, const void* a_panel,
                                  const void* b_panel, const GemmEpilogue& ep, size_t m0,
                                  size_t n0) {
  IQK_KERNEL_ENTRY("gemm_u8s8s32_6x16c4__avxvnni");
  const uint8_t* a = static_cast<const uint8_t*>(a_panel);
  const int8_t* b = static_cast<const int8_t*>(b_panel);
  switch (mr) {
    case 1: return tile<1>(nr, groups, a, b, ep, m0, n0);
    case 2: return tile<2>(nr, groups, a, b, ep, m0, n0);
    case 3: return tile<3>(nr, groups, a, b, ep, m0, n0);
    case 4: return tile<4>(nr, groups, a, b, ep, m0, n0);
    case 5: return tile<5>(nr, groups, a, b, ep, m0, n0);
    default: return tile<6>(nr, groups, a, b, ep, m0, n0);
  }
}

}  // namespace iqk
