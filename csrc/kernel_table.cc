#include "kernel_table.h"

#include <array>
#include <atomic>
#include <stdexcept>

#include "cpu_features.h"

namespace iqk {

namespace {

#define IQK_KERNEL(fn) \
  { &fn, #fn }

void set_quantize_kernels_scalar(KernelTable& t) {
  t.quantize = IQK_KERNEL(quantize_f32_q8__scalar);
  t.quantize_channels = IQK_KERNEL(quantize_channels_f32_q8__scalar);
  t.dequantize_s8 = IQK_KERNEL(dequantize_s8_f32__scalar);
  t.dequantize_u8 = IQK_KERNEL(dequantize_u8_f32__scalar);
  t.dequantize_channels_s8 = IQK_KERNEL(dequantize_channels_s8_f32__scalar);
  t.dequantize_channels_u8 = IQK_KERNEL(dequantize_channels_u8_f32__scalar);
}

#if defined(IQK_BUILD_X86)
void set_quantize_kernels_avx2(KernelTable& t) {
  t.quantize = IQK_KERNEL(quantize_f32_q8__avx2);
  t.quantize_channels = IQK_KERNEL(quantize_channels_f32_q8__avx2);
  t.dequantize_s8 = IQK_KERNEL(dequantize_s8_f32__avx2);
  t.dequantize_u8 = IQK_KERNEL(dequantize_u8_f32__avx2);
  t.dequantize_channels_s8 = IQK_KERNEL(dequantize_channels_s8_f32__avx2);
  t.dequantize_channels_u8 = IQK_KERNEL(dequantize_channels_u8_f32__avx2);
}

void set_quantize_kernels_avx512(KernelTable& t) {
  t.quantize = IQK_KERNEL(quantize_f32_q8__avx512);
  t.quantize_channels = IQK_KERNEL(quantize_channels_f32_q8__avx512);
  t.dequantize_s8 = IQK_KERNEL(dequantize_s8_f32__avx512);
  t.dequantize_u8 = IQK_KERNEL(dequantize_u8_f32__avx512);
  t.dequantize_channels_s8 = IQK_KERNEL(dequantize_channels_s8_f32__avx512);
  t.dequantize_channels_u8 = IQK_KERNEL(dequantize_channels_u8_f32__avx512);
}
#endif

// Each path starts from the one below it and replaces the entries it does
// better. Adding an ISA is one function above and one case here.
KernelTable build_table(Isa isa) {
  KernelTable t;
  set_quantize_kernels_scalar(t);
  t.gemm = gemm_kernel__scalar;
  t.dwconv = dwconv_kernel__scalar;
  switch (isa) {
    case Isa::scalar:
      break;
#if defined(IQK_BUILD_X86)
    case Isa::avx2:
      set_quantize_kernels_avx2(t);
      t.gemm = gemm_kernel__avx2;
      t.dwconv = dwconv_kernel__avx2;
      t.gconv = IQK_KERNEL(gconv_u8s8s32_4x8c4__avx2);
      break;
    case Isa::avx_vnni:
      // Quantization has no use for VNNI: AVX-VNNI machines run the AVX2 kernels.
      set_quantize_kernels_avx2(t);
      t.gemm = gemm_kernel__avxvnni;
      // Depthwise is bound by loads and shuffles, not by the multiply: the
      // AVX2 kernel. Small groups multiply bytes as they are (no widening).
      t.dwconv = dwconv_kernel__avx2;
      t.gconv = IQK_KERNEL(gconv_u8s8s32_4x8c4__avxvnni);
      break;
    case Isa::avx512_vnni:
    case Isa::amx:
      set_quantize_kernels_avx512(t);
      t.transpose16x16_b32 = &transpose16x16_b32__avx512;
      t.pack_vnni4_strips64 = &pack_vnni4_strips64__avx512;
      t.gemm = gemm_kernel__avx512vnni;
      t.dwconv = dwconv_kernel__avx512vnni;
      t.gconv = IQK_KERNEL(gconv_u8s8s32_4x16c4__avx512vnni);
      break;
#endif
    default:
      break;
  }
  t.isa = isa;
  return t;
}

const std::array<KernelTable, kIsaCount>& all_tables() {
  static const std::array<KernelTable, kIsaCount> tables = [] {
    std::array<KernelTable, kIsaCount> a;
    for (int i = 0; i < kIsaCount; ++i) a[i] = build_table(static_cast<Isa>(i));
    return a;
  }();
  return tables;
}

Isa best_available() {
  Isa best = Isa::scalar;
  for (int i = 0; i < kIsaCount; ++i) {
    if (isa_available(static_cast<Isa>(i))) best = static_cast<Isa>(i);
  }
  return best;
}

std::atomic<int>& active_slot() {
  static std::atomic<int> slot{static_cast<int>(best_available())};
  return slot;
}

std::string available_list() {
  std::string s;
  for (const std::string& name : available_isas()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

}  // namespace

bool isa_built(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
#if defined(IQK_BUILD_X86)
    case Isa::avx2:
    case Isa::avx_vnni:
    case Isa::avx512_vnni:
      return true;
#endif
    default: return false;
  }
}

bool isa_available(Isa isa) { return isa_built(isa) && isa_supported_by_cpu(isa); }

std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (int i = 0; i < kIsaCount; ++i) {
    if (isa_available(static_cast<Isa>(i))) out.emplace_back(isa_name(static_cast<Isa>(i)));
  }
  return out;
}

const KernelTable& kernel_table(Isa isa) {
  if (!isa_available(isa)) {
    throw std::invalid_argument(std::string("ISA '") + isa_name(isa) + "' is " +
                                (isa_built(isa) ? "not supported by this CPU/OS"
                                                : "not built into this module") +
                                "; available: " + available_list());
  }
  return all_tables()[static_cast<int>(isa)];
}

Isa active_isa() { return static_cast<Isa>(active_slot().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  kernel_table(isa);  // throws if unavailable
  active_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
}

const KernelTable& active_kernels() { return all_tables()[active_slot().load(std::memory_order_relaxed)]; }

}  // namespace iqk
