// Kernel signatures and the kernels each ISA file provides. No intrinsics here:
// this header is included by portable code.
//
// Naming: op_types__isa, the ISA after a double underscore, so that grepping
// for "__avx512vnni" finds every kernel of that path.
//
// Tail contract: every kernel reads exactly x[0..n) and writes exactly
// y[0..n) (rows*channels for the per-channel kernels), whatever n is.
#pragma once

#include <cstddef>
#include <cstdint>

namespace iqk {

// y[i] = clamp(round_half_even(x[i] / scale) + zp, qmin, qmax), NaN -> zp.
// The byte written is the two's-complement low byte of the result, which is
// the int8 value for int8 bounds and the uint8 value for uint8 bounds.
using QuantizeFn = void (*)(const float* x, uint8_t* y, size_t n, float scale, int32_t zp,
                            int32_t qmin, int32_t qmax);
// The same with per-channel scale[c], zp[c] over a rows x channels row-major
// block (per-channel quantization along the last axis).
using QuantizeChannelsFn = void (*)(const float* x, uint8_t* y, size_t rows, size_t channels,
                                    const float* scale, const int32_t* zp, int32_t qmin,
                                    int32_t qmax);
// The value range of x[0..n) (kernels/quantize/range__<isa>.cc): returns
// true iff every x[i] is finite, and then *lo = min x[i], *hi = max x[i]
// (n == 0: true, *lo = +inf, *hi = -inf). When it returns false, *lo and *hi
// are unspecified. Where the extreme is a zero, its sign is unspecified
// (-0.0 and +0.0 compare equal, and each path meets them in its own order).
using RangeFn = bool (*)(const float* x, size_t n, float* lo, float* hi);
// y[i] = float(q[i] - zp) * scale; q is int8 or uint8 per the kernel's name.
using DequantizeFn = void (*)(const void* q, float* y, size_t n, float scale, int32_t zp);
using DequantizeChannelsFn = void (*)(const void* q, float* y, size_t rows, size_t channels,
                                      const float* scale, const int32_t* zp);

// The quantize kernels of one path (and its range kernel), for its table file.
#define IQK_DECLARE_QUANTIZE_KERNELS(isa)                                                  \
  bool range_f32__##isa(const float*, size_t, float*, float*);                            \
  void quantize_f32_q8__##isa(const float*, uint8_t*, size_t, float, int32_t, int32_t,     \
                              int32_t);                                                    \
  void quantize_channels_f32_q8__##isa(const float*, uint8_t*, size_t, size_t, const float*, \
                                       const int32_t*, int32_t, int32_t);                  \
  void dequantize_s8_f32__##isa(const void*, float*, size_t, float, int32_t);              \
  void dequantize_u8_f32__##isa(const void*, float*, size_t, float, int32_t);              \
  void dequantize_channels_s8_f32__##isa(const void*, float*, size_t, size_t, const float*, \
                                         const int32_t*);                                  \
  void dequantize_channels_u8_f32__##isa(const void*, float*, size_t, size_t, const float*, \
                                         const int32_t*);


// A table's quantize entries from the kernels of one path.
#define IQK_SET_QUANTIZE_KERNELS(t, isa)                                              \
  do {                                                                                 \
    (t).range = IQK_KERNEL(range_f32__##isa);                                          \
    (t).quantize = IQK_KERNEL(quantize_f32_q8__##isa);                                 \
    (t).quantize_channels = IQK_KERNEL(quantize_channels_f32_q8__##isa);               \
    (t).dequantize_s8 = IQK_KERNEL(dequantize_s8_f32__##isa);                          \
    (t).dequantize_u8 = IQK_KERNEL(dequantize_u8_f32__##isa);                          \
    (t).dequantize_channels_s8 = IQK_KERNEL(dequantize_channels_s8_f32__##isa);        \
    (t).dequantize_channels_u8 = IQK_KERNEL(dequantize_channels_u8_f32__##isa);        \
  } while (0)

}  // namespace iqk
