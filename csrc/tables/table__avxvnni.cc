// The avx_vnni path: the avx2 table with 256-bit vpdpbusd where the multiply
// is what bounds the kernel (GEMM, small groups). Quantization has no use for
// VNNI, and depthwise is bound by loads and shuffles: those keep the avx2
// kernels.
#include "runtime/kernel_table.h"

namespace iqk {

IQK_DECLARE_TABLE(avx2)
extern const GemmKernel gemm_kernel__avxvnni;
void gconv_u8s8s32_4x8c4__avxvnni(const GconvRow& r);

void fill_table__avxvnni(KernelTable& t) {
  fill_table__avx2(t);
  t.gemm = gemm_kernel__avxvnni;
  t.gconv = IQK_KERNEL(gconv_u8s8s32_4x8c4__avxvnni);
}

}  // namespace iqk
