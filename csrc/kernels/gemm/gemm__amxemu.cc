// The AMX-INT8 GEMM tile kernel of gemm__amx.cc, the same source
// (simd/x86/gemm_amx.h), on the scalar tile emulator
// (simd/x86/amx_emulator.h): the amx_emu path, which tests the amx kernel's
// code on CPUs without AMX.
#include "simd/x86/amx_emulator.h"
#include "simd/x86/gemm_amx.h"
#include "runtime/emulated_tiles.h"
#include "runtime/kernel_counter.h"

namespace iqk {

void gemm_u8s8s32_32x64c4__amxemu(size_t mr, size_t nr, size_t groups, const void* a_rows, size_t a_stride,
                                  size_t seg_groups, size_t seg_skip, const void* b_panel, const int32_t* acc_in,
                                  int32_t* acc_out, const GemmEpilogue& ep, size_t m0, size_t n0) {
  IQK_KERNEL_ENTRY("gemm_u8s8s32_32x64c4__amxemu");
  amx_gemm_tile<AmxTilesEmulated>(mr, nr, groups, static_cast<const uint8_t*>(a_rows), a_stride, seg_groups,
                                  seg_skip, static_cast<const uint8_t*>(b_panel), acc_in, acc_out, ep, m0, n0);
}

extern const GemmKernel gemm_kernel__amxemu{
    .fn = &gemm_u8s8s32_32x64c4__amxemu,
    .name = "gemm_u8s8s32_32x64c4__amxemu",
    .shape = {.layout = GemmLayout::vnni4, .mr = int(kAmxMR), .nr = int(kAmxNR)},
    .k_slice_bytes = kAmxKSliceBytes,
    .implicit_min_width = kAmxImplicitMinWidth,
};

extern const EmulatedTiles emulated_tiles__amxemu{
    .configured = &amx_emulator_configured,
    .disturb = &amx_emulator_disturb,
    .self_check = &amx_emulator_self_check,
    .misuse = &amx_emulator_misuse,
};

}  // namespace iqk
