// What the AVX2 and AVX-VNNI GEMM tile kernels share: the whole 4x16 tile
// kernel of 256-bit accumulators (gemm_4x16_ymm) and the epilogue
// (gemm_epilogue.h) on 8 columns. The two differ only in how one k-group is
// multiplied into the accumulators, their policy's dot step. Intrinsics:
// include only from files built with AVX2 enabled; everything here has
// internal linkage, so each file gets its own copy built with its own flags.
#pragma once

#include <immintrin.h>

#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/specialize.h"
#include "runtime/kernel_counter.h"

namespace iqk {

// The steps of gemm_epilogue.h after the corrections, on 8 values `v` with
// their per-column scale and bias as vectors: the first `cols` (1..8) go to
// `out` (the element of the first value). Kind == ep.kind.
template <GemmOut Kind>
static inline void gemm_finish8_avx2(const GemmEpilogue& ep, __m256i v, __m256 scale, __m256 bias, void* out,
                                     size_t cols) {
  switch (Kind) {
    case GemmOut::i32: {
      int32_t* c = static_cast<int32_t*>(out);
      if (cols == 8) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), v);
      } else {
        alignas(32) int32_t buf[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(buf), v);
        std::memcpy(c, buf, cols * sizeof(int32_t));
      }
      break;
    }
    case GemmOut::f32: {
      __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(v), scale);
      y = _mm256_add_ps(y, bias);
      if (ep.relu) y = _mm256_max_ps(_mm256_setzero_ps(), y);
      float* c = static_cast<float*>(out);
      if (cols == 8) {
        _mm256_storeu_ps(c, y);
      } else {
        alignas(32) float buf[8];
        _mm256_store_ps(buf, y);
        std::memcpy(c, buf, cols * sizeof(float));
      }
      break;
    }
    case GemmOut::q8: {
      __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(v), scale);
      t = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      t = _mm256_add_ps(t, _mm256_set1_ps(static_cast<float>(ep.out_zp)));
      t = _mm256_max_ps(t, _mm256_set1_ps(static_cast<float>(ep.lo)));
      t = _mm256_min_ps(t, _mm256_set1_ps(static_cast<float>(ep.hi)));
      // int32 in [-128, 255] -> low bytes (exact, as in quantize_avx2.cc).
      const __m256i q = _mm256_cvtps_epi32(t);
      const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      const __m128i bytes = _mm_packus_epi16(_mm_and_si128(w, _mm_set1_epi16(0x00FF)), _mm_setzero_si128());
      alignas(16) uint8_t buf[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(buf), bytes);
      std::memcpy(static_cast<uint8_t*>(out), buf, cols);
      break;
    }
  }
}

// The per-column terms of 8 columns from n for an epilogue of kind Kind:
// loaded once per tile or block, for every row stored (b_zp zero without
// one; scale and bias zero where the kind does not use them).
struct GemmCols8 {
  __m256i off, b_zp;
  __m256 scale, bias;
};

template <GemmOut Kind>
static inline GemmCols8 gemm_cols8_avx2(const GemmEpilogue& e, size_t n) {
  auto ld = [](const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
  return {ld(e.col_off + n), e.b_zp ? ld(e.b_zp + n) : _mm256_setzero_si256(),
          Kind == GemmOut::i32 ? _mm256_setzero_ps() : _mm256_loadu_ps(e.scale + n),
          Kind == GemmOut::f32 ? _mm256_loadu_ps(e.bias + n) : _mm256_setzero_ps()};
}

// The corrections of gemm.h on 8 columns of row m: acc - row_sum[m] * b_zp
// (when the epilogue has b_zp) - col_off.
static inline __m256i gemm_correct8_avx2(const GemmEpilogue& e, __m256i acc, size_t m, const GemmCols8& c) {
  if (e.b_zp) acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(e.row_sum[m]), c.b_zp));
  return _mm256_sub_epi32(acc, c.off);
}

// The scale vector of row m from the per-column `scale` of 8 columns: itself,
// or with a per-row scale (Rows) row_scale[m] * scale, for q8 divided by
// out_scale (gemm_epilogue.h, gemm_scale_of).
template <GemmOut Kind, bool Rows>
static inline __m256 gemm_row_scale8_avx2(const GemmEpilogue& e, size_t m, __m256 scale) {
  if constexpr (!Rows) {
    return scale;
  } else {
    const __m256 s = _mm256_mul_ps(_mm256_set1_ps(e.row_scale[m]), scale);
    return Kind == GemmOut::q8 ? _mm256_div_ps(s, _mm256_set1_ps(e.out_scale)) : s;
  }
}

// Stores columns [n, n + cols) of row m, cols in 1..8, for an epilogue of
// kind Kind (== ep.kind).
template <GemmOut Kind>
static inline void gemm_store8_avx2_as(const GemmEpilogue& ep, size_t m, size_t n, __m256i acc, size_t cols) {
  const GemmCols8 c = gemm_cols8_avx2<Kind>(ep, n);
  void* out = static_cast<uint8_t*>(ep.c) + (m * ep.ldc + n) * gemm_out_bytes(Kind);
  const __m256 scale = ep.row_scale ? gemm_row_scale8_avx2<Kind, true>(ep, m, c.scale) : c.scale;
  gemm_finish8_avx2<Kind>(ep, gemm_correct8_avx2(ep, acc, m, c), scale, c.bias, out, cols);
}

// The epilogue of a whole R x 16 tile, kind Kind (== e.kind), with a per-row
// scale if Rows (== e.row_scale != null): the steps of gemm_store8_avx2_as
// with the per-column terms loaded once per tile. `e` is a local copy, which
// the stores into e.c cannot alias (through a reference the compiler reloads
// its fields after every store).
template <GemmOut Kind, bool Rows, size_t R>
static inline void gemm_store_tile_4x16_ymm(const GemmEpilogue& e, size_t nr, size_t m0, size_t n0,
                                            const __m256i* c0, const __m256i* c1) {
  const GemmCols8 t0 = gemm_cols8_avx2<Kind>(e, n0), t1 = gemm_cols8_avx2<Kind>(e, n0 + 8);
  const size_t bytes = gemm_out_bytes(Kind), cols0 = nr < 8 ? nr : 8;
  uint8_t* row = static_cast<uint8_t*>(e.c) + (m0 * e.ldc + n0) * bytes;
#pragma GCC unroll 6
  for (size_t i = 0; i < R; ++i, row += e.ldc * bytes) {
    gemm_finish8_avx2<Kind>(e, gemm_correct8_avx2(e, c0[i], m0 + i, t0),
                            gemm_row_scale8_avx2<Kind, Rows>(e, m0 + i, t0.scale), t0.bias, row, cols0);
    if (nr > 8)
      gemm_finish8_avx2<Kind>(e, gemm_correct8_avx2(e, c1[i], m0 + i, t1),
                              gemm_row_scale8_avx2<Kind, Rows>(e, m0 + i, t1.scale), t1.bias, row + 8 * bytes,
                              nr - 8);
  }
}

// The tile of gemm_4x16_ymm: 4 rows x 16 columns, two ymm of int32 per row.
// 8 accumulators + 2 B vectors + 1 broadcast leave the compiler room: at 6
// rows (15 of 16 registers live) the loop spills.
constexpr size_t kGemmYmmMR = 4, kGemmYmmNR = 16;

// R rows x 16 columns (two ymm per row) over `groups` k-groups. A group of 16
// columns of B is 64 bytes in both layouts (vnni4: 4 x int8, pair16:
// 2 x int16 per column). P::dot(acc, a, b) accumulates one group of one row.
// Accumulators are locals of this function only, so that they stay in
// registers across the loop.
template <class P, size_t R>
static inline void gemm_tile_4x16_ymm(size_t nr, size_t groups, const uint8_t* a, size_t a_stride,
                                      size_t seg_groups, size_t seg_skip, const uint8_t* b, const int32_t* acc_in, int32_t* acc_out,
                                      const GemmEpilogue& ep, size_t m0, size_t n0) {
  constexpr size_t NR = kGemmYmmNR;
  __m256i c0[R], c1[R];
#pragma GCC unroll 6
  for (size_t i = 0; i < R; ++i) {
    if (acc_in) {
      c0[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc_in + i * NR));
      c1[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc_in + i * NR + 8));
    } else {
      c0[i] = c1[i] = _mm256_setzero_si256();
    }
  }
  for (size_t done = 0; done < groups; done += seg_groups, a += seg_skip) {
    const size_t n = groups - done < seg_groups ? groups - done : seg_groups;
    for (size_t g = 0; g < n; ++g, a += 4, b += 64) {
      const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
      const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32));
#pragma GCC unroll 6
      for (size_t i = 0; i < R; ++i) {
        const __m256i av = _mm256_set1_epi32(gemm_load4(a + i * a_stride));
        c0[i] = P::dot(c0[i], av, b0);
        c1[i] = P::dot(c1[i], av, b1);
      }
    }
  }
  if (acc_out) {
#pragma GCC unroll 6
    for (size_t i = 0; i < R; ++i) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_out + i * NR), c0[i]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_out + i * NR + 8), c1[i]);
    }
    return;
  }
  // The epilogue, its kind and per-row scale dispatched once per tile, on a
  // local copy.
  const GemmEpilogue e = ep;
  with_kind_rows(e, [&](auto kind, auto rows) {
    gemm_store_tile_4x16_ymm<decltype(kind)::value, decltype(rows)::value, R>(e, nr, m0, n0, c0, c1);
  });
}

// The GemmTileFn of a 4x16 ymm kernel (gemm.h), for its descriptor. The
// policy P provides kName, the kernel's name, and
//   dot(acc, a, b)  acc plus the products of one k-group: a holds one row's
//                   4 bytes of the group in every dword, b 8 columns' bytes
//                   of the group in the packed layout of the kernel.
template <class P>
static void gemm_4x16_ymm(size_t mr, size_t nr, size_t groups, const void* a_rows, size_t a_stride,
                          size_t seg_groups, size_t seg_skip, const void* b_panel, const int32_t* acc_in,
                          int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY(P::kName);
  const uint8_t* a = static_cast<const uint8_t*>(a_rows);
  const uint8_t* b = static_cast<const uint8_t*>(b_panel);
  with_rows<kGemmYmmMR>(mr, [&](auto rows) {
    gemm_tile_4x16_ymm<P, decltype(rows)::value>(nr, groups, a, a_stride, seg_groups, seg_skip, b, acc_in, acc_out,
                                                 ep, m0, n0);
  });
}

}  // namespace iqk
