// int8 GEMM: packed layouts, the tile kernel signature and the epilogue that
// every tile kernel applies before it stores. No intrinsics here.
//
// C[m, n] = sum_k (a[m, k] - a_zp) * (b[k, n] - b_zp[n]) is computed as
//   acc[m, n]  = sum_k a_u[m, k] * b[k, n]          (the tile kernel's loop)
//   C[m, n]    = acc - row_sum[m] * b_zp[n] - col_off[n]
// where a_u is a as unsigned bytes (int8 activations are shifted by 128, the
// unsigned x signed form of VNNI), row_sum[m] = sum_k a_u[m, k] (only when some
// b_zp != 0), and col_off[n] = a_zp_u * colsum_b[n] - K * a_zp_u * b_zp[n]
// - bias_q[n], with a_zp_u the zero point of a_u. All of it is int32
// arithmetic modulo 2^32: the result is exact whenever C fits in int32, which
// the Python layer checks before calling (see _gemm.py).
#pragma once

#include <cstddef>
#include <cstdint>

namespace iqk {

enum class GemmLayout : int {
  // Groups of 4 consecutive k: a panel of NR columns stores, per group, NR
  // runs of 4 bytes (b[4g..4g+3, n]); rows of A are plain bytes, zero-padded
  // to whole groups. The layout of vpdpbusd.
  vnni4 = 0,
  // Pairs of consecutive k widened to int16: per pair, NR runs of two int16
  // (b[2p, n], b[2p+1, n]); rows of A widened to int16. The layout of
  // vpmaddwd (exact AVX2).
  pair16 = 1,
  // Groups of 4 consecutive k, k-major: per group, 4 runs of NR bytes
  // (b[4g + t, n0 .. n0 + NR) for t = 0..3); rows of A as for vnni4. One row
  // of B per k, widened to int16 for smlal by element (NEON).
  rows4 = 2,
  // vnni4 with every byte of B stored as b + 128 (b ^ 0x80, unsigned): the
  // layout of udot, whose kernel takes 128 * sum_k a[m, k] off (NEON
  // dot-product without i8mm has no unsigned x signed form).
  vnni4_u8 = 3,
  // Groups of 8 consecutive k: per group, NR / 2 column pairs of 16 bytes
  // (b[8g..8g+7, n], b[8g..8g+7, n+1]); rows of A are plain bytes, 8 per
  // group. The layout of usmmla (2 x 8 by 8 x 2, NEON i8mm).
  mmla8 = 4,
};

const char* gemm_layout_name(GemmLayout layout);

struct GemmShape {
  GemmLayout layout;
  int mr;  // rows per A panel (tile height)
  int nr;  // columns per B panel (tile width)
  // k values per group: 2 for pair16, 8 for mmla8, 4 for the others.
  int k_group() const {
    return layout == GemmLayout::pair16 ? 2 : layout == GemmLayout::mmla8 ? 8 : 4;
  }
  // Bytes of one group in a row of A, and per column in a B panel: 8 for
  // mmla8, 4 for the others (pair16: two int16).
  size_t group_bytes() const { return layout == GemmLayout::mmla8 ? 8 : 4; }
  // Rows of A are bytes (as given, or shifted by 128 for int8) rather than
  // widened to int16.
  bool a_bytes() const { return layout != GemmLayout::pair16; }
  // Bytes of one A panel (width MR rows) or B panel (NR columns) over all of
  // K: whole groups per row or column.
  size_t panel_bytes(size_t k, size_t width) const {
    return (k + k_group() - 1) / k_group() * width * group_bytes();
  }
  bool operator==(const GemmShape&) const = default;
};

enum class GemmOut : int { i32 = 0, f32 = 1, q8 = 2 };

// Bytes of one output element of an epilogue.
constexpr size_t gemm_out_bytes(GemmOut kind) { return kind == GemmOut::q8 ? 1 : 4; }

// Everything a tile kernel needs after its K loop. Per-column arrays are
// padded by the driver to a whole number of panels, so kernels may load full
// vectors from them; `c` is the caller's array and is written only inside
// [0, M) x [0, N).
struct GemmEpilogue {
  GemmOut kind = GemmOut::i32;
  void* c = nullptr;
  size_t ldc = 0;                   // elements between rows of c
  const int32_t* row_sum = nullptr;  // M entries, or null when every b_zp is 0
  const int32_t* b_zp = nullptr;     // padded N, or null when every b_zp is 0
  const int32_t* col_off = nullptr;  // padded N
  // f32: y = float(C) * scale[n] + bias[n] (bias -0.0 when absent: x + -0.0 == x
  // bit for bit), then max(0, y) if relu.
  // q8:  q = clamp(round_half_even(float(C) * scale[n]) + out_zp, lo, hi); relu
  //      is folded into lo.
  const float* scale = nullptr;
  const float* bias = nullptr;
  bool relu = false;
  int32_t out_zp = 0, lo = 0, hi = 0;
  // A per-row scale (qgemm with a per-row a_scale; f32 and q8 only): M
  // entries indexed by the global row m, or null (per tensor). When set,
  // `scale` holds b_scale[n] and the scale of element (m, n) is the float32
  // product s = row_scale[m] * scale[n], for q8 then divided by out_scale in
  // float32 (the per-tensor multiplier, computed per row): the steps above
  // then run with s in place of scale[n]. Only the GEMM driver sets it (its m
  // is the row of the caller's A); the convolution drivers, whose tile rows
  // are pixels of a staging block, leave it null.
  const float* row_scale = nullptr;
  float out_scale = 1.0f;  // q8 with row_scale only
};

// Computes the tile C[m0 : m0+mr, n0 : n0+nr] (mr <= MR, nr <= NR) from mr
// rows of A and a B panel slice covering `groups` k-groups. Row i of A starts
// at a_rows + i * a_stride bytes and holds group_bytes() per group (4 or 8
// x u8; pair16: 2 x int16); only rows < mr are read. A row may come in segments:
// after every `seg_groups` groups (>= 1) the row continues seg_skip bytes
// further on (a convolution's kernel rows in its staged input); a plain row
// has seg_groups >= groups. K may come in several
// slices (cache blocking): `acc_in`, when not null, holds the MR x NR
// (row-major, stride NR) int32 sums to start from (the earlier slices', or
// any starting terms a driver adds, as conv1x1_nchw does; read only);
// `acc_out`, when not null, receives the sums so far (no epilogue). The last
// slice has acc_out == null and applies the epilogue into ep.c.
using GemmTileFn = void (*)(size_t mr, size_t nr, size_t groups, const void* a_rows,
                            size_t a_stride, size_t seg_groups, size_t seg_skip, const void* b_panel, const int32_t* acc_in, int32_t* acc_out,
                            const GemmEpilogue& ep, size_t m0, size_t n0);

struct GemmKernel {
  GemmTileFn fn = nullptr;
  const char* name = nullptr;
  GemmShape shape{GemmLayout::vnni4, 1, 1};
  // The drivers cut K into slices of at most this many bytes of B panel
  // (groups x NR columns x group bytes), of equal size: the B slice stays in cache
  // while the tiles of an A block stream past it, and partial sums wait in a
  // buffer between slices. 24 KB keeps it in L1.
  size_t k_slice_bytes = 24 * 1024;
  // The implicit GEMM (conv_plan.cc) keeps its tiles within one output row,
  // so it takes output rows at least this wide; 0: twice the tile height,
  // so that no tile is much shorter than MR.
  size_t implicit_min_width = 0;
};


}  // namespace iqk
