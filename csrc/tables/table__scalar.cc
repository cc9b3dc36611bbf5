// The scalar path: portable C++, always built, the base of every other table.
#include "runtime/kernel_table.h"

namespace iqk {

IQK_DECLARE_QUANTIZE_KERNELS(scalar)
extern const GemmKernel gemm_kernel__scalar;
extern const DwconvKernel dwconv_kernel__scalar;

void fill_table__scalar(KernelTable& t) {
  t.quantize = IQK_KERNEL(quantize_f32_q8__scalar);
  t.quantize_channels = IQK_KERNEL(quantize_channels_f32_q8__scalar);
  t.dequantize_s8 = IQK_KERNEL(dequantize_s8_f32__scalar);
  t.dequantize_u8 = IQK_KERNEL(dequantize_u8_f32__scalar);
  t.dequantize_channels_s8 = IQK_KERNEL(dequantize_channels_s8_f32__scalar);
  t.dequantize_channels_u8 = IQK_KERNEL(dequantize_channels_u8_f32__scalar);
  t.gemm = gemm_kernel__scalar;
  t.dwconv = dwconv_kernel__scalar;
  // Small groups run as a grouped GEMM; NCHW transposes and 1x1 packing use
  // the portable forms (gconv, transpose16x16_b32, pack_vnni4_strips64 null).
}

}  // namespace iqk
