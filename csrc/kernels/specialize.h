// Helpers shared by the GEMM and convolution kernels. No intrinsics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/gemm/gemm.h"

namespace iqk {

// Calls f(std::integral_constant<size_t, R>{}) with R == mr (1 <= mr <= MR):
// each tile kernel is compiled once per row count, so that its accumulators
// are a fixed set of registers.
template <size_t MR, size_t R = 1, typename F>
inline void with_rows(size_t mr, F&& f) {
  if constexpr (R >= MR) {
    f(std::integral_constant<size_t, MR>{});
  } else if (mr == R) {
    f(std::integral_constant<size_t, R>{});
  } else {
    with_rows<MR, R + 1>(mr, static_cast<F&&>(f));
  }
}

// Calls f(std::integral_constant<GemmOut, K>{}) with K == kind: code that
// stores through an epilogue is compiled once per kind of output, with no
// switch in its loops.
template <typename F>
inline void with_kind(GemmOut kind, F&& f) {
  switch (kind) {
    case GemmOut::i32:
      return f(std::integral_constant<GemmOut, GemmOut::i32>{});
    case GemmOut::f32:
      return f(std::integral_constant<GemmOut, GemmOut::f32>{});
    case GemmOut::q8:
      return f(std::integral_constant<GemmOut, GemmOut::q8>{});
  }
}

// Calls f(kind, rows) with kind as with_kind and rows a std::bool_constant:
// whether the epilogue has a per-row scale (GemmEpilogue::row_scale; never
// with i32). Tile stores are compiled once per pair, so that the per-tensor
// code is the same as without per-row scales, the choice made once per tile.
template <typename F>
inline void with_kind_rows(const GemmEpilogue& e, F&& f) {
  with_kind(e.kind, [&](auto kind) {
    if constexpr (decltype(kind)::value == GemmOut::i32) {
      f(kind, std::false_type{});
    } else if (e.row_scale) {
      f(kind, std::true_type{});
    } else {
      f(kind, std::false_type{});
    }
  });
}

// Calls f(std::integral_constant<size_t, S>{}) for a horizontal stride s of
// 1 or 2 (kernels vectorized along output rows specialize on it).
template <typename F>
inline void with_stride_1_or_2(size_t s, F&& f) {
  if (s == 1)
    f(std::integral_constant<size_t, 1>{});
  else
    f(std::integral_constant<size_t, 2>{});
}

// Four bytes of one row of A (one k-group), to broadcast. static: each ISA
// file gets its own copy, built with its own flags.
static inline int32_t gemm_load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace iqk
