// Portable dequantize kernels: y = float(q - zp) * scale. q - zp is exact in
// int32 and in float32 (|q - zp| <= 510), so the only rounding is the multiply.
#include "runtime/kernel_counter.h"
#include "kernels/quantize/quantize.h"

namespace iqk {

namespace {
template <typename Q>
void dequantize(const void* qv, float* y, size_t n, float scale, int32_t zp) {
  const Q* q = static_cast<const Q*>(qv);
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(q[i]) - zp) * scale;
}

template <typename Q>
void dequantize_channels(const void* qv, float* y, size_t rows, size_t channels,
                         const float* scale, const int32_t* zp) {
  const Q* q = static_cast<const Q*>(qv);
  for (size_t r = 0; r < rows; ++r, q += channels, y += channels) {
    for (size_t c = 0; c < channels; ++c)
      y[c] = static_cast<float>(static_cast<int32_t>(q[c]) - zp[c]) * scale[c];
  }
}
}  // namespace

void dequantize_s8_f32__scalar(const void* q, float* y, size_t n, float scale, int32_t zp) {
  IQK_KERNEL_ENTRY("dequantize_s8_f32__scalar");
  dequantize<int8_t>(q, y, n, scale, zp);
}
void dequantize_u8_f32__scalar(const void* q, float* y, size_t n, float scale, int32_t zp) {
  IQK_KERNEL_ENTRY("dequantize_u8_f32__scalar");
  dequantize<uint8_t>(q, y, n, scale, zp);
}
void dequantize_channels_s8_f32__scalar(const void* q, float* y, size_t rows, size_t channels,
                                        const float* scale, const int32_t* zp) {
  IQK_KERNEL_ENTRY("dequantize_channels_s8_f32__scalar");
  dequantize_channels<int8_t>(q, y, rows, channels, scale, zp);
}
void dequantize_channels_u8_f32__scalar(const void* q, float* y, size_t rows, size_t channels,
                                        const float* scale, const int32_t* zp) {
  IQK_KERNEL_ENTRY("dequantize_channels_u8_f32__scalar");
  dequantize_channels<uint8_t>(q, y, rows, channels, scale, zp);
}

}  // namespace iqk
