// Depthwise convolution, portable: one output row, every channel (conv.h).
#include <vector>

#include "conv.h"
#include "gemm_epilogue.h"
#include "kernel_counter.h"

namespace iqk {

void dwconv_u8s16__scalar(const DwconvRow& r) {
  IQK_KERNEL_ENTRY("dwconv_u8s16__scalar");
  const size_t taps = r.kh * r.kw;
  for (size_t ow = 0; ow < r.ow; ++ow) {
    const uint8_t* px = r.x + ow * r.sw * r.c;
    for (size_t c = 0; c < r.c; ++c) {
      int32_t acc = 0;
      for (size_t t = 0; t < taps; ++t) {
        const size_t kh = t / r.kw, kw = t % r.kw;
        const int32_t x = px[kh * r.dh * r.x_row + kw * r.dw * r.c + c];
        acc += x * r.w[((t / 2) * r.c_pad + c) * 2 + t % 2];
      }
      gemm_store_one(*r.ep, r.m0 + ow, c, acc);
    }
  }
}

extern const DwconvKernel dwconv_kernel__scalar{&dwconv_u8s16__scalar, "dwconv_u8s16__scalar"};

}  // namespace iqk
