// What the AVX2 and AVX-VNNI small-group kernels share (conv.h, GconvRow):
// steps of 8 output channels, one per 32-bit lane, and 4 output pixels; the
// two differ only in how a lane's 4 input bytes are multiplied by its 4
// weights (the Mul policy of each file). Intrinsics: include only from files
// built with AVX2 enabled; everything here has internal linkage, so each file
// gets its own copy built with its own flags.
//
// A Mul policy provides:
//   Acc              a pixel's running sums of 8 lanes;
//   W                the weights of 8 lanes for 4 input channels;
//   In               the 8 lanes' 4 input bytes, ready to multiply;
//   zero()           an empty Acc;
//   load_w(w)        W from 32 bytes (lane l's 4 weights at 4l);
//   ones()           W of all ones (for the sums of the input bytes);
//   input(v)         In from a vector of the lanes' dwords;
//   input_bcast(p)   In of the 4 bytes at p in every lane;
//   add(acc, in, w)  acc += each lane's 4 bytes of `in` times its 4 weights;
//   sums(acc)        the 8 lanes' sums, in lane order.
#pragma once

#include <immintrin.h>

#include <algorithm>

#include "kernels/conv/conv.h"
#include "kernels/specialize.h"
#include "simd/x86/gemm_ymm.h"

namespace iqk {
namespace {

// How the 8 lanes of a step get their dword of a pixel, by the dwords they
// read from their first group's first channel: one, all lanes the same (a
// step within one group): a broadcast; x8, at most 8: one 32-byte load and
// vpermd; x16, at most 16: two, each through vpermd, blended.
enum class GconvSpan { one, x8, x16 };

// A pixel's bytes from its first group's first channel, loaded once per tap
// (nothing for GconvSpan::one, which broadcasts each dword as it goes).
struct GconvPixel {
  __m256i lo, hi;  // bytes 0-31 and, for x16, 32-63
};

template <GconvSpan M>
inline GconvPixel gconv_pixel(const uint8_t* p) {
  const __m256i none = _mm256_setzero_si256();
  if (M == GconvSpan::one) return GconvPixel{none, none};
  return GconvPixel{_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
                    M == GconvSpan::x16 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)) : none};
}

// The 8 lanes' dwords j on (idx) of pixel px at p, ready to multiply.
template <class Mul, GconvSpan M>
inline typename Mul::In gconv_lane_input(const GconvPixel& px, const uint8_t* p, size_t j, __m256i idx) {
  if (M == GconvSpan::one) return Mul::input_bcast(p + 4 * j);
  __m256i v = _mm256_permutevar8x32_epi32(px.lo, idx);
  if (M == GconvSpan::x16)
    v = _mm256_blendv_epi8(v, _mm256_permutevar8x32_epi32(px.hi, idx), _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
  return Mul::input(v);
}

// P output pixels from column ow, the 8 output channels from oc0, the first
// `valid` of them stored: `x` is the
// staging pixel of tap (0, 0) for output column 0 at the channel of their
// first group; `lanes` the dword of that group's first 4 channels each lane
// reads (j = 0); `w` the weights of the step's 16-lane block, `half` which 8.
// ZP: the sums of each lane's input bytes too, for the w_zp * sum(x) term.
template <class Mul, size_t P, GconvSpan M, bool ZP, GemmOut Kind>
inline void gconv_pixels8(const GconvRow& r, const GemmEpilogue& ep, const uint8_t* x, const int8_t* w, size_t half,
                          size_t taps, const size_t* off, __m256i lanes, const GemmCols8& cols, __m256i zp, size_t n,
                          size_t ow, size_t oc0, size_t valid) {
  const size_t cg4 = r.cg / 4, step = r.sw * r.c;
  const typename Mul::W ones = Mul::ones();
  typename Mul::Acc acc[P], xs[P];
#pragma GCC unroll 4
  for (size_t p = 0; p < P; ++p) acc[p] = xs[p] = Mul::zero();
  w += 32 * half;
  for (size_t t = 0; t < taps; ++t) {
    const uint8_t* xt = x + ow * step + off[t];
    GconvPixel px[P];
#pragma GCC unroll 4
    for (size_t p = 0; p < P; ++p) px[p] = gconv_pixel<M>(xt + p * step);
    __m256i idx = lanes;
    for (size_t j = 0; j < cg4; ++j, w += 64, idx = _mm256_add_epi32(idx, _mm256_set1_epi32(1))) {
      const typename Mul::W wv = Mul::load_w(w);
#pragma GCC unroll 4
      for (size_t p = 0; p < P; ++p) {
        const typename Mul::In in = gconv_lane_input<Mul, M>(px[p], xt + p * step, j, idx);
        Mul::add(acc[p], in, wv);
        if (ZP) Mul::add(xs[p], in, ones);
      }
    }
  }
  const size_t bytes = gemm_out_bytes(Kind);
#pragma GCC unroll 4
  for (size_t p = 0; p < P; ++p) {
    if (p >= valid) break;
    __m256i sums = Mul::sums(acc[p]);
    if (ZP) sums = _mm256_sub_epi32(sums, _mm256_mullo_epi32(Mul::sums(xs[p]), zp));
    gemm_finish8_avx2<Kind>(ep, _mm256_sub_epi32(sums, cols.off), cols.scale, cols.bias,
                            static_cast<uint8_t*>(ep.c) + ((r.m0 + ow + p) * ep.ldc + oc0) * bytes, n);
  }
}

template <class Mul, GconvSpan M, bool ZP, GemmOut Kind>
inline void gconv_step8(const GconvRow& r, const GemmEpilogue& ep, const int8_t* w, size_t half, size_t taps,
                        const size_t* off, size_t oc0) {
  // Lane l reads dword lane_dw[oc0 + l] - lane_dw[oc0] + j from the step's
  // first group's channels (lanes past OC read their last one's: their
  // weights are zero).
  const int32_t first = r.lane_dw[oc0];
  const __m256i lanes = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.lane_dw + oc0)),
                                         _mm256_set1_epi32(first));
  const GemmCols8 cols = gemm_cols8_avx2<Kind>(ep, oc0);
  const __m256i zp = ZP ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.w_zp + oc0)) : _mm256_setzero_si256();
  const size_t n = std::min<size_t>(8, r.oc - oc0);
  const uint8_t* x = r.x + 4 * static_cast<size_t>(first);
  // Whole steps of 4 pixels only, the last one past the row (its extra
  // pixels read the staging slack and are not stored): one pixel at a time,
  // a step is one chain of dependent multiplies.
  size_t ow = 0;
  for (; ow + 4 <= r.ow; ow += 4)
    gconv_pixels8<Mul, 4, M, ZP, Kind>(r, ep, x, w, half, taps, off, lanes, cols, zp, n, ow, oc0, 4);
  if (ow < r.ow)
    gconv_pixels8<Mul, 4, M, ZP, Kind>(r, ep, x, w, half, taps, off, lanes, cols, zp, n, ow, oc0, r.ow - ow);
}

// One output row, all output channels, 8 at a time.
template <class Mul, GemmOut Kind>
void gconv_row8(const GconvRow& r) {
  const GemmEpilogue ep = *r.ep;  // a local copy: the stores cannot change it
  const size_t taps = r.kh * r.kw, cg4 = r.cg / 4;
  size_t off[kGconvMaxTaps];
  gconv_tap_offsets(r, off);
  for (size_t oc0 = 0; oc0 < r.oc; oc0 += 8) {
    const int8_t* w = r.w + (oc0 / 16) * taps * cg4 * 64;
    // The dwords the step reads: at most 16 (gconv_fits holds for its block).
    const size_t half = oc0 / 8 % 2, span = gconv_span(r.oc, r.cg, r.ocg, oc0, 8);
    const GconvSpan m = r.ocg % 8 == 0 ? GconvSpan::one : span <= 8 ? GconvSpan::x8 : GconvSpan::x16;
    with_zp(r.w_zp != nullptr, [&](auto zp) {
      constexpr bool ZP = decltype(zp)::value;
      switch (m) {
        case GconvSpan::one: return gconv_step8<Mul, GconvSpan::one, ZP, Kind>(r, ep, w, half, taps, off, oc0);
        case GconvSpan::x8: return gconv_step8<Mul, GconvSpan::x8, ZP, Kind>(r, ep, w, half, taps, off, oc0);
        case GconvSpan::x16: return gconv_step8<Mul, GconvSpan::x16, ZP, Kind>(r, ep, w, half, taps, off, oc0);
      }
    });
  }
}

}  // namespace
}  // namespace iqk
