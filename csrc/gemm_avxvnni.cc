// AVX-VNNI GEMM tile kernel: 4 rows x 16 columns (2 ymm) of int32
// accumulators, one 256-bit vpdpbusd per (row, ymm) per group of 4 k.
// 8 accumulators + 2 B vectors + 1 broadcast leave the compiler room: at 6 rows
// (15 of 16 registers live) it spilled inside the loop and ran at half speed.
#include <immintrin.h>

#include "gemm_store_avx2.h"
#include "gemm_rows.h"
#include "kernel_counter.h"

namespace iqk {

namespace {

constexpr size_t MR = 4, NR = 16;

template <size_t R>
void tile(size_t nr, size_t groups, const uint8_t* a, size_t a_stride, const int8_t* b,
          const int32_t* acc_in, int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  // Accumulators are locals of this function only, so that they stay in
  // registers across the loop.
  __m256i c0[R], c1[R];
#pragma GCC unroll 6
  for (size_t i = 0; i < R; ++i) {
    if (acc_in) {
      c0[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc_in + i * NR));
      c1[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc_in + i * NR + 8));
    } else {
      c0[i] = c1[i] = _mm256_setzero_si256();
    }
  }
  for (size_t g = 0; g < groups; ++g, a += 4, b += NR * 4) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32));
#pragma GCC unroll 6
    for (size_t i = 0; i < R; ++i) {
      const __m256i av = _mm256_set1_epi32(gemm_load4(a + i * a_stride));
      c0[i] = _mm256_dpbusd_avx_epi32(c0[i], av, b0);
      c1[i] = _mm256_dpbusd_avx_epi32(c1[i], av, b1);
    }
  }
  if (acc_out) {
#pragma GCC unroll 6
    for (size_t i = 0; i < R; ++i) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_out + i * NR), c0[i]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_out + i * NR + 8), c1[i]);
    }
    return;
  }
#pragma GCC unroll 6
  for (size_t i = 0; i < R; ++i) {
    gemm_store8_avx2(ep, m0 + i, n0, c0[i], nr < 8 ? nr : 8);
    if (nr > 8) gemm_store8_avx2(ep, m0 + i, n0 + 8, c1[i], nr - 8);
  }
}

}  // namespace

void gemm_u8s8s32_4x16c4__avxvnni(size_t mr, size_t nr, size_t groups, const void* a_rows,
    size_t a_stride, const void* b_panel, const int32_t* acc_in, int32_t* acc_out,
    const GemmEpilogue& ep, size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY("gemm_u8s8s32_4x16c4__avxvnni");
  const uint8_t* a = static_cast<const uint8_t*>(a_rows);
  const int8_t* b = static_cast<const int8_t*>(b_panel);
  with_rows<MR>(mr, [&](auto rows) {
    tile<decltype(rows)::value>(nr, groups, a, a_stride, b, acc_in, acc_out, ep, m0, n0);
  });
}

// The kernel with its tile shape, for the kernel table: the shape is stated
// once, here, next to the code that depends on it.
extern const GemmKernel gemm_kernel__avxvnni{&gemm_u8s8s32_4x16c4__avxvnni, "gemm_u8s8s32_4x16c4__avxvnni",
                                         GemmShape{GemmLayout::vnni4, int(MR), int(NR)}};

}  // namespace iqk
