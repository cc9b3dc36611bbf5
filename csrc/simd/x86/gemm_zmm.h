// The epilogue of gemm_epilogue.h on 16 int32 columns in one zmm, shared by
// the AVX-512 GEMM and depthwise convolution kernels. Intrinsics: include only
// from files built with AVX-512 enabled; internal linkage, so each file gets
// its own copy built with its own flags.
#pragma once

#include <immintrin.h>

#include "kernels/gemm/gemm.h"
#include "kernels/specialize.h"

namespace iqk {

// The steps of gemm_epilogue.h after the corrections, on 16 values `v` with
// their per-column scale and bias as vectors: the result goes to `out` (the
// element of the first value) where `mask` is set. Kind == ep.kind. `full`
// (all 16 selected) stores without a mask: the same bytes.
template <GemmOut Kind>
static inline void gemm_finish16_avx512(const GemmEpilogue& ep, __m512i v, __m512 scale, __m512 bias, void* out,
                                        __mmask16 mask, bool full = false) {
  switch (Kind) {
    case GemmOut::i32:
      if (full)
        _mm512_storeu_si512(out, v);
      else
        _mm512_mask_storeu_epi32(out, mask, v);
      break;
    case GemmOut::f32: {
      __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(v), scale);
      y = _mm512_add_ps(y, bias);
      if (ep.relu) y = _mm512_max_ps(_mm512_setzero_ps(), y);
      if (full)
        _mm512_storeu_ps(out, y);
      else
        _mm512_mask_storeu_ps(out, mask, y);
      break;
    }
    case GemmOut::q8: {
      // clamp(round(t) + zp, lo, hi) = clamp(t, lo - zp, hi - zp), rounded,
      // plus zp: rounding half to even is monotonic and keeps integers, so
      // clamping to integer bounds commutes with it; the clamped value is
      // small, so the conversion's own rounding (to nearest even, embedded)
      // and the integer add are exact.
      __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(v), scale);
      t = _mm512_max_ps(t, _mm512_set1_ps(static_cast<float>(ep.lo - ep.out_zp)));
      t = _mm512_min_ps(t, _mm512_set1_ps(static_cast<float>(ep.hi - ep.out_zp)));
      const __m512i q = _mm512_add_epi32(_mm512_cvt_roundps_epi32(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                         _mm512_set1_epi32(ep.out_zp));
      __m128i b = _mm512_cvtepi32_epi8(q);
      // Keep vpmovdb in its register form: the compiler would otherwise fuse
      // it with the store into vpmovdb-to-memory, which is far slower on
      // some CPUs (AMD Zen 4/5) than a register vpmovdb and a masked store.
      __asm__("" : "+x"(b));
      if (full)
        _mm_storeu_si128(static_cast<__m128i*>(out), b);
      else
        _mm_mask_storeu_epi8(out, mask, b);
      break;
    }
  }
}

// The mask of the first `left` of 16 lanes (all of them from 16 on).
static inline __mmask16 gemm_tail_mask16(size_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
}

// The per-column terms of 16 columns from n for an epilogue of kind Kind:
// loaded once per tile or block, for every row stored (scale and bias are
// zero where the kind does not use them).
struct GemmCols16 {
  __m512i off;
  __m512 scale, bias;
};

template <GemmOut Kind>
static inline GemmCols16 gemm_cols16_avx512(const GemmEpilogue& e, size_t n) {
  return {_mm512_loadu_si512(e.col_off + n),
          Kind == GemmOut::i32 ? _mm512_setzero_ps() : _mm512_loadu_ps(e.scale + n),
          Kind == GemmOut::f32 ? _mm512_loadu_ps(e.bias + n) : _mm512_setzero_ps()};
}

// The scale vector of a row from the per-column `scale` of 16 columns:
// itself, or with a per-row scale (Rows) row * scale, `row` holding
// row_scale[m] in every lane, for q8 divided by out_scale
// (gemm_epilogue.h, gemm_scale_of).
template <GemmOut Kind, bool Rows>
static inline __m512 gemm_row_scale16_avx512(const GemmEpilogue& e, __m512 row, __m512 scale) {
  if constexpr (!Rows) {
    return scale;
  } else {
    const __m512 s = _mm512_mul_ps(row, scale);
    return Kind == GemmOut::q8 ? _mm512_div_ps(s, _mm512_set1_ps(e.out_scale)) : s;
  }
}

// row_scale[m] in every lane with a per-row scale (Rows), else unused.
template <bool Rows>
static inline __m512 gemm_row16_avx512(const GemmEpilogue& e, size_t m) {
  if constexpr (Rows) {
    return _mm512_set1_ps(e.row_scale[m]);
  } else {
    return _mm512_setzero_ps();
  }
}

// Stores the columns of row m selected by `mask`, starting at column n: the
// steps of gemm_epilogue.h, in the same order, for an epilogue of kind Kind
// (== ep.kind).
template <GemmOut Kind>
static inline void gemm_store16_avx512_as(const GemmEpilogue& ep, size_t m, size_t n, __m512i acc, __mmask16 mask) {
  __m512i v = acc;
  if (ep.b_zp) {
    const __m512i rs = _mm512_set1_epi32(ep.row_sum[m]);
    v = _mm512_sub_epi32(v, _mm512_mullo_epi32(rs, _mm512_loadu_si512(ep.b_zp + n)));
  }
  const GemmCols16 cols = gemm_cols16_avx512<Kind>(ep, n);
  void* out = static_cast<uint8_t*>(ep.c) + (m * ep.ldc + n) * gemm_out_bytes(Kind);
  const __m512 scale =
      ep.row_scale ? gemm_row_scale16_avx512<Kind, true>(ep, gemm_row16_avx512<true>(ep, m), cols.scale) : cols.scale;
  gemm_finish16_avx512<Kind>(ep, _mm512_sub_epi32(v, cols.off), scale, cols.bias, out, mask);
}

}  // namespace iqk
