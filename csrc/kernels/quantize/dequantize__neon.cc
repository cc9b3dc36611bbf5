// NEON dequantize kernels: 16 bytes widen to 4 vectors of 4 int32, subtract
// the zero point, convert (exact) and multiply once, as the scalar kernel
// does. Tails go through a stack buffer so nothing outside the arrays is
// touched.
#include <arm_neon.h>

#include <cstring>

#include "kernels/quantize/quantize_entry.h"

namespace iqk {

namespace {
// 8 bytes as int16, sign- or zero-extended.
template <bool Signed>
inline int16x8_t widen8(uint8x8_t v) {
  if constexpr (Signed) return vmovl_s8(vreinterpret_s8_u8(v));
  return vreinterpretq_s16_u16(vmovl_u8(v));
}

// 4 values (int16, from bytes) minus the zero point, times the scale.
inline float32x4_t finish4(int16x4_t v, int32x4_t zp, float32x4_t scale) {
  return vmulq_f32(vcvtq_f32_s32(vsubq_s32(vmovl_s16(v), zp)), scale);
}

// The 8 bytes at q to y[0..8).
template <bool Signed, typename ScaleAt, typename ZpAt>
inline void dequantize8(const uint8_t* q, float* y, size_t i, ScaleAt scale_at, ZpAt zp_at) {
  const int16x8_t w = widen8<Signed>(vld1_u8(q));
  vst1q_f32(y, finish4(vget_low_s16(w), zp_at(i), scale_at(i)));
  vst1q_f32(y + 4, finish4(vget_high_s16(w), zp_at(i + 4), scale_at(i + 4)));
}

template <bool Signed, typename ScaleAt, typename ZpAt>
inline void dequantize_span(const uint8_t* q, float* y, size_t n, ScaleAt scale_at, ZpAt zp_at) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    dequantize8<Signed>(q + i, y + i, i, scale_at, zp_at);
    dequantize8<Signed>(q + i + 8, y + i + 8, i + 8, scale_at, zp_at);
  }
  for (; i + 8 <= n; i += 8) dequantize8<Signed>(q + i, y + i, i, scale_at, zp_at);
  if (i < n) {
    alignas(16) uint8_t buf[8] = {};
    alignas(16) float out[8];
    std::memcpy(buf, q + i, n - i);
    dequantize8<Signed>(buf, out, i, scale_at, zp_at);
    std::memcpy(y + i, out, (n - i) * sizeof(float));
  }
}

// The steps of quantize_entry.h.
struct DequantizeNeon {
  template <bool Signed>
  static void tensor(const uint8_t* q, float* y, size_t n, float scale, int32_t zp) {
    const float32x4_t vs = vdupq_n_f32(scale);
    const int32x4_t vz = vdupq_n_s32(zp);
    dequantize_span<Signed>(q, y, n, [&](size_t) { return vs; }, [&](size_t) { return vz; });
  }
  // The channel parameters staged so that a tail step may read them
  // (with_padded_channels), the zero points as int32.
  template <bool Signed>
  static void channels(const uint8_t* q, float* y, size_t rows, size_t channels, const float* scale,
                       const int32_t* zp) {
    with_padded_channels<int32_t>(channels, scale, zp, [&](size_t c0, size_t nc, const float* s, const int32_t* z) {
      auto scale_at = [s](size_t c) { return vld1q_f32(s + c); };
      auto zp_at = [z](size_t c) { return vld1q_s32(z + c); };
      for (size_t r = 0; r < rows; ++r) {
        dequantize_span<Signed>(q + r * channels + c0, y + r * channels + c0, nc, scale_at, zp_at);
      }
    });
  }
};
}  // namespace

IQK_DEFINE_DEQUANTIZE_KERNELS(neon, DequantizeNeon)

}  // namespace iqk
