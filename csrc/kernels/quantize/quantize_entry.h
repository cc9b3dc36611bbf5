// What the quantize kernels of every path share around their vector steps:
// the entry points of quantize.h, which expand a path's steps into the
// per-tensor / per-channel and int8 / uint8 kernels, and the staging of
// per-channel parameters for steps that read whole vectors of them. No
// intrinsics here.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/quantize/quantize.h"
#include "runtime/kernel_counter.h"

namespace iqk {

// The quantize kernels of path `isa` (IQK_DECLARE_QUANTIZE_KERNELS) from its
// step type Q, which provides
//   tensor(x, y, n, scale, zp, qmin, qmax)                    QuantizeFn;
//   channels(x, y, rows, channels, scale, zp, qmin, qmax)     QuantizeChannelsFn.
// Each kernel counts itself under its own name. Use inside namespace iqk.
#define IQK_DEFINE_QUANTIZE_KERNELS(isa, Q)                                                              \
  void quantize_f32_q8__##isa(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmin, \
                              int32_t qmax) {                                                              \
    IQK_KERNEL_ENTRY("quantize_f32_q8__" #isa);                                                            \
    Q::tensor(x, y, n, scale, zp, qmin, qmax);                                                             \
  }                                                                                                        \
  void quantize_channels_f32_q8__##isa(const float* x, uint8_t* y, size_t rows, size_t channels,           \
                                       const float* scale, const int32_t* zp, int32_t qmin, int32_t qmax) { \
    IQK_KERNEL_ENTRY("quantize_channels_f32_q8__" #isa);                                                   \
    Q::channels(x, y, rows, channels, scale, zp, qmin, qmax);                                              \
  }

// The dequantize kernels of path `isa` from its step type D, which provides,
// for int8 input (Signed) and uint8 input (!Signed), on the bytes q:
//   template <bool Signed> tensor(q, y, n, scale, zp)                    DequantizeFn;
//   template <bool Signed> channels(q, y, rows, channels, scale, zp)     DequantizeChannelsFn.
// Each kernel counts itself under its own name. Use inside namespace iqk.
#define IQK_DEFINE_DEQUANTIZE_KERNELS(isa, D)                                                              \
  IQK_DEFINE_DEQUANTIZE_KERNELS_OF(isa, D, s8, true)                                                       \
  IQK_DEFINE_DEQUANTIZE_KERNELS_OF(isa, D, u8, false)

#define IQK_DEFINE_DEQUANTIZE_KERNELS_OF(isa, D, type, is_signed)                                          \
  void dequantize_##type##_f32__##isa(const void* q, float* y, size_t n, float scale, int32_t zp) {        \
    IQK_KERNEL_ENTRY("dequantize_" #type "_f32__" #isa);                                                    \
    D::template tensor<is_signed>(static_cast<const uint8_t*>(q), y, n, scale, zp);                        \
  }                                                                                                        \
  void dequantize_channels_##type##_f32__##isa(const void* q, float* y, size_t rows, size_t channels,      \
                                               const float* scale, const int32_t* zp) {                    \
    IQK_KERNEL_ENTRY("dequantize_channels_" #type "_f32__" #isa);                                           \
    D::template channels<is_signed>(static_cast<const uint8_t*>(q), y, rows, channels, scale, zp);         \
  }

// Per-channel parameters for steps that read whole vectors of them past the
// last channel (a tail step, or a row shorter than a vector): the channels in
// chunks of at most kQuantizeChunk, each chunk's scales and zero points (as
// Z) copied once per call into buffers padded with kQuantizePad entries of
// scale 1 and zero point 0 (padding lanes then compute nothing exceptional,
// and they are never stored): f(c0, nc, scales, zero_points) for the nc
// channels from c0.
constexpr size_t kQuantizeChunk = 256, kQuantizePad = 32;

template <typename Z, typename F>
__attribute__((always_inline)) inline void with_padded_channels(size_t channels, const float* scale, const int32_t* zp, F&& f) {
  alignas(32) float s_buf[kQuantizeChunk + kQuantizePad];
  alignas(32) Z z_buf[kQuantizeChunk + kQuantizePad];
  for (size_t c0 = 0; c0 < channels; c0 += kQuantizeChunk) {
    const size_t nc = channels - c0 < kQuantizeChunk ? channels - c0 : kQuantizeChunk;
    for (size_t c = 0; c < kQuantizeChunk + kQuantizePad; ++c) {
      s_buf[c] = c < nc ? scale[c0 + c] : 1.0f;
      z_buf[c] = c < nc ? static_cast<Z>(zp[c0 + c]) : Z(0);
    }
    f(c0, nc, static_cast<const float*>(s_buf), static_cast<const Z*>(z_buf));
  }
}

}  // namespace iqk
