// Small-group convolution on udot, which multiplies unsigned bytes only: the
// weights are read as w + 128 (w ^ 0x80), and each lane also sums its input
// bytes (udot against ones) so that 128 times that sum, with the weights'
// zero point, is taken off. Exact: udot sums four products of at most
// 255 * 255 into 32 bits. The steps: simd/arm/gconv_neon.h.
#include <arm_neon.h>

#include "simd/arm/gconv_neon.h"

namespace iqk {

namespace {
struct GconvUdot {
  static constexpr char kName[] = "gconv_u8u8s32_4x4c4__neondotprod";
  using W = uint8x16_t;
  static W load_w(const int8_t* w) { return veorq_u8(vreinterpretq_u8_s8(vld1q_s8(w)), vdupq_n_u8(0x80)); }
  static int32x4_t add(int32x4_t acc, uint8x16_t in, W w) {
    return vreinterpretq_s32_u32(vdotq_u32(vreinterpretq_u32_s32(acc), in, w));
  }
  template <int L>
  static int32x4_t add_lane(int32x4_t acc, uint8x16_t in, W w) {
    return vreinterpretq_s32_u32(vdotq_laneq_u32(vreinterpretq_u32_s32(acc), w, in, L));
  }
  static constexpr bool kXsAlways = true;
  static constexpr int32_t kXsBias = 128;
};
}  // namespace

void gconv_u8u8s32_4x4c4__neondotprod(const GconvRow& r) { gconv_neon<GconvUdot>(r); }

}  // namespace iqk
