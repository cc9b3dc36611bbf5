// 16 x 16 transposes of 4-byte elements in zmm registers, for moving int32 /
// float32 NHWC output tiles into NCHW planes (ops_conv.cc, scatter_nchw).
#include <immintrin.h>

#include "transpose.h"

namespace iqk {

void transpose16x16_b32__avx512(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride) {
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
