// The GEMM epilogue (kernels/gemm/gemm_epilogue.h) on NEON vectors of 4
// int32, shared by every ARM kernel that stores through a GemmEpilogue: the
// same steps in the same order as the scalar gemm_store_one, so the results
// match it bit for bit. Intrinsics: include only from AArch64 kernel files;
// everything here has internal linkage, so each file gets its own copy built
// with its own flags.
#pragma once

#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/specialize.h"

namespace iqk {

// The per-column terms of 4 columns from n for an epilogue of kind Kind,
// loaded once per tile (b_zp zero without one; scale and bias zero where the
// kind does not use them).
struct NeonCols4 {
  int32x4_t off, b_zp;
  float32x4_t scale, bias;
};

template <GemmOut Kind>
static inline NeonCols4 gemm_cols4_neon(const GemmEpilogue& e, size_t n) {
  return {vld1q_s32(e.col_off + n), e.b_zp ? vld1q_s32(e.b_zp + n) : vdupq_n_s32(0),
          Kind == GemmOut::i32 ? vdupq_n_f32(0.0f) : vld1q_f32(e.scale + n),
          Kind == GemmOut::f32 ? vld1q_f32(e.bias + n) : vdupq_n_f32(0.0f)};
}

// acc - row_sum[m] * b_zp (when the epilogue has b_zp) - col_off, modulo 2^32.
static inline int32x4_t gemm_correct4_neon(const GemmEpilogue& e, int32x4_t acc, size_t m, const NeonCols4& c) {
  if (e.b_zp) acc = vmlsq_n_s32(acc, c.b_zp, e.row_sum[m]);
  return vsubq_s32(acc, c.off);
}

// The steps after the corrections on 4 values: the first `cols` (1..4) go to
// `out`, the output element of the first value. Kind == ep.kind.
template <GemmOut Kind>
static inline void gemm_finish4_neon(const GemmEpilogue& ep, int32x4_t v, float32x4_t scale, float32x4_t bias,
                                     void* out, size_t cols) {
  if constexpr (Kind == GemmOut::i32) {
    if (cols == 4) {
      vst1q_s32(static_cast<int32_t*>(out), v);
    } else {
      int32_t buf[4];
      vst1q_s32(buf, v);
      std::memcpy(out, buf, cols * sizeof(int32_t));
    }
  } else if constexpr (Kind == GemmOut::f32) {
    float32x4_t y = vmulq_f32(vcvtq_f32_s32(v), scale);
    y = vaddq_f32(y, bias);
    // As 0.0f > y ? 0.0f : y: keeps NaN and -0.0 (fmax would make -0.0 +0.0).
    if (ep.relu) y = vbslq_f32(vcgtq_f32(vdupq_n_f32(0.0f), y), vdupq_n_f32(0.0f), y);
    if (cols == 4) {
      vst1q_f32(static_cast<float*>(out), y);
    } else {
      float buf[4];
      vst1q_f32(buf, y);
      std::memcpy(out, buf, cols * sizeof(float));
    }
  } else {
    // frintn: round half to even, as nearbyintf in the default rounding mode.
    float32x4_t t = vrndnq_f32(vmulq_f32(vcvtq_f32_s32(v), scale));
    t = vaddq_f32(t, vdupq_n_f32(static_cast<float>(ep.out_zp)));
    // No NaN can reach here (C is an integer and the scale finite), so
    // fmax/fmin clamp exactly as the scalar comparisons do.
    t = vmaxq_f32(t, vdupq_n_f32(static_cast<float>(ep.lo)));
    t = vminq_f32(t, vdupq_n_f32(static_cast<float>(ep.hi)));
    // An integer in [-128, 255]: its low byte, as the scalar cast.
    const int16x4_t h = vmovn_s32(vcvtq_s32_f32(t));
    const uint8x8_t b = vreinterpret_u8_s8(vmovn_s16(vcombine_s16(h, h)));
    if (cols == 4) {
      vst1_lane_u32(static_cast<uint32_t*>(out), vreinterpret_u32_u8(b), 0);
    } else {
      uint8_t buf[8];
      vst1_u8(buf, b);
      std::memcpy(out, buf, cols);
    }
  }
}

// The scale vector of a row from the per-column `scale` of 4 columns:
// itself, or with a per-row scale (Rows) row_scale[m] * scale, for q8
// divided by out_scale (gemm_epilogue.h, gemm_scale_of).
template <GemmOut Kind, bool Rows>
static inline float32x4_t gemm_row_scale4_neon(const GemmEpilogue& e, size_t m, float32x4_t scale) {
  if constexpr (!Rows) {
    return scale;
  } else {
    const float32x4_t s = vmulq_f32(vdupq_n_f32(e.row_scale[m]), scale);
    return Kind == GemmOut::q8 ? vdivq_f32(s, vdupq_n_f32(e.out_scale)) : s;
  }
}

// The epilogue of a whole R x (4 V) tile whose row i is acc[i * V .. i * V + V)
// (4 columns each), kind Kind (== e.kind), with a per-row scale if Rows
// (== e.row_scale != null): the per-column terms loaded once, the first nr
// columns stored. `e` is a local copy, which the stores into e.c cannot
// alias.
template <GemmOut Kind, bool Rows, size_t R, size_t V>
static inline void gemm_store_tile_neon(const GemmEpilogue& e, size_t nr, size_t m0, size_t n0,
                                        const int32x4_t* acc) {
  NeonCols4 cols[V];
#pragma GCC unroll 8
  for (size_t v = 0; v < V; ++v) cols[v] = gemm_cols4_neon<Kind>(e, n0 + 4 * v);
  const size_t bytes = gemm_out_bytes(Kind);
  uint8_t* row = static_cast<uint8_t*>(e.c) + (m0 * e.ldc + n0) * bytes;
#pragma GCC unroll 8
  for (size_t i = 0; i < R; ++i, row += e.ldc * bytes) {
#pragma GCC unroll 8
    for (size_t v = 0; v < V; ++v) {
      if (4 * v >= nr) break;
      const size_t cols_left = nr - 4 * v;
      gemm_finish4_neon<Kind>(e, gemm_correct4_neon(e, acc[i * V + v], m0 + i, cols[v]),
                              gemm_row_scale4_neon<Kind, Rows>(e, m0 + i, cols[v].scale), cols[v].bias,
                              row + 4 * v * bytes, cols_left < 4 ? cols_left : 4);
    }
  }
}

// The end of a 4 x 16 tile kernel's call on its first R rows of sums, row i
// in rows[4 i .. 4 i + 4): the partial sums to acc_out (row-major, stride 16)
// when K goes on in another slice, else the epilogue into ep.c.
template <size_t R>
static inline void gemm_tile_out_neon(const int32x4_t* rows, int32_t* acc_out, const GemmEpilogue& ep, size_t nr,
                                      size_t m0, size_t n0) {
  if (acc_out) {
#pragma GCC unroll 16
    for (size_t i = 0; i < R * 4; ++i) vst1q_s32(acc_out + (i / 4) * 16 + (i % 4) * 4, rows[i]);
    return;
  }
  const GemmEpilogue e = ep;
  with_kind_rows(e, [&](auto kind, auto per_row) {
    gemm_store_tile_neon<decltype(kind)::value, decltype(per_row)::value, R, 4>(e, nr, m0, n0, rows);
  });
}

}  // namespace iqk
