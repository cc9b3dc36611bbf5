// Small-group convolution, AVX2 (conv.h, GconvRow): one output row, all
// output channels, 8 per step (one per lane) and 4 output pixels at a time.
// Exact without VNNI: each lane's 4 input bytes and 4 weights are widened to
// int16, so that one vpmaddwd makes the two pair sums (x0 w0 + x1 w1,
// x2 w2 + x3 w3) of 4 lanes in their two dwords, and the pairs are added at
// the end (vphaddd). Per tap and 4 input channels of each lane's group: the
// weights of 8 lanes widened once for all 4 pixels; per pixel one vpermd
// (each lane's dword), two widenings, two vpmaddwd and two adds.
#include <immintrin.h>

#include <algorithm>

#include "conv.h"
#include "gemm_rows.h"
#include "gemm_ymm.h"
#include "kernel_counter.h"

namespace iqk {

namespace {

// How the 8 lanes of a step get their dword of a pixel, by the dwords they
// read from their first group's first channel: Span::one, all lanes the same
// (a step within one group): a broadcast; Span::x8, at most 8: one 32-byte
// load and vpermd; Span::x16, at most 16: two, each through vpermd, blended.
enum class Span { one, x8, x16 };

// The int16 pairs of the 8 lanes' dwords of the pixel at p: lanes 0-3 in
// lo, 4-7 in hi.
template <Span M>
inline void lane_pairs(const uint8_t* p, size_t j, __m256i idx, __m256i& lo, __m256i& hi) {
  if (M == Span::one) {
    lo = hi = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(gemm_load4(p + 4 * j))));
    return;
  }
  __m256i v = _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), idx);
  if (M == Span::x16) {
    const __m256i v2 = _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)), idx);
    v = _mm256_blendv_epi8(v, v2, _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
  }
  lo = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(v));
  hi = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(v, 1));
}

// P output pixels from column ow, the 8 output channels from oc0: `x` is the
// staging pixel of tap (0, 0) for output column 0 at the channel of their
// first group; `lanes` the dword of that group's first 4 channels each lane
// reads (j = 0); `w` the weights of the step's 16-lane block, `half` which 8.
// ZP: the weights have zero points (GconvRow::w_zp): the sums of each lane's
// input bytes are kept too (vpmaddwd against ones), for the w_zp * sum(x)
// term.
template <size_t P, Span M, bool ZP, GemmOut Kind>
inline void pixels(const GconvRow& r, const GemmEpilogue& ep, const uint8_t* x, const int8_t* w, size_t half,
                   size_t taps, const size_t* off, __m256i lanes, const GemmCols8& cols, __m256i zp, size_t n,
                   size_t ow, size_t oc0) {
  const size_t cg4 = r.cg / 4, step = r.sw * r.c;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc_lo[P], acc_hi[P];  // lanes 0-3 and 4-7, two dwords (pair sums) each
  __m256i xs_lo[P], xs_hi[P];    // the same for the sums of the input bytes (ZP)
#pragma GCC unroll 4
  for (size_t p = 0; p < P; ++p) acc_lo[p] = acc_hi[p] = xs_lo[p] = xs_hi[p] = _mm256_setzero_si256();
  w += 32 * half;
  for (size_t t = 0; t < taps; ++t) {
    const uint8_t* xt = x + ow * step + off[t];
    __m256i idx = lanes;
    for (size_t j = 0; j < cg4; ++j, w += 64, idx = _mm256_add_epi32(idx, _mm256_set1_epi32(1))) {
      const __m256i w_lo = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
      const __m256i w_hi = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)));
#pragma GCC unroll 4
      for (size_t p = 0; p < P; ++p) {
        __m256i lo, hi;
        lane_pairs<M>(xt + p * step, j, idx, lo, hi);
        acc_lo[p] = _mm256_add_epi32(acc_lo[p], _mm256_madd_epi16(lo, w_lo));
        acc_hi[p] = _mm256_add_epi32(acc_hi[p], _mm256_madd_epi16(hi, w_hi));
        if (ZP) {
          xs_lo[p] = _mm256_add_epi32(xs_lo[p], _mm256_madd_epi16(lo, ones));
          xs_hi[p] = _mm256_add_epi32(xs_hi[p], _mm256_madd_epi16(hi, ones));
        }
      }
    }
  }
  const size_t bytes = gemm_out_bytes(Kind);
#pragma GCC unroll 4
  for (size_t p = 0; p < P; ++p) {
    // vphaddd gives lanes (0, 1, 4, 5 | 2, 3, 6, 7); the qword permute puts them in order.
    __m256i sums = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc_lo[p], acc_hi[p]), 0xD8);
    if (ZP) {
      const __m256i xs = _mm256_permute4x64_epi64(_mm256_hadd_epi32(xs_lo[p], xs_hi[p]), 0xD8);
      sums = _mm256_sub_epi32(sums, _mm256_mullo_epi32(xs, zp));
    }
    gemm_finish8_avx2<Kind>(ep, _mm256_sub_epi32(sums, cols.off), cols.scale, cols.bias,
                            static_cast<uint8_t*>(ep.c) + ((r.m0 + ow + p) * ep.ldc + oc0) * bytes, n);
  }
}

template <Span M, bool ZP, GemmOut Kind>
inline void step8(const GconvRow& r, const GemmEpilogue& ep, const int8_t* w, size_t half, size_t taps,
                  const size_t* off, size_t oc0) {
  const size_t g0 = oc0 / r.ocg, cg4 = r.cg / 4;
  // Lane l reads dword (g(l) - g0) * cg4 + j of the first group's channels;
  // lanes past OC read dword 0 (their weights are zero).
  alignas(32) int32_t first[8];
  for (size_t l = 0; l < 8; ++l) first[l] = oc0 + l < r.oc ? static_cast<int32_t>(((oc0 + l) / r.ocg - g0) * cg4) : 0;
  const __m256i lanes = _mm256_load_si256(reinterpret_cast<const __m256i*>(first));
  const GemmCols8 cols = gemm_cols8_avx2<Kind>(ep, oc0);
  const size_t n = std::min<size_t>(8, r.oc - oc0);
  const __m256i zp = ZP ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.w_zp + oc0)) : _mm256_setzero_si256();
  const uint8_t* x = r.x + g0 * r.cg;
  size_t ow = 0;
  for (; ow + 4 <= r.ow; ow += 4) pixels<4, M, ZP, Kind>(r, ep, x, w, half, taps, off, lanes, cols, zp, n, ow, oc0);
  for (; ow < r.ow; ++ow) pixels<1, M, ZP, Kind>(r, ep, x, w, half, taps, off, lanes, cols, zp, n, ow, oc0);
}

template <GemmOut Kind>
void row(const GconvRow& r) {
  const GemmEpilogue ep = *r.ep;  // a local copy: the stores cannot change it
  const size_t taps = r.kh * r.kw, cg4 = r.cg / 4;
  size_t off[kGconvMaxTaps];
  gconv_tap_offsets(r, off);
  for (size_t oc0 = 0; oc0 < r.oc; oc0 += 8) {
    const int8_t* w = r.w + (oc0 / 16) * taps * cg4 * 64;
    const size_t half = oc0 / 8 % 2;
    // The dwords the step reads: at most 16 (gconv_fits holds for its block).
    const size_t span = gconv_span(r.oc, r.cg, r.ocg, oc0, 8);
    const Span m = r.ocg % 8 == 0 ? Span::one : span <= 8 ? Span::x8 : Span::x16;
    with_zp(r.w_zp != nullptr, [&](auto zp) {
      constexpr bool ZP = decltype(zp)::value;
      switch (m) {
        case Span::one: return step8<Span::one, ZP, Kind>(r, ep, w, half, taps, off, oc0);
        case Span::x8: return step8<Span::x8, ZP, Kind>(r, ep, w, half, taps, off, oc0);
        case Span::x16: return step8<Span::x16, ZP, Kind>(r, ep, w, half, taps, off, oc0);
      }
    });
  }
}

}  // namespace

void gconv_u8s8s32_4x8c4__avx2(const GconvRow& r) {
  IQK_KERNEL_ENTRY("gconv_u8s8s32_4x8c4__avx2");
  with_kind(r.ep->kind, [&](auto kind) { row<decltype(kind)::value>(r); });
}

}  // namespace iqk
