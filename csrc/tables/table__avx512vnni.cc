// The avx512_vnni path: AVX-512 F/BW/VL/DQ + VNNI. Every op has its own
// 512-bit kernel; it starts from the avx2 table only so that no entry is
// ever left empty.
#include "runtime/kernel_table.h"

namespace iqk {

IQK_DECLARE_TABLE(avx2)
IQK_DECLARE_QUANTIZE_KERNELS(avx512vnni)
IQK_DECLARE_HISTOGRAM_KERNEL(avx512vnni)
extern const GemmKernel gemm_kernel__avx512vnni;
extern const DwconvKernel dwconv_kernel__avx512vnni;
void gconv_u8s8s32_4x16c4__avx512vnni(const GconvRow& r);
void transpose16x16_b32__avx512vnni(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride);
void pack_vnni4_strips64__avx512vnni(const uint8_t* src, size_t stride, size_t K, uint8_t flip, uint8_t* dst,
                                     size_t dst_step, int32_t* sums);

void fill_table__avx512vnni(KernelTable& t) {
  fill_table__avx2(t);
  IQK_SET_QUANTIZE_KERNELS(t, avx512vnni);
  t.abs_histogram = IQK_KERNEL(abs_histogram_f32__avx512vnni);
  t.gemm = gemm_kernel__avx512vnni;
  t.dwconv = dwconv_kernel__avx512vnni;
  t.gconv = IQK_KERNEL(gconv_u8s8s32_4x16c4__avx512vnni);
  t.transpose16x16_b32 = &transpose16x16_b32__avx512vnni;
  t.pack_vnni4_strips64 = &pack_vnni4_strips64__avx512vnni;
}

}  // namespace iqk
