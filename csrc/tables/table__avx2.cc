// The avx2 path: AVX2 + FMA + F16C. Exact int8 products through int16 pairs
// (vpmaddwd), no VNNI.
#include "runtime/kernel_table.h"

namespace iqk {

IQK_DECLARE_TABLE(scalar)
IQK_DECLARE_QUANTIZE_KERNELS(avx2)
IQK_DECLARE_HISTOGRAM_KERNEL(avx2)
extern const GemmKernel gemm_kernel__avx2;
extern const DwconvKernel dwconv_kernel__avx2;
void gconv_u8s8s32_4x8c4__avx2(const GconvRow& r);

void fill_table__avx2(KernelTable& t) {
  fill_table__scalar(t);
  IQK_SET_QUANTIZE_KERNELS(t, avx2);
  t.abs_histogram = IQK_KERNEL(abs_histogram_f32__avx2);
  t.gemm = gemm_kernel__avx2;
  t.dwconv = dwconv_kernel__avx2;
  t.gconv = IQK_KERNEL(gconv_u8s8s32_4x8c4__avx2);
}

}  // namespace iqk
