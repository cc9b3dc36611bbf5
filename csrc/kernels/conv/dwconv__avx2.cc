// Depthwise convolution, AVX2: 16 channels per step, two taps per vpmaddwd
// (exact: pairs of int16 products summed into int32). One output row.
//
// The bytes of two taps of 16 channels are widened to int16 and interleaved
// with vpunpcklwd / vpunpckhwd, which pair channels {0-3, 8-11} and
// {4-7, 12-15}: the weights are permuted the same way once per channel
// block and the accumulators put back in channel order before the epilogue.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/conv/conv.h"
#include "kernels/conv/dwconv_rows.h"
#include "kernels/specialize.h"
#include "simd/x86/gemm_ymm.h"
#include "runtime/kernel_counter.h"

namespace iqk {

namespace {

// The vector policy of dwconv_rows.h: 16 channels or pixels per step,
// vpmaddwd (and an add). vpunpcklwd / vpunpckhwd pair values {0-3, 8-11} and
// {4-7, 12-15}.
struct DwAvx2 {
  using Vec = __m256i;
  static constexpr size_t kC = 16;
  static Vec zero() { return _mm256_setzero_si256(); }
  static Vec splat(int32_t v) { return _mm256_set1_epi32(v); }
  static Vec widen(const uint8_t* p) {
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static Vec widen_even(const uint8_t* p) {
    return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi16(0x00FF));
  }
  static Vec unpacklo(Vec a, Vec b) { return _mm256_unpacklo_epi16(a, b); }
  static Vec unpackhi(Vec a, Vec b) { return _mm256_unpackhi_epi16(a, b); }
  static Vec dot(Vec acc, Vec a, Vec w) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, w)); }
  static Vec dot2(Vec acc, Vec a, Vec wa, Vec b, Vec wb) {
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(a, wa), _mm256_madd_epi16(b, wb)));
  }
  static void weights(const int16_t* w, Vec& lo, Vec& hi) {
    const Vec w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const Vec w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16));
    lo = _mm256_permute2x128_si256(w0, w1, 0x20);  // channels 0-3, 8-11
    hi = _mm256_permute2x128_si256(w0, w1, 0x31);  // channels 4-7, 12-15
  }

  // The epilogue of one block of 16 channels, its per-channel terms loaded
  // once per block (the kernels are bound by their loads): pixel i goes to
  // out + i * step.
  struct Block {
    GemmCols8 cols0, cols1;
    size_t n0, n1;  // channels stored of each half (n1 may be 0)
    uint8_t* out;
    size_t step;
  };
  template <GemmOut Kind>
  static Block block(const DwconvRow& r, const GemmEpilogue& ep, size_t c0) {
    const size_t left = r.c - c0, bytes = gemm_out_bytes(Kind);
    return {gemm_cols8_avx2<Kind>(ep, c0), gemm_cols8_avx2<Kind>(ep, c0 + 8), left < 8 ? left : 8,
            left > 8 ? (left < 16 ? left - 8 : 8) : 0, static_cast<uint8_t*>(ep.c) + (r.m0 * ep.ldc + c0) * bytes,
            ep.ldc * bytes};
  }
  // Depthwise epilogues have no b_zp: the corrections are the offsets alone.
  template <GemmOut Kind>
  static void store(const GemmEpilogue& ep, const Block& b, size_t i, Vec lo, Vec hi) {
    uint8_t* y = b.out + i * b.step;
    const Vec v0 = _mm256_sub_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), b.cols0.off);
    gemm_finish8_avx2<Kind>(ep, v0, b.cols0.scale, b.cols0.bias, y, b.n0);
    if (b.n1) {
      const Vec v1 = _mm256_sub_epi32(_mm256_permute2x128_si256(lo, hi, 0x31), b.cols1.off);
      gemm_finish8_avx2<Kind>(ep, v1, b.cols1.scale, b.cols1.bias, y + 8 * gemm_out_bytes(Kind), b.n1);
    }
  }

  // The plane kernel's epilogue, the steps of store with the channel's
  // terms in every lane: lo holds pixels 0-3 and 8-11, hi 4-7 and 12-15.
  // A function of its own, not store: then the row kernels are store's only
  // callers, and the compiler weighs inlining it there on their own.
  template <GemmOut Kind, size_t R>
  static void plane_store(const DwconvPlane& p, const GemmEpilogue& ep, size_t oh0, size_t ow0, const Vec* lo,
                          const Vec* hi) {
    const size_t left = p.ow - ow0, bytes = gemm_out_bytes(Kind);
    const Vec off = _mm256_set1_epi32(p.col_off);
    const __m256 scale = _mm256_set1_ps(p.scale), bias = _mm256_set1_ps(p.bias);
#pragma GCC unroll 4
    for (size_t i = 0; i < R; ++i) {
      uint8_t* y = p.y + ((oh0 + i) * p.ow + ow0) * bytes;
      gemm_finish8_avx2<Kind>(ep, _mm256_sub_epi32(_mm256_permute2x128_si256(lo[i], hi[i], 0x20), off), scale, bias, y,
                              left < 8 ? left : 8);
      if (left > 8)
        gemm_finish8_avx2<Kind>(ep, _mm256_sub_epi32(_mm256_permute2x128_si256(lo[i], hi[i], 0x31), off), scale, bias,
                                y + 8 * bytes, left < 16 ? left - 8 : 8);
    }
  }
};

}  // namespace

// The 3x3 form (counted on its own, inside the row kernel's count).
void dwconv3x3_u8s16_c16__avx2(const DwconvRow& r) {
  IQK_KERNEL_ENTRY("dwconv3x3_u8s16_c16__avx2");
  with_kind(r.ep->kind, [&](auto kind) {
    with_stride_1_or_2(r.sw, [&](auto s) { dw_row3x3<DwAvx2, decltype(s)::value, decltype(kind)::value>(r); });
  });
}

void dwconv_u8s16_c16__avx2(const DwconvRow& r) {
  IQK_KERNEL_ENTRY("dwconv_u8s16_c16__avx2");
  if (r.w3) return dwconv3x3_u8s16_c16__avx2(r);
  with_kind(r.ep->kind, [&](auto kind) { dw_row<DwAvx2, decltype(kind)::value>(r); });
}

namespace {

// ---- NCHW read from the planes as given: 8 output pixels per vector ----
//
// A kernel row of up to 4 taps is two int16 weight pairs (DwconvPlanes::
// w_rows16), so that 8 output pixels of one row need, per kernel row, two
// vectors of int16 pairs: (x[o * S], x[o * S + 1]) and (x[o * S + 2],
// x[o * S + 3]) for pixel o: at stride 1 by vpshufb from 16 input bytes
// (both lanes from the same 16, which hold pixels 0-7's 11 bytes), at stride
// 2 by widening the 16 bytes from the first pixel's column and the 16 from
// two columns on. No staging: bytes outside the row are blended in as the
// zero point at the edges of the row (AVX2 has no masked byte loads).

// How the 16 bytes [start, start + 16) of any input row are read: straight
// from the row when they lie inside it; else, for rows of at least 16 bytes,
// from the 16 inside it nearest to them, moved into place by vpshufb with
// the zero point blended in; else (narrower rows) byte by byte.
struct Src16 {
  enum Kind { direct, shuffled, bytewise } kind;
  long start, off;
  __m128i ctrl, valid;
};

inline Src16 src16(long start, size_t in_w) {
  const long w = static_cast<long>(in_w);
  Src16 s{Src16::direct, start, start, _mm_setzero_si128(), _mm_setzero_si128()};
  if (start >= 0 && start + 16 <= w) return s;
  if (w < 16) {
    s.kind = Src16::bytewise;
    return s;
  }
  s.kind = Src16::shuffled;
  s.off = std::clamp<long>(start, 0, w - 16);
  const __m128i iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  s.ctrl = _mm_add_epi8(iota, _mm_set1_epi8(static_cast<char>(start - s.off)));
  // Bytes j with 0 <= start + j < in_w: j in [lo, hi).
  const long lo = std::max<long>(0, -start), hi = std::min<long>(16, w - start);
  s.valid = _mm_andnot_si128(_mm_cmpgt_epi8(_mm_set1_epi8(static_cast<char>(lo)), iota),
                             _mm_cmpgt_epi8(_mm_set1_epi8(static_cast<char>(hi)), iota));
  return s;
}

struct YmmPlane {
  const uint8_t* x;
  size_t in_h, in_w;
  __m128i zp, flip, zp_u;  // zp_u: the zero point as an unsigned byte (zp ^ flip)

  const uint8_t* row(long ih) const {
    return ih >= 0 && ih < static_cast<long>(in_h) ? x + static_cast<size_t>(ih) * in_w : nullptr;
  }
  // The 16 unsigned bytes of `s` in input row `r` (null: a row of padding).
  __m128i load(const uint8_t* r, const Src16& s) const {
    if (!r) return zp_u;
    if (s.kind == Src16::direct) return _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + s.off)), flip);
    if (s.kind == Src16::shuffled) {
      const __m128i v = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + s.off)), s.ctrl);
      return _mm_xor_si128(_mm_blendv_epi8(zp, v, s.valid), flip);
    }
    alignas(16) uint8_t buf[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(buf), zp);
    for (long j = 0; j < 16; ++j)
      if (s.start + j >= 0 && s.start + j < static_cast<long>(in_w)) buf[j] = r[s.start + j];
    return _mm_xor_si128(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)), flip);
  }
};

// One channel's epilogue terms, as vectors.
struct YmmOut {
  __m256i off;
  __m256 scale, bias;
  uint8_t* y;
};

// R output rows from oh0 of one plane, 8 pixels from ow0. KH3: 3 kernel
// rows, no vertical dilation, vertical stride SH, all unrolled; otherwise
// (KH3 false, SH unused) the schedule's, with the all-zero weights at index
// KH where an output row takes nothing.
template <size_t R, size_t S, size_t SH, bool KH3, GemmOut Kind>
inline void planes_block(const DwconvPlanes& p, const YmmPlane& pl, const GemmEpilogue& ep, const YmmOut& o,
                         const DwconvRowsSchedule<R>& sched, size_t oh0, size_t ow0, const __m256i (*w)[2]) {
  // Stride 1, per lane (4 pixels): the int16 pairs of taps 0-1 (a) and 2-3
  // (b) of each pixel, both lanes from the same 16 bytes.
  const __m256i ctrl_a = _mm256_setr_epi8(0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1, 4, -1,
                                          4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1, 8, -1);
  const __m256i ctrl_b = _mm256_add_epi8(ctrl_a, _mm256_set1_epi16(2));
  const long col = static_cast<long>(ow0 * S) - static_cast<long>(p.pl);
  const Src16 s0 = src16(col, pl.in_w), s2 = src16(col + 2, pl.in_w);
  const long ih0 = static_cast<long>(oh0 * (KH3 ? SH : p.sh)) - static_cast<long>(p.pt);
  auto windows = [&](long r, __m256i& a, __m256i& b) {
    const uint8_t* row = pl.row(ih0 + r);
    if (S == 1) {
      const __m128i v = pl.load(row, s0);
      a = _mm256_shuffle_epi8(_mm256_set_m128i(v, v), ctrl_a);
      b = _mm256_shuffle_epi8(_mm256_set_m128i(v, v), ctrl_b);
    } else {
      // At stride 2 the pairs are the bytes from col, and from col + 2, widened.
      a = _mm256_cvtepu8_epi16(pl.load(row, s0));
      b = _mm256_cvtepu8_epi16(pl.load(row, s2));
    }
  };
  auto madd = [](__m256i acc, __m256i a, __m256i b, const __m256i* wk) {
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(a, wk[0]), _mm256_madd_epi16(b, wk[1])));
  };
  __m256i acc[R];
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i) acc[i] = _mm256_setzero_si256();
  if (KH3) {
    constexpr size_t kSpan = (R - 1) * SH + 3;
#pragma GCC unroll 16
    for (size_t r = 0; r < kSpan; ++r) {
      __m256i a, b;
      windows(static_cast<long>(r), a, b);
#pragma GCC unroll 4
      for (size_t i = 0; i < R; ++i)
        if (r >= i * SH && r - i * SH < 3) acc[i] = madd(acc[i], a, b, w[r - i * SH]);
    }
  } else {
    for (size_t r = 0; r < sched.span; ++r) {
      __m256i a, b;
      windows(static_cast<long>(r), a, b);
#pragma GCC unroll 4
      for (size_t i = 0; i < R; ++i) acc[i] = madd(acc[i], a, b, w[sched.kh[r][i]]);
    }
  }
  const size_t left = p.ow - ow0, bytes = gemm_out_bytes(Kind);
#pragma GCC unroll 4
  for (size_t i = 0; i < R; ++i)
    gemm_finish8_avx2<Kind>(ep, _mm256_sub_epi32(acc[i], o.off), o.scale, o.bias, o.y + ((oh0 + i) * p.ow + ow0) * bytes,
                            left < 8 ? left : 8);
}

// Output rows per block (the fastest of 2, 3 and 4: docs/design.md).
constexpr size_t kRows = 4;

template <size_t S, size_t SH, bool KH3, GemmOut Kind>
void planes(const DwconvPlanes& p) {
  const GemmEpilogue ep = *p.ep;
  const size_t kh_n = KH3 ? 3 : p.kh;
  const DwconvPlanesWalk<kRows> walk(p);
  const size_t in_plane = p.in_h * p.in_w, out_plane = p.rows * p.ow * gemm_out_bytes(Kind);
  __m256i w[kDwconvMaxTaps + 1][2];  // w[KH]: zero, for the schedule's idle steps
  w[kh_n][0] = w[kh_n][1] = _mm256_setzero_si256();
  const __m128i zp = _mm_set1_epi8(static_cast<char>(p.zp)), flip = _mm_set1_epi8(static_cast<char>(p.flip));
  YmmPlane pl{p.x, p.in_h, p.in_w, zp, flip, _mm_xor_si128(zp, flip)};
  for (size_t c = 0; c < p.planes; ++c) {
    pl.x = p.x + c * in_plane;
    for (size_t kh = 0; kh < kh_n; ++kh) {
      w[kh][0] = _mm256_set1_epi32(p.w_rows16[(c * kh_n + kh) * 2]);
      w[kh][1] = _mm256_set1_epi32(p.w_rows16[(c * kh_n + kh) * 2 + 1]);
    }
    const YmmOut o{_mm256_set1_epi32(p.col_off[c]), _mm256_set1_ps(p.scale[c]), _mm256_set1_ps(p.bias[c]),
                   p.y + c * out_plane};
    walk.plane<8>(p, [&](auto rows, const auto& sched, size_t oh, size_t ow0) {
      planes_block<decltype(rows)::value, S, SH, KH3, Kind>(p, pl, ep, o, sched, oh, ow0, w);
    });
  }
}

template <size_t S, GemmOut Kind>
void planes(const DwconvPlanes& p) {
  with_planes_form(p, [&](auto sh, auto kh3) { planes<S, decltype(sh)::value, decltype(kh3)::value, Kind>(p); });
}

}  // namespace

void dwconv_nchw_u8s16_kw4_p8__avx2(const DwconvPlanes& p) {
  IQK_KERNEL_ENTRY("dwconv_nchw_u8s16_kw4_p8__avx2");
  with_kind(p.ep->kind, [&](auto kind) {
    with_stride_1_or_2(p.sw, [&](auto s) { planes<decltype(s)::value, decltype(kind)::value>(p); });
  });
}

void dwconv_nchw_u8s16_p16__avx2(const DwconvPlane& p) {
  IQK_KERNEL_ENTRY("dwconv_nchw_u8s16_p16__avx2");
  with_kind(p.ep->kind, [&](auto kind) {
    with_stride_1_or_2(p.sw, [&](auto s) { dw_plane<DwAvx2, decltype(s)::value, decltype(kind)::value>(p); });
  });
}

extern const DwconvKernel dwconv_kernel__avx2{
    .fn = &dwconv_u8s16_c16__avx2,
    .name = "dwconv_u8s16_c16__avx2",
    .plane = &dwconv_nchw_u8s16_p16__avx2,
    .plane_name = "dwconv_nchw_u8s16_p16__avx2",
    .column_pairs_name = "dwconv3x3_u8s16_c16__avx2",
    .planes = &dwconv_nchw_u8s16_kw4_p8__avx2,
    .planes_name = "dwconv_nchw_u8s16_kw4_p8__avx2",
    .planes_bytes = false,
    // Narrow rows run faster through NHWC staging with these kernels (docs/design.md).
    .planes_narrow = false,
};

}  // namespace iqk
