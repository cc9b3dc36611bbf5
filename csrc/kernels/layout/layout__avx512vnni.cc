// 16 x 16 transposes of 4-byte elements in zmm registers, for moving int32 /
// float32 NHWC output tiles into NCHW planes (ops/conv.cc, scatter_nchw).
#include <immintrin.h>

#include "kernels/layout/transpose.h"

namespace iqk {

void transpose16x16_b32__avx512vnni(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride) {
  __m512i r[16], t[16], u[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(src + 4 * i * src_stride);
  // Within each 128-bit lane L (columns 4L..4L+3): after these two steps
  // u[4k + m] lane L holds column 4L + m of rows 4k..4k+3.
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 4; ++k) {
    u[4 * k + 0] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
    u[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
    u[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
    u[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
  }
  // Output row 4L + m gathers lane L of u[m], u[4 + m], u[8 + m], u[12 + m].
  for (int m = 0; m < 4; ++m) {
    const __m512i x0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44), x1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xEE);
    const __m512i y0 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44);
    const __m512i y1 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xEE);
    _mm512_storeu_si512(dst + 4 * (0 + m) * dst_stride, _mm512_shuffle_i32x4(x0, y0, 0x88));
    _mm512_storeu_si512(dst + 4 * (4 + m) * dst_stride, _mm512_shuffle_i32x4(x0, y0, 0xDD));
    _mm512_storeu_si512(dst + 4 * (8 + m) * dst_stride, _mm512_shuffle_i32x4(x1, y1, 0x88));
    _mm512_storeu_si512(dst + 4 * (12 + m) * dst_stride, _mm512_shuffle_i32x4(x1, y1, 0xDD));
  }
}

}  // namespace iqk

namespace iqk {

// Per group of 4 rows: the 4 rows of 64 columns interleaved within each
// 128-bit lane (lane L then holds columns 16L..16L+15 as 4 vectors of 4
// columns' 4 bytes), then the 4 x 4 lanes transposed, so that strip L is lane
// L of the 4 vectors. The column sums come from the packed bytes: vpmaddubsw
// against ones adds a column's bytes in pairs, vpmaddwd the pairs.
void pack_vnni4_strips64__avx512vnni(const uint8_t* src, size_t stride, size_t K, uint8_t flip, uint8_t* dst,
                                 size_t dst_step, int32_t* sums) {
  const __m512i f = _mm512_set1_epi8(static_cast<char>(flip)), zero = _mm512_setzero_si512();
  const __m512i ones8 = _mm512_set1_epi8(1), ones16 = _mm512_set1_epi16(1);
  __m512i acc[4] = {zero, zero, zero, zero};
  const size_t groups = (K + 3) / 4;
  for (size_t g = 0; g < groups; ++g) {
    __m512i r[4];
    for (size_t t = 0; t < 4; ++t) {
      const size_t k = 4 * g + t;
      r[t] = k < K ? _mm512_xor_si512(_mm512_loadu_si512(src + k * stride), f) : zero;
    }
    const __m512i ab_lo = _mm512_unpacklo_epi8(r[0], r[1]), ab_hi = _mm512_unpackhi_epi8(r[0], r[1]);
    const __m512i cd_lo = _mm512_unpacklo_epi8(r[2], r[3]), cd_hi = _mm512_unpackhi_epi8(r[2], r[3]);
    const __m512i q0 = _mm512_unpacklo_epi16(ab_lo, cd_lo), q1 = _mm512_unpackhi_epi16(ab_lo, cd_lo);
    const __m512i q2 = _mm512_unpacklo_epi16(ab_hi, cd_hi), q3 = _mm512_unpackhi_epi16(ab_hi, cd_hi);
    const __m512i t0 = _mm512_shuffle_i32x4(q0, q1, 0x44), t1 = _mm512_shuffle_i32x4(q2, q3, 0x44);
    const __m512i t2 = _mm512_shuffle_i32x4(q0, q1, 0xEE), t3 = _mm512_shuffle_i32x4(q2, q3, 0xEE);
    const __m512i strip[4] = {_mm512_shuffle_i32x4(t0, t1, 0x88), _mm512_shuffle_i32x4(t0, t1, 0xDD),
                              _mm512_shuffle_i32x4(t2, t3, 0x88), _mm512_shuffle_i32x4(t2, t3, 0xDD)};
    for (size_t s = 0; s < 4; ++s) {
      _mm512_storeu_si512(dst + g * dst_step + 64 * s, strip[s]);
      acc[s] = _mm512_add_epi32(acc[s], _mm512_madd_epi16(_mm512_maddubs_epi16(ones8, strip[s]), ones16));
    }
  }
  // The bytes are the columns' values less 128 (signed): add 128 per row back.
  const __m512i rows = _mm512_set1_epi32(static_cast<int32_t>(128 * K));
  for (size_t s = 0; s < 4; ++s) _mm512_storeu_si512(sums + 16 * s, _mm512_add_epi32(acc[s], rows));
}

}  // namespace iqk
