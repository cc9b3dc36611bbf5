// The calibration histogram kernel: counts of |x| in equal-width bins. No
// intrinsics here: this header is included by portable code.
//
// Bin of a value: b(x) = min(floor(double(|x|) * inv_width), bins - 1), the
// product a double multiply (exact IEEE, the same on every path and in
// NumPy). A NaN lands in the last bin and an infinity too, so no input can
// index outside the histogram; the Python layer rejects non-finite data
// before calling (calibration.py).
#pragma once

#include <cstddef>
#include <cstdint>

namespace iqk {

// Sub-histograms the kernel spreads its increments over: element i adds one
// to sub[(i % kHistogramWays) * bins + b(x[i])]. Consecutive equal bins (the
// common case: most activations lie in the first few bins) then go to
// different counters, so an increment does not wait for the previous one.
constexpr size_t kHistogramWays = 4;

// Adds the n elements of x to the kHistogramWays x bins counters `sub`
// (uint32: a caller passes at most kHistogramMaxChunk elements per call
// before it drains the counters).
using AbsHistogramFn = void (*)(const float* x, size_t n, double inv_width, uint32_t bins, uint32_t* sub);
constexpr size_t kHistogramMaxChunk = size_t{1} << 31;

#define IQK_DECLARE_HISTOGRAM_KERNEL(isa) \
  void abs_histogram_f32__##isa(const float* x, size_t n, double inv_width, uint32_t bins, uint32_t* sub);

}  // namespace iqk
