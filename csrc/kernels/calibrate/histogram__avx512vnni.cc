// AVX-512 abs_histogram kernel: 32 bins per block, computed on four vectors
// of 8 doubles (the scalar steps: |x| widened to double, times inv_width,
// min with bins - 1, truncated).
#include <immintrin.h>

#include "kernels/calibrate/histogram_loop.h"

namespace iqk {

namespace {
struct HistogramAvx512 {
  static constexpr size_t kBlock = 32;
  static void bins(const float* x, double inv_width, double last, uint32_t* idx) {
    const __m512d w = _mm512_set1_pd(inv_width), top = _mm512_set1_pd(last);
    for (size_t j = 0; j < kBlock; j += 16) {
      const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + j));
      // min_pd(t, top) returns top when t is NaN (its second operand).
      const __m512d lo = _mm512_min_pd(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a)), w), top);
      const __m512d hi =
          _mm512_min_pd(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1))), w), top);
      _mm256_store_si256(reinterpret_cast<__m256i*>(idx + j), _mm512_cvttpd_epi32(lo));
      _mm256_store_si256(reinterpret_cast<__m256i*>(idx + j + 8), _mm512_cvttpd_epi32(hi));
    }
  }
};
}  // namespace

IQK_DEFINE_HISTOGRAM_KERNEL(avx512vnni, HistogramAvx512)

}  // namespace iqk
