// The weight layouts of the depthwise and small-group kernels (conv.h),
// made here, next to the declarations the kernels read them by.
#include <algorithm>
#include <cstring>

#include "kernels/conv/conv.h"

namespace iqk {

namespace {

size_t ceil_to(size_t a, size_t b) { return (a + b - 1) / b * b; }

// Depthwise weights are padded to whole blocks of 32 channels: the widest
// kernel multiplies 32 channels of two taps per instruction.
constexpr size_t kDwChannelBlock = 32;

}  // namespace

size_t dwconv_c_pad(size_t c) { return ceil_to(c, kDwChannelBlock); }

DwconvPacked::DwconvPacked(size_t c, size_t kh, size_t kw) {
  const size_t c_pad = dwconv_c_pad(c), rows = kw <= 4 ? c * kh : 0;
  w3 = (kh * kw + 1) / 2 * c_pad * 2;
  rows8 = w3 + (kh == 3 && kw == 3 ? 3 * 2 * c_pad * 2 : 0);
  rows16 = rows8 + 2 * rows;
  fits = rows16 + 4 * rows;
  total = fits + (kw <= 4 ? c : 0);
}

void pack_depthwise(const int8_t* w, const int32_t* zp, size_t c, size_t kh, size_t kw, int16_t* out) {
  const DwconvPacked at(c, kh, kw);
  const size_t taps = kh * kw, c_pad = dwconv_c_pad(c);
  std::fill(out, out + at.total, int16_t{0});
  // w'[ch, t] = w[ch, t] - zp[ch]: |w'| <= 255, an int16.
  auto wd = [&](size_t ch, size_t t) { return static_cast<int16_t>(w[ch * taps + t] - zp[ch]); };
  // Tap pairs: [pair][channel][2].
  for (size_t ch = 0; ch < c; ++ch)
    for (size_t t = 0; t < taps; ++t) out[((t / 2) * c_pad + ch) * 2 + t % 2] = wd(ch, t);
  if (at.has_w3()) {
    // Vertical pairs of each kernel column: [kw][pair p][channel][2] =
    // (kh 2p, kh 2p + 1), zero for kh 3.
    int16_t* v = out + at.w3;
    for (size_t ch = 0; ch < c; ++ch)
      for (size_t col = 0; col < 3; ++col) {
        v[((col * 2 + 0) * c_pad + ch) * 2 + 0] = wd(ch, 0 * 3 + col);
        v[((col * 2 + 0) * c_pad + ch) * 2 + 1] = wd(ch, 1 * 3 + col);
        v[((col * 2 + 1) * c_pad + ch) * 2 + 0] = wd(ch, 2 * 3 + col);
      }
  }
  if (at.has_rows()) {
    // Per channel and kernel row, the row's weights as 4 int8 bytes (zero
    // where the channel's weights do not all fit int8) and as two int16 pairs.
    int8_t* rows8 = reinterpret_cast<int8_t*>(out + at.rows8);
    int16_t* rows16 = out + at.rows16;
    for (size_t ch = 0; ch < c; ++ch) {
      bool fits = true;
      for (size_t t = 0; t < taps; ++t) fits = fits && wd(ch, t) >= -128 && wd(ch, t) <= 127;
      out[at.fits + ch] = fits ? 1 : 0;
      for (size_t r = 0; r < kh; ++r)
        for (size_t j = 0; j < kw; ++j) {
          const int16_t v = wd(ch, r * kw + j);
          rows16[(ch * kh + r) * 4 + j] = v;
          if (fits) rows8[(ch * kh + r) * 4 + j] = static_cast<int8_t>(v);
        }
    }
  }
}

bool gconv_fits(size_t oc, size_t cg, size_t ocg, size_t taps) {
  if (cg == 0 || cg % 4 || ocg == 0 || oc % ocg || taps == 0 || taps > kGconvMaxTaps) return false;
  for (size_t oc0 = 0; oc0 < oc; oc0 += 16)
    if (gconv_span(oc, cg, ocg, oc0, 16) > 16) return false;
  return true;
}

size_t gconv_packed_bytes(size_t oc, size_t cg, size_t taps) { return ceil_to(oc, 16) * cg * taps; }

void pack_gconv(const int8_t* w, size_t oc, size_t cg, size_t taps, int8_t* out) {
  // [block][tap][j][lane][4]: lane l's weights of input channels 4j .. 4j + 3.
  const size_t blocks = (oc + 15) / 16, cg4 = cg / 4;
  std::memset(out, 0, gconv_packed_bytes(oc, cg, taps));
  for (size_t b = 0; b < blocks; ++b)
    for (size_t t = 0; t < taps; ++t)
      for (size_t j = 0; j < cg4; ++j)
        for (size_t l = 0; l < 16 && 16 * b + l < oc; ++l)
          for (size_t i = 0; i < 4; ++i)
            out[(((b * taps + t) * cg4 + j) * 16 + l) * 4 + i] = w[((16 * b + l) * cg + 4 * j + i) * taps + t];
}

}  // namespace iqk
