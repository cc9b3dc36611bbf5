// Portable dequantize kernels: y = float(q - zp) * scale. q - zp is exact in
// int32 and in float32 (|q - zp| <= 510), so the only rounding is the multiply.
#include <type_traits>

#include "kernels/quantize/quantize_entry.h"

namespace iqk {

namespace {
// The steps of quantize_entry.h; Q<Signed> is the element type of q.
struct DequantizeScalar {
  template <bool Signed>
  using Q = std::conditional_t<Signed, int8_t, uint8_t>;

  template <bool Signed>
  static void tensor(const uint8_t* qv, float* y, size_t n, float scale, int32_t zp) {
    const Q<Signed>* q = reinterpret_cast<const Q<Signed>*>(qv);
    for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(q[i]) - zp) * scale;
  }
  template <bool Signed>
  static void channels(const uint8_t* qv, float* y, size_t rows, size_t channels, const float* scale,
                       const int32_t* zp) {
    const Q<Signed>* q = reinterpret_cast<const Q<Signed>*>(qv);
    for (size_t r = 0; r < rows; ++r, q += channels, y += channels) {
      for (size_t c = 0; c < channels; ++c)
        y[c] = static_cast<float>(static_cast<int32_t>(q[c]) - zp[c]) * scale[c];
    }
  }
};
}  // namespace

IQK_DEFINE_DEQUANTIZE_KERNELS(scalar, DequantizeScalar)

}  // namespace iqk
