#include "ops/calibrate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/driver.h"
#include "runtime/thread_pool.h"

namespace iqk {

void abs_histogram(const KernelTable& t, const float* x, size_t n, double inv_width, uint32_t bins,
                   int64_t* counts) {
  if (n == 0) return;
  // About 1 ns per value on one thread.
  const size_t threads = threads_for(static_cast<double>(n));
  const size_t per_task = ceil_div(n, threads);
  const size_t sub_size = kHistogramWays * bins;
  // Each task counts into its own uint32 sub-histograms, drained into its
  // int64 row of `partial` after every kHistogramMaxChunk values.
  std::vector<uint32_t> sub(threads * sub_size);
  std::vector<int64_t> partial(threads * bins);
  parallel_for(threads, [&](size_t task) {
    uint32_t* s = sub.data() + task * sub_size;
    int64_t* p = partial.data() + task * bins;
    const size_t end = std::min(n, (task + 1) * per_task);
    for (size_t b = task * per_task; b < end; b += kHistogramMaxChunk) {
      const size_t count = std::min(end - b, kHistogramMaxChunk);
      std::fill(s, s + sub_size, 0u);
      t.abs_histogram.fn(x + b, count, inv_width, bins, s);
      for (size_t w = 0; w < kHistogramWays; ++w)
        for (size_t j = 0; j < bins; ++j) p[j] += s[w * bins + j];
    }
  }, threads);
  for (size_t task = 0; task < threads; ++task)
    for (size_t j = 0; j < bins; ++j) counts[j] += partial[task * bins + j];
}

// With T = sum P (every value) and T' = sum Q (the values not clipped),
//   KL = sum_j (P_j / T) log((P_j / T) / (Q_j / T'))
//      = (1/T) sum_j P_j (log P_j - log Q_j) + log(T' / T).
// Q is constant over a level's non-empty bins, Q_j = M_l / n_l (the level's
// count over its number of non-empty bins): one log per level, and log P_j
// from a table but at bin i - 1. Each term is formed from the difference of
// two logs, not as a difference of large sums, so the result keeps the
// precision of the direct sum (the reference's).
void histogram_divergences(const int64_t* counts, size_t bins, const int64_t* candidates, size_t n_candidates,
                           size_t levels, double* out) {
  std::vector<int64_t> mass(bins + 1, 0), used(bins + 1, 0);
  std::vector<double> log_count(bins, 0.0);
  for (size_t j = 0; j < bins; ++j) {
    mass[j + 1] = mass[j] + counts[j];
    used[j + 1] = used[j] + (counts[j] > 0);
    if (counts[j] > 0) log_count[j] = std::log(static_cast<double>(counts[j]));
  }
  const int64_t total = mass[bins];
  for (size_t c = 0; c < n_candidates; ++c) {
    const size_t i = static_cast<size_t>(candidates[c]);
    const int64_t clipped = total - mass[i];
    if (total == 0) {
      out[c] = 0.0;
      continue;
    }
    if (clipped > 0 && counts[i - 1] == 0) {  // clipped values land in a bin Q leaves empty
      out[c] = HUGE_VAL;
      continue;
    }
    double sum = 0.0;  // sum_j P_j (log P_j - log Q_j)
    for (size_t l = 0; l < levels; ++l) {
      const size_t lo = (l * i + levels - 1) / levels, hi = ((l + 1) * i + levels - 1) / levels;
      if (lo >= hi || mass[hi] == mass[lo]) continue;
      const double log_q =
          std::log(static_cast<double>(mass[hi] - mass[lo]) / static_cast<double>(used[hi] - used[lo]));
      const size_t end = hi == i ? hi - 1 : hi;  // bin i - 1 below, with the clipped values
      for (size_t j = lo; j < end; ++j)
        if (counts[j] > 0) sum += static_cast<double>(counts[j]) * (log_count[j] - log_q);
      if (hi == i && counts[i - 1] + clipped > 0) {
        const double last = static_cast<double>(counts[i - 1] + clipped);
        sum += last * (std::log(last) - log_q);
      }
    }
    out[c] = sum / static_cast<double>(total) + std::log(static_cast<double>(mass[i]) / static_cast<double>(total));
  }
}

void histogram_mse(const int64_t* counts, size_t bins, const int64_t* candidates, size_t n_candidates, double qmax,
                   double* out) {
  // Only non-empty bins contribute.
  std::vector<double> centre, weight;
  int64_t total = 0;
  for (size_t j = 0; j < bins; ++j)
    if (counts[j] > 0) {
      centre.push_back(static_cast<double>(j) + 0.5);
      weight.push_back(static_cast<double>(counts[j]));
      total += counts[j];
    }
  for (size_t c = 0; c < n_candidates; ++c) {
    const double s = static_cast<double>(candidates[c]) / qmax;
    double err = 0.0;
    for (size_t j = 0; j < centre.size(); ++j) {
      const double q = std::min(std::nearbyint(centre[j] / s), qmax) * s;
      const double d = centre[j] - q;
      err += weight[j] * (d * d);
    }
    out[c] = total ? err / static_cast<double>(total) : 0.0;
  }
}

}  // namespace iqk
