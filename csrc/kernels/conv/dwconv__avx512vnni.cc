// Depthwise convolution, AVX512-VNNI: 32 channels per step, two taps per
// vpdpwssd (exact: pairs of int16 products summed into int32, no
// saturation). One output row.
//
// The bytes of two taps of 32 channels are widened to int16 (vpmovzxbw) and
// interleaved with vpunpcklwd / vpunpckhwd, which pair channels
// {0-3, 8-11, 16-19, 24-27} and {4-7, 12-15, 20-23, 28-31}: the weights are
// permuted the same way once per channel block, and the two accumulators
// are put back in channel order before the epilogue. Six instructions per
// 64 multiply-adds, against ten with 32-bit widening.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/conv/conv.h"
#include "kernels/conv/dwconv_rows.h"
#include "kernels/specialize.h"
#include "simd/x86/gemm_zmm.h"
#include "runtime/kernel_counter.h"

namespace iqk {

namespace {

// The vector policy of dwconv_rows.h: 32 channels or pixels per step,
// vpdpwssd. vpunpcklwd / vpunpckhwd pair values {0-3, 8-11, 16-19, 24-27}
// and {4-7, 12-15, 20-23, 28-31}.
struct DwAvx512 {
  using Vec = __m512i;
  static constexpr size_t kC = 32;
  static Vec zero() { return _mm512_setzero_si512(); }
  static Vec splat(int32_t v) { return _mm512_set1_epi32(v); }
  static Vec widen(const uint8_t* p) {
    return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static Vec widen_even(const uint8_t* p) { return _mm512_and_si512(_mm512_loadu_si512(p), _mm512_set1_epi16(0x00FF)); }
  static Vec unpacklo(Vec a, Vec b) { return _mm512_unpacklo_epi16(a, b); }
  static Vec unpackhi(Vec a, Vec b) { return _mm512_unpackhi_epi16(a, b); }
  static Vec dot(Vec acc, Vec a, Vec w) { return _mm512_dpwssd_epi32(acc, a, w); }
  static Vec dot2(Vec acc, Vec a, Vec wa, Vec b, Vec wb) {
    return _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(acc, a, wa), b, wb);
  }
  static void weights(const int16_t* w, Vec& lo, Vec& hi) {
    const Vec w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 32);
    lo = _mm512_permutex2var_epi32(w0, _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27), w1);
    hi = _mm512_permutex2var_epi32(w0, _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31),
                                   w1);
  }

  // The epilogue of one block of 32 channels, its per-channel terms loaded
  // once per block (the kernels are bound by their loads): the steps of
  // gemm_store16_avx512_as without the b_zp term (depthwise weights carry
  // their zero point). Pixel i of the row goes to out + i * step bytes.
  struct Block {
    GemmCols16 cols0, cols1;
    __mmask16 mask0, mask1;
    uint8_t* out;
    size_t step;
  };
  template <GemmOut Kind>
  static Block block(const DwconvRow& r, const GemmEpilogue& ep, size_t c0) {
    const size_t left = r.c - c0;
    return {gemm_cols16_avx512<Kind>(ep, c0), gemm_cols16_avx512<Kind>(ep, c0 + 16), gemm_tail_mask16(left),
            left > 16 ? gemm_tail_mask16(left - 16) : __mmask16(0),
            static_cast<uint8_t*>(ep.c) + (r.m0 * ep.ldc + c0) * gemm_out_bytes(Kind), ep.ldc * gemm_out_bytes(Kind)};
  }
  template <GemmOut Kind>
  static void store(const GemmEpilogue& ep, const Block& b, size_t i, Vec lo, Vec hi) {
    const Vec out0_idx = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const Vec out1_idx = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    uint8_t* y = b.out + i * b.step;
    const Vec v0 = _mm512_sub_epi32(_mm512_permutex2var_epi32(lo, out0_idx, hi), b.cols0.off);
    gemm_finish16_avx512<Kind>(ep, v0, b.cols0.scale, b.cols0.bias, y, b.mask0, b.mask0 == 0xFFFF);
    if (b.mask1) {
      const Vec v1 = _mm512_sub_epi32(_mm512_permutex2var_epi32(lo, out1_idx, hi), b.cols1.off);
      gemm_finish16_avx512<Kind>(ep, v1, b.cols1.scale, b.cols1.bias, y + 16 * gemm_out_bytes(Kind), b.mask1,
                                 b.mask1 == 0xFFFF);
    }
  }

  // The plane kernel's epilogue, the steps of store with the channel's
  // terms in every lane and the row's tail as masks.
  // A function of its own, not store: then the row kernels are store's only
  // callers, and the compiler weighs inlining it there on their own.
  template <GemmOut Kind, size_t R>
  static void plane_store(const DwconvPlane& p, const GemmEpilogue& ep, size_t oh0, size_t ow0, const Vec* lo,
                          const Vec* hi) {
    const Vec first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const Vec second = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    const size_t left = p.ow - ow0, bytes = gemm_out_bytes(Kind);
    const __mmask16 mask0 = gemm_tail_mask16(left), mask1 = left > 16 ? gemm_tail_mask16(left - 16) : __mmask16(0);
    const Vec off = _mm512_set1_epi32(p.col_off);
    const __m512 scale = _mm512_set1_ps(p.scale), bias = _mm512_set1_ps(p.bias);
#pragma GCC unroll 4
    for (size_t i = 0; i < R; ++i) {
      uint8_t* y = p.y + ((oh0 + i) * p.ow + ow0) * bytes;
      gemm_finish16_avx512<Kind>(ep, _mm512_sub_epi32(_mm512_permutex2var_epi32(lo[i], first, hi[i]), off), scale,
                                 bias, y, mask0);
      if (mask1)
        gemm_finish16_avx512<Kind>(ep, _mm512_sub_epi32(_mm512_permutex2var_epi32(lo[i], second, hi[i]), off), scale,
                                   bias, y + 16 * bytes, mask1);
    }
  }
};

}  // namespace

// The 3x3 form (counted on its own, inside the row kernel's count, so that
// callers can see which form ran).
void dwconv3x3_u8s16_c32__avx512vnni(const DwconvRow& r) {
  IQK_KERNEL_ENTRY("dwconv3x3_u8s16_c32__avx512vnni");
  with_kind(r.ep->kind, [&](auto kind) {
    with_stride_1_or_2(r.sw, [&](auto s) { dw_row3x3<DwAvx512, decltype(s)::value, decltype(kind)::value>(r); });
  });
}

void dwconv_u8s16_c32__avx512vnni(const DwconvRow& r) {
  IQK_KERNEL_ENTRY("dwconv_u8s16_c32__avx512vnni");
  if (r.w3) return dwconv3x3_u8s16_c32__avx512vnni(r);
  with_kind(r.ep->kind, [&](auto kind) { dw_row<DwAvx512, decltype(kind)::value>(r); });
}

namespace {
// ---- NCHW, weights that fit int8: 16 output pixels per vpdpbusd ----
//
// A kernel row of up to 4 taps (DwconvPlanes::w_rows8) is one dword of
// weights, so that 16 output pixels of one row need, per kernel row, their
// 4-byte input windows in the 16 dwords of a vector: pixel o reads bytes
// o * S + t, t = 0..3, of its input row. vpermd gives 128-bit lane j the
// dwords from S * j on (bytes 4 * S * j on, which hold its 4 pixels'
// windows), and vpshufb then picks each pixel's 4 bytes within the lane:
// one masked load and three instructions per 16 pixels and input row, where
// the int16 form takes two loads, two unpacks and two vpdpwssd per 32 pixels
// and pair of taps, and a staging copy of the plane.

// Bytes of the input row that the 16 windows read: dwords up to 3 + 3 * S.
template <size_t S>
constexpr size_t kWindowBytes = 16 + 12 * S;

template <size_t S>
inline __m512i windows16(__m512i v) {
  const __m512i lanes = S == 1 ? _mm512_setr_epi32(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6)
                               : _mm512_setr_epi32(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9);
  const __m512i bytes = S == 1 ? _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6))
                               : _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9));
  return _mm512_shuffle_epi8(_mm512_permutexvar_epi32(lanes, v), bytes);
}

// One plane's input as a block of output pixels sees it: row pointers (the
// plane's rows, or fill_row above and below it) and, per run of 16 output
// pixels, which of the bytes from its first column lie inside the row. A
// real row of zero points, not a null row under an all-zero mask: masked
// loads from unmapped memory take a slow assist.
struct BytesPlane {
  const uint8_t* x;
  const uint8_t* fill_row;
  size_t in_h, in_w;
  __m512i zp, flip;

  const uint8_t* row(long ih) const {
    return ih >= 0 && ih < static_cast<long>(in_h) ? x + static_cast<size_t>(ih) * in_w : fill_row;
  }
  // Bytes [col, col + n) of a row, those outside [0, in_w) masked off (read
  // as the zero point, never touched).
  static __mmask64 inside(long col, size_t n, size_t in_w) {
    const long lo = std::max<long>(0, -col), hi = std::min<long>(static_cast<long>(n), static_cast<long>(in_w) - col);
    if (hi <= lo) return 0;
    return (~__mmask64(0) >> (64 - (hi - lo))) << lo;
  }
  __m512i load(const uint8_t* row, long col, __mmask64 m) const {
    // The address may lie before the row (left padding): only the bytes of
    // the mask are read, so it is formed as an integer.
    const void* p = reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(row) + static_cast<uintptr_t>(col));
    return _mm512_xor_si512(_mm512_mask_loadu_epi8(zp, m, p), flip);
  }
};

// One channel's epilogue terms, as vectors.
struct BytesOut {
  __m512i off;
  __m512 scale, bias;
  uint8_t* y;
};

// R output rows from oh0 of one plane, 16 pixels from ow0. KH3: 3 kernel
// rows, no vertical dilation, vertical stride SH, all unrolled; otherwise
// (KH3 false, SH unused) the schedule's.
template <size_t R, size_t S, size_t SH, bool KH3, GemmOut Kind>
inline void bytes_block(const DwconvPlanes& p, const BytesPlane& pl, const GemmEpilogue& ep,
                        const BytesOut& o, const DwconvRowsSchedule<R>& sched, size_t oh0, size_t ow0, const __m512i* w) {
  const long col = static_cast<long>(ow0 * S) - static_cast<long>(p.pl);
  const __mmask64 m = BytesPlane::inside(col, kWindowBytes<S>, pl.in_w);
  const long ih0 = static_cast<long>(oh0 * (KH3 ? SH : p.sh)) - static_cast<long>(p.pt);
  __m512i acc[R];
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i) acc[i] = _mm512_setzero_si512();
  if (KH3) {
    constexpr size_t kSpan = (R - 1) * SH + 3;
#pragma GCC unroll 16
    for (size_t r = 0; r < kSpan; ++r) {
      const __m512i win = windows16<S>(pl.load(pl.row(ih0 + static_cast<long>(r)), col, m));
#pragma GCC unroll 4
      for (size_t i = 0; i < R; ++i)
        if (r >= i * SH && r - i * SH < 3) acc[i] = _mm512_dpbusd_epi32(acc[i], win, w[r - i * SH]);
    }
  } else {
    for (size_t r = 0; r < sched.span; ++r) {
      const __m512i win = windows16<S>(pl.load(pl.row(ih0 + static_cast<long>(r)), col, m));
#pragma GCC unroll 4
      for (size_t i = 0; i < R; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], win, w[sched.kh[r][i]]);
    }
  }
  const size_t left = p.ow - ow0, bytes = gemm_out_bytes(Kind);
  const __mmask16 mask = gemm_tail_mask16(left);
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i)
    gemm_finish16_avx512<Kind>(ep, _mm512_sub_epi32(acc[i], o.off), o.scale, o.bias,
                               o.y + ((oh0 + i) * p.ow + ow0) * bytes, mask, left >= 16);
}

template <size_t S, size_t SH, bool KH3, GemmOut Kind>
void planes_bytes(const DwconvPlanes& p) {
  const GemmEpilogue ep = *p.ep;
  const size_t kh_n = KH3 ? 3 : p.kh;
  const DwconvPlanesWalk<4> walk(p);
  const size_t in_plane = p.in_h * p.in_w, out_plane = p.rows * p.ow * gemm_out_bytes(Kind);
  __m512i w[kDwconvMaxTaps + 1];  // w[KH]: zero, for the schedule's idle steps
  w[kh_n] = _mm512_setzero_si512();
  BytesPlane pl{p.x, p.fill_row, p.in_h, p.in_w, _mm512_set1_epi8(static_cast<char>(p.zp)),
                _mm512_set1_epi8(static_cast<char>(p.flip))};
  for (size_t c = 0; c < p.planes; ++c) {
    pl.x = p.x + c * in_plane;
    for (size_t kh = 0; kh < kh_n; ++kh) w[kh] = _mm512_set1_epi32(p.w_rows8[c * kh_n + kh]);
    const BytesOut o{_mm512_set1_epi32(p.col_off[c]), _mm512_set1_ps(p.scale[c]), _mm512_set1_ps(p.bias[c]),
                     p.y + c * out_plane};
    walk.plane<16>(p, [&](auto rows, const auto& sched, size_t oh, size_t ow0) {
      bytes_block<decltype(rows)::value, S, SH, KH3, Kind>(p, pl, ep, o, sched, oh, ow0, w);
    });
  }
}

template <size_t S, GemmOut Kind>
void planes_bytes(const DwconvPlanes& p) {
  with_planes_form(p, [&](auto sh, auto kh3) { planes_bytes<S, decltype(sh)::value, decltype(kh3)::value, Kind>(p); });
}

}  // namespace

void dwconv_nchw_u8s8_kw4_p16__avx512vnni(const DwconvPlanes& p) {
  IQK_KERNEL_ENTRY("dwconv_nchw_u8s8_kw4_p16__avx512vnni");
  with_kind(p.ep->kind, [&](auto kind) {
    with_stride_1_or_2(p.sw, [&](auto s) { planes_bytes<decltype(s)::value, decltype(kind)::value>(p); });
  });
}

void dwconv_nchw_u8s16_p32__avx512vnni(const DwconvPlane& p) {
  IQK_KERNEL_ENTRY("dwconv_nchw_u8s16_p32__avx512vnni");
  with_kind(p.ep->kind, [&](auto kind) {
    with_stride_1_or_2(p.sw, [&](auto s) { dw_plane<DwAvx512, decltype(s)::value, decltype(kind)::value>(p); });
  });
}

extern const DwconvKernel dwconv_kernel__avx512vnni{
    .fn = &dwconv_u8s16_c32__avx512vnni,
    .name = "dwconv_u8s16_c32__avx512vnni",
    .plane = &dwconv_nchw_u8s16_p32__avx512vnni,
    .plane_name = "dwconv_nchw_u8s16_p32__avx512vnni",
    .column_pairs_name = "dwconv3x3_u8s16_c32__avx512vnni",
    .planes = &dwconv_nchw_u8s8_kw4_p16__avx512vnni,
    .planes_name = "dwconv_nchw_u8s8_kw4_p16__avx512vnni",
    .planes_bytes = true,
};

}  // namespace iqk
