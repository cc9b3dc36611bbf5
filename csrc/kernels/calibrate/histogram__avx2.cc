// AVX2 abs_histogram kernel: 16 bins per block, computed on four vectors of
// 4 doubles (the scalar steps: |x| widened to double, times inv_width, min
// with bins - 1, truncated).
#include <immintrin.h>

#include "kernels/calibrate/histogram_loop.h"

namespace iqk {

namespace {
struct HistogramAvx2 {
  static constexpr size_t kBlock = 16;
  static void bins(const float* x, double inv_width, double last, uint32_t* idx) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256d w = _mm256_set1_pd(inv_width), top = _mm256_set1_pd(last);
    for (size_t j = 0; j < kBlock; j += 8) {
      const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask);
      // min_pd(t, top) returns top when t is NaN (its second operand).
      const __m256d lo = _mm256_min_pd(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), w), top);
      const __m256d hi = _mm256_min_pd(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), w), top);
      _mm_store_si128(reinterpret_cast<__m128i*>(idx + j), _mm256_cvttpd_epi32(lo));
      _mm_store_si128(reinterpret_cast<__m128i*>(idx + j + 4), _mm256_cvttpd_epi32(hi));
    }
  }
};
}  // namespace

IQK_DEFINE_HISTOGRAM_KERNEL(avx2, HistogramAvx2)

}  // namespace iqk
