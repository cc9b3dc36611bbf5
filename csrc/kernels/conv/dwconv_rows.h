// What the AVX2 and AVX512-VNNI depthwise kernels share: the row kernels
// (conv.h, DwconvRow): the loops over channel blocks and output pixels, the
// general form (two taps per multiply) and the 3x3 form (taps paired
// vertically per input column); and the plane kernel (DwconvPlane, NCHW from
// a staging copy of one channel plane): the loops over tap pairs and blocks
// of output pixels. The two ISAs differ only in their vector policy V.
// Intrinsics: include only from files built with AVX2 enabled; everything
// here has internal linkage, so each file gets its own copy built with its
// own flags.
//
// The bytes of two taps of kC channels (row kernels) or kC pixels (plane
// kernel) are widened to int16 and interleaved with vpunpcklwd / vpunpckhwd,
// which pair the values of each 128-bit lane into two accumulators, lo and
// hi: the row kernels' weights are permuted the same way once per channel
// block (V::weights), the plane kernel's are one pair for every lane, and
// V::store / V::plane_store put the accumulators back in order before the
// epilogue.
//
// A policy V provides:
//   Vec, kC                 the vector type and the values of a step;
//   zero()                  an all-zero Vec;
//   splat(v)                the int32 v in every dword;
//   widen(p)                the kC bytes at p as int16;
//   widen_even(p)           the even bytes of the 2 * kC at p as int16;
//   unpacklo(a, b), unpackhi(a, b)   vpunpcklwd / vpunpckhwd;
//   dot(acc, a, w)          acc plus the pair products of a by w (int16 pairs
//                           summed into int32: exact);
//   dot2(acc, a, wa, b, wb) the same for two products;
//   weights(w, lo, hi)      the permuted weights of 2 * kC int16 at w;
//   Block, block<Kind>(r, ep, c0)   the epilogue terms of a channel block;
//   store<Kind>(ep, blk, i, lo, hi) pixel i's kC channels;
//   plane_store<Kind, R>(p, ep, oh0, ow0, lo, hi)   pixels [ow0, ow0 + kC)
//                           of output rows oh0 .. oh0 + R - 1 of a plane,
//                           those inside the row.
#pragma once

#include "kernels/conv/conv.h"

namespace iqk {
namespace {

// P output pixels from column ow, kC channels from c0: P independent chains,
// so that their latencies overlap.
template <class V, size_t P, GemmOut Kind>
inline void dw_pixels(const DwconvRow& r, const GemmEpilogue& ep, const typename V::Block& blk, size_t ow, size_t c0,
                      const typename V::Vec* wlo, const typename V::Vec* whi, size_t pairs, const size_t* off) {
  using Vec = typename V::Vec;
  const uint8_t* px = r.x + ow * r.sw * r.c + c0;
  const size_t step = r.sw * r.c;
  Vec lo[P], hi[P];
#pragma GCC unroll 4
  for (size_t i = 0; i < P; ++i) lo[i] = hi[i] = V::zero();
  for (size_t q = 0; q < pairs; ++q) {
    const Vec wl = wlo[q], wh = whi[q];
    const uint8_t* pa = px + off[2 * q];
    const uint8_t* pb = px + off[2 * q + 1];
#pragma GCC unroll 4
    for (size_t i = 0; i < P; ++i) {
      // Channels past C read the staging buffer's next bytes (it has
      // slack); their weights are zero and they are never stored.
      const Vec xa = V::widen(pa + i * step), xb = V::widen(pb + i * step);
      lo[i] = V::dot(lo[i], V::unpacklo(xa, xb), wl);
      hi[i] = V::dot(hi[i], V::unpackhi(xa, xb), wh);
    }
  }
#pragma GCC unroll 4
  for (size_t i = 0; i < P; ++i) V::template store<Kind>(ep, blk, ow + i, lo[i], hi[i]);
}

// 3x3 without horizontal dilation, horizontal stride S (1 or 2): the taps
// are paired vertically, (kh 0, kh 1) and (kh 2, zero), per input column, so
// that one column's pairs serve every output pixel that reads the column
// (three at stride 1): each input is loaded and widened about 1.5 times per
// row at stride 1 (P + 2 columns for P outputs) instead of once per tap. The
// kernels are bound by their loads and shuffles, not by the multiply: 12
// pair products per output and kC channels against 10, but 4.5 loads and 6
// unpacks against 10 and 10.
template <class V, size_t P, size_t S, GemmOut Kind>
inline void dw_pixels3x3(const DwconvRow& r, const GemmEpilogue& ep, const typename V::Block& blk, size_t ow0,
                         size_t c0, const typename V::Vec (*wl)[2], const typename V::Vec (*wh)[2]) {
  using Vec = typename V::Vec;
  const uint8_t* x0 = r.x + ow0 * S * r.c + c0;
  const uint8_t* x1 = x0 + r.dh * r.x_row;
  const uint8_t* x2 = x1 + r.dh * r.x_row;
  Vec lo[P], hi[P];
#pragma GCC unroll 8
  for (size_t i = 0; i < P; ++i) lo[i] = hi[i] = V::zero();
  constexpr size_t kCols = (P - 1) * S + 3;
#pragma GCC unroll 16
  for (size_t j = 0; j < kCols; ++j) {
    // Channels past C read the staging buffer's next bytes (it has slack);
    // their weights are zero and they are never stored.
    const Vec a = V::widen(x0 + j * r.c), b = V::widen(x1 + j * r.c), c = V::widen(x2 + j * r.c);
    const Vec ab_lo = V::unpacklo(a, b), ab_hi = V::unpackhi(a, b);
    const Vec c_lo = V::unpacklo(c, V::zero()), c_hi = V::unpackhi(c, V::zero());
#pragma GCC unroll 3
    for (size_t kw = 0; kw < 3; ++kw) {
      if (j < kw || (j - kw) % S != 0 || (j - kw) / S >= P) continue;
      const size_t i = (j - kw) / S;
      lo[i] = V::dot2(lo[i], ab_lo, wl[kw][0], c_lo, wl[kw][1]);
      hi[i] = V::dot2(hi[i], ab_hi, wh[kw][0], c_hi, wh[kw][1]);
    }
  }
#pragma GCC unroll 8
  for (size_t i = 0; i < P; ++i) V::template store<Kind>(ep, blk, ow0 + i, lo[i], hi[i]);
}

template <class V, size_t S, GemmOut Kind>
void dw_row3x3(const DwconvRow& r) {
  const GemmEpilogue ep = *r.ep;  // a local copy: the stores cannot change it
  typename V::Vec wl[3][2], wh[3][2];
  for (size_t c0 = 0; c0 < r.c; c0 += V::kC) {
    const typename V::Block blk = V::template block<Kind>(r, ep, c0);
    for (size_t kw = 0; kw < 3; ++kw)
      for (size_t p = 0; p < 2; ++p) V::weights(r.w3 + ((kw * 2 + p) * r.c_pad + c0) * 2, wl[kw][p], wh[kw][p]);
    size_t ow = 0;
    for (; ow + 4 <= r.ow; ow += 4) dw_pixels3x3<V, 4, S, Kind>(r, ep, blk, ow, c0, wl, wh);
    for (; ow < r.ow; ++ow) dw_pixels3x3<V, 1, S, Kind>(r, ep, blk, ow, c0, wl, wh);
  }
}

template <class V, GemmOut Kind>
void dw_row(const DwconvRow& r) {
  const GemmEpilogue ep = *r.ep;  // a local copy: the stores cannot change it
  size_t off[2 * kDwconvMaxPairs];
  const size_t pairs = dwconv_tap_offsets(r.kh, r.kw, r.dh * r.x_row, r.dw * r.c, off);
  typename V::Vec wlo[kDwconvMaxPairs], whi[kDwconvMaxPairs];
  for (size_t c0 = 0; c0 < r.c; c0 += V::kC) {
    const typename V::Block blk = V::template block<Kind>(r, ep, c0);
    for (size_t q = 0; q < pairs; ++q) V::weights(r.w + (q * r.c_pad + c0) * 2, wlo[q], whi[q]);
    size_t ow = 0;
    for (; ow + 4 <= r.ow; ow += 4) dw_pixels<V, 4, Kind>(r, ep, blk, ow, c0, wlo, whi, pairs, off);
    for (; ow < r.ow; ++ow) dw_pixels<V, 1, Kind>(r, ep, blk, ow, c0, wlo, whi, pairs, off);
  }
}

// ---- NCHW: one staged channel plane (DwconvPlane), kC output pixels of R
// rows at a time ----

// kC pixels of one tap of a staging row, as int16: bytes p[0..kC) at stride
// 1, the even bytes p[0], p[2], ..., p[2 kC - 2] at stride 2.
template <class V, size_t S>
inline typename V::Vec dw_plane_pixels(const uint8_t* p) {
  if (S == 1) return V::widen(p);
  return V::widen_even(p);
}

template <class V, size_t R, size_t S, GemmOut Kind>
inline void dw_plane_block(const DwconvPlane& p, const GemmEpilogue& ep, size_t oh0, size_t ow0, const size_t* off,
                           const typename V::Vec* w, size_t pairs) {
  using Vec = typename V::Vec;
  const size_t step = p.sh * p.x_row;
  const uint8_t* base = p.x + oh0 * step + ow0 * S;
  Vec lo[R], hi[R];
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i) lo[i] = hi[i] = V::zero();
  for (size_t q = 0; q < pairs; ++q) {
    const Vec wq = w[q];
    const uint8_t* pa = base + off[2 * q];
    const uint8_t* pb = base + off[2 * q + 1];
#pragma GCC unroll 4
    for (size_t i = 0; i < R; ++i) {
      // Pixels past the row read the staging plane's next bytes (it has
      // slack); they are never stored.
      const Vec xa = dw_plane_pixels<V, S>(pa + i * step), xb = dw_plane_pixels<V, S>(pb + i * step);
      lo[i] = V::dot(lo[i], V::unpacklo(xa, xb), wq);
      hi[i] = V::dot(hi[i], V::unpackhi(xa, xb), wq);
    }
  }
  V::template plane_store<Kind, R>(p, ep, oh0, ow0, lo, hi);
}

template <class V, size_t S, GemmOut Kind>
void dw_plane(const DwconvPlane& p) {
  const GemmEpilogue ep = *p.ep;
  size_t off[2 * kDwconvMaxPairs];
  const size_t pairs = dwconv_tap_offsets(p.kh, p.kw, p.dh * p.x_row, p.dw, off);
  typename V::Vec w[kDwconvMaxPairs];
  for (size_t q = 0; q < pairs; ++q) w[q] = V::splat(p.w_pairs[q * p.c_pad]);
  size_t oh = 0;
  for (; oh + 4 <= p.rows; oh += 4)
    for (size_t ow0 = 0; ow0 < p.ow; ow0 += V::kC) dw_plane_block<V, 4, S, Kind>(p, ep, oh, ow0, off, w, pairs);
  for (; oh < p.rows; ++oh)
    for (size_t ow0 = 0; ow0 < p.ow; ow0 += V::kC) dw_plane_block<V, 1, S, Kind>(p, ep, oh, ow0, off, w, pairs);
}

}  // namespace
}  // namespace iqk
