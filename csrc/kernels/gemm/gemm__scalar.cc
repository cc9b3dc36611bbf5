// Portable GEMM tile kernel on the vnni4 layout: always built, and the
// baseline every SIMD kernel must match bit for bit.
#include "kernels/gemm/gemm_epilogue.h"
#include "runtime/kernel_counter.h"

namespace iqk {

namespace {
constexpr size_t MR = 4, NR = 16;
}  // namespace

void gemm_u8s8s32_4x16c4__scalar(size_t mr, size_t nr, size_t groups, const void* a_rows,
                                 size_t a_stride, size_t seg_groups, size_t seg_skip, const void* b_panel, const int32_t* acc_in, int32_t* acc_out,
                                 const GemmEpilogue& ep, size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY("gemm_u8s8s32_4x16c4__scalar");
  const uint8_t* a = static_cast<const uint8_t*>(a_rows);
  const int8_t* b = static_cast<const int8_t*>(b_panel);
  int32_t acc[MR][NR] = {};
  if (acc_in)
    for (size_t i = 0; i < MR; ++i)
      for (size_t j = 0; j < NR; ++j) acc[i][j] = acc_in[i * NR + j];
  for (size_t done = 0; done < groups; done += seg_groups, a += seg_skip) {
    for (size_t g = 0; g < seg_groups && done + g < groups; ++g, a += 4, b += NR * 4) {
      for (size_t i = 0; i < mr; ++i) {
        for (size_t j = 0; j < NR; ++j) {
          int32_t s = 0;
          for (size_t t = 0; t < 4; ++t) s += int32_t(a[i * a_stride + t]) * int32_t(b[j * 4 + t]);
          // Wraps like vpdpbusd when K is past the exact bound; never reached
          // through the Python API, which refuses such K.
          acc[i][j] = static_cast<int32_t>(static_cast<uint32_t>(acc[i][j]) + static_cast<uint32_t>(s));
        }
      }
    }
  }
  if (acc_out) {
    for (size_t i = 0; i < MR; ++i)
      for (size_t j = 0; j < NR; ++j) acc_out[i * NR + j] = acc[i][j];
    return;
  }
  for (size_t i = 0; i < mr; ++i)
    for (size_t j = 0; j < nr; ++j) gemm_store_one(ep, m0 + i, n0 + j, acc[i][j]);
}

// The kernel with its tile shape, for the kernel table: the shape is stated
// once, here, next to the code that depends on it.
extern const GemmKernel gemm_kernel__scalar{
    .fn = &gemm_u8s8s32_4x16c4__scalar,
    .name = "gemm_u8s8s32_4x16c4__scalar",
    .shape = {.layout = GemmLayout::vnni4, .mr = int(MR), .nr = int(NR)},
};

}  // namespace iqk
