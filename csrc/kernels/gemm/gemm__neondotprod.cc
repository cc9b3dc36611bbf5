// ARMv8.2 dot-product GEMM tile kernel. Without i8mm there is no unsigned x
// signed dot product, so B is packed as unsigned bytes b + 128 (vnni4_u8)
// and udot by element multiplies them with the unsigned rows of A:
//   sum_k a[k] * (b[k] + 128) = sum_k a[k] * b[k] + 128 * sum_k a[k].
// The kernel sums each row of A (one more udot, against ones, per 16 bytes
// of the row: 1 in 17) and takes 128 times the sum off every column. Products are at
// most 255 * 255 and udot sums four of them into 32 bits: exact, with the
// int32 sums wrapping modulo 2^32 as on every path.
#include <arm_neon.h>

#include "kernels/specialize.h"
#include "runtime/kernel_counter.h"
#include "simd/arm/epilogue_neon.h"

namespace iqk {

namespace {

constexpr size_t MR = 4, NR = 16;
constexpr char kName[] = "gemm_u8u8s32_4x16c4__neondotprod";

// Group L of each row's 16 bytes of A against one group of the panel (16
// columns: 4 vectors of 4 columns x 4 bytes).
template <size_t R, int L>
inline void dot_group(uint32x4_t (&acc)[MR * 4], const uint8x16_t (&a)[MR], const uint8_t* b) {
  const uint8x16_t b0 = vld1q_u8(b), b1 = vld1q_u8(b + 16), b2 = vld1q_u8(b + 32), b3 = vld1q_u8(b + 48);
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i) {
    acc[i * 4 + 0] = vdotq_laneq_u32(acc[i * 4 + 0], b0, a[i], L);
    acc[i * 4 + 1] = vdotq_laneq_u32(acc[i * 4 + 1], b1, a[i], L);
    acc[i * 4 + 2] = vdotq_laneq_u32(acc[i * 4 + 2], b2, a[i], L);
    acc[i * 4 + 3] = vdotq_laneq_u32(acc[i * 4 + 3], b3, a[i], L);
  }
}

// Calls f(offset, bytes) for the runs of each row of A that the tile reads:
// `groups` groups of 4 bytes in segments of seg_groups, seg_skip apart.
template <typename F>
inline void for_segments(size_t groups, size_t seg_groups, size_t seg_skip, F&& f) {
  size_t off = 0;
  for (size_t done = 0; done < groups; done += seg_groups) {
    const size_t n = groups - done < seg_groups ? groups - done : seg_groups;
    f(off, n);
    off += 4 * n + seg_skip;
  }
}

// The sums of the R rows' bytes that the tile reads (udot against ones, 16
// bytes at a time), in their own pass: kept in the main loop they would
// leave too few registers for the accumulators and B.
template <size_t R>
inline void row_sums(const uint8_t* a, size_t a_stride, size_t groups, size_t seg_groups, size_t seg_skip,
                     uint32_t (&sums)[MR]) {
  uint32x4_t rs[MR];
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i) rs[i] = vdupq_n_u32(0);
  const uint8x16_t ones = vdupq_n_u8(1);
  for_segments(groups, seg_groups, seg_skip, [&](size_t off, size_t n) {
    size_t g = 0;
    for (; g + 4 <= n; g += 4)
#pragma GCC unroll 4
      for (size_t i = 0; i < R; ++i) rs[i] = vdotq_u32(rs[i], vld1q_u8(a + i * a_stride + off + 4 * g), ones);
    for (; g < n; ++g)
#pragma GCC unroll 4
      for (size_t i = 0; i < R; ++i) {
        const uint8x16_t w = vreinterpretq_u8_u32(
            vld1q_lane_u32(reinterpret_cast<const uint32_t*>(a + i * a_stride + off + 4 * g), vdupq_n_u32(0), 0));
        rs[i] = vdotq_u32(rs[i], w, ones);
      }
  });
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i) sums[i] = vaddvq_u32(rs[i]);
}

template <size_t R>
void tile(size_t nr, size_t groups, const uint8_t* a, size_t a_stride, size_t seg_groups, size_t seg_skip,
          const uint8_t* b, const int32_t* acc_in, int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  uint32_t sums[MR];
  row_sums<R>(a, a_stride, groups, seg_groups, seg_skip, sums);
  uint32x4_t acc[MR * 4];
#pragma GCC unroll 16
  for (size_t i = 0; i < R * 4; ++i)
    acc[i] = acc_in ? vreinterpretq_u32_s32(vld1q_s32(acc_in + (i / 4) * NR + (i % 4) * 4)) : vdupq_n_u32(0);
  uint8x16_t av[MR];
  for_segments(groups, seg_groups, seg_skip, [&](size_t off, size_t n) {
    const uint8_t* as = a + off;
    size_t g = 0;
    // Four groups at a time: 16 bytes of each row.
    for (; g + 4 <= n; g += 4, as += 16, b += 4 * 4 * NR) {
#pragma GCC unroll 4
      for (size_t i = 0; i < R; ++i) av[i] = vld1q_u8(as + i * a_stride);
      dot_group<R, 0>(acc, av, b);
      dot_group<R, 1>(acc, av, b + 4 * NR);
      dot_group<R, 2>(acc, av, b + 8 * NR);
      dot_group<R, 3>(acc, av, b + 12 * NR);
    }
    // The segment's last groups, one at a time: 4 bytes of each row.
    for (; g < n; ++g, as += 4, b += 4 * NR) {
#pragma GCC unroll 4
      for (size_t i = 0; i < R; ++i)
        av[i] = vreinterpretq_u8_u32(vld1q_lane_u32(reinterpret_cast<const uint32_t*>(as + i * a_stride), vdupq_n_u32(0), 0));
      dot_group<R, 0>(acc, av, b);
    }
  });
  // acc - 128 * (row sum of A), modulo 2^32.
  int32x4_t out[MR * 4];
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i) {
    const uint32x4_t shift = vdupq_n_u32(sums[i] << 7);
#pragma GCC unroll 4
    for (size_t v = 0; v < 4; ++v) out[i * 4 + v] = vreinterpretq_s32_u32(vsubq_u32(acc[i * 4 + v], shift));
  }
  gemm_tile_out_neon<R>(out, acc_out, ep, nr, m0, n0);
}

}  // namespace

void gemm_u8u8s32_4x16c4__neondotprod(size_t mr, size_t nr, size_t groups, const void* a_rows, size_t a_stride,
                                      size_t seg_groups, size_t seg_skip, const void* b_panel, const int32_t* acc_in,
                                      int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY(kName);
  const uint8_t* a = static_cast<const uint8_t*>(a_rows);
  const uint8_t* b = static_cast<const uint8_t*>(b_panel);
  with_rows<MR>(mr, [&](auto rows) {
    tile<decltype(rows)::value>(nr, groups, a, a_stride, seg_groups, seg_skip, b, acc_in, acc_out, ep, m0, n0);
  });
}

extern const GemmKernel gemm_kernel__neondotprod{
    .fn = &gemm_u8u8s32_4x16c4__neondotprod,
    .name = kName,
    .shape = {.layout = GemmLayout::vnni4_u8, .mr = int(MR), .nr = int(NR)},
};

}  // namespace iqk
