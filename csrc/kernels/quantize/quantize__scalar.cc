// Portable quantize kernels: always built, and the baseline every other path
// must match bit for bit.
#include <cmath>

#include "kernels/quantize/quantize_entry.h"

namespace iqk {

namespace {
// round_half_even(x / scale) + zp, saturated. The division is a true float32
// division; rounding to an integer happens before the zero point is added
// (adding first would move ties). nearbyintf rounds half to even in the
// default rounding mode, which nothing in this package changes.
inline uint8_t quantize_one(float x, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
  float r = std::nearbyintf(x / scale);
  if (std::isnan(r)) return static_cast<uint8_t>(zp);
  // r + zp is exact whenever |r| < 2^24; beyond that it saturates either way.
  r += static_cast<float>(zp);
  r = r < static_cast<float>(qmin) ? static_cast<float>(qmin) : r;
  r = r > static_cast<float>(qmax) ? static_cast<float>(qmax) : r;
  return static_cast<uint8_t>(static_cast<int32_t>(r));
}

// The steps of quantize_entry.h.
struct QuantizeScalar {
  static void tensor(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    for (size_t i = 0; i < n; ++i) y[i] = quantize_one(x[i], scale, zp, qmin, qmax);
  }
  static void channels(const float* x, uint8_t* y, size_t rows, size_t channels, const float* scale,
                       const int32_t* zp, int32_t qmin, int32_t qmax) {
    for (size_t r = 0; r < rows; ++r, x += channels, y += channels) {
      for (size_t c = 0; c < channels; ++c) y[c] = quantize_one(x[c], scale[c], zp[c], qmin, qmax);
    }
  }
};
}  // namespace

IQK_DEFINE_QUANTIZE_KERNELS(scalar, QuantizeScalar)

}  // namespace iqk
