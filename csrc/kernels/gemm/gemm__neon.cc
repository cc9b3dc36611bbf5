// ARMv8.0 Advanced SIMD GEMM tile kernel, exact for every int8/uint8 input:
// B is packed k-major (rows4: per k, the panel's 16 columns as bytes), each
// row of B is widened to int16 (sxtl) and multiplied by one int16 element of
// A (uxtl) with smlal / smlal2 by element, which accumulate the products
// straight into int32. A product is at most 255 * 128 in magnitude: nothing
// saturates or wraps before the int32 sums (which wrap modulo 2^32 as on
// every path).
#include <arm_neon.h>

#include <utility>

#include "kernels/specialize.h"
#include "runtime/kernel_counter.h"
#include "simd/arm/epilogue_neon.h"

namespace iqk {

namespace {

constexpr size_t MR = 4, NR = 16;
constexpr char kName[] = "gemm_u8s8s32_4x16k4__neon";

// One k of R rows: b16 = row k of B (columns 0..7 and 8..15 as int16), lane
// L of each row's widened A.
template <size_t R, int L>
inline void mac_k(int32x4_t (&acc)[MR * 4], const int16x8_t (&a)[MR], int16x8_t b0, int16x8_t b1) {
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i) {
    acc[i * 4 + 0] = vmlal_laneq_s16(acc[i * 4 + 0], vget_low_s16(b0), a[i], L);
    acc[i * 4 + 1] = vmlal_high_laneq_s16(acc[i * 4 + 1], b0, a[i], L);
    acc[i * 4 + 2] = vmlal_laneq_s16(acc[i * 4 + 2], vget_low_s16(b1), a[i], L);
    acc[i * 4 + 3] = vmlal_high_laneq_s16(acc[i * 4 + 3], b1, a[i], L);
  }
}

// Row k of the panel (16 signed bytes) as two vectors of 8 int16.
inline void load_b(const int8_t* b, int16x8_t& b0, int16x8_t& b1) {
  const int8x16_t v = vld1q_s8(b);
  b0 = vmovl_s8(vget_low_s8(v));
  b1 = vmovl_high_s8(v);
}

// K = sizeof...(L) consecutive k (8: two groups, 4: one) from row 0 of the
// panel at b: row L of B by lane L of each row's widened A.
template <size_t R, int... L>
inline void mac_rows(int32x4_t (&acc)[MR * 4], const int16x8_t (&a)[MR], const int8_t* b,
                     std::integer_sequence<int, L...>) {
  int16x8_t b0, b1;
  ((load_b(b + L * NR, b0, b1), mac_k<R, L>(acc, a, b0, b1)), ...);
}

template <size_t R>
void tile(size_t nr, size_t groups, const uint8_t* a, size_t a_stride, size_t seg_groups, size_t seg_skip,
          const int8_t* b, const int32_t* acc_in, int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  int32x4_t acc[MR * 4];
#pragma GCC unroll 16
  for (size_t i = 0; i < R * 4; ++i) acc[i] = acc_in ? vld1q_s32(acc_in + (i / 4) * NR + (i % 4) * 4) : vdupq_n_s32(0);
  int16x8_t av[MR];
  for (size_t done = 0; done < groups; done += seg_groups, a += seg_skip) {
    const size_t n = groups - done < seg_groups ? groups - done : seg_groups;
    size_t g = 0;
    // Two groups at a time: 8 bytes of each row, widened.
    for (; g + 2 <= n; g += 2, a += 8, b += 8 * NR) {
#pragma GCC unroll 4
      for (size_t i = 0; i < R; ++i) av[i] = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(a + i * a_stride)));
      mac_rows<R>(acc, av, b, std::make_integer_sequence<int, 8>{});
    }
    if (g < n) {  // the segment's last group: 4 bytes of each row
#pragma GCC unroll 4
      for (size_t i = 0; i < R; ++i) {
        const uint32x2_t w = vld1_lane_u32(reinterpret_cast<const uint32_t*>(a + i * a_stride), vdup_n_u32(0), 0);
        av[i] = vreinterpretq_s16_u16(vmovl_u8(vreinterpret_u8_u32(w)));
      }
      mac_rows<R>(acc, av, b, std::make_integer_sequence<int, 4>{});
      a += 4;
      b += 4 * NR;
    }
  }
  gemm_tile_out_neon<R>(acc, acc_out, ep, nr, m0, n0);
}

}  // namespace

void gemm_u8s8s32_4x16k4__neon(size_t mr, size_t nr, size_t groups, const void* a_rows, size_t a_stride,
                               size_t seg_groups, size_t seg_skip, const void* b_panel, const int32_t* acc_in,
                               int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY(kName);
  const uint8_t* a = static_cast<const uint8_t*>(a_rows);
  const int8_t* b = static_cast<const int8_t*>(b_panel);
  with_rows<MR>(mr, [&](auto rows) {
    tile<decltype(rows)::value>(nr, groups, a, a_stride, seg_groups, seg_skip, b, acc_in, acc_out, ep, m0, n0);
  });
}

extern const GemmKernel gemm_kernel__neon{
    .fn = &gemm_u8s8s32_4x16k4__neon,
    .name = kName,
    .shape = {.layout = GemmLayout::rows4, .mr = int(MR), .nr = int(NR)},
};

}  // namespace iqk
