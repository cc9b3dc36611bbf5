// AVX-512 quantize kernels (F + BW + VL): 16 floats per vector, masked loads
// and stores for tails so no byte outside the arrays is touched.
#include <immintrin.h>

#include "kernels/quantize/quantize_entry.h"

namespace iqk {

namespace {
// Same steps as the scalar kernel, in the same order: true division, round
// half to even, NaN -> zero point, add zero point, clamp, narrow to bytes.
inline __m128i quantize16(__m512 x, __m512 scale, __m512 zp, __m512 lo, __m512 hi) {
  __m512 r = _mm512_roundscale_ps(_mm512_div_ps(x, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __mmask16 ordered = _mm512_cmp_ps_mask(r, r, _CMP_ORD_Q);
  r = _mm512_mask_add_ps(zp, ordered, r, zp);
  r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
  // Values are integral and within [-128, 255]: the conversion is exact and
  // truncating to the low byte gives the int8 or uint8 encoding.
  return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r));
}

inline __mmask16 tail_mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// The steps of quantize_entry.h.
struct QuantizeAvx512 {
  static void tensor(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    const __m512 vs = _mm512_set1_ps(scale);
    const __m512 vz = _mm512_set1_ps(static_cast<float>(zp));
    const __m512 lo = _mm512_set1_ps(static_cast<float>(qmin));
    const __m512 hi = _mm512_set1_ps(static_cast<float>(qmax));
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
      const __m128i a = quantize16(_mm512_loadu_ps(x + i), vs, vz, lo, hi);
      const __m128i b = quantize16(_mm512_loadu_ps(x + i + 16), vs, vz, lo, hi);
      const __m128i c = quantize16(_mm512_loadu_ps(x + i + 32), vs, vz, lo, hi);
      const __m128i d = quantize16(_mm512_loadu_ps(x + i + 48), vs, vz, lo, hi);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), a);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i + 16), b);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i + 32), c);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i + 48), d);
    }
    for (; i + 16 <= n; i += 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                       quantize16(_mm512_loadu_ps(x + i), vs, vz, lo, hi));
    }
    if (i < n) {
      const __mmask16 m = tail_mask(n - i);
      _mm_mask_storeu_epi8(y + i, m, quantize16(_mm512_maskz_loadu_ps(m, x + i), vs, vz, lo, hi));
    }
  }

  static void channels(const float* x, uint8_t* y, size_t rows, size_t channels, const float* scale,
                       const int32_t* zp, int32_t qmin, int32_t qmax) {
    const __m512 lo = _mm512_set1_ps(static_cast<float>(qmin));
    const __m512 hi = _mm512_set1_ps(static_cast<float>(qmax));
    for (size_t r = 0; r < rows; ++r, x += channels, y += channels) {
      size_t c = 0;
      for (; c + 16 <= channels; c += 16) {
        const __m512 vs = _mm512_loadu_ps(scale + c);
        const __m512 vz = _mm512_cvtepi32_ps(_mm512_loadu_si512(zp + c));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + c),
                         quantize16(_mm512_loadu_ps(x + c), vs, vz, lo, hi));
      }
      if (c < channels) {
        const __mmask16 m = tail_mask(channels - c);
        // Masked-off lanes get scale 1 so that they compute nothing exceptional.
        const __m512 vs = _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, scale + c);
        const __m512 vz = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, zp + c));
        _mm_mask_storeu_epi8(y + c, m, quantize16(_mm512_maskz_loadu_ps(m, x + c), vs, vz, lo, hi));
      }
    }
  }
};
}  // namespace

IQK_DEFINE_QUANTIZE_KERNELS(avx512vnni, QuantizeAvx512)

}  // namespace iqk
