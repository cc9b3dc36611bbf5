// AVX2 value-range kernel (RangeFn, quantize.h): 8 floats per vector, 32 per
// step. Min, max and the min / max of a part seen twice are the same, so
// a tail is one load of the last 8 elements (overlapping the elements before
// it), or, below 8 elements, a stack buffer filled with copies of x[0]: no
// byte outside x is read.
#include <immintrin.h>

#include <cstring>

#include "kernels/quantize/quantize.h"
#include "runtime/kernel_counter.h"

namespace iqk {

namespace {
constexpr size_t kPrefetch = 2048;  // floats ahead (range__avx512vnni.cc)

// One vector into the running min / max / finiteness. vminps(v, mn) returns
// mn when v is NaN, so a NaN never enters mn or mx; fma(v, 0, bad) adds 0 for
// every finite v and NaN for NaN and +-Inf, and a NaN in `bad` stays.
struct Acc {
  __m256 mn = _mm256_set1_ps(__builtin_inff()), mx = _mm256_set1_ps(-__builtin_inff()),
         bad = _mm256_setzero_ps();
  inline void add(__m256 v) {
    mn = _mm256_min_ps(v, mn);
    mx = _mm256_max_ps(v, mx);
    bad = _mm256_fmadd_ps(v, _mm256_setzero_ps(), bad);
  }
  inline void merge(const Acc& o) {
    mn = _mm256_min_ps(o.mn, mn);
    mx = _mm256_max_ps(o.mx, mx);
    bad = _mm256_add_ps(o.bad, bad);
  }
};

inline float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
}  // namespace

bool range_f32__avx2(const float* x, size_t n, float* lo, float* hi) {
  IQK_KERNEL_ENTRY("range_f32__avx2");
  // Four accumulators: each of min, max and fma has a latency of several
  // cycles, and the loads of a step are independent.
  Acc a0, a1, a2, a3;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    // Software prefetch for a large x, as in range__avx512vnni.cc; a
    // prefetch past the end of x is a hint, not a read, and never faults.
    _mm_prefetch(reinterpret_cast<const char*>(x + i + kPrefetch), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(x + i + kPrefetch + 16), _MM_HINT_T0);
    a0.add(_mm256_loadu_ps(x + i));
    a1.add(_mm256_loadu_ps(x + i + 8));
    a2.add(_mm256_loadu_ps(x + i + 16));
    a3.add(_mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) a0.add(_mm256_loadu_ps(x + i));
  if (i < n) {
    if (n >= 8) {
      a1.add(_mm256_loadu_ps(x + n - 8));
    } else {
      float buf[8];
      for (float& b : buf) b = x[0];
      std::memcpy(buf, x, n * sizeof(float));
      a1.add(_mm256_loadu_ps(buf));
    }
  }
  a0.merge(a1);
  a2.merge(a3);
  a0.merge(a2);
  *lo = hmin(a0.mn);
  *hi = hmax(a0.mx);
  return _mm256_movemask_ps(_mm256_cmp_ps(a0.bad, a0.bad, _CMP_UNORD_Q)) == 0;
}

}  // namespace iqk
