// What the ARM small-group kernels share (conv.h, GconvRow): steps of 4
// output channels, one per 32-bit lane, and 4 output pixels. Lane l of a
// step multiplies the 4 input bytes its group reads (dword j from its first
// channel, moved into the lane by tbl) by its 4 weights with one dot-product
// instruction; the two files differ only in that instruction (the Dot
// policy). Intrinsics: include only from AArch64 files built with dot product;
// everything here has internal linkage.
//
// A Dot policy provides:
//   W                 4 lanes' weights for 4 input channels;
//   load_w(w)         W from 16 bytes (lane l's 4 weights at 4l);
//   add(acc, in, w)   acc += each lane's 4 bytes of `in` times its 4 weights;
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

constexpr size_t kGconvNeonPixels = 4;

// P output pixels from column ow, the 4 output channels from oc0 (the first
// `n` of them stored, the first `valid` pixels): x is the staging pixel of tap
// (0, 0) for output column 0 at the channel of their first group; `tbl`
// holds, per lane, the byte offsets 4 d .. 4 d + 3 of the dword d it reads
// for j = 0; `w` the step's weights for tap 0, j = 0 (64 bytes per j).
// OneDword: every lane reads the same dword (one group), broadcast.
template <class Dot, bool OneDword, bool Xs, GemmOut Kind>
inline void gconv_pixels4(const GconvRow& r, const GemmEpilogue& ep, const uint8_t* x, const int8_t* w,
                          size_t taps, const size_t* off, uint8x16_t tbl, const NeonCols4& cols, int32x4_t zp,
                          size_t n, size_t ow, size_t oc0, size_t valid) {
  constexpr size_t P = kGconvNeonPixels;
  const size_t cg4 = r.cg / 4, step = r.sw * r.c;
  const uint8x16_t ones = vdupq_n_u8(1), four = vdupq_n_u8(4);
  int32x4_t acc[P];
  uint32x4_t xs[P];
#pragma GCC unroll 4
  for (size_t p = 0; p < P; ++p) {
    acc[p] = vdupq_n_s32(0);
    xs[p] = vdupq_n_u32(0);
  }
  for (size_t t = 0; t < taps; ++t) {
    const uint8_t* xt = x + ow * step + off[t];
    uint8x16x4_t px[P];
    if constexpr (!OneDword) {
#pragma GCC unroll 4
      for (size_t p = 0; p < P; ++p) px[p] = vld1q_u8_x4(xt + p * step);
    }
    uint8x16_t idx = tbl;
    const int8_t* wt = w + t * cg4 * 64;
    for (size_t j = 0; j < cg4; ++j, idx = vaddq_u8(idx, four)) {
      const typename Dot::W wv = Dot::load_w(wt + j * 64);
#pragma GCC unroll 4
      for (size_t p = 0; p < P; ++p) {
        uint8x16_t in;
        if constexpr (OneDword)
          in = vreinterpretq_u8_u32(vld1q_dup_u32(reinterpret_cast<const uint32_t*>(xt + p * step + 4 * j)));
        else
          in = vqtbl4q_u8(px[p], idx);
        acc[p] = Dot::add(acc[p], in, wv);
        if constexpr (Xs) xs[p] = vdotq_u32(xs[p], in, ones);
      }
    }
  }
  const size_t bytes = gemm_out_bytes(Kind);
#pragma GCC unroll 4
  for (size_t p = 0; p < P; ++p) {
    if (p >= valid) break;
    int32x4_t v = acc[p];
    if constexpr (Xs) v = vmlsq_s32(v, vreinterpretq_s32_u32(xs[p]), zp);
    gemm_finish4_neon<Kind>(ep, vsubq_s32(v, cols.off), cols.scale, cols.bias,
                            static_cast<uint8_t*>(ep.c) + ((r.m0 + ow + p) * ep.ldc + oc0) * bytes, n);
  }
}

template <class Dot, bool OneDword, bool Xs, GemmOut Kind>
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
    gconv_pixels4<Dot, OneDword, Xs, Kind>(r, ep, x, w, taps, off, tbl, cols, zp, n, ow, oc0, valid);
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
    // One group for all 4 lanes: OC/groups a multiple of 4.
    const bool one = r.ocg % 4 == 0;
    with_zp(xs, [&](auto has_xs) {
      constexpr bool Xs = decltype(has_xs)::value;
      if (one)
        gconv_step4<Dot, true, Xs, Kind>(r, ep, taps, off, oc0);
      else
        gconv_step4<Dot, false, Xs, Kind>(r, ep, taps, off, oc0);
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
