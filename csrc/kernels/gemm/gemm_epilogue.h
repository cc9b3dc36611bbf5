// The epilogue of one output element, in plain C++: the scalar GEMM kernel
// uses it for every element; SIMD kernels implement the same steps in the
// same order on vectors (see gemm.h for the formulas).
#pragma once

#include <cmath>
#include <cstring>

#include "kernels/gemm/gemm.h"

namespace iqk {

inline int32_t gemm_correct(const GemmEpilogue& ep, size_t m, size_t n, int32_t acc) {
  // Modulo 2^32, as the SIMD kernels compute it.
  uint32_t v = static_cast<uint32_t>(acc);
  if (ep.b_zp) v -= static_cast<uint32_t>(ep.row_sum[m]) * static_cast<uint32_t>(ep.b_zp[n]);
  v -= static_cast<uint32_t>(ep.col_off[n]);
  int32_t r;
  std::memcpy(&r, &v, sizeof r);
  return r;
}

// The scale of element (m, n) of an f32 or q8 epilogue: scale[n], or with a
// per-row scale row_scale[m] * scale[n], divided by out_scale for q8.
inline float gemm_scale_of(const GemmEpilogue& ep, size_t m, size_t n) {
  if (!ep.row_scale) return ep.scale[n];
  const float s = ep.row_scale[m] * ep.scale[n];
  return ep.kind == GemmOut::q8 ? s / ep.out_scale : s;
}

inline void gemm_store_one(const GemmEpilogue& ep, size_t m, size_t n, int32_t acc) {
  const int32_t c = gemm_correct(ep, m, n, acc);
  switch (ep.kind) {
    case GemmOut::i32:
      static_cast<int32_t*>(ep.c)[m * ep.ldc + n] = c;
      break;
    case GemmOut::f32: {
      float y = static_cast<float>(c) * gemm_scale_of(ep, m, n);
      y = y + ep.bias[n];
      if (ep.relu) y = 0.0f > y ? 0.0f : y;  // as max_ps(0, y): keeps NaN and -0.0
      static_cast<float*>(ep.c)[m * ep.ldc + n] = y;
      break;
    }
    case GemmOut::q8: {
      float t = std::nearbyintf(static_cast<float>(c) * gemm_scale_of(ep, m, n)) + static_cast<float>(ep.out_zp);
      t = t < static_cast<float>(ep.lo) ? static_cast<float>(ep.lo) : t;
      t = t > static_cast<float>(ep.hi) ? static_cast<float>(ep.hi) : t;
      static_cast<uint8_t*>(ep.c)[m * ep.ldc + n] = static_cast<uint8_t>(static_cast<int32_t>(t));
      break;
    }
  }
}

}  // namespace iqk
