// AVX512-VNNI GEMM tile kernel: 5 rows x 64 columns (4 zmm) of int32
// accumulators, one vpdpbusd per (row, zmm) per group of 4 k: per group, 4 B
// loads and 5 broadcasts feed 20 vpdpbusd. 20 accumulators + 4 B vectors + 1
// broadcast stay in the 32 zmm registers; at 6 rows (29 live registers) GCC
// spilled accumulators inside the loop and the kernel ran at half the speed.
#include <immintrin.h>

#include "gemm.h"
#include "gemm_rows.h"
#include "gemm_zmm.h"
#include "kernel_counter.h"

namespace iqk {

namespace {

constexpr size_t MR = 5, NR = 64;

template <size_t R>
void tile(size_t nr, size_t groups, const uint8_t* a, size_t a_stride, const int8_t* b,
          const int32_t* acc_in, int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  // Accumulators are locals of this function only (never passed by reference)
  // so that the compiler keeps all of them in registers across the loop.
  __m512i c0[R], c1[R], c2[R], c3[R];
#pragma GCC unroll 6
  for (size_t i = 0; i < R; ++i) {
    if (acc_in) {
      c0[i] = _mm512_loadu_si512(acc_in + i * NR);
      c1[i] = _mm512_loadu_si512(acc_in + i * NR + 16);
      c2[i] = _mm512_loadu_si512(acc_in + i * NR + 32);
      c3[i] = _mm512_loadu_si512(acc_in + i * NR + 48);
    } else {
      c0[i] = c1[i] = c2[i] = c3[i] = _mm512_setzero_si512();
    }
  }
  for (size_t g = 0; g < groups; ++g, a += 4, b += NR * 4) {
    const __m512i b0 = _mm512_loadu_si512(b);
    const __m512i b1 = _mm512_loadu_si512(b + 64);
    const __m512i b2 = _mm512_loadu_si512(b + 128);
    const __m512i b3 = _mm512_loadu_si512(b + 192);
#pragma GCC unroll 6
    for (size_t i = 0; i < R; ++i) {
      const __m512i av = _mm512_set1_epi32(gemm_load4(a + i * a_stride));
      c0[i] = _mm512_dpbusd_epi32(c0[i], av, b0);
      c1[i] = _mm512_dpbusd_epi32(c1[i], av, b1);
      c2[i] = _mm512_dpbusd_epi32(c2[i], av, b2);
      c3[i] = _mm512_dpbusd_epi32(c3[i], av, b3);
    }
  }
  if (acc_out) {
#pragma GCC unroll 6
    for (size_t i = 0; i < R; ++i) {
      _mm512_storeu_si512(acc_out + i * NR, c0[i]);
      _mm512_storeu_si512(acc_out + i * NR + 16, c1[i]);
      _mm512_storeu_si512(acc_out + i * NR + 32, c2[i]);
      _mm512_storeu_si512(acc_out + i * NR + 48, c3[i]);
    }
    return;
  }
  auto mask_of = [nr](size_t j) {
    const size_t left = nr - 16 * j;
    return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
  };
#pragma GCC unroll 6
  for (size_t i = 0; i < R; ++i) {
    gemm_store16_avx512(ep, m0 + i, n0, c0[i], mask_of(0));
    if (nr > 16) gemm_store16_avx512(ep, m0 + i, n0 + 16, c1[i], mask_of(1));
    if (nr > 32) gemm_store16_avx512(ep, m0 + i, n0 + 32, c2[i], mask_of(2));
    if (nr > 48) gemm_store16_avx512(ep, m0 + i, n0 + 48, c3[i], mask_of(3));
  }
}

}  // namespace

void gemm_u8s8s32_5x64c4__avx512vnni(size_t mr, size_t nr, size_t groups, const void* a_rows,
    size_t a_stride, const void* b_panel, const int32_t* acc_in, int32_t* acc_out,
    const GemmEpilogue& ep, size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY("gemm_u8s8s32_5x64c4__avx512vnni");
  const uint8_t* a = static_cast<const uint8_t*>(a_rows);
  const int8_t* b = static_cast<const int8_t*>(b_panel);
  with_rows<MR>(mr, [&](auto rows) {
    tile<decltype(rows)::value>(nr, groups, a, a_stride, b, acc_in, acc_out, ep, m0, n0);
  });
}

// The kernel with its tile shape, for the kernel table: the shape is stated
// once, here, next to the code that depends on it.
extern const GemmKernel gemm_kernel__avx512vnni{&gemm_u8s8s32_5x64c4__avx512vnni, "gemm_u8s8s32_5x64c4__avx512vnni",
                                         GemmShape{GemmLayout::vnni4, int(MR), int(NR)}};

}  // namespace iqk
