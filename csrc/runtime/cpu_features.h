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

  std::vector<std::pair<std::string, bool>> flags() const;
};

// Detected on first use; immutable afterwards.
const CpuFeatures& cpu_features();

// True when the CPU and OS can execute this path's instructions.
bool isa_supported_by_cpu(Isa isa);

}  // namespace iqk
