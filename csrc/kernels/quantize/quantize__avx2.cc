// AVX2 quantize kernels: 8 floats per vector, 32 per step. AVX2 has no byte
// masked store, so a tail goes through a small stack buffer: the caller's
// arrays are never read or written past their end.
#include <immintrin.h>

#include <cstring>

#include "kernels/quantize/quantize_entry.h"

namespace iqk {

namespace {
// Same steps as the scalar kernel, in the same order.
inline __m256i quantize8(__m256 x, __m256 scale, __m256 zp, __m256 lo, __m256 hi) {
  __m256 r = _mm256_round_ps(_mm256_div_ps(x, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 ordered = _mm256_cmp_ps(r, r, _CMP_ORD_Q);
  r = _mm256_blendv_ps(zp, _mm256_add_ps(r, zp), ordered);
  r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
  return _mm256_cvtps_epi32(r);  // integral, in [-128, 255]: exact
}

// Four vectors of int32 in [-128, 255] -> 32 bytes holding each value's low
// byte. packs_epi32 is exact for this range; masking to the low byte makes
// packus exact for int8 and uint8 alike. Both packs work within 128-bit lanes,
// so the final permute puts the 4-byte groups back in order.
inline __m256i narrow32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i low = _mm256_set1_epi16(0x00FF);
  const __m256i ab = _mm256_and_si256(_mm256_packs_epi32(a, b), low);
  const __m256i cd = _mm256_and_si256(_mm256_packs_epi32(c, d), low);
  return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd),
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

struct Params {
  __m256 lo, hi;
};

template <typename ScaleAt, typename ZpAt>
inline void quantize_span(const float* x, uint8_t* y, size_t n, ScaleAt scale_at, ZpAt zp_at,
                          Params p) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a = quantize8(_mm256_loadu_ps(x + i), scale_at(i), zp_at(i), p.lo, p.hi);
    const __m256i b = quantize8(_mm256_loadu_ps(x + i + 8), scale_at(i + 8), zp_at(i + 8), p.lo, p.hi);
    const __m256i c = quantize8(_mm256_loadu_ps(x + i + 16), scale_at(i + 16), zp_at(i + 16), p.lo, p.hi);
    const __m256i d = quantize8(_mm256_loadu_ps(x + i + 24), scale_at(i + 24), zp_at(i + 24), p.lo, p.hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), narrow32(a, b, c, d));
  }
  if (i < n) {
    alignas(32) float buf[32] = {};
    alignas(32) uint8_t out[32];
    const size_t rest = n - i;
    std::memcpy(buf, x + i, rest * sizeof(float));
    const __m256i a = quantize8(_mm256_load_ps(buf), scale_at(i), zp_at(i), p.lo, p.hi);
    const __m256i b = quantize8(_mm256_load_ps(buf + 8), scale_at(i + 8), zp_at(i + 8), p.lo, p.hi);
    const __m256i c = quantize8(_mm256_load_ps(buf + 16), scale_at(i + 16), zp_at(i + 16), p.lo, p.hi);
    const __m256i d = quantize8(_mm256_load_ps(buf + 24), scale_at(i + 24), zp_at(i + 24), p.lo, p.hi);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out), narrow32(a, b, c, d));
    std::memcpy(y + i, out, rest);
  }
}

inline Params params(int32_t qmin, int32_t qmax) {
  return {_mm256_set1_ps(static_cast<float>(qmin)), _mm256_set1_ps(static_cast<float>(qmax))};
}

// The steps of quantize_entry.h.
struct QuantizeAvx2 {
  static void tensor(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256 vz = _mm256_set1_ps(static_cast<float>(zp));
    quantize_span(x, y, n, [&](size_t) { return vs; }, [&](size_t) { return vz; }, params(qmin, qmax));
  }
  // The channel parameters staged so that a tail step may read them
  // (with_padded_channels), as float.
  static void channels(const float* x, uint8_t* y, size_t rows, size_t channels, const float* scale,
                       const int32_t* zp, int32_t qmin, int32_t qmax) {
    const Params p = params(qmin, qmax);
    with_padded_channels<float>(channels, scale, zp, [&](size_t c0, size_t nc, const float* s, const float* z) {
      auto scale_at = [s](size_t c) { return _mm256_load_ps(s + c); };
      auto zp_at = [z](size_t c) { return _mm256_load_ps(z + c); };
      for (size_t r = 0; r < rows; ++r) {
        quantize_span(x + r * channels + c0, y + r * channels + c0, nc, scale_at, zp_at, p);
      }
    });
  }
};
}  // namespace

IQK_DEFINE_QUANTIZE_KERNELS(avx2, QuantizeAvx2)

}  // namespace iqk
