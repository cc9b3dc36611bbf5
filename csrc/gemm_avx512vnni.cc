// AVX512-VNNI GEMM tile kernel: 6 rows x 64 columns (4 zmm) of int32
// accumulators, one vpdpbusd per (row, zmm) per group of 4 k. 24 accumulators
// + 4 B vectors + 1 broadcast fit the 32 zmm registers; per group the kernel
// loads 4 B vectors and 6 broadcasts for 24 vpdpbusd.
#include <immintrin.h>

#include "gemm.h"
#include "kernel_counter.h"

namespace iqk {

namespace {

constexpr size_t MR = 6, NR = 64;

template <size_t R>
inline void compute(size_t groups, const uint8_t* a, const int8_t* b, __m512i (&acc)[MR][4]) {
  for (size_t i = 0; i < R; ++i)
    for (size_t j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_si512();
  for (size_t g = 0; g < groups; ++g, a += MR * 4, b += NR * 4) {
    const __m512i b0 = _mm512_loadu_si512(b);
    const __m512i b1 = _mm512_loadu_si512(b + 64);
    const __m512i b2 = _mm512_loadu_si512(b + 128);
    const __m512i b3 = _mm512_loadu_si512(b + 192);
    for (size_t i = 0; i < R; ++i) {
      int32_t a4;
      __builtin_memcpy(&a4, a + 4 * i, 4);
      const __m512i av = _mm512_set1_epi32(a4);
      acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], av, b0);
      acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], av, b1);
      acc[i][2] = _mm512_dpbusd_epi32(acc[i][2], av, b2);
      acc[i][3] = _mm512_dpbusd_epi32(acc[i][3], av, b3);
    }
  }
}

// The epilogue of gemm_epilogue.h on 16 columns, same steps, same order.
inline void store16(const GemmEpilogue& ep, size_t m, size_t n, __m512i acc, __mmask16 mask) {
  __m512i v = acc;
  if (ep.b_zp) {
    const __m512i rs = _mm512_set1_epi32(ep.row_sum[m]);
    v = _mm512_sub_epi32(v, _mm512_mullo_epi32(rs, _mm512_loadu_si512(ep.b_zp + n)));
  }
  v = _mm512_sub_epi32(v, _mm512_loadu_si512(ep.col_off + n));
  switch (ep.kind) {
    case GemmOut::i32:
      _mm512_mask_storeu_epi32(static_cast<int32_t*>(ep.c) + m * ep.ldc + n, mask, v);
      break;
    case GemmOut::f32: {
      __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_loadu_ps(ep.scale + n));
      y = _mm512_add_ps(y, _mm512_loadu_ps(ep.bias + n));
      if (ep.relu) y = _mm512_max_ps(_mm512_setzero_ps(), y);
      _mm512_mask_storeu_ps(static_cast<float*>(ep.c) + m * ep.ldc + n, mask, y);
      break;
    }
    case GemmOut::q8: {
      __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_loadu_ps(ep.scale + n));
      t = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      t = _mm512_add_ps(t, _mm512_set1_ps(static_cast<float>(ep.out_zp)));
      t = _mm512_max_ps(t, _mm512_set1_ps(static_cast<float>(ep.lo)));
      t = _mm512_min_ps(t, _mm512_set1_ps(static_cast<float>(ep.hi)));
      _mm_mask_storeu_epi8(static_cast<uint8_t*>(ep.c) + m * ep.ldc + n, mask,
                           _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(t)));
      break;
    }
  }
}

template <size_t R>
void tile(size_t nr, size_t groups, const uint8_t* a, const int8_t* b, const GemmEpilogue& ep,
          size_t m0, size_t n0) {
  __m512i acc[MR][4];
  compute<R>(groups, a, b, acc);
  for (size_t j = 0; j < 4; ++j) {
    if (16 * j >= nr) break;
    const size_t cols = nr - 16 * j;
    const __mmask16 mask = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1u);
    for (size_t i = 0; i < R; ++i) store16(ep, m0 + i, n0 + 16 * j, acc[i][j], mask);
  }
}

}  // namespace

void gemm_u8s8s32_6x64c4__avx512vnni(size_t mr, size_t nr, size_t groups, const void* a_panel,
                                     const void* b_panel, const GemmEpilogue& ep, size_t m0,
                                     size_t n0) {
  IQK_KERNEL_ENTRY("gemm_u8s8s32_6x64c4__avx512vnni");
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
