// The C++ side of intquant_kernels.calibration: the threaded histogram of |x|
// and the searches over a histogram's candidate thresholds. The definitions
// they must equal are the NumPy reference's (reference.HistogramCalibrator).
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/kernel_table.h"

namespace iqk {

// counts[b(x)] += 1 for the n values of x (b: kernels/calibrate/histogram.h),
// with table t's kernel, over threads. bins >= 1.
void abs_histogram(const KernelTable& t, const float* x, size_t n, double inv_width, uint32_t bins,
                   int64_t* counts);

// For each candidate i (1 <= i <= bins): the KL divergence between P, the
// first i bins with the counts of the bins past them added to bin i - 1, and
// Q, the first i bins as counted merged into `levels` levels (bin j in level
// j * levels / i) and spread evenly over each level's non-empty bins, each
// normalised by its own sum; +inf where P has mass and Q none. out[c] for
// candidates[c]; 0 for an empty histogram.
void histogram_divergences(const int64_t* counts, size_t bins, const int64_t* candidates, size_t n_candidates,
                           size_t levels, double* out);

// For each candidate i: sum_j counts[j] * (t_j - q_j)^2 / sum_j counts[j], in
// units of one bin width, with t_j = j + 0.5 the bin centre, s = i / qmax the
// step and q_j = min(round_half_even(t_j / s), qmax) * s: the squared error
// of quantizing the bin centres with threshold i.
void histogram_mse(const int64_t* counts, size_t bins, const int64_t* candidates, size_t n_candidates, double qmax,
                   double* out);

}  // namespace iqk
