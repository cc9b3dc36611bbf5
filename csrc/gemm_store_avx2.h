// The GEMM epilogue (gemm_epilogue.h) on 8 columns of 256-bit vectors, for the
// AVX2 and AVX-VNNI tile kernels. Intrinsics: include only from files built
// with AVX2 enabled.
#pragma once

#include <immintrin.h>

#include <cstring>

#include "gemm.h"

namespace iqk {

// Stores columns [n, n + cols) of row m, cols in 1..8.
static inline void gemm_store8_avx2(const GemmEpilogue& ep, size_t m, size_t n, __m256i acc, size_t cols) {
  __m256i v = acc;
  if (ep.b_zp) {
    const __m256i rs = _mm256_set1_epi32(ep.row_sum[m]);
    v = _mm256_sub_epi32(
        v, _mm256_mullo_epi32(rs, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.b_zp + n))));
  }
  v = _mm256_sub_epi32(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.col_off + n)));
  switch (ep.kind) {
    case GemmOut::i32: {
      int32_t* c = static_cast<int32_t*>(ep.c) + m * ep.ldc + n;
      if (cols == 8) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), v);
      } else {
        alignas(32) int32_t buf[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(buf), v);
        std::memcpy(c, buf, cols * sizeof(int32_t));
      }
      break;
    }
    case GemmOut::f32: {
      __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(ep.scale + n));
      y = _mm256_add_ps(y, _mm256_loadu_ps(ep.bias + n));
      if (ep.relu) y = _mm256_max_ps(_mm256_setzero_ps(), y);
      float* c = static_cast<float*>(ep.c) + m * ep.ldc + n;
      if (cols == 8) {
        _mm256_storeu_ps(c, y);
      } else {
        alignas(32) float buf[8];
        _mm256_store_ps(buf, y);
        std::memcpy(c, buf, cols * sizeof(float));
      }
      break;
    }
    case GemmOut::q8: {
      __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(ep.scale + n));
      t = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      t = _mm256_add_ps(t, _mm256_set1_ps(static_cast<float>(ep.out_zp)));
      t = _mm256_max_ps(t, _mm256_set1_ps(static_cast<float>(ep.lo)));
      t = _mm256_min_ps(t, _mm256_set1_ps(static_cast<float>(ep.hi)));
      // int32 in [-128, 255] -> low bytes (exact, as in quantize_avx2.cc).
      const __m256i q = _mm256_cvtps_epi32(t);
      const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      const __m128i bytes = _mm_packus_epi16(_mm_and_si128(w, _mm_set1_epi16(0x00FF)), _mm_setzero_si128());
      alignas(16) uint8_t buf[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(buf), bytes);
      std::memcpy(static_cast<uint8_t*>(ep.c) + m * ep.ldc + n, buf, cols);
      break;
    }
  }
}

}  // namespace iqk
