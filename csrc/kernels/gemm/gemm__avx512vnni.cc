// AVX512-VNNI GEMM tile kernel: 5 rows x 64 columns (4 zmm) of int32
// accumulators, one vpdpbusd per (row, zmm) per group of 4 k: per group, 4 B
// loads and 5 broadcasts feed 20 vpdpbusd. 20 accumulators + 4 B vectors + 1
// broadcast stay in the 32 zmm registers (at 6 rows GCC spills accumulators
// inside the loop). What was measured and tried: docs/design.md.
#include <immintrin.h>

#include "kernels/gemm/gemm.h"
#include "kernels/specialize.h"
#include "simd/x86/gemm_zmm.h"
#include "runtime/kernel_counter.h"

namespace iqk {

namespace {

constexpr size_t MR = 5, NR = 64;

// K slices of up to 256 KB of B panel (1024 groups: K <= 4096 in one slice),
// which stay in L2, rather than the default 24 KB in L1: L2 feeds this
// kernel's B loads at full speed, while each extra slice costs every tile a
// reload and a store of its 20 accumulators (docs/design.md).
constexpr size_t kKSliceBytes = 256 * 1024;

// The epilogue of a whole tile: the steps of gemm_store16_avx512_as, with the
// per-column terms loaded once per tile (not once per row) and whole tiles
// stored without masks; with a per-row scale (Rows == e.row_scale != null),
// each row's scale vectors from the per-column ones. `e` is the caller's
// local copy of the epilogue, which the stores into e.c cannot alias (through
// a reference, GCC reloads its fields after every store).
template <GemmOut Kind, bool Rows, size_t R>
__attribute__((always_inline)) inline void store_rows(const GemmEpilogue& e, size_t nr, size_t m0, size_t n0,
                                                      const __m512i* c0, const __m512i* c1, const __m512i* c2,
                                                      const __m512i* c3) {
  const size_t elem_bytes = gemm_out_bytes(Kind);
  auto mask_of = [nr](size_t j) { return gemm_tail_mask16(nr > 16 * j ? nr - 16 * j : 0); };
  const GemmCols16 t0 = gemm_cols16_avx512<Kind>(e, n0), t1 = gemm_cols16_avx512<Kind>(e, n0 + 16),
                   t2 = gemm_cols16_avx512<Kind>(e, n0 + 32), t3 = gemm_cols16_avx512<Kind>(e, n0 + 48);
  const __m512i o0 = t0.off, o1 = t1.off, o2 = t2.off, o3 = t3.off;
  const __m512 s0 = t0.scale, s1 = t1.scale, s2 = t2.scale, s3 = t3.scale;
  const __m512 b0 = t0.bias, b1 = t1.bias, b2 = t2.bias, b3 = t3.bias;
  const __mmask16 k0 = mask_of(0), k1 = mask_of(1), k2 = mask_of(2), k3 = mask_of(3);
  const bool full = nr == NR;
  char* row = static_cast<char*>(e.c) + (m0 * e.ldc + n0) * elem_bytes;
  const size_t row_step = e.ldc * elem_bytes;
  // rs: row_scale[m] in every lane (Rows only).
  auto out = [&](char* r, size_t j, __m512i v, __m512 rs, __m512 s, __m512 b, __mmask16 k)
                 __attribute__((always_inline)) {
    gemm_finish16_avx512<Kind>(e, v, gemm_row_scale16_avx512<Kind, Rows>(e, rs, s), b, r + 16 * j * elem_bytes, k,
                               full);
  };
  if (e.b_zp) {
    const __m512i z0 = _mm512_loadu_si512(e.b_zp + n0), z1 = _mm512_loadu_si512(e.b_zp + n0 + 16),
                  z2 = _mm512_loadu_si512(e.b_zp + n0 + 32), z3 = _mm512_loadu_si512(e.b_zp + n0 + 48);
    auto corr = [](__m512i acc, __m512i rs, __m512i zp, __m512i off) {
      return _mm512_sub_epi32(_mm512_sub_epi32(acc, _mm512_mullo_epi32(rs, zp)), off);
    };
#pragma GCC unroll 6
    for (size_t i = 0; i < R; ++i, row += row_step) {
      const __m512i rs = _mm512_set1_epi32(e.row_sum[m0 + i]);
      const __m512 r = gemm_row16_avx512<Rows>(e, m0 + i);
      out(row, 0, corr(c0[i], rs, z0, o0), r, s0, b0, k0);
      if (nr > 16) out(row, 1, corr(c1[i], rs, z1, o1), r, s1, b1, k1);
      if (nr > 32) out(row, 2, corr(c2[i], rs, z2, o2), r, s2, b2, k2);
      if (nr > 48) out(row, 3, corr(c3[i], rs, z3, o3), r, s3, b3, k3);
    }
  } else {
#pragma GCC unroll 6
    for (size_t i = 0; i < R; ++i, row += row_step) {
      const __m512 r = gemm_row16_avx512<Rows>(e, m0 + i);
      out(row, 0, _mm512_sub_epi32(c0[i], o0), r, s0, b0, k0);
      if (nr > 16) out(row, 1, _mm512_sub_epi32(c1[i], o1), r, s1, b1, k1);
      if (nr > 32) out(row, 2, _mm512_sub_epi32(c2[i], o2), r, s2, b2, k2);
      if (nr > 48) out(row, 3, _mm512_sub_epi32(c3[i], o3), r, s3, b3, k3);
    }
  }
}

// R rows by NV of the 4 column vectors (16 columns each): a panel's last
// columns (nr <= 16 * NV) skip the vectors past them, so that a layer of 80
// output channels (64 + 16) does not run a whole tile for 16 of them.
template <size_t R, size_t NV>
void tile(size_t nr, size_t groups, const uint8_t* a, size_t a_stride, size_t seg_groups, size_t seg_skip,
          const int8_t* b,
          const int32_t* acc_in, int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  // Accumulators are locals of this function only (never passed by reference)
  // so that the compiler keeps all of them in registers across the loop.
  __m512i c0[R], c1[R], c2[R], c3[R];
  __m512i* const cv[4] = {c0, c1, c2, c3};
#pragma GCC unroll 6
  for (size_t i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (size_t v = 0; v < 4; ++v)
      cv[v][i] = acc_in && v < NV ? _mm512_loadu_si512(acc_in + i * NR + 16 * v) : _mm512_setzero_si512();
  for (size_t done = 0; done < groups; done += seg_groups, a += seg_skip) {
    const size_t n = groups - done < seg_groups ? groups - done : seg_groups;
    for (size_t g = 0; g < n; ++g, a += 4, b += NR * 4) {
      __m512i bv[NV];
#pragma GCC unroll 4
      for (size_t v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + 64 * v);
#pragma GCC unroll 6
      for (size_t i = 0; i < R; ++i) {
        const __m512i av = _mm512_set1_epi32(gemm_load4(a + i * a_stride));
#pragma GCC unroll 4
        for (size_t v = 0; v < NV; ++v) cv[v][i] = _mm512_dpbusd_epi32(cv[v][i], av, bv[v]);
      }
    }
  }
  if (acc_out) {
#pragma GCC unroll 6
    for (size_t i = 0; i < R; ++i)
#pragma GCC unroll 4
      for (size_t v = 0; v < NV; ++v) _mm512_storeu_si512(acc_out + i * NR + 16 * v, cv[v][i]);
    return;
  }
  // The epilogue, its kind and per-row scale dispatched once per tile, on a
  // local copy.
  const GemmEpilogue e = ep;
  with_kind_rows(e, [&](auto kind, auto rows) {
    store_rows<decltype(kind)::value, decltype(rows)::value, R>(e, nr, m0, n0, c0, c1, c2, c3);
  });
}

}  // namespace

void gemm_u8s8s32_5x64c4__avx512vnni(size_t mr, size_t nr, size_t groups, const void* a_rows,
    size_t a_stride, size_t seg_groups, size_t seg_skip, const void* b_panel, const int32_t* acc_in, int32_t* acc_out,
    const GemmEpilogue& ep, size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY("gemm_u8s8s32_5x64c4__avx512vnni");
  const uint8_t* a = static_cast<const uint8_t*>(a_rows);
  const int8_t* b = static_cast<const int8_t*>(b_panel);
  with_rows<MR>(mr, [&](auto rows) {
    with_rows<4>((nr + 15) / 16, [&](auto vectors) {
      tile<decltype(rows)::value, decltype(vectors)::value>(nr, groups, a, a_stride, seg_groups, seg_skip, b, acc_in,
                                                            acc_out, ep, m0, n0);
    });
  });
}

// The kernel with its tile shape, for the kernel table: the shape is stated
// once, here, next to the code that depends on it.
extern const GemmKernel gemm_kernel__avx512vnni{
    .fn = &gemm_u8s8s32_5x64c4__avx512vnni,
    .name = "gemm_u8s8s32_5x64c4__avx512vnni",
    .shape = {.layout = GemmLayout::vnni4, .mr = int(MR), .nr = int(NR)},
    .k_slice_bytes = kKSliceBytes,
};

}  // namespace iqk
