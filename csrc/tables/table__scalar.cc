// The scalar path: portable C++, always built, the base of every other table.
#include "runtime/kernel_table.h"

namespace iqk {

IQK_DECLARE_QUANTIZE_KERNELS(scalar)
IQK_DECLARE_HISTOGRAM_KERNEL(scalar)
extern const GemmKernel gemm_kernel__scalar;
extern const DwconvKernel dwconv_kernel__scalar;

void fill_table__scalar(KernelTable& t) {
  IQK_SET_QUANTIZE_KERNELS(t, scalar);
  t.abs_histogram = IQK_KERNEL(abs_histogram_f32__scalar);
  t.gemm = gemm_kernel__scalar;
  t.dwconv = dwconv_kernel__scalar;
  // Small groups run as a grouped GEMM; NCHW transposes and 1x1 packing use
  // the portable forms (gconv, transpose16x16_b32, pack_vnni4_strips64 null).
}

}  // namespace iqk
