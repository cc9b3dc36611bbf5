// NEON value-range kernel (RangeFn, quantize.h): 4 floats per vector, 16 per
// step. Min and max of a part seen twice are the same, so a tail is one load
// of the last 4 elements (overlapping the elements before it), or, below 4
// elements, a stack buffer filled with copies of x[0]: no byte outside x is
// read.
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "kernels/quantize/quantize.h"
#include "runtime/kernel_counter.h"

namespace iqk {

namespace {
// fmin / fmax (vminq_f32, vmaxq_f32, and the across-lanes fminv / fmaxv)
// return NaN when either input is NaN, so a NaN anywhere in x stays in mn and
// mx to the end, and an infinity ends in mn or mx as itself: x is all finite
// exactly when both results are (n > 0). No third accumulator is needed.
struct Acc {
  float32x4_t mn = vdupq_n_f32(__builtin_inff()), mx = vdupq_n_f32(-__builtin_inff());
  inline void add(float32x4_t v) {
    mn = vminq_f32(mn, v);
    mx = vmaxq_f32(mx, v);
  }
  inline void merge(const Acc& o) {
    mn = vminq_f32(mn, o.mn);
    mx = vmaxq_f32(mx, o.mx);
  }
};
}  // namespace

bool range_f32__neon(const float* x, size_t n, float* lo, float* hi) {
  IQK_KERNEL_ENTRY("range_f32__neon");
  Acc a0, a1, a2, a3;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0.add(vld1q_f32(x + i));
    a1.add(vld1q_f32(x + i + 4));
    a2.add(vld1q_f32(x + i + 8));
    a3.add(vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= n; i += 4) a0.add(vld1q_f32(x + i));
  if (i < n) {
    if (n >= 4) {
      a1.add(vld1q_f32(x + n - 4));
    } else {
      float buf[4];
      for (float& b : buf) b = x[0];
      std::memcpy(buf, x, n * sizeof(float));
      a1.add(vld1q_f32(buf));
    }
  }
  a0.merge(a1);
  a2.merge(a3);
  a0.merge(a2);
  *lo = vminvq_f32(a0.mn);
  *hi = vmaxvq_f32(a0.mx);
  return n == 0 || (std::isfinite(*lo) && std::isfinite(*hi));
}

}  // namespace iqk
