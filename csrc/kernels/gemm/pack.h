// Packing of B (K x N int8, row-major) into the panels of a GEMM tile
// kernel's shape (gemm.h). No intrinsics here.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace iqk {

size_t packed_b_bytes(const GemmShape& s, size_t K, size_t N);
void pack_b(const GemmShape& s, const int8_t* b, size_t K, size_t N, uint8_t* out);

}  // namespace iqk
