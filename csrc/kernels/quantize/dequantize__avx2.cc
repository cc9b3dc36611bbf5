// AVX2 dequantize kernels: 8 bytes widen to 8 int32, subtract the zero point,
// convert (exact) and multiply once, as the scalar kernel does. Tails go
// through a stack buffer so nothing outside the arrays is touched.
#include <immintrin.h>

#include <cstring>

#include "kernels/quantize/quantize_entry.h"

namespace iqk {

namespace {
template <bool Signed>
inline __m256 dequantize8(const uint8_t* q, __m256i zp, __m256 scale) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q));
  const __m256i w = Signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(w, zp)), scale);
}

template <bool Signed, typename ScaleAt, typename ZpAt>
inline void dequantize_span(const uint8_t* q, float* y, size_t n, ScaleAt scale_at, ZpAt zp_at) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm256_storeu_ps(y + i, dequantize8<Signed>(q + i, zp_at(i), scale_at(i)));
    _mm256_storeu_ps(y + i + 8, dequantize8<Signed>(q + i + 8, zp_at(i + 8), scale_at(i + 8)));
    _mm256_storeu_ps(y + i + 16, dequantize8<Signed>(q + i + 16, zp_at(i + 16), scale_at(i + 16)));
    _mm256_storeu_ps(y + i + 24, dequantize8<Signed>(q + i + 24, zp_at(i + 24), scale_at(i + 24)));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, dequantize8<Signed>(q + i, zp_at(i), scale_at(i)));
  if (i < n) {
    alignas(32) uint8_t buf[8] = {};
    alignas(32) float out[8];
    std::memcpy(buf, q + i, n - i);
    _mm256_store_ps(out, dequantize8<Signed>(buf, zp_at(i), scale_at(i)));
    std::memcpy(y + i, out, (n - i) * sizeof(float));
  }
}

// The steps of quantize_entry.h.
struct DequantizeAvx2 {
  template <bool Signed>
  static void tensor(const uint8_t* q, float* y, size_t n, float scale, int32_t zp) {
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256i vz = _mm256_set1_epi32(zp);
    dequantize_span<Signed>(q, y, n, [&](size_t) { return vs; }, [&](size_t) { return vz; });
  }
  // The channel parameters staged so that a tail step may read them
  // (with_padded_channels), the zero points as int32.
  template <bool Signed>
  static void channels(const uint8_t* q, float* y, size_t rows, size_t channels, const float* scale,
                       const int32_t* zp) {
    with_padded_channels<int32_t>(channels, scale, zp, [&](size_t c0, size_t nc, const float* s, const int32_t* z) {
      auto scale_at = [s](size_t c) { return _mm256_load_ps(s + c); };
      auto zp_at = [z](size_t c) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(z + c)); };
      for (size_t r = 0; r < rows; ++r) {
        dequantize_span<Signed>(q + r * channels + c0, y + r * channels + c0, nc, scale_at, zp_at);
      }
    });
  }
};
}  // namespace

IQK_DEFINE_DEQUANTIZE_KERNELS(avx2, DequantizeAvx2)

}  // namespace iqk
