// The loop every abs_histogram kernel shares: a path's policy P turns a block
// of P::kBlock floats into their bins (P::bins(x, inv_width, last, idx)), and
// this loop adds them to the sub-histograms; the tail goes through the scalar
// steps. P::kBlock is a multiple of kHistogramWays. No intrinsics here.
#pragma once

#include <cmath>

#include "kernels/calibrate/histogram.h"
#include "runtime/kernel_counter.h"

namespace iqk {

// b(x) of histogram.h on one value. `last` is bins - 1 as a double; the
// comparison keeps NaN at `last` (a NaN compares false).
inline uint32_t histogram_bin(float x, double inv_width, double last) {
  const double t = static_cast<double>(std::fabs(x)) * inv_width;
  return static_cast<uint32_t>(t < last ? t : last);
}

template <class P>
inline void abs_histogram_loop(const float* x, size_t n, double inv_width, uint32_t bins, uint32_t* sub) {
  const double last = static_cast<double>(bins - 1);
  uint32_t* h[kHistogramWays];
  for (size_t w = 0; w < kHistogramWays; ++w) h[w] = sub + w * bins;
  alignas(64) uint32_t idx[P::kBlock];
  size_t i = 0;
  for (; i + P::kBlock <= n; i += P::kBlock) {
    P::bins(x + i, inv_width, last, idx);
    for (size_t j = 0; j < P::kBlock; j += kHistogramWays)
      for (size_t w = 0; w < kHistogramWays; ++w) ++h[w][idx[j + w]];
  }
  for (; i < n; ++i) ++h[i % kHistogramWays][histogram_bin(x[i], inv_width, last)];
}

// The kernel of path `isa` from its policy P; counts itself under its name.
#define IQK_DEFINE_HISTOGRAM_KERNEL(isa, P)                                                                   \
  void abs_histogram_f32__##isa(const float* x, size_t n, double inv_width, uint32_t bins, uint32_t* sub) { \
    IQK_KERNEL_ENTRY("abs_histogram_f32__" #isa);                                                           \
    abs_histogram_loop<P>(x, n, inv_width, bins, sub);                                                      \
  }

}  // namespace iqk
