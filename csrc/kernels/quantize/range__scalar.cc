// Portable value-range kernel (RangeFn, quantize.h): always built, the
// baseline of the other paths.
#include <cmath>
#include <limits>

#include "kernels/quantize/quantize.h"
#include "runtime/kernel_counter.h"

namespace iqk {

bool range_f32__scalar(const float* x, size_t n, float* lo, float* hi) {
  IQK_KERNEL_ENTRY("range_f32__scalar");
  // Four independent lanes, so that the compare-and-select chains overlap.
  // `v < mn ? v : mn` never picks a NaN; NaN and +-Inf are caught by
  // v - v, which is 0 for every finite v and NaN otherwise, summed into
  // `bad`, where a NaN stays.
  constexpr float inf = std::numeric_limits<float>::infinity();
  float mn[4] = {inf, inf, inf, inf}, mx[4] = {-inf, -inf, -inf, -inf}, bad[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int j = 0; j < 4; ++j) {
      const float v = x[i + j];
      mn[j] = v < mn[j] ? v : mn[j];
      mx[j] = v > mx[j] ? v : mx[j];
      bad[j] += v - v;
    }
  }
  for (; i < n; ++i) {
    const float v = x[i];
    mn[0] = v < mn[0] ? v : mn[0];
    mx[0] = v > mx[0] ? v : mx[0];
    bad[0] += v - v;
  }
  for (int j = 1; j < 4; ++j) {
    mn[0] = mn[j] < mn[0] ? mn[j] : mn[0];
    mx[0] = mx[j] > mx[0] ? mx[j] : mx[0];
    bad[0] += bad[j];
  }
  *lo = mn[0];
  *hi = mx[0];
  return !std::isnan(bad[0]);
}

}  // namespace iqk
