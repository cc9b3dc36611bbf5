// NEON abs_histogram kernel: 8 bins per block, computed on four vectors of
// 2 doubles (the scalar steps: |x| widened to double, times inv_width, min
// with bins - 1, truncated).
#include <arm_neon.h>

#include "kernels/calibrate/histogram_loop.h"

namespace iqk {

namespace {
struct HistogramNeon {
  static constexpr size_t kBlock = 8;
  static void bins(const float* x, double inv_width, double last, uint32_t* idx) {
    const float64x2_t w = vdupq_n_f64(inv_width), top = vdupq_n_f64(last);
    // fminnm would return the number for a NaN operand; bsl on t < top keeps
    // the scalar rule (NaN -> top).
    auto bin2 = [&](float64x2_t v) {
      const float64x2_t t = vmulq_f64(v, w);
      return vmovn_u64(vcvtq_u64_f64(vbslq_f64(vcltq_f64(t, top), t, top)));
    };
    for (size_t j = 0; j < kBlock; j += 4) {
      const float32x4_t a = vabsq_f32(vld1q_f32(x + j));
      vst1q_u32(idx + j, vcombine_u32(bin2(vcvt_f64_f32(vget_low_f32(a))), bin2(vcvt_high_f64_f32(a))));
    }
  }
};
}  // namespace

IQK_DEFINE_HISTOGRAM_KERNEL(neon, HistogramNeon)

}  // namespace iqk
