// The portable abs_histogram kernel: histogram_bin on every value.
#include "kernels/calibrate/histogram_loop.h"

namespace iqk {

namespace {
struct HistogramScalar {
  static constexpr size_t kBlock = 8;
  static void bins(const float* x, double inv_width, double last, uint32_t* idx) {
    for (size_t j = 0; j < kBlock; ++j) idx[j] = histogram_bin(x[j], inv_width, last);
  }
};
}  // namespace

IQK_DEFINE_HISTOGRAM_KERNEL(scalar, HistogramScalar)

}  // namespace iqk
