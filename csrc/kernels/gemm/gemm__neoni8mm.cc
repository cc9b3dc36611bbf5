// ARMv8.6 i8mm GEMM tile kernel: usmmla multiplies 2 rows x 8 k of unsigned
// A by 8 k x 2 columns of signed B into a 2 x 2 block of int32 sums, 32
// exact products per instruction (each at most 255 * 128, summed in 32 bits;
// the sums wrap modulo 2^32 as on every path). B is packed as column pairs
// of 8 k (mmla8); a register of A is 8 bytes of row 2i followed by 8 bytes
// of row 2i + 1. The 4 x 16 tile is 2 row pairs x 8 column pairs of 2 x 2
// blocks, block (i, p) = {c[2i][2p], c[2i][2p+1], c[2i+1][2p], c[2i+1][2p+1]}.
#include <arm_neon.h>

#include "kernels/specialize.h"
#include "runtime/kernel_counter.h"
#include "simd/arm/epilogue_neon.h"

namespace iqk {

namespace {

constexpr size_t MR = 4, NR = 16;
constexpr char kName[] = "gemm_u8s8s32_4x16c8__neoni8mm";

// Tile rows [0, R) as row pairs; the second row of an odd last pair repeats
// the first (its sums are never stored).
template <size_t R>
constexpr size_t kPairs = (R + 1) / 2;

// Blocks (i, p) from the row-major sums c (stride NR), and back.
inline int32x4_t block_of(const int32_t* c, size_t i, size_t p) {
  return vcombine_s32(vld1_s32(c + 2 * i * NR + 2 * p), vld1_s32(c + (2 * i + 1) * NR + 2 * p));
}

template <size_t R>
void tile(size_t nr, size_t groups, const uint8_t* a, size_t a_stride, size_t seg_groups, size_t seg_skip,
          const int8_t* b, const int32_t* acc_in, int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  constexpr size_t P = kPairs<R>;
  int32x4_t acc[P * 8];
  // acc_in has MR rows; a repeated row's block reads a real row of it.
#pragma GCC unroll 16
  for (size_t q = 0; q < P * 8; ++q) acc[q] = acc_in ? block_of(acc_in, q / 8, q % 8) : vdupq_n_s32(0);
  size_t row[2 * P];
#pragma GCC unroll 4
  for (size_t i = 0; i < 2 * P; ++i) row[i] = (i < R ? i : 0) * a_stride;
  for (size_t done = 0; done < groups; done += seg_groups, a += seg_skip) {
    const size_t n = groups - done < seg_groups ? groups - done : seg_groups;
    for (size_t g = 0; g < n; ++g, a += 8, b += 8 * NR) {
      uint8x16_t av[P];
#pragma GCC unroll 2
      for (size_t i = 0; i < P; ++i) av[i] = vcombine_u8(vld1_u8(a + row[2 * i]), vld1_u8(a + row[2 * i + 1]));
#pragma GCC unroll 8
      for (size_t p = 0; p < 8; ++p) {
        const int8x16_t bv = vld1q_s8(b + 16 * p);
#pragma GCC unroll 2
        for (size_t i = 0; i < P; ++i) acc[i * 8 + p] = vusmmlaq_s32(acc[i * 8 + p], av[i], bv);
      }
    }
  }
  // Back to rows of 4 columns: row 2i is the low halves of blocks (i, 2v) and
  // (i, 2v + 1), row 2i + 1 their high halves.
  int32x4_t rows[2 * P * 4];
#pragma GCC unroll 2
  for (size_t i = 0; i < P; ++i)
#pragma GCC unroll 4
    for (size_t v = 0; v < 4; ++v) {
      const int64x2_t lo = vreinterpretq_s64_s32(acc[i * 8 + 2 * v]), hi = vreinterpretq_s64_s32(acc[i * 8 + 2 * v + 1]);
      rows[(2 * i) * 4 + v] = vreinterpretq_s32_s64(vzip1q_s64(lo, hi));
      rows[(2 * i + 1) * 4 + v] = vreinterpretq_s32_s64(vzip2q_s64(lo, hi));
    }
  gemm_tile_out_neon<R>(rows, acc_out, ep, nr, m0, n0);
}

}  // namespace

void gemm_u8s8s32_4x16c8__neoni8mm(size_t mr, size_t nr, size_t groups, const void* a_rows, size_t a_stride,
                                   size_t seg_groups, size_t seg_skip, const void* b_panel, const int32_t* acc_in,
                                   int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY(kName);
  const uint8_t* a = static_cast<const uint8_t*>(a_rows);
  const int8_t* b = static_cast<const int8_t*>(b_panel);
  with_rows<MR>(mr, [&](auto rows) {
    tile<decltype(rows)::value>(nr, groups, a, a_stride, seg_groups, seg_skip, b, acc_in, acc_out, ep, m0, n0);
  });
}

extern const GemmKernel gemm_kernel__neoni8mm{
    .fn = &gemm_u8s8s32_4x16c8__neoni8mm,
    .name = kName,
    .shape = {.layout = GemmLayout::mmla8, .mr = int(MR), .nr = int(NR)},
};

}  // namespace iqk
