// AVX-512 dequantize kernels: 16 bytes widen to 16 int32, subtract the zero
// point, convert (exact) and multiply once, as the scalar kernel does.
#include <immintrin.h>

#include "kernels/quantize/quantize_entry.h"

namespace iqk {

namespace {
template <bool Signed>
inline __m512i widen16(__m128i q) {
  return Signed ? _mm512_cvtepi8_epi32(q) : _mm512_cvtepu8_epi32(q);
}

template <bool Signed>
inline __m512 dequantize16(__m128i q, __m512i zp, __m512 scale) {
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(widen16<Signed>(q), zp)), scale);
}

inline __mmask16 tail_mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// The steps of quantize_entry.h.
struct DequantizeAvx512 {
  template <bool Signed>
  static void tensor(const uint8_t* q, float* y, size_t n, float scale, int32_t zp) {
    const __m512 vs = _mm512_set1_ps(scale);
    const __m512i vz = _mm512_set1_epi32(zp);
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
      const __m512i v = _mm512_loadu_si512(q + i);
      _mm512_storeu_ps(y + i, dequantize16<Signed>(_mm512_castsi512_si128(v), vz, vs));
      _mm512_storeu_ps(y + i + 16, dequantize16<Signed>(_mm512_extracti32x4_epi32(v, 1), vz, vs));
      _mm512_storeu_ps(y + i + 32, dequantize16<Signed>(_mm512_extracti32x4_epi32(v, 2), vz, vs));
      _mm512_storeu_ps(y + i + 48, dequantize16<Signed>(_mm512_extracti32x4_epi32(v, 3), vz, vs));
    }
    for (; i + 16 <= n; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i));
      _mm512_storeu_ps(y + i, dequantize16<Signed>(v, vz, vs));
    }
    if (i < n) {
      const __mmask16 m = tail_mask(n - i);
      _mm512_mask_storeu_ps(y + i, m, dequantize16<Signed>(_mm_maskz_loadu_epi8(m, q + i), vz, vs));
    }
  }

  template <bool Signed>
  static void channels(const uint8_t* q, float* y, size_t rows, size_t channels, const float* scale,
                       const int32_t* zp) {
    for (size_t r = 0; r < rows; ++r, q += channels, y += channels) {
      size_t c = 0;
      for (; c + 16 <= channels; c += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + c));
        _mm512_storeu_ps(y + c, dequantize16<Signed>(v, _mm512_loadu_si512(zp + c),
                                                     _mm512_loadu_ps(scale + c)));
      }
      if (c < channels) {
        const __mmask16 m = tail_mask(channels - c);
        const __m512 out = dequantize16<Signed>(_mm_maskz_loadu_epi8(m, q + c),
                                                _mm512_maskz_loadu_epi32(m, zp + c),
                                                _mm512_maskz_loadu_ps(m, scale + c));
        _mm512_mask_storeu_ps(y + c, m, out);
      }
    }
  }
};
}  // namespace

IQK_DEFINE_DEQUANTIZE_KERNELS(avx512vnni, DequantizeAvx512)

}  // namespace iqk
