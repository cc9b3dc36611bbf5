#include "runtime/kernel_table.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "runtime/cpu_features.h"

#ifndef IQK_BUILT_ISAS
#error "IQK_BUILT_ISAS (the built paths) comes from CMakeLists.txt"
#endif

namespace iqk {

#define IQK_X(token) IQK_DECLARE_TABLE(token)
IQK_BUILT_ISAS
#undef IQK_X

namespace {

constexpr const char* kNames[] = {
#define IQK_ISA_NAME(name, token) #name,
    IQK_ISAS(IQK_ISA_NAME)
#undef IQK_ISA_NAME
};
constexpr const char* kTokens[] = {
#define IQK_ISA_TOKEN(name, token) #token,
    IQK_ISAS(IQK_ISA_TOKEN)
#undef IQK_ISA_TOKEN
};

// The paths this build has, by token: exactly those whose iqk_add_isa() call
// compiled them (CMakeLists.txt writes IQK_BUILT_ISAS).
struct BuiltPath {
  const char* token;
  void (*fill)(KernelTable&);
};
constexpr BuiltPath kBuilt[] = {
#define IQK_X(token) {#token, &fill_table__##token},
    IQK_BUILT_ISAS
#undef IQK_X
};

const BuiltPath* built_path(Isa isa) {
  for (const BuiltPath& b : kBuilt)
    if (std::strcmp(b.token, isa_token(isa)) == 0) return &b;
  return nullptr;
}

const std::array<KernelTable, kIsaCount>& all_tables() {
  static const std::array<KernelTable, kIsaCount> tables = [] {
    std::array<KernelTable, kIsaCount> a;
    for (int i = 0; i < kIsaCount; ++i) {
      const Isa isa = static_cast<Isa>(i);
      if (const BuiltPath* b = built_path(isa)) b->fill(a[i]);
      a[i].isa = isa;
      // Both GEMM kernels of a path read the weights packed once for it.
      const GemmShape &big = a[i].gemm.shape, &small = a[i].gemm_small_m.shape;
      if (a[i].gemm_small_m.fn && (small.layout != big.layout || small.nr != big.nr)) {
        std::fprintf(stderr, "intquant_kernels: %s: gemm_small_m reads another layout than gemm\n", isa_name(isa));
        std::abort();
      }
    }
    return a;
  }();
  return tables;
}

// Emulated paths only when asked for by name (isa.h).
Isa best_available() {
  Isa best = Isa::scalar;
  for (int i = 0; i < kIsaCount; ++i) {
    const Isa isa = static_cast<Isa>(i);
    if (isa_available(isa) && !isa_emulated(isa)) best = isa;
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

const char* isa_name(Isa isa) {
  const int i = static_cast<int>(isa);
  return i >= 0 && i < kIsaCount ? kNames[i] : "?";
}

const char* isa_token(Isa isa) {
  const int i = static_cast<int>(isa);
  return i >= 0 && i < kIsaCount ? kTokens[i] : "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (int i = 0; i < kIsaCount; ++i) {
    if (name == kNames[i]) return static_cast<Isa>(i);
  }
  return std::nullopt;
}

bool isa_built(Isa isa) { return built_path(isa) != nullptr; }

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
