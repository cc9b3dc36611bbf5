// Small-group convolution, AVX2 (conv.h, GconvRow; the steps in
// gconv_ymm.h): 8 output channels per step, one per lane, and 4 output
// pixels at a time. Exact without VNNI: each lane's 4 input bytes and 4
// weights are widened to int16, so that one vpmaddwd makes the two pair sums
// (x0 w0 + x1 w1, x2 w2 + x3 w3) of 4 lanes in their two dwords, and the
// pairs are added at the end (vphaddd).
#include <immintrin.h>

#include "simd/x86/gconv_ymm.h"
#include "runtime/kernel_counter.h"

namespace iqk {

namespace {

struct MulAvx2 {
  struct Acc {
    __m256i lo, hi;  // lanes 0-3 and 4-7, two dwords (pair sums) each
  };
  struct W {
    __m256i lo, hi;  // the same lanes' weights as int16
  };
  static Acc zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  static W load_w(const int8_t* w) {
    return {_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))),
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)))};
  }
  struct In {
    __m256i lo, hi;  // lanes 0-3 and 4-7 as int16
  };
  static W ones() { return {_mm256_set1_epi16(1), _mm256_set1_epi16(1)}; }
  static In input(__m256i v) {
    return {_mm256_cvtepu8_epi16(_mm256_castsi256_si128(v)), _mm256_cvtepu8_epi16(_mm256_extracti128_si256(v, 1))};
  }
  static In input_bcast(const uint8_t* p) {
    const __m256i v = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(gemm_load4(p))));
    return {v, v};
  }
  static void add(Acc& a, const In& in, const W& w) {
    a.lo = _mm256_add_epi32(a.lo, _mm256_madd_epi16(in.lo, w.lo));
    a.hi = _mm256_add_epi32(a.hi, _mm256_madd_epi16(in.hi, w.hi));
  }
  // vphaddd gives lanes (0, 1, 4, 5 | 2, 3, 6, 7); the qword permute puts them in order.
  static __m256i sums(const Acc& a) { return _mm256_permute4x64_epi64(_mm256_hadd_epi32(a.lo, a.hi), 0xD8); }
};

}  // namespace

void gconv_u8s8s32_4x8c4__avx2(const GconvRow& r) {
  IQK_KERNEL_ENTRY("gconv_u8s8s32_4x8c4__avx2");
  with_kind(r.ep->kind, [&](auto kind) { gconv_row8<MulAvx2, decltype(kind)::value>(r); });
}

}  // namespace iqk
