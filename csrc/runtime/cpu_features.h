// CPU and OS feature detection, done once, in one place (cpu_features.cc).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "runtime/isa.h"

namespace iqk {

struct CpuFeatures {
  // x86: instruction sets the CPU reports *and* whose register state the OS
  // saves (XGETBV); AMX additionally needs the kernel's permission.
  bool sse41 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512cd = false;
  bool avx512_vnni = false, avx_vnni = false, avx512_bf16 = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool amx_permitted = false;  // arch_prctl(ARCH_REQ_XCOMP_PERM) succeeded
  // aarch64 (getauxval)
  bool neon = false, neon_dotprod = false, neon_i8mm = false;
  std::string vendor, brand;
  // What the CPU says it is, the key of the benchmark's peak table; -1 where
  // unknown. x86: the display family and model of cpuid leaf 1 (base and
  // extended fields combined as the vendors' manuals do) and the stepping.
  // AArch64: the fields of MIDR_EL1, where Linux exposes it in sysfs.
  std::string arch;  // "x86_64", "x86", "aarch64" or "other"
  int family = -1, model = -1, stepping = -1;
  int midr_implementer = -1, midr_variant = -1, midr_part = -1, midr_revision = -1;

  std::vector<std::pair<std::string, bool>> flags() const;
};

// Detected on first use; immutable afterwards.
const CpuFeatures& cpu_features();

// The feature flags (CpuFeatures::flags names) a path needs, and those of
// them this CPU and OS lack: a path is supported when none is missing.
std::vector<std::string> isa_required_features(Isa isa);
std::vector<std::string> isa_missing_features(Isa isa);

// True when the CPU and OS can execute this path's instructions.
bool isa_supported_by_cpu(Isa isa);

}  // namespace iqk
