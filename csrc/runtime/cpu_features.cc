#include "runtime/cpu_features.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>

#include <cstdio>
#include <cstdlib>
#endif

namespace iqk {

namespace {

#if defined(__x86_64__) || defined(__i386__)
struct Regs { unsigned a = 0, b = 0, c = 0, d = 0; };

Regs cpuid(unsigned leaf, unsigned subleaf) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
  return r;
}

unsigned long long xgetbv0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

bool bit(unsigned v, int b) { return (v >> b) & 1u; }

// Linux keeps AMX tile data disabled per process until it is asked for; without
// the permission the first tile instruction faults.
bool request_amx_permission() {
#if defined(__linux__) && defined(__x86_64__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

void detect_x86(CpuFeatures& f) {
  const unsigned max_leaf = cpuid(0, 0).a;
  {
    Regs v = cpuid(0, 0);
    char buf[13] = {};
    std::memcpy(buf + 0, &v.b, 4);
    std::memcpy(buf + 4, &v.d, 4);
    std::memcpy(buf + 8, &v.c, 4);
    f.vendor = buf;
  }
  if (cpuid(0x80000000u, 0).a >= 0x80000004u) {
    char buf[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      Regs v = cpuid(0x80000002u + i, 0);
      std::memcpy(buf + 16 * i + 0, &v.a, 4);
      std::memcpy(buf + 16 * i + 4, &v.b, 4);
      std::memcpy(buf + 16 * i + 8, &v.c, 4);
      std::memcpy(buf + 16 * i + 12, &v.d, 4);
    }
    std::string s = buf;
    const auto first = s.find_first_not_of(' ');
    const auto last = s.find_last_not_of(' ');
    f.brand = first == std::string::npos ? "" : s.substr(first, last - first + 1);
  }
  if (max_leaf < 1) return;
  const Regs l1 = cpuid(1, 0);
  {
    const int base_family = (l1.a >> 8) & 0xF, base_model = (l1.a >> 4) & 0xF;
    f.family = base_family == 0xF ? base_family + static_cast<int>((l1.a >> 20) & 0xFF) : base_family;
    f.model = base_family == 0x6 || base_family == 0xF ? static_cast<int>(((l1.a >> 16) & 0xF) << 4) + base_model
                                                       : base_model;
    f.stepping = l1.a & 0xF;
  }
  const bool osxsave = bit(l1.c, 27);
  const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  // The OS must save the wide registers, or using them corrupts state across
  // context switches: XMM|YMM for AVX, plus opmask|ZMM_hi256|hi16_ZMM for
  // AVX-512, plus XTILECFG|XTILEDATA for AMX.
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;

  f.sse41 = bit(l1.c, 19);
  f.avx = os_avx && bit(l1.c, 28);
  f.fma = f.avx && bit(l1.c, 12);
  f.f16c = f.avx && bit(l1.c, 29);
  if (max_leaf < 7) return;
  const Regs l7 = cpuid(7, 0);
  const Regs l7s1 = l7.a >= 1 ? cpuid(7, 1) : Regs{};
  f.avx2 = f.avx && bit(l7.b, 5);
  f.avx_vnni = f.avx2 && bit(l7s1.a, 4);
  f.avx512f = os_avx512 && bit(l7.b, 16);
  f.avx512dq = f.avx512f && bit(l7.b, 17);
  f.avx512cd = f.avx512f && bit(l7.b, 28);
  f.avx512bw = f.avx512f && bit(l7.b, 30);
  f.avx512vl = f.avx512f && bit(l7.b, 31);
  f.avx512_vnni = f.avx512f && bit(l7.c, 11);
  f.avx512_bf16 = f.avx512f && bit(l7s1.a, 5);
  f.amx_bf16 = os_amx && bit(l7.d, 22);
  f.amx_tile = os_amx && bit(l7.d, 24);
  f.amx_int8 = os_amx && bit(l7.d, 25);
  if (f.amx_tile && f.amx_int8) f.amx_permitted = request_amx_permission();
}
#endif

#if defined(__aarch64__)
#if defined(__linux__)
// MIDR_EL1 of the first CPU as Linux exposes it ("0x00000000410fd0c1"); user
// space cannot read the register itself without the kernel trapping it.
void read_midr(CpuFeatures& f) {
  std::FILE* file = std::fopen("/sys/devices/system/cpu/cpu0/regs/identification/midr_el1", "r");
  if (!file) return;
  char buf[64] = {};
  const bool ok = std::fgets(buf, sizeof buf, file) != nullptr;
  std::fclose(file);
  if (!ok) return;
  char* end = nullptr;
  const unsigned long long midr = std::strtoull(buf, &end, 16);
  if (end == buf) return;
  f.midr_implementer = static_cast<int>((midr >> 24) & 0xFF);
  f.midr_variant = static_cast<int>((midr >> 20) & 0xF);
  f.midr_part = static_cast<int>((midr >> 4) & 0xFFF);
  f.midr_revision = static_cast<int>(midr & 0xF);
}
#endif

void detect_arm(CpuFeatures& f) {
  f.vendor = "arm";
#if defined(__linux__)
  read_midr(f);
  const unsigned long hwcap = getauxval(AT_HWCAP);
  const unsigned long hwcap2 = getauxval(AT_HWCAP2);
  f.neon = (hwcap >> 1) & 1;                   // HWCAP_ASIMD
  f.neon_dotprod = f.neon && ((hwcap >> 20) & 1);  // HWCAP_ASIMDDP
  f.neon_i8mm = f.neon && ((hwcap2 >> 13) & 1);    // HWCAP2_I8MM
#else
  f.neon = true;  // Advanced SIMD is mandatory on AArch64.
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  f.arch = sizeof(void*) == 8 ? "x86_64" : "x86";
  detect_x86(f);
#elif defined(__aarch64__)
  f.arch = "aarch64";
  detect_arm(f);
#else
  f.arch = "other";
#endif
  return f;
}

}  // namespace

std::vector<std::pair<std::string, bool>> CpuFeatures::flags() const {
  return {
      {"sse4_1", sse41},         {"avx", avx},
      {"avx2", avx2},            {"fma", fma},
      {"f16c", f16c},            {"avx512f", avx512f},
      {"avx512bw", avx512bw},    {"avx512vl", avx512vl},
      {"avx512dq", avx512dq},    {"avx512cd", avx512cd},
      {"avx512_vnni", avx512_vnni}, {"avx512_bf16", avx512_bf16},
      {"avx_vnni", avx_vnni},    {"amx_tile", amx_tile},
      {"amx_int8", amx_int8},    {"amx_bf16", amx_bf16},
      {"amx_permitted", amx_permitted},
      {"neon", neon},            {"neon_dotprod", neon_dotprod},
      {"neon_i8mm", neon_i8mm},
  };
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::vector<std::string> isa_required_features(Isa isa) {
  const std::vector<std::string> avx2 = {"avx2", "fma", "f16c"};
  std::vector<std::string> avx512 = avx2;
  avx512.insert(avx512.end(), {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"});
  switch (isa) {
    case Isa::scalar: return {};
    case Isa::avx2: return avx2;
    case Isa::avx_vnni: {
      std::vector<std::string> r = avx2;
      r.push_back("avx_vnni");
      return r;
    }
    case Isa::avx512_vnni: return avx512;
    case Isa::amx: {
      std::vector<std::string> r = avx512;
      r.insert(r.end(), {"amx_tile", "amx_int8", "amx_permitted"});
      return r;
    }
    // The emulated tile unit runs anywhere; the kernel around it (its
    // epilogue, its small-M kernel) is the avx512_vnni path's code.
    case Isa::amx_emu: return avx512;
    case Isa::neon: return {"neon"};
    case Isa::neon_dotprod: return {"neon", "neon_dotprod"};
    case Isa::neon_i8mm: return {"neon", "neon_dotprod", "neon_i8mm"};
    case Isa::count: break;
  }
  return {"?"};
}

std::vector<std::string> isa_missing_features(Isa isa) {
  const std::vector<std::pair<std::string, bool>> flags = cpu_features().flags();
  std::vector<std::string> missing;
  for (const std::string& need : isa_required_features(isa)) {
    bool on = false;
    for (const auto& [name, value] : flags)
      if (name == need) on = value;
    if (!on) missing.push_back(need);
  }
  return missing;
}

bool isa_supported_by_cpu(Isa isa) {
  // Asked on every kernel call (kernel_table()): worked out once.
  static const std::array<bool, kIsaCount> supported = [] {
    std::array<bool, kIsaCount> a{};
    for (int i = 0; i < kIsaCount; ++i) a[i] = isa_missing_features(static_cast<Isa>(i)).empty();
    return a;
  }();
  const int i = static_cast<int>(isa);
  return i >= 0 && i < kIsaCount && supported[i];
}

}  // namespace iqk
