// Packed weights: int8 weights in the layout of the kernels that read them,
// made once by the C++ next to those kernels (kernels/*/pack.cc) and held by
// the Python PackedWeights / PackedConvWeights objects, one per layout they
// have been used with. Each says which layout it holds, and the drivers
// check that before reading it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "runtime/isa.h"

namespace iqk {

enum class PackedKind : int {
  // B panels of a path's GEMM tile kernel (gemm.h), one K x N matrix per
  // group (a convolution's: k = (kh * KW + kw) * C/groups + c, n = output
  // channel within the group).
  gemm_panels,
  // A convolution's weights as OC rows of w ^ 0x80 (uint8 w + 128), K bytes
  // each padded to whole groups of 4 with zeros: the A operand of the 1x1
  // NCHW convolution (ops/conv.h, Conv1x1Nchw).
  conv1x1_rows,
  // The depthwise kernels' int16 weights (kernels/conv/conv.h, DwconvPacked).
  depthwise,
  // The small-group kernels' weights (kernels/conv/conv.h, GconvRow::w).
  small_groups,
};

const char* packed_kind_name(PackedKind kind);

struct Packed {
  PackedKind kind = PackedKind::gemm_panels;
  // gemm_panels: the path whose GEMM kernel's shape it has; the other
  // layouts serve every path (Isa::count).
  Isa isa = Isa::count;
  GemmShape shape{};
  size_t groups = 1, k = 0, n = 0;  // per group, a k x n matrix (n: OC/groups)
  size_t kh = 1, kw = 1;            // convolution kernels
  std::vector<uint8_t> bytes;

  // "gemm_panels for avx2 (pair16, 4x16), 1 group of K=576 x N=64", ...
  std::string describe() const;
};

// GEMM weights b (K x N int8, row-major) for the GEMM kernel of `isa`.
Packed pack_gemm_weights(Isa isa, const int8_t* b, size_t K, size_t N);

// Convolution weights w (OC x C/groups x KH x KW int8, C-contiguous) with
// their zero points zp (OC) in the layout `kind` (for gemm_panels, of the
// GEMM kernel of `isa`). Throws std::invalid_argument where the layout does
// not apply (depthwise needs one channel per group, small groups a
// geometry that gconv_fits).
Packed pack_conv_weights(PackedKind kind, Isa isa, const int8_t* w, const int32_t* zp, size_t oc, size_t cg,
                         size_t kh, size_t kw, size_t groups);

}  // namespace iqk
