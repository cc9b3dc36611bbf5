// NEON quantize kernels: 4 floats per vector, 16 per step. A tail goes
// through a small stack buffer: the caller's arrays are never read or written
// past their end.
#include <arm_neon.h>

#include <cstring>

#include "kernels/quantize/quantize_entry.h"

namespace iqk {

namespace {
// Same steps as the scalar kernel, in the same order: a true division, frintn
// (round half to even, as nearbyintf in the default rounding mode), NaN to
// the zero point, then the zero point added and the clamp (fmax / fmin see no
// NaN there). The zero point lies in [qmin, qmax] (the Python layer checks),
// so clamping the NaN lanes' zero point changes nothing.
inline int32x4_t quantize4(float32x4_t x, float32x4_t scale, float32x4_t zp, float32x4_t lo, float32x4_t hi) {
  float32x4_t r = vrndnq_f32(vdivq_f32(x, scale));
  const uint32x4_t ordered = vceqq_f32(r, r);
  r = vbslq_f32(ordered, vaddq_f32(r, zp), zp);
  r = vminq_f32(vmaxq_f32(r, lo), hi);
  return vcvtq_s32_f32(r);  // integral, in [-128, 255]: exact
}

// Four vectors of int32 -> 16 bytes holding each value's low byte, in order:
// uzp1 keeps the even (low) halves, then the even (low) bytes.
inline uint8x16_t narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  const uint16x8_t ab = vuzp1q_u16(vreinterpretq_u16_s32(a), vreinterpretq_u16_s32(b));
  const uint16x8_t cd = vuzp1q_u16(vreinterpretq_u16_s32(c), vreinterpretq_u16_s32(d));
  return vuzp1q_u8(vreinterpretq_u8_u16(ab), vreinterpretq_u8_u16(cd));
}

struct Params {
  float32x4_t lo, hi;
};

template <typename ScaleAt, typename ZpAt>
inline void quantize_span(const float* x, uint8_t* y, size_t n, ScaleAt scale_at, ZpAt zp_at, Params p) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const int32x4_t a = quantize4(vld1q_f32(x + i), scale_at(i), zp_at(i), p.lo, p.hi);
    const int32x4_t b = quantize4(vld1q_f32(x + i + 4), scale_at(i + 4), zp_at(i + 4), p.lo, p.hi);
    const int32x4_t c = quantize4(vld1q_f32(x + i + 8), scale_at(i + 8), zp_at(i + 8), p.lo, p.hi);
    const int32x4_t d = quantize4(vld1q_f32(x + i + 12), scale_at(i + 12), zp_at(i + 12), p.lo, p.hi);
    vst1q_u8(y + i, narrow16(a, b, c, d));
  }
  if (i < n) {
    alignas(16) float buf[16] = {};
    alignas(16) uint8_t out[16];
    const size_t rest = n - i;
    std::memcpy(buf, x + i, rest * sizeof(float));
    const int32x4_t a = quantize4(vld1q_f32(buf), scale_at(i), zp_at(i), p.lo, p.hi);
    const int32x4_t b = quantize4(vld1q_f32(buf + 4), scale_at(i + 4), zp_at(i + 4), p.lo, p.hi);
    const int32x4_t c = quantize4(vld1q_f32(buf + 8), scale_at(i + 8), zp_at(i + 8), p.lo, p.hi);
    const int32x4_t d = quantize4(vld1q_f32(buf + 12), scale_at(i + 12), zp_at(i + 12), p.lo, p.hi);
    vst1q_u8(out, narrow16(a, b, c, d));
    std::memcpy(y + i, out, rest);
  }
}

inline Params params(int32_t qmin, int32_t qmax) {
  return {vdupq_n_f32(static_cast<float>(qmin)), vdupq_n_f32(static_cast<float>(qmax))};
}

// The steps of quantize_entry.h.
struct QuantizeNeon {
  static void tensor(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    const float32x4_t vs = vdupq_n_f32(scale);
    const float32x4_t vz = vdupq_n_f32(static_cast<float>(zp));
    quantize_span(x, y, n, [&](size_t) { return vs; }, [&](size_t) { return vz; }, params(qmin, qmax));
  }
  // The channel parameters staged so that a tail step may read them
  // (with_padded_channels), as float.
  static void channels(const float* x, uint8_t* y, size_t rows, size_t channels, const float* scale,
                       const int32_t* zp, int32_t qmin, int32_t qmax) {
    const Params p = params(qmin, qmax);
    with_padded_channels<float>(channels, scale, zp, [&](size_t c0, size_t nc, const float* s, const float* z) {
      auto scale_at = [s](size_t c) { return vld1q_f32(s + c); };
      auto zp_at = [z](size_t c) { return vld1q_f32(z + c); };
      for (size_t r = 0; r < rows; ++r) {
        quantize_span(x + r * channels + c0, y + r * channels + c0, nc, scale_at, zp_at, p);
      }
    });
  }
};
}  // namespace

IQK_DEFINE_QUANTIZE_KERNELS(neon, QuantizeNeon)

}  // namespace iqk
