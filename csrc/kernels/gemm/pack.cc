// Packing of B for the GEMM tile kernels, in each kernel's panel layout
// (gemm.h, GemmLayout).
#include "kernels/gemm/pack.h"

#include <algorithm>
#include <cstring>

namespace iqk {

const char* gemm_layout_name(GemmLayout layout) {
  switch (layout) {
    case GemmLayout::vnni4: return "vnni4";
    case GemmLayout::pair16: return "pair16";
    case GemmLayout::rows4: return "rows4";
    case GemmLayout::vnni4_u8: return "vnni4_u8";
    case GemmLayout::mmla8: return "mmla8";
  }
  return "?";
}

size_t packed_b_bytes(const GemmShape& s, size_t K, size_t N) {
  return (N + s.nr - 1) / s.nr * s.panel_bytes(K, s.nr);
}

void pack_b(const GemmShape& s, const int8_t* b, size_t K, size_t N, uint8_t* out) {
  const size_t nr = s.nr, pb = s.panel_bytes(K, nr), bytes = packed_b_bytes(s, K, N);
  if (bytes == 0) return;  // N == 0 (or K == 0): nothing to write, and `out` may be null
  std::memset(out, 0, bytes);
  for (size_t p = 0; p * nr < N; ++p) {
    uint8_t* panel = out + p * pb;
    const size_t cols = std::min(nr, N - p * nr);
    for (size_t k = 0; k < K; ++k)
      for (size_t j = 0; j < cols; ++j) {
        const int8_t v = b[k * N + p * nr + j];
        switch (s.layout) {
          case GemmLayout::vnni4:
            panel[(k / 4) * nr * 4 + j * 4 + k % 4] = static_cast<uint8_t>(v);
            break;
          case GemmLayout::pair16:
            reinterpret_cast<int16_t*>(panel)[(k / 2) * nr * 2 + j * 2 + k % 2] = v;
            break;
          case GemmLayout::rows4:
            panel[(k / 4) * nr * 4 + (k % 4) * nr + j] = static_cast<uint8_t>(v);
            break;
          case GemmLayout::vnni4_u8:
            panel[(k / 4) * nr * 4 + j * 4 + k % 4] = static_cast<uint8_t>(v) ^ 0x80;
            break;
          case GemmLayout::mmla8:
            panel[(k / 8) * nr * 8 + (j / 2) * 16 + (j % 2) * 8 + k % 8] = static_cast<uint8_t>(v);
            break;
        }
      }
  }
}

}  // namespace iqk
