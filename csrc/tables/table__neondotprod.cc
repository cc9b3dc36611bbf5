// The neon_dotprod path: the neon table with udot (ARMv8.2 dot product) where
// the multiply bounds the kernel (GEMM). Quantization and depthwise keep the
// neon kernels: they are bound by loads and conversions, not by multiplies.
#include "runtime/kernel_table.h"

namespace iqk {

IQK_DECLARE_TABLE(neon)
extern const GemmKernel gemm_kernel__neondotprod;
void gconv_u8u8s32_4x4c4__neondotprod(const GconvRow& r);

void fill_table__neondotprod(KernelTable& t) {
  fill_table__neon(t);
  t.gemm = gemm_kernel__neondotprod;
  t.gconv = IQK_KERNEL(gconv_u8u8s32_4x4c4__neondotprod);
}

}  // namespace iqk
