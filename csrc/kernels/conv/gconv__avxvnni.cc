// Small-group convolution, AVX-VNNI (conv.h, GconvRow; the steps in
// gconv_ymm.h): 8 output channels per step, one per lane, and 4 output
// pixels at a time, the lanes' 4 bytes multiplied as they are by one 256-bit
// vpdpbusd against their 4 weights: no widening and no pair sums to add.
#include <immintrin.h>

#include "simd/x86/gconv_ymm.h"
#include "runtime/kernel_counter.h"

namespace iqk {

namespace {

struct MulVnni {
  using Acc = __m256i;
  using W = __m256i;
  using In = __m256i;
  static Acc zero() { return _mm256_setzero_si256(); }
  static In input(__m256i v) { return v; }
  static In input_bcast(const uint8_t* p) { return _mm256_set1_epi32(gemm_load4(p)); }
  static W load_w(const int8_t* w) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)); }
  static W ones() { return _mm256_set1_epi8(1); }
  static void add(Acc& a, __m256i in, W w) { a = _mm256_dpbusd_avx_epi32(a, in, w); }
  static __m256i sums(Acc a) { return a; }
};

}  // namespace

void gconv_u8s8s32_4x8c4__avxvnni(const GconvRow& r) {
  IQK_KERNEL_ENTRY("gconv_u8s8s32_4x8c4__avxvnni");
  with_kind(r.ep->kind, [&](auto kind) { gconv_row8<MulVnni, decltype(kind)::value>(r); });
}

}  // namespace iqk
