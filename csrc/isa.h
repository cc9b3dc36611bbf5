// Instruction-set paths known to the package, in order of preference within
// each architecture. A path is used only if it was compiled in and the CPU and
// OS support it (see kernel_table.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace iqk {

enum class Isa : int {
  scalar = 0,
  avx2,
  avx_vnni,
  avx512_vnni,
  amx,
  neon,
  neon_dotprod,
  neon_i8mm,
  count
};

constexpr int kIsaCount = static_cast<int>(Isa::count);

const char* isa_name(Isa isa);
std::optional<Isa> parse_isa(std::string_view name);

}  // namespace iqk
