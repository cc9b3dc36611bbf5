// AVX2 quantize kernels: 8 floats per vector, 32 per step. AVX2 has no byte
// masked store, so a tail goes through a small stack buffer: the caller's
// arrays are never read or written past their end.
#include <immintrin.h>

#include <cstring>

#include "runtime/kernel_counter.h"
#include "kernels/quantize/quantize.h"

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
}  // namespace

void quantize_f32_q8__avx2(const float* x, uint8_t* y, size_t n, float scale, int32_t zp,
                           int32_t qmin, int32_t qmax) {
  IQK_KERNEL_ENTRY("quantize_f32_q8__avx2");
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 vz = _mm256_set1_ps(static_cast<float>(zp));
  const Params p{_mm256_set1_ps(static_cast<float>(qmin)), _mm256_set1_ps(static_cast<float>(qmax))};
  quantize_span(x, y, n, [&](size_t) { return vs; }, [&](size_t) { return vz; }, p);
}

void quantize_channels_f32_q8__avx2(const float* x, uint8_t* y, size_t rows, size_t channels,
                                    const float* scale, const int32_t* zp, int32_t qmin,
                                    int32_t qmax) {
  IQK_KERNEL_ENTRY("quantize_channels_f32_q8__avx2");
  const Params p{_mm256_set1_ps(static_cast<float>(qmin)), _mm256_set1_ps(static_cast<float>(qmax))};
  // Channel parameters, padded to a whole step so that the tail may read them
  // (scale 1 in the padding keeps those lanes unexceptional). Copied once per
  // call; channels beyond the buffer are handled in chunks.
  constexpr size_t kChunk = 256;
  alignas(32) float s_buf[kChunk + 32];
  alignas(32) float z_buf[kChunk + 32];
  for (size_t c0 = 0; c0 < channels; c0 += kChunk) {
    const size_t nc = channels - c0 < kChunk ? channels - c0 : kChunk;
    for (size_t c = 0; c < kChunk + 32; ++c) {
      s_buf[c] = c < nc ? scale[c0 + c] : 1.0f;
      z_buf[c] = c < nc ? static_cast<float>(zp[c0 + c]) : 0.0f;
    }
    auto scale_at = [&](size_t c) { return _mm256_load_ps(s_buf + c); };
    auto zp_at = [&](size_t c) { return _mm256_load_ps(z_buf + c); };
    for (size_t r = 0; r < rows; ++r) {
      quantize_span(x + r * channels + c0, y + r * channels + c0, nc, scale_at, zp_at, p);
    }
  }
}

}  // namespace iqk
