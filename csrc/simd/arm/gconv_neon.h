// What the ARM small-group kernels share (conv.h, GconvRow): steps of 4
// output channels, one per 32-bit lane, and 4 output pixels. Lane l of a
// step multiplies the 4 input bytes its group reads (dword j from its first
// channel: by element where the step is one group, else moved into the lane
// by tbl) by its 4 weights with one dot-product instruction; the two files
// differ only in that instruction (the Dot policy). Intrinsics: include only from AArch64 files built with dot product;
// everything here has internal linkage.
//
// A Dot policy provides:
//   W                 4 lanes' weights for 4 input channels;
//   load_w(w)         W from 16 bytes (lane l's 4 weights at 4l);
//   add(acc, in, w)   acc += each lane's 4 bytes of `in` times its 4 weights;
//   add_lane<L>(acc, in, w)
//                     acc += dword L of `in` times each lane's 4 weights (by
//                     element);
//   kXsAlways         the kernel needs each lane's sum of input bytes even
//                     without weight zero points;
//   kXsBias           what the sum of input bytes is multiplied by and taken
//                     off, besides w_zp.
#pragma once

#include <arm_neon.h>

#include "kernels/conv/conv.h"
#include "kernels/specialize.h"
#include "runtime/kernel_counter.h"
#include "simd/arm/epilogue_neon.h"

namespace iqk {
namespace {

constexpr size_t kGconvNeonPixels = 8;

// How the 4 lanes of a step get their dword of a pixel, by the dwords they
// read from their first group's first channel: one, all lanes the same (one
// group): dot products by element on 4 dwords of the pixel at a time; x4, x8,
// x16: at most that many, moved into the lanes by tbl from 1, 2 or 4
// registers of the pixel.
enum class GconvSpan { one, x4, x8, x16 };

template <GconvSpan M>
struct GconvRegs {
  static constexpr size_t n = M == GconvSpan::x16 ? 4 : M == GconvSpan::x8 ? 2 : 1;
};

// The 4 lanes' input bytes for dword offsets idx (bytes 4 d .. 4 d + 3 per
// lane) from the pixel's first registers.
template <GconvSpan M>
inline uint8x16_t gconv_gather(const uint8_t* p, uint8x16_t idx) {
  if constexpr (M == GconvSpan::x16) return vqtbl4q_u8(vld1q_u8_x4(p), idx);
  if constexpr (M == GconvSpan::x8) return vqtbl2q_u8(vld1q_u8_x2(p), idx);
  return vqtbl1q_u8(vld1q_u8(p), idx);
}

// Dword L of each pixel's `in` by the 4 lanes' weights at w, into acc (and
// its byte sum into xs if Xs).
template <class Dot, size_t P, bool Xs, int L>
inline void gconv_by_element(int32x4_t (&acc)[P], uint32x4_t (&xs)[P], const uint8x16_t (&in)[P], const int8_t* w) {
  const typename Dot::W wv = Dot::load_w(w);
#pragma GCC unroll 8
  for (size_t p = 0; p < P; ++p) {
    acc[p] = Dot::template add_lane<L>(acc[p], in[p], wv);
    if constexpr (Xs) xs[p] = vdotq_laneq_u32(xs[p], vdupq_n_u8(1), in[p], L);
  }
}

// P output pixels from column ow, the 4 output channels from oc0 (the first
// `n` of them stored, the first `valid` pixels): x is the staging pixel of tap
// (0, 0) for output column 0 at the channel of their first group; `tbl`
// holds, per lane, the byte offsets 4 d .. 4 d + 3 of the dword d it reads
// for j = 0; `w` the step's weights for tap 0, j = 0 (64 bytes per j).
template <class Dot, GconvSpan M, bool Xs, GemmOut Kind>
inline void gconv_pixels4(const GconvRow& r, const GemmEpilogue& ep, const uint8_t* x, const int8_t* w,
                          size_t taps, const size_t* off, uint8x16_t tbl, const NeonCols4& cols, int32x4_t zp,
                          size_t n, size_t ow, size_t oc0, size_t valid) {
  constexpr size_t P = kGconvNeonPixels;
  const size_t cg4 = r.cg / 4, step = r.sw * r.c;
  const uint8x16_t four = vdupq_n_u8(4);
  int32x4_t acc[P];
  uint32x4_t xs[P];
#pragma GCC unroll 8
  for (size_t p = 0; p < P; ++p) {
    acc[p] = vdupq_n_s32(0);
    xs[p] = vdupq_n_u32(0);
  }
  for (size_t t = 0; t < taps; ++t) {
    const uint8_t* xt = x + ow * step + off[t];
    const int8_t* wt = w + t * cg4 * 64;
    if constexpr (M == GconvSpan::one) {
      // Dwords j .. j + 3 of each pixel in one register (16 bytes from the
      // group's channels: past them only into the staging slack), each used
      // by element.
      for (size_t j = 0; j < cg4; j += 4) {
        uint8x16_t in[P];
#pragma GCC unroll 8
        for (size_t p = 0; p < P; ++p) in[p] = vld1q_u8(xt + p * step + 4 * j);
        const size_t left = cg4 - j;
        gconv_by_element<Dot, P, Xs, 0>(acc, xs, in, wt + j * 64);
        if (left > 1) gconv_by_element<Dot, P, Xs, 1>(acc, xs, in, wt + (j + 1) * 64);
        if (left > 2) gconv_by_element<Dot, P, Xs, 2>(acc, xs, in, wt + (j + 2) * 64);
        if (left > 3) gconv_by_element<Dot, P, Xs, 3>(acc, xs, in, wt + (j + 3) * 64);
      }
    } else {
      uint8x16_t idx = tbl;
      for (size_t j = 0; j < cg4; ++j, idx = vaddq_u8(idx, four)) {
        const typename Dot::W wv = Dot::load_w(wt + j * 64);
#pragma GCC unroll 8
        for (size_t p = 0; p < P; ++p) {
          const uint8x16_t in = gconv_gather<M>(xt + p * step, idx);
          acc[p] = Dot::add(acc[p], in, wv);
          if constexpr (Xs) xs[p] = vdotq_u32(xs[p], in, vdupq_n_u8(1));
        }
      }
    }
  }
  const size_t bytes = gemm_out_bytes(Kind);
#pragma GCC unroll 8
  for (size_t p = 0; p < P; ++p) {
    if (p >= valid) break;
    int32x4_t v = acc[p];
    if constexpr (Xs) v = vmlsq_s32(v, vreinterpretq_s32_u32(xs[p]), zp);
    gemm_finish4_neon<Kind>(ep, vsubq_s32(v, cols.off), cols.scale, cols.bias,
                            static_cast<uint8_t*>(ep.c) + ((r.m0 + ow + p) * ep.ldc + oc0) * bytes, n);
  }
}

template <class Dot, GconvSpan M, bool Xs, GemmOut Kind>
inline void gconv_step4(const GconvRow& r, const GemmEpilogue& ep, size_t taps, const size_t* off, size_t oc0) {
  // Lane l reads dword lane_dw[oc0 + l] - lane_dw[oc0] + j from the step's
  // first group's channels (lanes past OC read their last one's: their
  // weights are zero).
  const int32_t first = r.lane_dw[oc0];
  const uint32x4_t d = vreinterpretq_u32_s32(vsubq_s32(vld1q_s32(r.lane_dw + oc0), vdupq_n_s32(first)));
  // Byte 4 l + b of the table: 4 d[l] + b.
  const uint8x16_t tbl = vaddq_u8(vreinterpretq_u8_u32(vmulq_n_u32(d, 0x04040404u)),
                                  vreinterpretq_u8_u32(vdupq_n_u32(0x03020100u)));
  const NeonCols4 cols = gemm_cols4_neon<Kind>(ep, oc0);
  // The weights' zero points plus the policy's own bias on the input sums.
  int32x4_t zp = vdupq_n_s32(Dot::kXsBias);
  if (r.w_zp) zp = vaddq_s32(zp, vld1q_s32(r.w_zp + oc0));
  const size_t n = r.oc - oc0 < 4 ? r.oc - oc0 : 4;
  const uint8_t* x = r.x + 4 * static_cast<size_t>(first);
  const size_t cg4 = r.cg / 4;
  const int8_t* w = r.w + (oc0 / 16) * taps * cg4 * 64 + (oc0 % 16) * 4;
  // Whole steps of pixels only, the last one past the row (its extra pixels
  // read the staging slack and are not stored).
  for (size_t ow = 0; ow < r.ow; ow += kGconvNeonPixels) {
    const size_t valid = r.ow - ow < kGconvNeonPixels ? r.ow - ow : kGconvNeonPixels;
    gconv_pixels4<Dot, M, Xs, Kind>(r, ep, x, w, taps, off, tbl, cols, zp, n, ow, oc0, valid);
  }
}

// One output row, all output channels, 4 at a time.
template <class Dot, GemmOut Kind>
void gconv_row4(const GconvRow& r) {
  const GemmEpilogue ep = *r.ep;  // a local copy: the stores cannot change it
  const size_t taps = r.kh * r.kw;
  size_t off[kGconvMaxTaps];
  gconv_tap_offsets(r, off);
  const bool xs = Dot::kXsAlways || r.w_zp != nullptr;
  for (size_t oc0 = 0; oc0 < r.oc; oc0 += 4) {
    // The dwords the step reads: at most 16 (gconv_fits holds for its block).
    const size_t span = gconv_span(r.oc, r.cg, r.ocg, oc0, 4);
    const GconvSpan m = r.ocg % 4 == 0 ? GconvSpan::one
                        : span <= 4    ? GconvSpan::x4
                        : span <= 8    ? GconvSpan::x8
                                       : GconvSpan::x16;
    with_zp(xs, [&](auto has_xs) {
      constexpr bool Xs = decltype(has_xs)::value;
      switch (m) {
        case GconvSpan::one: return gconv_step4<Dot, GconvSpan::one, Xs, Kind>(r, ep, taps, off, oc0);
        case GconvSpan::x4: return gconv_step4<Dot, GconvSpan::x4, Xs, Kind>(r, ep, taps, off, oc0);
        case GconvSpan::x8: return gconv_step4<Dot, GconvSpan::x8, Xs, Kind>(r, ep, taps, off, oc0);
        case GconvSpan::x16: return gconv_step4<Dot, GconvSpan::x16, Xs, Kind>(r, ep, taps, off, oc0);
      }
    });
  }
}

// The GconvRowFn of a path, counting itself under Dot::kName.
template <class Dot>
void gconv_neon(const GconvRow& r) {
  IQK_KERNEL_ENTRY(Dot::kName);
  with_kind(r.ep->kind, [&](auto kind) { gconv_row4<Dot, decltype(kind)::value>(r); });
}

}  // namespace
}  // namespace iqk
