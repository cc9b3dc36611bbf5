// The C++ API of the package: the op drivers. They validate nothing the
// binding has not already checked, split the work over threads and call the
// kernels of the table they are given. Arrays are C-contiguous.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ops/conv.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/pack.h"
#include "runtime/kernel_table.h"

namespace iqk {

// A per-channel array is viewed as outer x channels x inner, with scale[c]
// and zp[c] for channel c (channels == 1 is per-tensor). The active path's
// kernels.

void quantize(const float* x, uint8_t* y, size_t outer, size_t channels, size_t inner,
              const float* scale, const int32_t* zp, int32_t qmin, int32_t qmax);

void dequantize(const void* q, bool q_signed, float* y, size_t outer, size_t channels,
                size_t inner, const float* scale, const int32_t* zp);

// The value range of x[0..n) with the range kernel of table `k` (RangeFn,
// kernels/quantize/quantize.h: the same result and return value), split over
// threads for large n.
bool value_range(const KernelTable& k, const float* x, size_t n, float* lo, float* hi);

// What dynamic quantization found in its input: ok, or why it gives no result.
enum class DynamicStatus {
  ok,
  not_finite,      // a NaN or an infinity in x
  range_overflow,  // per tensor: max(x, 0) - min(x, 0) is not a finite float32
};

// Per-tensor dynamic quantization to uint8 (ONNX DynamicQuantizeLinear), on
// the active path, in float32 exactly as python/intquant_kernels/reference.py
// computes it: lo = min(0, min x), hi = max(0, max x),
// scale = (hi - lo) / 255 (1 where that is 0),
// zp = round_half_even(clamp(0 - lo / scale, 0, 255)), then quantize(x, scale,
// zp) into y. Two passes over x: the range, then the quantization.
// y, *scale and *zp are written only when the result is ok.
DynamicStatus dynamic_quantize_tensor(const float* x, uint8_t* y, size_t n, float* scale, int32_t* zp);

// Symmetric int8 dynamic quantization of each row of a rows x cols array, on
// the active path: scale[r] = amax_r / 127 with amax_r = max |x[r, :]| (1 where
// that is 0), then quantize(x[r, :], scale[r], 0) to [-127, 127] into y. Each
// row's range is taken and the row quantized right after, while it is still
// in cache: one pass over x from memory. Where the result is not ok, y and
// scale hold unspecified values.
DynamicStatus dynamic_quantize_rows(const float* x, uint8_t* y, size_t rows, size_t cols, float* scale);


struct GemmProblem {
  const uint8_t* a = nullptr;  // M rows of K bytes, row m at a + m * lda
  bool a_signed = false;
  size_t M = 0, K = 0, N = 0, lda = 0;
  const uint8_t* packed_b = nullptr;  // pack_b() output for the kernel's shape
  const int32_t* b_zp = nullptr;      // N entries, or null when all are zero
  const int32_t* col_off = nullptr;   // N entries (see gemm.h)
  // kind, c, ldc, relu, out_zp, lo, hi as given; scale (N, required for f32
  // and q8) and bias (N or null) are padded by the driver.
  GemmEpilogue epilogue;
};

void gemm(const GemmProblem& p, const GemmKernel& kernel);

// qgemm's per-column constants, in float32 exactly as the reference computes
// them (python/intquant_kernels/_gemm_common.py, columns_numpy):
//   s[j] = a_scale * b_scale[j or 0]; out[j] = s[j], or s[j] / out_scale when
//   requantizing; bias_q[j] = round_half_even(bias[j] / s[j]) for a float bias.
// Returns "" or the message of the first constraint that fails.
std::string gemm_columns(size_t n, float a_scale, const float* b_scale, bool per_column,
                         const float* bias, bool requantize, float out_scale, float* out,
                         int64_t* bias_q);

}  // namespace iqk
