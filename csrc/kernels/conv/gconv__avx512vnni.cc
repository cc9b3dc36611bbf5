// Small-group convolution, AVX512-VNNI (conv.h, GconvRow): one output row,
// all output channels, 16 per vector (one lane per output channel) and 4
// output pixels at a time (8 where a block lies within one group), so that
// each weight vector loaded serves them all. Per tap and 4 input channels of each lane's group: one load of 16
// dwords of weights, and per pixel one vpermd (each lane's dword of the
// pixel) and one vpdpbusd (16 output channels x 4 input channels).
#include <immintrin.h>

#include <algorithm>

#include "kernels/conv/conv.h"
#include "kernels/specialize.h"
#include "simd/x86/gemm_zmm.h"
#include "runtime/kernel_counter.h"

namespace iqk {

namespace {

// How a block of 16 output channels gets each lane's dword of a pixel, by
// the dwords the block reads (from its first group's first channel):
//  - Span::one: every lane the same (a block within one group): a
//    broadcast load, no shuffle;
//  - Span::x4: at most 4 dwords: 16 bytes loaded into every 128-bit lane,
//    then an in-lane vpermilps;
//  - Span::x8 / x16: 32 or 64 bytes, then vpermd.
// Shorter loads cross fewer cache lines: a 64-byte load from a pixel's
// channel offset mostly straddles two.
enum class Span { one, x4, x8, x16 };

template <Span M>
inline __m512i pixel_bytes(const uint8_t* p) {
  if (M == Span::x4) return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  if (M == Span::x8) return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_loadu_si512(p);
}

template <Span M>
inline __m512i lane_dwords(__m512i px, __m512i idx) {
  if (M == Span::x4) return _mm512_castps_si512(_mm512_permutevar_ps(_mm512_castsi512_ps(px), idx));
  return _mm512_permutexvar_epi32(idx, px);
}

// P output pixels from column ow, the 16 output channels of block b from
// oc0, the first `valid` of them stored: `x` is the staging pixel of tap
// (0, 0) for output column 0, at the channel of the block's first group;
// `lanes` the dword of that group's first 4 channels each lane reads (j = 0).
// ZP: the block's weights have zero points (GconvRow::w_zp): the sums of each
// lane's input bytes are kept too, by one more vpdpbusd against ones, for
// the w_zp * sum(x) term.
template <size_t P, Span M, bool ZP, GemmOut Kind>
inline void pixels(const GconvRow& r, const GemmEpilogue& ep, const uint8_t* x, const int8_t* w, size_t taps,
                   const size_t* off, __m512i lanes, const GemmCols16& cols, __m512i zp, __mmask16 mask, size_t ow,
                   size_t oc0, size_t valid) {
  const size_t cg4 = r.cg / 4, step = r.sw * r.c;
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i acc[P], xs[P];
#pragma GCC unroll 8
  for (size_t p = 0; p < P; ++p) acc[p] = xs[p] = _mm512_setzero_si512();
  auto mul = [&](size_t p, __m512i in, __m512i wv) __attribute__((always_inline)) {
    acc[p] = _mm512_dpbusd_epi32(acc[p], in, wv);
    if (ZP) xs[p] = _mm512_dpbusd_epi32(xs[p], in, ones);
  };
  for (size_t t = 0; t < taps; ++t) {
    const uint8_t* xt = x + ow * step + off[t];
    if (M == Span::one) {
#pragma GCC unroll 4
      for (size_t j = 0; j < cg4; ++j, w += 64) {
        const __m512i wv = _mm512_loadu_si512(w);
#pragma GCC unroll 8
        for (size_t p = 0; p < P; ++p) mul(p, _mm512_set1_epi32(gemm_load4(xt + p * step + 4 * j)), wv);
      }
      continue;
    }
    // The bytes from the block's first group: the dwords the lanes read lie
    // within them (gconv_fits); the rest is never used (the staging rows
    // have slack past their end).
    __m512i px[P];
#pragma GCC unroll 4
    for (size_t p = 0; p < P; ++p) px[p] = pixel_bytes<M>(xt + p * step);
    __m512i idx = lanes;
    for (size_t j = 0; j < cg4; ++j, w += 64, idx = _mm512_add_epi32(idx, _mm512_set1_epi32(1))) {
      const __m512i wv = _mm512_loadu_si512(w);
#pragma GCC unroll 4
      for (size_t p = 0; p < P; ++p) mul(p, lane_dwords<M>(px[p], idx), wv);
    }
  }
  const size_t bytes = gemm_out_bytes(Kind);
#pragma GCC unroll 8
  for (size_t p = 0; p < P; ++p) {
    if (p >= valid) break;
    if (ZP) acc[p] = _mm512_sub_epi32(acc[p], _mm512_mullo_epi32(xs[p], zp));
    gemm_finish16_avx512<Kind>(ep, _mm512_sub_epi32(acc[p], cols.off), cols.scale, cols.bias,
                               static_cast<uint8_t*>(ep.c) + ((r.m0 + ow + p) * ep.ldc + oc0) * bytes, mask,
                               mask == 0xFFFF);
  }
}

template <Span M, bool ZP, GemmOut Kind>
inline void block(const GconvRow& r, const GemmEpilogue& ep, const int8_t* w, size_t taps, const size_t* off,
                  size_t oc0) {
  // Lane l reads dword lane_dw[oc0 + l] - lane_dw[oc0] + j from the block's
  // first group's channels (lanes past OC read their last one's: their
  // weights are zero).
  const int32_t first = r.lane_dw[oc0];
  const __m512i lanes = _mm512_sub_epi32(_mm512_loadu_si512(r.lane_dw + oc0), _mm512_set1_epi32(first));
  const GemmCols16 cols = gemm_cols16_avx512<Kind>(ep, oc0);
  const __mmask16 mask = gemm_tail_mask16(r.oc - oc0);
  const __m512i zp = ZP ? _mm512_loadu_si512(r.w_zp + oc0) : _mm512_setzero_si512();
  const uint8_t* x = r.x + 4 * static_cast<size_t>(first);
  // Whole steps only, the last one past the row (its extra pixels read the
  // staging slack and are not stored): one pixel at a time, a step is one
  // chain of dependent vpdpbusd, four to eight times slower per pixel.
  constexpr size_t kStep = M == Span::one ? 8 : 4;
  size_t ow = 0;
  for (; ow + kStep <= r.ow; ow += kStep)
    pixels<kStep, M, ZP, Kind>(r, ep, x, w, taps, off, lanes, cols, zp, mask, ow, oc0, kStep);
  // The rest in one step of 4 or 8.
  if constexpr (kStep == 8) {
    if (r.ow - ow > 4) return pixels<8, M, ZP, Kind>(r, ep, x, w, taps, off, lanes, cols, zp, mask, ow, oc0, r.ow - ow);
  }
  if (ow < r.ow) pixels<4, M, ZP, Kind>(r, ep, x, w, taps, off, lanes, cols, zp, mask, ow, oc0, r.ow - ow);
}

template <GemmOut Kind>
void row(const GconvRow& r) {
  const GemmEpilogue ep = *r.ep;  // a local copy: the stores cannot change it
  const size_t taps = r.kh * r.kw, cg4 = r.cg / 4;
  size_t off[kGconvMaxTaps];
  gconv_tap_offsets(r, off);
  for (size_t oc0 = 0, b = 0; oc0 < r.oc; oc0 += 16, ++b) {
    const int8_t* w = r.w + b * taps * cg4 * 64;
    const size_t span = gconv_span(r.oc, r.cg, r.ocg, oc0, 16);
    const Span m = r.ocg % 16 == 0 ? Span::one : span <= 4 ? Span::x4 : span <= 8 ? Span::x8 : Span::x16;
    with_zp(r.w_zp != nullptr, [&](auto zp) {
      constexpr bool ZP = decltype(zp)::value;
      switch (m) {
        case Span::one: return block<Span::one, ZP, Kind>(r, ep, w, taps, off, oc0);
        case Span::x4: return block<Span::x4, ZP, Kind>(r, ep, w, taps, off, oc0);
        case Span::x8: return block<Span::x8, ZP, Kind>(r, ep, w, taps, off, oc0);
        case Span::x16: return block<Span::x16, ZP, Kind>(r, ep, w, taps, off, oc0);
      }
    });
  }
}

}  // namespace

void gconv_u8s8s32_4x16c4__avx512vnni(const GconvRow& r) {
  IQK_KERNEL_ENTRY("gconv_u8s8s32_4x16c4__avx512vnni");
  with_kind(r.ep->kind, [&](auto kind) { row<decltype(kind)::value>(r); });
}

}  // namespace iqk
