// Small-group convolution on i8mm's usdot: each lane's 4 unsigned input
// bytes by its 4 signed weights, summed into int32 (exact; as vpdpbusd). The
// steps: simd/arm/gconv_neon.h.
#include <arm_neon.h>

#include "simd/arm/gconv_neon.h"

namespace iqk {

namespace {
struct GconvUsdot {
  static constexpr char kName[] = "gconv_u8s8s32_4x4c4__neoni8mm";
  using W = int8x16_t;
  static W load_w(const int8_t* w) { return vld1q_s8(w); }
  static int32x4_t add(int32x4_t acc, uint8x16_t in, W w) { return vusdotq_s32(acc, in, w); }
  template <int L>
  static int32x4_t add_lane(int32x4_t acc, uint8x16_t in, W w) { return vsudotq_laneq_s32(acc, w, in, L); }
  static constexpr bool kXsAlways = false;
  static constexpr int32_t kXsBias = 0;
};
}  // namespace

void gconv_u8s8s32_4x4c4__neoni8mm(const GconvRow& r) { gconv_neon<GconvUsdot>(r); }

}  // namespace iqk
