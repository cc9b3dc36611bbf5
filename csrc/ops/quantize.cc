#include <algorithm>

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

}  // namespace iqk
