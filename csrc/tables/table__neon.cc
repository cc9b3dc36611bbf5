// The neon path: ARMv8.0 Advanced SIMD. Exact int8 products widened to int16
// and accumulated into int32 by smlal (GEMM, depthwise); quantization with
// frintn (round half to even).
#include "runtime/kernel_table.h"

namespace iqk {

IQK_DECLARE_TABLE(scalar)
IQK_DECLARE_QUANTIZE_KERNELS(neon)
IQK_DECLARE_HISTOGRAM_KERNEL(neon)
extern const GemmKernel gemm_kernel__neon;
extern const DwconvKernel dwconv_kernel__neon;

void fill_table__neon(KernelTable& t) {
  fill_table__scalar(t);
  IQK_SET_QUANTIZE_KERNELS(t, neon);
  t.abs_histogram = IQK_KERNEL(abs_histogram_f32__neon);
  t.gemm = gemm_kernel__neon;
  t.dwconv = dwconv_kernel__neon;
}

}  // namespace iqk
