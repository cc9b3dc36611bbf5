// AMX-INT8 GEMM tile kernel: 32 rows x 64 columns on tdpbusd, 2 A tiles x 2
// B tiles -> 4 C tiles per half of 32 columns (the kernel and why:
// simd/x86/gemm_amx.h), on the tile instructions (simd/x86/amx_tiles.h).
#include "simd/x86/amx_tiles.h"
#include "simd/x86/gemm_amx.h"
#include "runtime/kernel_counter.h"

namespace iqk {

void gemm_u8s8s32_32x64c4__amx(size_t mr, size_t nr, size_t groups, const void* a_rows, size_t a_stride,
                               size_t seg_groups, size_t seg_skip, const void* b_panel, const int32_t* acc_in,
                               int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY("gemm_u8s8s32_32x64c4__amx");
  amx_gemm_tile<AmxTiles>(mr, nr, groups, static_cast<const uint8_t*>(a_rows), a_stride, seg_groups, seg_skip,
                          static_cast<const uint8_t*>(b_panel), acc_in, acc_out, ep, m0, n0);
}

extern const GemmKernel gemm_kernel__amx{
    .fn = &gemm_u8s8s32_32x64c4__amx,
    .name = "gemm_u8s8s32_32x64c4__amx",
    .shape = {.layout = GemmLayout::vnni4, .mr = int(kAmxMR), .nr = int(kAmxNR)},
    .k_slice_bytes = kAmxKSliceBytes,
    .implicit_min_width = kAmxImplicitMinWidth,
};

}  // namespace iqk
