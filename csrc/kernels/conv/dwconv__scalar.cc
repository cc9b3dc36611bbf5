// Depthwise convolution, portable: one output row, every channel (conv.h).
#include "kernels/conv/conv.h"
#include "kernels/gemm/gemm_epilogue.h"
#include "runtime/kernel_counter.h"

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

void dwconv_nchw_u8s16__scalar(const DwconvPlane& p) {
  IQK_KERNEL_ENTRY("dwconv_nchw_u8s16__scalar");
  const size_t taps = p.kh * p.kw;
  // The channel's constants as one-column epilogue arrays.
  GemmEpilogue ep = *p.ep;
  ep.b_zp = nullptr;
  ep.col_off = &p.col_off;
  ep.scale = &p.scale;
  ep.bias = &p.bias;
  ep.ldc = 1;
  const size_t bytes = gemm_out_bytes(ep.kind);
  for (size_t oh = 0; oh < p.rows; ++oh) {
    ep.c = p.y + oh * p.ow * bytes;
    for (size_t ow = 0; ow < p.ow; ++ow) {
      int32_t acc = 0;
      for (size_t t = 0; t < taps; ++t) {
        const size_t kh = t / p.kw, kw = t % p.kw;
        const int32_t x = p.x[(oh * p.sh + kh * p.dh) * p.x_row + ow * p.sw + kw * p.dw];
        const int32_t pair = p.w_pairs[(t / 2) * p.c_pad];  // {w'[2q], w'[2q + 1]} as int16, low first
        acc += x * static_cast<int16_t>(t % 2 ? static_cast<uint32_t>(pair) >> 16 : static_cast<uint32_t>(pair) & 0xFFFFu);
      }
      gemm_store_one(ep, ow, 0, acc);
    }
  }
}

extern const DwconvKernel dwconv_kernel__scalar{
    .fn = &dwconv_u8s16__scalar,
    .name = "dwconv_u8s16__scalar",
    .plane = &dwconv_nchw_u8s16__scalar,
    .plane_name = "dwconv_nchw_u8s16__scalar",
};

}  // namespace iqk
