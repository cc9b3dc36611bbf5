// The neon_i8mm path: the neon_dotprod table with usmmla (int8 matrix
// multiply, 2 x 8 by 8 x 2) for the GEMM.
#include "runtime/kernel_table.h"

namespace iqk {

IQK_DECLARE_TABLE(neondotprod)
extern const GemmKernel gemm_kernel__neoni8mm;
void gconv_u8s8s32_4x4c4__neoni8mm(const GconvRow& r);

void fill_table__neoni8mm(KernelTable& t) {
  fill_table__neondotprod(t);
  t.gemm = gemm_kernel__neoni8mm;
  t.gconv = IQK_KERNEL(gconv_u8s8s32_4x4c4__neoni8mm);
}

}  // namespace iqk
