// Small-group convolution, AVX-VNNI (conv.h, GconvRow): the AVX2 kernel's
// steps of 8 output channels (one per lane) and 4 output pixels, with the
// lanes' 4 bytes multiplied as they are by one 256-bit vpdpbusd against their
// 4 weights: no widening and no pair sums to add at the end.
#include <immintrin.h>

#include <algorithm>

#include "conv.h"
#include "gemm_rows.h"
#include "gemm_ymm.h"
#include "kernel_counter.h"

namespace iqk {

namespace {

// How the 8 lanes of a step get their dword of a pixel (as in gconv_avx2.cc):
// Span::one, a broadcast (a step within one group); Span::x8, one 32-byte
// load and vpermd; Span::x16, two, each through vpermd, blended.
enum class Span { one, x8, x16 };

template <Span M>
inline __m256i lane_dwords(const uint8_t* p, size_t j, __m256i idx) {
  if (M == Span::one) return _mm256_set1_epi32(gemm_load4(p + 4 * j));
  __m256i v = _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), idx);
  if (M == Span::x16) {
    const __m256i v2 = _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)), idx);
    v = _mm256_blendv_epi8(v, v2, _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
  }
  return v;
}

// P output pixels from column ow, the 8 output channels from oc0 (as in
// gconv_avx2.cc). ZP: the sums of each lane's input bytes too (vpdpbusd
// against ones), for the w_zp * sum(x) term.
template <size_t P, Span M, bool ZP, GemmOut Kind>
inline void pixels(const GconvRow& r, const GemmEpilogue& ep, const uint8_t* x, const int8_t* w, size_t half,
                   size_t taps, const size_t* off, __m256i lanes, const GemmCols8& cols, __m256i zp, size_t n,
                   size_t ow, size_t oc0) {
  const size_t cg4 = r.cg / 4, step = r.sw * r.c;
  const __m256i ones = _mm256_set1_epi8(1);
  __m256i acc[P], xs[P];
#pragma GCC unroll 4
  for (size_t p = 0; p < P; ++p) acc[p] = xs[p] = _mm256_setzero_si256();
  w += 32 * half;
  for (size_t t = 0; t < taps; ++t) {
    const uint8_t* xt = x + ow * step + off[t];
    __m256i idx = lanes;
    for (size_t j = 0; j < cg4; ++j, w += 64, idx = _mm256_add_epi32(idx, _mm256_set1_epi32(1))) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
#pragma GCC unroll 4
      for (size_t p = 0; p < P; ++p) {
        const __m256i in = lane_dwords<M>(xt + p * step, j, idx);
        acc[p] = _mm256_dpbusd_avx_epi32(acc[p], in, wv);
        if (ZP) xs[p] = _mm256_dpbusd_avx_epi32(xs[p], in, ones);
      }
    }
  }
  const size_t bytes = gemm_out_bytes(Kind);
#pragma GCC unroll 4
  for (size_t p = 0; p < P; ++p) {
    if (ZP) acc[p] = _mm256_sub_epi32(acc[p], _mm256_mullo_epi32(xs[p], zp));
    gemm_finish8_avx2<Kind>(ep, _mm256_sub_epi32(acc[p], cols.off), cols.scale, cols.bias,
                            static_cast<uint8_t*>(ep.c) + ((r.m0 + ow + p) * ep.ldc + oc0) * bytes, n);
  }
}

template <Span M, bool ZP, GemmOut Kind>
inline void step8(const GconvRow& r, const GemmEpilogue& ep, const int8_t* w, size_t half, size_t taps,
                  const size_t* off, size_t oc0) {
  const size_t g0 = oc0 / r.ocg, cg4 = r.cg / 4;
  alignas(32) int32_t first[8];
  for (size_t l = 0; l < 8; ++l) first[l] = oc0 + l < r.oc ? static_cast<int32_t>(((oc0 + l) / r.ocg - g0) * cg4) : 0;
  const __m256i lanes = _mm256_load_si256(reinterpret_cast<const __m256i*>(first));
  const GemmCols8 cols = gemm_cols8_avx2<Kind>(ep, oc0);
  const __m256i zp = ZP ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.w_zp + oc0)) : _mm256_setzero_si256();
  const size_t n = std::min<size_t>(8, r.oc - oc0);
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
    const size_t half = oc0 / 8 % 2, span = gconv_span(r.oc, r.cg, r.ocg, oc0, 8);
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

void gconv_u8s8s32_4x8c4__avxvnni(const GconvRow& r) {
  IQK_KERNEL_ENTRY("gconv_u8s8s32_4x8c4__avxvnni");
  with_kind(r.ep->kind, [&](auto kind) { row<decltype(kind)::value>(r); });
}

}  // namespace iqk
