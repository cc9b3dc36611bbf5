#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/kernel_table.h"
#include "ops/ops.h"
#include "ops/driver.h"
#include "runtime/thread_pool.h"

namespace iqk {

namespace {

// Elements per task: large enough that a task costs far more than handing it
// out, small enough that two threads share a few-MB array evenly.
constexpr size_t kGrain = 1 << 16;


// Calls span(begin, count, channel) over runs of one channel, or, when the
// channel axis is the last one, rows(first_row, n_rows) over whole rows, in
// parallel tasks of about kGrain elements.
template <typename Span, typename Rows>
void for_each_run(size_t outer, size_t channels, size_t inner, Span span, Rows rows) {
  const size_t n = outer * channels * inner;
  if (n == 0) return;
  if (channels > 1 && inner == 1) {
    const size_t rows_per_task = std::max<size_t>(1, kGrain / channels);
    parallel_for(ceil_div(outer, rows_per_task), [&](size_t t) {
      const size_t r0 = t * rows_per_task;
      rows(r0, std::min(rows_per_task, outer - r0));
    });
    return;
  }
  parallel_for(ceil_div(n, kGrain), [&](size_t t) {
    size_t b = t * kGrain;
    const size_t e = std::min(n, b + kGrain);
    while (b < e) {
      const size_t run = b / inner;
      const size_t count = std::min(e - b, inner - b % inner);
      span(b, count, run % channels);
      b += count;
    }
  });
}

}  // namespace

void quantize(const float* x, uint8_t* y, size_t outer, size_t channels, size_t inner,
              const float* scale, const int32_t* zp, int32_t qmin, int32_t qmax) {
  const KernelTable& k = active_kernels();
  for_each_run(
      outer, channels, inner,
      [&](size_t b, size_t count, size_t c) {
        k.quantize.fn(x + b, y + b, count, scale[c], zp[c], qmin, qmax);
      },
      [&](size_t r0, size_t nr) {
        k.quantize_channels.fn(x + r0 * channels, y + r0 * channels, nr, channels, scale, zp,
                               qmin, qmax);
      });
}

void dequantize(const void* q, bool q_signed, float* y, size_t outer, size_t channels,
                size_t inner, const float* scale, const int32_t* zp) {
  const KernelTable& k = active_kernels();
  const uint8_t* qb = static_cast<const uint8_t*>(q);
  const DequantizeFn one = q_signed ? k.dequantize_s8.fn : k.dequantize_u8.fn;
  const DequantizeChannelsFn rows =
      q_signed ? k.dequantize_channels_s8.fn : k.dequantize_channels_u8.fn;
  for_each_run(
      outer, channels, inner,
      [&](size_t b, size_t count, size_t c) { one(qb + b, y + b, count, scale[c], zp[c]); },
      [&](size_t r0, size_t nr) {
        rows(qb + r0 * channels, y + r0 * channels, nr, channels, scale, zp);
      });
}

bool value_range(const KernelTable& k, const float* x, size_t n, float* lo, float* hi) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  const size_t tasks = ceil_div(n, kGrain);
  std::vector<float> lo_t(tasks, inf), hi_t(tasks, -inf);
  std::vector<uint8_t> ok_t(tasks, 1);
  parallel_for(tasks, [&](size_t t) {
    const size_t b = t * kGrain;
    ok_t[t] = k.range.fn(x + b, std::min(kGrain, n - b), &lo_t[t], &hi_t[t]);
  });
  float mn = inf, mx = -inf;
  bool ok = true;
  for (size_t t = 0; t < tasks; ++t) {
    ok = ok && ok_t[t];
    mn = std::min(mn, lo_t[t]);
    mx = std::max(mx, hi_t[t]);
  }
  *lo = mn;
  *hi = mx;
  return ok;
}

DynamicStatus dynamic_quantize_tensor(const float* x, uint8_t* y, size_t n, float* scale, int32_t* zp) {
  float lo, hi;
  if (!value_range(active_kernels(), x, n, &lo, &hi)) return DynamicStatus::not_finite;
  // The range includes 0 (so that 0 is exactly representable); n == 0 gives
  // lo = hi = 0. Every step below is one float32 operation, in the order of
  // the reference (-ffp-contract=off keeps them apart).
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  float s = (hi - lo) / 255.0f;
  if (!std::isfinite(s)) return DynamicStatus::range_overflow;
  // max == min (all zeros) as onnxruntime does, and also a positive range
  // too small for its scale to be a nonzero float32.
  if (s == 0.0f) s = 1.0f;
  const float z = std::nearbyintf(std::clamp(0.0f - lo / s, 0.0f, 255.0f));
  const int32_t zi = static_cast<int32_t>(z);
  // The second pass runs over the blocks from the last to the first: the
  // range pass has just read the end of x, which is then still in cache.
  const KernelTable& k = active_kernels();
  const size_t tasks = ceil_div(n, kGrain);
  parallel_for(tasks, [&](size_t t) {
    const size_t b = (tasks - 1 - t) * kGrain;
    k.quantize.fn(x + b, y + b, std::min(kGrain, n - b), s, zi, 0, 255);
  });
  *scale = s;
  *zp = zi;
  return DynamicStatus::ok;
}

DynamicStatus dynamic_quantize_rows(const float* x, uint8_t* y, size_t rows, size_t cols, float* scale) {
  const KernelTable& k = active_kernels();
  std::atomic<bool> bad{false};
  // Row by row: the quantize kernel reads the row that the range kernel has
  // just brought into cache (L1 for rows of a few thousand floats, L2 up to
  // its size: 256K floats in 1 MiB); only longer rows are read twice from
  // further out. Tasks of whole rows, about kGrain elements each.
  const size_t rows_per_task = std::max<size_t>(1, kGrain / std::max<size_t>(1, cols));
  parallel_for(ceil_div(rows, rows_per_task), [&](size_t t) {
    const size_t r_end = std::min(rows, (t + 1) * rows_per_task);
    for (size_t r = t * rows_per_task; r < r_end; ++r) {
      if (bad.load(std::memory_order_relaxed)) return;  // the call fails anyway
      const float* xr = x + r * cols;
      float lo, hi;
      if (!k.range.fn(xr, cols, &lo, &hi)) {
        bad.store(true, std::memory_order_relaxed);
        return;
      }
      // cols == 0: lo = +inf, hi = -inf, amax = 0.
      const float amax = std::max(0.0f, std::max(-lo, hi));
      float s = amax / 127.0f;
      if (s == 0.0f) s = 1.0f;  // an all-zero row (or one too small for a nonzero scale)
      scale[r] = s;
      k.quantize.fn(xr, y + r * cols, cols, s, 0, -127, 127);
    }
  });
  return bad.load() ? DynamicStatus::not_finite : DynamicStatus::ok;
}

}  // namespace iqk
