// Depthwise convolution, AVX2: 16 channels per step, two taps per vpmaddwd
// (exact: pairs of int16 products summed into int32). One output row.
//
// The bytes of two taps of 16 channels are widened to int16 and interleaved
// with vpunpcklwd / vpunpckhwd, which pair channels {0-3, 8-11} and
// {4-7, 12-15}: the weights are permuted the same way once per channel
// block and the accumulators put back in channel order before the epilogue.
#include <immintrin.h>

#include "conv.h"
#include "gemm_rows.h"
#include "gemm_ymm.h"
#include "kernel_counter.h"

namespace iqk {

namespace {

// The epilogue of one block of 16 channels, its per-channel terms loaded
// once per block (the kernels are bound by their loads): pixel i goes to
// out + i * step.
struct Block16 {
  GemmCols8 cols0, cols1;
  size_t n0, n1;  // channels stored of each half (n1 may be 0)
  uint8_t* out;
  size_t step;
};

template <GemmOut Kind>
inline Block16 block16(const DwconvRow& r, const GemmEpilogue& ep, size_t c0) {
  const size_t left = r.c - c0, bytes = gemm_out_bytes(Kind);
  return {gemm_cols8_avx2<Kind>(ep, c0), gemm_cols8_avx2<Kind>(ep, c0 + 8), left < 8 ? left : 8,
          left > 8 ? (left < 16 ? left - 8 : 8) : 0, static_cast<uint8_t*>(ep.c) + (r.m0 * ep.ldc + c0) * bytes,
          ep.ldc * bytes};
}

// Stores pixel i's 16 channels, lo and hi in the unpack order (see the top).
// Depthwise epilogues have no b_zp: the corrections are the offsets alone.
template <GemmOut Kind>
inline void store16(const GemmEpilogue& ep, const Block16& b, size_t i, __m256i lo, __m256i hi) {
  uint8_t* y = b.out + i * b.step;
  const __m256i v0 = _mm256_sub_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), b.cols0.off);
  gemm_finish8_avx2<Kind>(ep, v0, b.cols0.scale, b.cols0.bias, y, b.n0);
  if (b.n1) {
    const __m256i v1 = _mm256_sub_epi32(_mm256_permute2x128_si256(lo, hi, 0x31), b.cols1.off);
    gemm_finish8_avx2<Kind>(ep, v1, b.cols1.scale, b.cols1.bias, y + 8 * gemm_out_bytes(Kind), b.n1);
  }
}

// P output pixels from column ow, 16 channels from c0: P independent chains,
// so that their latencies overlap.
template <size_t P, GemmOut Kind>
inline void pixels(const DwconvRow& r, const GemmEpilogue& ep, const Block16& blk, size_t ow, size_t c0,
                   const __m256i* wlo, const __m256i* whi, size_t pairs, const size_t* off) {
  const uint8_t* px = r.x + ow * r.sw * r.c + c0;
  const size_t step = r.sw * r.c;
  __m256i lo[P], hi[P];
#pragma GCC unroll 4
  for (size_t i = 0; i < P; ++i) lo[i] = hi[i] = _mm256_setzero_si256();
  for (size_t q = 0; q < pairs; ++q) {
    const __m256i wl = wlo[q], wh = whi[q];
    const uint8_t* pa = px + off[2 * q];
    const uint8_t* pb = px + off[2 * q + 1];
  #pragma GCC unroll 4
  for (size_t i = 0; i < P; ++i) {
      // Channels past C read the staging buffer's next bytes (it has
      // slack); their weights are zero and they are never stored.
      const __m256i xa = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pa + i * step)));
      const __m256i xb = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + i * step)));
      lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), wl));
      hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), wh));
    }
  }
#pragma GCC unroll 4
  for (size_t i = 0; i < P; ++i) store16<Kind>(ep, blk, ow + i, lo[i], hi[i]);
}

// 3x3 without horizontal dilation, horizontal stride S (1 or 2): the taps
// paired vertically per input column, as in dwconv_avx512vnni.cc (which
// explains why); 16 channels, the weights read from memory (12 vectors do
// not fit beside the accumulators in 16 registers).
template <size_t P, size_t S, GemmOut Kind>
inline void pixels3x3(const DwconvRow& r, const GemmEpilogue& ep, const Block16& blk, size_t ow0, size_t c0,
                      const __m256i (*wl)[2], const __m256i (*wh)[2]) {
  const uint8_t* x0 = r.x + ow0 * S * r.c + c0;
  const uint8_t* x1 = x0 + r.dh * r.x_row;
  const uint8_t* x2 = x1 + r.dh * r.x_row;
  auto widen = [](const uint8_t* p) {
    // Channels past C read the staging buffer's next bytes (it has slack);
    // their weights are zero and they are never stored.
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  };
  __m256i lo[P], hi[P];
#pragma GCC unroll 8
  for (size_t i = 0; i < P; ++i) lo[i] = hi[i] = _mm256_setzero_si256();
  constexpr size_t kCols = (P - 1) * S + 3;
#pragma GCC unroll 16
  for (size_t j = 0; j < kCols; ++j) {
    const __m256i a = widen(x0 + j * r.c), b = widen(x1 + j * r.c), c = widen(x2 + j * r.c);
    const __m256i ab_lo = _mm256_unpacklo_epi16(a, b), ab_hi = _mm256_unpackhi_epi16(a, b);
    const __m256i c_lo = _mm256_unpacklo_epi16(c, _mm256_setzero_si256());
    const __m256i c_hi = _mm256_unpackhi_epi16(c, _mm256_setzero_si256());
#pragma GCC unroll 3
    for (size_t kw = 0; kw < 3; ++kw) {
      if (j < kw || (j - kw) % S != 0 || (j - kw) / S >= P) continue;
      const size_t i = (j - kw) / S;
      lo[i] = _mm256_add_epi32(lo[i], _mm256_add_epi32(_mm256_madd_epi16(ab_lo, wl[kw][0]),
                                                       _mm256_madd_epi16(c_lo, wl[kw][1])));
      hi[i] = _mm256_add_epi32(hi[i], _mm256_add_epi32(_mm256_madd_epi16(ab_hi, wh[kw][0]),
                                                       _mm256_madd_epi16(c_hi, wh[kw][1])));
    }
  }
#pragma GCC unroll 8
  for (size_t i = 0; i < P; ++i) store16<Kind>(ep, blk, ow0 + i, lo[i], hi[i]);
}

template <size_t S, GemmOut Kind>
void row3x3(const DwconvRow& r) {
  const GemmEpilogue ep = *r.ep;
  __m256i wl[3][2], wh[3][2];
  for (size_t c0 = 0; c0 < r.c; c0 += 16) {
    const Block16 blk = block16<Kind>(r, ep, c0);
    for (size_t kw = 0; kw < 3; ++kw)
      for (size_t p = 0; p < 2; ++p) {
        const int16_t* w = r.w3 + ((kw * 2 + p) * r.c_pad + c0) * 2;
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16));
        wl[kw][p] = _mm256_permute2x128_si256(w0, w1, 0x20);  // channels 0-3, 8-11
        wh[kw][p] = _mm256_permute2x128_si256(w0, w1, 0x31);  // channels 4-7, 12-15
      }
    size_t ow = 0;
    for (; ow + 4 <= r.ow; ow += 4) pixels3x3<4, S, Kind>(r, ep, blk, ow, c0, wl, wh);
    for (; ow < r.ow; ++ow) pixels3x3<1, S, Kind>(r, ep, blk, ow, c0, wl, wh);
  }
}

template <GemmOut Kind>
void row(const DwconvRow& r) {
  // A local copy: stores through the output pointer cannot change it, so
  // its fields stay in registers.
  const GemmEpilogue ep = *r.ep;
  size_t off[2 * kDwconvMaxPairs];
  const size_t pairs = dwconv_tap_offsets(r.kh, r.kw, r.dh * r.x_row, r.dw * r.c, off);
  __m256i wlo[kDwconvMaxPairs], whi[kDwconvMaxPairs];
  for (size_t c0 = 0; c0 < r.c; c0 += 16) {
    const Block16 blk = block16<Kind>(r, ep, c0);
    for (size_t q = 0; q < pairs; ++q) {
      const int16_t* w = r.w + (q * r.c_pad + c0) * 2;
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16));
      wlo[q] = _mm256_permute2x128_si256(w0, w1, 0x20);  // channels 0-3, 8-11
      whi[q] = _mm256_permute2x128_si256(w0, w1, 0x31);  // channels 4-7, 12-15
    }
    size_t ow = 0;
    for (; ow + 4 <= r.ow; ow += 4) pixels<4, Kind>(r, ep, blk, ow, c0, wlo, whi, pairs, off);
    for (; ow < r.ow; ++ow) pixels<1, Kind>(r, ep, blk, ow, c0, wlo, whi, pairs, off);
  }
}

}  // namespace

// The 3x3 form (counted on its own, inside the row kernel's count).
void dwconv3x3_u8s16_c16__avx2(const DwconvRow& r) {
  IQK_KERNEL_ENTRY("dwconv3x3_u8s16_c16__avx2");
  with_kind(r.ep->kind, [&](auto kind) {
    with_stride_1_or_2(r.sw, [&](auto s) { row3x3<decltype(s)::value, decltype(kind)::value>(r); });
  });
}

void dwconv_u8s16_c16__avx2(const DwconvRow& r) {
  IQK_KERNEL_ENTRY("dwconv_u8s16_c16__avx2");
  if (r.w3 && r.sw <= 2) return dwconv3x3_u8s16_c16__avx2(r);
  with_kind(r.ep->kind, [&](auto kind) { row<decltype(kind)::value>(r); });
}

namespace {

// ---- NCHW: one channel plane, 16 output pixels of R rows at a time ----

// 16 pixels of one tap, widened to int16: bytes p[0..15] (stride 1) or the
// even bytes p[0], p[2], ..., p[30] (stride 2).
template <size_t S>
inline __m256i plane_pixels(const uint8_t* p) {
  if (S == 1) return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi16(0x00FF));
}

template <size_t R, size_t S, GemmOut Kind>
inline void plane_block(const DwconvPlane& p, const GemmEpilogue& ep, size_t oh0, size_t ow0, const size_t* off,
                        const __m256i* w, size_t pairs) {
  const size_t step = p.sh * p.x_row;
  const uint8_t* base = p.x + oh0 * step + ow0 * S;
  __m256i lo[R], hi[R];
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i) lo[i] = hi[i] = _mm256_setzero_si256();
  for (size_t q = 0; q < pairs; ++q) {
    const __m256i wq = w[q];
    const uint8_t* pa = base + off[2 * q];
    const uint8_t* pb = base + off[2 * q + 1];
#pragma GCC unroll 4
    for (size_t i = 0; i < R; ++i) {
      // Pixels past the row read the staging plane's next bytes (it has
      // slack); they are never stored.
      const __m256i xa = plane_pixels<S>(pa + i * step), xb = plane_pixels<S>(pb + i * step);
      lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), wq));
      hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), wq));
    }
  }
  const size_t left = p.ow - ow0, bytes = gemm_out_bytes(Kind);
  const __m256i off_v = _mm256_set1_epi32(p.col_off);
  const __m256 scale = _mm256_set1_ps(p.scale), bias = _mm256_set1_ps(p.bias);
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i) {
    uint8_t* y = p.y + ((oh0 + i) * p.ow + ow0) * bytes;
    // lo holds pixels 0-3 and 8-11, hi 4-7 and 12-15.
    const __m256i v0 = _mm256_sub_epi32(_mm256_permute2x128_si256(lo[i], hi[i], 0x20), off_v);
    gemm_finish8_avx2<Kind>(ep, v0, scale, bias, y, left < 8 ? left : 8);
    if (left > 8) {
      const __m256i v1 = _mm256_sub_epi32(_mm256_permute2x128_si256(lo[i], hi[i], 0x31), off_v);
      gemm_finish8_avx2<Kind>(ep, v1, scale, bias, y + 8 * bytes, left < 16 ? left - 8 : 8);
    }
  }
}

template <size_t S, GemmOut Kind>
void plane(const DwconvPlane& p) {
  const GemmEpilogue ep = *p.ep;
  size_t off[2 * kDwconvMaxPairs];
  const size_t pairs = dwconv_tap_offsets(p.kh, p.kw, p.dh * p.x_row, p.dw, off);
  __m256i w[kDwconvMaxPairs];
  for (size_t q = 0; q < pairs; ++q) w[q] = _mm256_set1_epi32(p.w_pairs[q * p.c_pad]);
  size_t oh = 0;
  for (; oh + 4 <= p.rows; oh += 4)
    for (size_t ow0 = 0; ow0 < p.ow; ow0 += 16) plane_block<4, S, Kind>(p, ep, oh, ow0, off, w, pairs);
  for (; oh < p.rows; ++oh)
    for (size_t ow0 = 0; ow0 < p.ow; ow0 += 16) plane_block<1, S, Kind>(p, ep, oh, ow0, off, w, pairs);
}

}  // namespace

void dwconv_nchw_u8s16_p16__avx2(const DwconvPlane& p) {
  IQK_KERNEL_ENTRY("dwconv_nchw_u8s16_p16__avx2");
  with_kind(p.ep->kind, [&](auto kind) {
    with_stride_1_or_2(p.sw, [&](auto s) { plane<decltype(s)::value, decltype(kind)::value>(p); });
  });
}

extern const DwconvKernel dwconv_kernel__avx2{&dwconv_u8s16_c16__avx2, "dwconv_u8s16_c16__avx2",
                                             &dwconv_nchw_u8s16_p16__avx2, "dwconv_nchw_u8s16_p16__avx2",
                                             "dwconv3x3_u8s16_c16__avx2"};

}  // namespace iqk
