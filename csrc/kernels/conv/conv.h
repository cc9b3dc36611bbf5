// The signatures and weight layouts of the convolution kernels that are not
// the GEMM's (depthwise and small-group), and the helpers their ISA variants
// share. No intrinsics here. How the drivers reach them: ops/conv.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/gemm/gemm.h"
#include "kernels/layout/transpose.h"

namespace iqk {

// One output row of a depthwise convolution, all channels. The weights are
// int16 w'[t, c] = w[c, t] - w_zp[c] for taps t = kh * KW + kw, stored as
// pairs of taps: for pair p and channel c, w[(p * c_pad + c) * 2 + {0, 1}] =
// {w'[2p, c], w'[2p + 1, c]} (zero past the last tap and past C), so that
// one vpmaddwd / vpdpwssd multiplies two taps of 16 or 8 channels at once.
// acc[ow, c] = sum_t x_u[tap t of pixel ow, c] * w'[t, c]; the epilogue
// (gemm.h, with b_zp null) subtracts col_off[c] = x_zp_u * sum_t w'[t, c] -
// bias_q[c], which makes it sum_t (x_u - x_zp_u) * w'[t, c]. Exact: |x_u| <=
// 255 and |w'| <= 255, so each pair sum fits int32.
// The kernel window of a depthwise convolution, as both kernel forms see it:
// output columns per row, horizontal stride, kernel size and dilation.
struct DwconvWindow {
  size_t ow = 0, sw = 1, kh = 1, kw = 1, dh = 1, dw = 1;
};

struct DwconvRow : DwconvWindow {
  const uint8_t* x = nullptr;  // staging pixel of tap (0, 0) for output column 0
  size_t x_row = 0;            // bytes between staging rows
  size_t c = 0, c_pad = 0;     // channels (C bytes per staging pixel); c_pad: C rounded up to 32
  const int16_t* w = nullptr;
  // 3x3 kernels without horizontal dilation: the same weights paired
  // vertically, w3[((kw * 2 + p) * c_pad + c) * 2 + {0, 1}] = {w'[kh 2p, kw,
  // c], w'[kh 2p + 1, kw, c]} (zero for kh 3), so that a kernel can pair the
  // rows of one input column once and use the pairs for every output pixel
  // that reads that column. Null otherwise; kernels may ignore it.
  const int16_t* w3 = nullptr;
  const GemmEpilogue* ep = nullptr;
  size_t m0 = 0;  // epilogue row of output column 0 (row m0 + ow)
};

using DwconvRowFn = void (*)(const DwconvRow& r);

// Depthwise kernels keep their per-tap offsets and weights on the stack:
// kernels of more taps run as a grouped GEMM instead (the conv plan, ops/conv_plan.cc).
constexpr size_t kDwconvMaxTaps = 64;
constexpr size_t kDwconvMaxPairs = kDwconvMaxTaps / 2;

// The offset of each tap t = kh * KW + kw of a depthwise kernel from tap
// (0, 0), kh * row_step + kw * col_step, for t < 2 * pairs: an odd last tap
// is paired with itself (its second weight is zero). Returns the number of
// pairs; `off` holds 2 * kDwconvMaxPairs entries.
inline size_t dwconv_tap_offsets(size_t kh, size_t kw, size_t row_step, size_t col_step, size_t* off) {
  const size_t taps = kh * kw, pairs = (taps + 1) / 2;
  for (size_t t = 0; t < 2 * pairs; ++t) {
    const size_t u = t < taps ? t : taps - 1;
    off[t] = (u / kw) * row_step + (u % kw) * col_step;
  }
  return pairs;
}

// NCHW depthwise: output rows [0, rows) of one channel plane, from a staging
// copy of that channel's input plane (padding filled, unsigned bytes) in
// which output pixel (oh, ow), tap (kh, kw) reads byte
// x[(oh * sh + kh * dh) * x_row + ow * sw + kw * dw]. Horizontal stride 1 or 2
// (the kernels vectorize along the output row). The channel's weight pairs
// are the int32 w_pairs[q * c_pad] (the DwconvRow layout read as int32 from
// the channel's first pair), its column offset, scale and bias are scalars.
// The staging plane has at least 128 readable bytes past its end.
struct DwconvPlane : DwconvWindow {
  const uint8_t* x = nullptr;
  size_t x_row = 0;
  size_t rows = 0, sh = 1;
  const int32_t* w_pairs = nullptr;
  size_t c_pad = 0;
  int32_t col_off = 0;
  float scale = 1.0f, bias = -0.0f;
  const GemmEpilogue* ep = nullptr;  // kind, relu, out_zp, lo, hi
  uint8_t* y = nullptr;              // output row 0; rows are ow elements apart
};

// NCHW depthwise read from the planes as given: consecutive channel planes of
// one image, for kernels at most 4 wide without horizontal dilation. Output
// pixel (oh, ow), tap (kh, kw) reads input row oh * sh + kh * dh - pt, column
// ow * sw + kw - pl; every byte outside the plane is the zero point
// (fill_row stands for the rows above and below it), and bytes become
// unsigned by x ^ flip. Kernels read nothing outside the planes and
// fill_row. A kernel row's (up to) 4 taps are multiplied at once, from the
// input row's 4-byte window of each output pixel, with one of two weight
// forms per channel and kernel row:
//  - w_rows8: the row's weights w'[kh, 0..KW) as 4 int8 bytes (zero past KW)
//    read as one int32, for one vpdpbusd (unsigned bytes by signed bytes,
//    four products summed into int32: exact); only for channels whose
//    weights w' all fit int8 (DwconvKernel::planes_bytes);
//  - w_rows16: the same as two int32 of int16 pairs, (w'[kh, 0], w'[kh, 1])
//    and (w'[kh, 2], w'[kh, 3]), for two vpmaddwd / vpdpwssd (exact); any w'.
// The input rows of 4 output rows span at most kDwconvPlanesMaxSpan rows.
struct DwconvPlanes : DwconvWindow {
  const uint8_t* x = nullptr;  // the first plane; planes are in_h * in_w bytes
  size_t planes = 0;
  size_t in_h = 0, in_w = 0, pt = 0, pl = 0;
  size_t rows = 0, sh = 1;
  uint8_t zp = 0, flip = 0;          // the zero point as a byte of x's dtype; 0x80 for int8, else 0
  const uint8_t* fill_row = nullptr;  // in_w bytes of zp
  const int32_t* w_rows8 = nullptr;   // planes x KH
  const int32_t* w_rows16 = nullptr;  // planes x KH x 2
  const int32_t* col_off = nullptr;   // planes each: the channels' epilogue terms
  const float* scale = nullptr;
  const float* bias = nullptr;
  const GemmEpilogue* ep = nullptr;  // kind, relu, out_zp, lo, hi
  uint8_t* y = nullptr;              // the first output plane; planes are rows * ow elements
};

constexpr size_t kDwconvPlanesMaxSpan = 64;

// Input row r of a block of R output rows serves output row i with kernel row
// kh when r = i * sh + kh * dh: kh[r][i], or KH where output row i takes
// nothing from input row r (kernels keep an all-zero weight there, so that
// every step is the same, without branches). Each input row's windows are
// then made once for every output row that reads it (three at stride 1).
template <size_t R>
struct DwconvRowsSchedule {
  uint8_t kh[kDwconvPlanesMaxSpan][R];
  size_t span = 0;
  DwconvRowsSchedule(size_t kh_n, size_t sh, size_t dh) {
    span = (R - 1) * sh + (kh_n - 1) * dh + 1;
    for (size_t r = 0; r < span; ++r)
      for (size_t i = 0; i < R; ++i) {
        const size_t d = r - i * sh;
        kh[r][i] = static_cast<uint8_t>(r >= i * sh && d % dh == 0 && d / dh < kh_n ? d / dh : kh_n);
      }
  }
};

// What every DwconvPlanes kernel does around its blocks: the schedules of a
// call, and the walk over one plane, blocks of R output rows and then the
// rows left one at a time, each across the row in runs of P pixels:
// f(rows, schedule, oh, ow0), rows a std::integral_constant (R or 1).
template <size_t R>
struct DwconvPlanesWalk {
  DwconvRowsSchedule<R> rows_r;
  DwconvRowsSchedule<1> rows_1;
  explicit DwconvPlanesWalk(const DwconvPlanes& p) : rows_r(p.kh, p.sh, p.dh), rows_1(p.kh, p.sh, p.dh) {}
  template <size_t P, typename F>
  void plane(const DwconvPlanes& p, F&& f) const {
    size_t oh = 0;
    for (; oh + R <= p.rows; oh += R)
      for (size_t ow0 = 0; ow0 < p.ow; ow0 += P) f(std::integral_constant<size_t, R>{}, rows_r, oh, ow0);
    for (; oh < p.rows; ++oh)
      for (size_t ow0 = 0; ow0 < p.ow; ow0 += P) f(std::integral_constant<size_t, 1>{}, rows_1, oh, ow0);
  }
};

// Calls f(sh, kh3) with std::integral_constants: the unrolled 3-row form
// (kh3 true) for 3 kernel rows without vertical dilation at vertical stride
// sh of 1 or 2; otherwise kh3 false (and sh 1, unused).
template <typename F>
inline void with_planes_form(const DwconvPlanes& p, F&& f) {
  if (p.kh == 3 && p.dh == 1 && p.sh == 1) return f(std::integral_constant<size_t, 1>{}, std::true_type{});
  if (p.kh == 3 && p.dh == 1 && p.sh == 2) return f(std::integral_constant<size_t, 2>{}, std::true_type{});
  f(std::integral_constant<size_t, 1>{}, std::false_type{});
}

using DwconvPlaneFn = void (*)(const DwconvPlane& p);
using DwconvPlanesFn = void (*)(const DwconvPlanes& p);

struct DwconvKernel {
  DwconvRowFn fn = nullptr;
  const char* name = nullptr;
  DwconvPlaneFn plane = nullptr;
  const char* plane_name = nullptr;
  // Non-null: fn uses DwconvRow::w3 when given (3x3, horizontal stride 1 or
  // 2), in its 3x3 form, which counts itself under this name.
  const char* column_pairs_name = nullptr;
  // The planar kernel that reads the planes as given (DwconvPlanes), where
  // the ISA has one; planes_bytes: it takes w_rows8 (channels whose weights
  // fit int8 only), else w_rows16.
  DwconvPlanesFn planes = nullptr;
  const char* planes_name = nullptr;
  bool planes_bytes = false;
  // planes also takes output rows narrower than the staging planar kernel's
  // minimum (kDwconvPlaneMinWidth, ops/conv_plan.h) when it takes every
  // channel; false where NHWC staging is faster there (docs/design.md).
  bool planes_narrow = true;
};


// The depthwise packed weights (pack_depthwise), in int16
// elements, in this order:
//  - pairs: ceil(taps / 2) x c_pad x 2, the tap pairs of DwconvRow::w;
//  - w3: for 3x3 kernels, 3 x 2 x c_pad x 2, the vertical pairs of
//    DwconvRow::w3; otherwise none;
//  - rows8: for kernels at most 4 wide, C x KH int32 (2 x C x KH int16),
//    DwconvPlanes::w_rows8 (zero for channels whose weights do not fit
//    int8); otherwise none;
//  - rows16: for kernels at most 4 wide, C x KH x 2 int32, DwconvPlanes::
//    w_rows16; otherwise none;
//  - fits: for kernels at most 4 wide, C int16: 1 where all the channel's
//    weights w' fit int8, else 0.
// pairs, w3 and rows8 start a multiple of 64 elements in (c_pad is a
// multiple of 32), and rows16 an even number, so the int32 rows are aligned.
// Channels padded to the depthwise kernels' block (c_pad above).
size_t dwconv_c_pad(size_t c);

struct DwconvPacked {
  size_t w3 = 0, rows8 = 0, rows16 = 0, fits = 0, total = 0;  // offsets (the pairs start at 0), and the size
  DwconvPacked(size_t c, size_t kh, size_t kw);
  bool has_w3() const { return rows8 > w3; }
  bool has_rows() const { return total > rows8; }
};

// The depthwise weights w (C x KH x KW int8, C-contiguous) minus their
// zero points zp (C), in the DwconvPacked layout: out holds
// DwconvPacked(c, kh, kw).total int16.
void pack_depthwise(const int8_t* w, const int32_t* zp, size_t c, size_t kh, size_t kw, int16_t* out);

// Small-group convolution: 1 < groups < C, C/groups a multiple of 4, at
// most kGconvMaxTaps taps, and every block of 16
// output channels reading at most 16 dwords of a pixel (gconv_fits). It is
// vectorized across output channels: lane l of block b is output channel oc
// = 16b + l, which multiplies the input channels of its group g = oc / OCg
// four at a time, one dword of the pixel (moved into its lane by vpermd)
// against its four weights (one dword), so that one vpdpbusd makes 16
// output channels' sums over 4 input channels (unsigned bytes by signed
// bytes: exact), where the GEMM would leave all but OCg of its 64 columns
// empty. Weights (gconv_packed_bytes): per block b, tap t = kh * KW + kw
// and j < C/groups / 4, 16 dwords, lane l holding the bytes
// w[16b + l, 4j .. 4j + 3, kh, kw] (zero past OC).
constexpr size_t kGconvMaxTaps = 64;
constexpr size_t kGconvSlackPixels = 8;

struct GconvRow : DwconvWindow {
  const uint8_t* x = nullptr;  // staging pixel of tap (0, 0) for output column 0, all C channels
  size_t x_row = 0, c = 0;     // bytes between staging rows; channels per pixel (the staging rows
                               // have at least kGconvSlackPixels * sw * c + 64 readable bytes past
                               // their end: kernels run whole steps of pixels past the row)
  size_t oc = 0, cg = 0, ocg = 0;
  const int8_t* w = nullptr;
  // The weights' zero points, OC rounded up to 16 entries, or null when all
  // are zero: the kernels keep each lane's sum of input bytes too and take
  // w_zp[oc] * sum off (the other zero-point terms are in col_off).
  const int32_t* w_zp = nullptr;
  // Per output channel (OC rounded up to 16, the last one repeated), the
  // dword of a pixel where its group's channels start, (oc / OCg) * C/groups
  // / 4: a lane of a block reads lane_dw[oc] - lane_dw[oc0] + j from the
  // block's first group.
  const int32_t* lane_dw = nullptr;
  const GemmEpilogue* ep = nullptr;  // per output channel col_off, scale, bias (b_zp null)
  size_t m0 = 0;                     // epilogue row of output column 0 (row m0 + ow)
};

// Calls f(std::bool_constant<zp>{}).
template <typename F>
inline void with_zp(bool zp, F&& f) {
  if (zp)
    f(std::true_type{});
  else
    f(std::false_type{});
}

using GconvRowFn = void (*)(const GconvRow& r);

// The dwords of a pixel that output channels [oc0, oc0 + lanes) of a
// small-group convolution read, from their first group's first channel.
inline size_t gconv_span(size_t oc, size_t cg, size_t ocg, size_t oc0, size_t lanes) {
  const size_t last = (oc0 + lanes < oc ? oc0 + lanes : oc) - 1;
  return (last / ocg - oc0 / ocg + 1) * (cg / 4);
}

// The offset of each tap t = kh * KW + kw of a small-group kernel from tap
// (0, 0) in the staging rows; `off` holds kGconvMaxTaps entries.
inline void gconv_tap_offsets(const GconvRow& r, size_t* off) {
  for (size_t t = 0; t < r.kh * r.kw; ++t) off[t] = (t / r.kw) * r.dh * r.x_row + (t % r.kw) * r.dw * r.c;
}

bool gconv_fits(size_t oc, size_t cg, size_t ocg, size_t taps);
size_t gconv_packed_bytes(size_t oc, size_t cg, size_t taps);
// The weights w (OC x C/groups x taps int8, C-contiguous) in the layout of
// GconvRow::w: out holds gconv_packed_bytes(oc, cg, taps) bytes.
void pack_gconv(const int8_t* w, size_t oc, size_t cg, size_t taps, int8_t* out);

}  // namespace iqk
