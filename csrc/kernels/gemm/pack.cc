// Packing of B for the GEMM tile kernels (gemm.h: the vnni4 and pair16
// panel layouts).
#include "kernels/gemm/pack.h"

#include <algorithm>
#include <cstring>

namespace iqk {

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
    if (s.layout == GemmLayout::vnni4) {
      for (size_t k = 0; k < K; ++k)
        for (size_t j = 0; j < cols; ++j)
          panel[(k / 4) * nr * 4 + j * 4 + k % 4] = static_cast<uint8_t>(b[k * N + p * nr + j]);
    } else {
      int16_t* q = reinterpret_cast<int16_t*>(panel);
      for (size_t k = 0; k < K; ++k)
        for (size_t j = 0; j < cols; ++j) q[(k / 2) * nr * 2 + j * 2 + k % 2] = b[k * N + p * nr + j];
    }
  }
}

}  // namespace iqk
