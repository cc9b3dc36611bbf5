// Small-block transposes for moving between NCHW and NHWC: 8x8 bytes and
// 4x4 int32 in SSE2 registers (part of x86-64 itself, so no per-file ISA
// flag is involved), one element at a time elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace iqk {

// dst[j * dst_stride + i] = src[i * src_stride + j] ^ flip for i, j < 8.
inline void transpose8x8_u8(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, uint8_t flip) {
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

// The same for 4x4 elements of 4 bytes (int32 or float32); strides in elements.
inline void transpose4x4_b32(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride) {
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

}  // namespace iqk
