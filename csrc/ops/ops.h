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

namespace iqk {

// A per-channel array is viewed as outer x channels x inner, with scale[c]
// and zp[c] for channel c (channels == 1 is per-tensor). The active path's
// kernels.

void quantize(const float* x, uint8_t* y, size_t outer, size_t channels, size_t inner,
              const float* scale, const int32_t* zp, int32_t qmin, int32_t qmax);

void dequantize(const void* q, bool q_signed, float* y, size_t outer, size_t channels,
                size_t inner, const float* scale, const int32_t* zp);


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

// qgemm's per-row scales (a per-row a_scale), checked as the reference
// checks them, in float32: every a_scale[i] finite and > 0; with `products`
// (N > 0), a_scale[m] * b_scale[n] finite and > 0 for every m and n, and
// when requantizing that product divided by out_scale finite. Float32
// rounding is monotonic, so the products and multipliers are checked at
// their extremes: the smallest and largest a_scale against b_lo and b_hi,
// the smallest and largest b_scale (O(M + N), not O(M N)). Copies a_scale to
// `out` (the kernels' row_scale, private to the call). Returns "" or the
// message of the first constraint that fails.
std::string gemm_row_scales(size_t m, const float* a_scale, bool products, float b_lo, float b_hi,
                            bool requantize, float out_scale, float* out);

}  // namespace iqk
