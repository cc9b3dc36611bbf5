// The portable transposes and packings of transpose.h. SSE2 is part of
// x86-64 itself (no per-file flag): they use it there, and move one element
// at a time elsewhere.
#include "kernels/layout/transpose.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace iqk {

void transpose8x8_u8(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, uint8_t flip) {
#if defined(__SSE2__)
  const __m128i f = _mm_set1_epi8(static_cast<char>(flip));
  __m128i r[8];
  for (int i = 0; i < 8; ++i)
    r[i] = _mm_xor_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i * src_stride)), f);
  const __m128i a0 = _mm_unpacklo_epi8(r[0], r[1]), a1 = _mm_unpacklo_epi8(r[2], r[3]);
  const __m128i a2 = _mm_unpacklo_epi8(r[4], r[5]), a3 = _mm_unpacklo_epi8(r[6], r[7]);
  const __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);
  const __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
  const __m128i c[4] = {_mm_unpacklo_epi32(b0, b2), _mm_unpackhi_epi32(b0, b2), _mm_unpacklo_epi32(b1, b3),
                        _mm_unpackhi_epi32(b1, b3)};
  for (int j = 0; j < 4; ++j) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + (2 * j) * dst_stride), c[j]);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + (2 * j + 1) * dst_stride), _mm_unpackhi_epi64(c[j], c[j]));
  }
#else
  for (size_t i = 0; i < 8; ++i)
    for (size_t j = 0; j < 8; ++j) dst[j * dst_stride + i] = src[i * src_stride + j] ^ flip;
#endif
}

void transpose4x4_b32(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride) {
#if defined(__SSE2__)
  __m128i r[4];
  for (int i = 0; i < 4; ++i) r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 4 * i * src_stride));
  const __m128i a0 = _mm_unpacklo_epi32(r[0], r[1]), a1 = _mm_unpacklo_epi32(r[2], r[3]);
  const __m128i a2 = _mm_unpackhi_epi32(r[0], r[1]), a3 = _mm_unpackhi_epi32(r[2], r[3]);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_unpacklo_epi64(a0, a1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 4 * dst_stride), _mm_unpackhi_epi64(a0, a1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 8 * dst_stride), _mm_unpacklo_epi64(a2, a3));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 12 * dst_stride), _mm_unpackhi_epi64(a2, a3));
#else
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 4; ++j) std::memcpy(dst + 4 * (j * dst_stride + i), src + 4 * (i * src_stride + j), 4);
#endif
}

void pack_vnni4_strip16(const uint8_t* src, size_t stride, size_t K, uint8_t flip, uint8_t* dst,
                               size_t dst_step, int32_t* sums) {
#if defined(__SSE2__)
  const __m128i f = _mm_set1_epi8(static_cast<char>(flip)), top = _mm_set1_epi8(static_cast<char>(0x80));
  const __m128i zero = _mm_setzero_si128();
  __m128i s32[4] = {zero, zero, zero, zero};  // columns 0-3, 4-7, 8-11, 12-15
  __m128i s16_lo = zero, s16_hi = zero;       // 16-bit partial sums, flushed every 64 groups
  auto flush = [&] {
    s32[0] = _mm_add_epi32(s32[0], _mm_unpacklo_epi16(s16_lo, zero));
    s32[1] = _mm_add_epi32(s32[1], _mm_unpackhi_epi16(s16_lo, zero));
    s32[2] = _mm_add_epi32(s32[2], _mm_unpacklo_epi16(s16_hi, zero));
    s32[3] = _mm_add_epi32(s32[3], _mm_unpackhi_epi16(s16_hi, zero));
    s16_lo = s16_hi = zero;
  };
  const size_t groups = (K + 3) / 4;
  for (size_t g = 0; g < groups; ++g) {
    __m128i r[4];
    for (size_t t = 0; t < 4; ++t) {
      const size_t k = 4 * g + t;
      r[t] = k < K ? _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k * stride)), f) : zero;
      if (k < K) {
        const __m128i u = _mm_xor_si128(r[t], top);
        s16_lo = _mm_add_epi16(s16_lo, _mm_unpacklo_epi8(u, zero));
        s16_hi = _mm_add_epi16(s16_hi, _mm_unpackhi_epi8(u, zero));
      }
    }
    const __m128i ab_lo = _mm_unpacklo_epi8(r[0], r[1]), ab_hi = _mm_unpackhi_epi8(r[0], r[1]);
    const __m128i cd_lo = _mm_unpacklo_epi8(r[2], r[3]), cd_hi = _mm_unpackhi_epi8(r[2], r[3]);
    __m128i* o = reinterpret_cast<__m128i*>(dst + g * dst_step);
    _mm_storeu_si128(o, _mm_unpacklo_epi16(ab_lo, cd_lo));
    _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab_lo, cd_lo));
    _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab_hi, cd_hi));
    _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab_hi, cd_hi));
    if (g % 64 == 63) flush();  // 256 rows of at most 255: still within 16 bits
  }
  flush();
  for (int i = 0; i < 4; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(sums + 4 * i), s32[i]);
#else
  for (size_t j = 0; j < 16; ++j) sums[j] = 0;
  for (size_t g = 0; g < (K + 3) / 4; ++g)
    for (size_t j = 0; j < 16; ++j)
      for (size_t t = 0; t < 4; ++t) {
        const size_t k = 4 * g + t;
        const uint8_t v = k < K ? static_cast<uint8_t>(src[k * stride + j] ^ flip) : 0;
        dst[g * dst_step + 4 * j + t] = v;
        if (k < K) sums[j] += static_cast<uint8_t>(v ^ 0x80);
      }
#endif
}

}  // namespace iqk
