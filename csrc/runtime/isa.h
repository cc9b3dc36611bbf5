// Instruction-set paths known to the package. A path is used only if it was
// built (its iqk_add_isa() call in CMakeLists.txt) and the CPU and OS support
// it (cpu_features.cc); the best such path is the default.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace iqk {

// X(public name, token) for every path, in order of preference within each
// architecture. The public name is what Python sees (set_isa("avx512_vnni"));
// the token is the same name without underscores, and names the path
// everywhere in C++: kernel names end in __<token>, files in __<token>.cc,
// the table file is tables/table__<token>.cc, the CMake call
// iqk_add_isa(<token> ...).
//
// amx_emu comes first, below scalar: it runs the amx kernels' code on a
// scalar emulator of the tile unit (tests only, slower than any real path),
// and is never the default (isa_emulated).
#define IQK_ISAS(X)            \
  X(amx_emu, amxemu)           \
  X(scalar, scalar)            \
  X(avx2, avx2)                \
  X(avx_vnni, avxvnni)         \
  X(avx512_vnni, avx512vnni)   \
  X(amx, amx)                  \
  X(neon, neon)                \
  X(neon_dotprod, neondotprod) \
  X(neon_i8mm, neoni8mm)

enum class Isa : int {
#define IQK_ISA_ENUM(name, token) name,
  IQK_ISAS(IQK_ISA_ENUM)
#undef IQK_ISA_ENUM
  count
};

constexpr int kIsaCount = static_cast<int>(Isa::count);

// The public name ("avx512_vnni") and the C++ token ("avx512vnni").
const char* isa_name(Isa isa);
const char* isa_token(Isa isa);
std::optional<Isa> parse_isa(std::string_view name);

// A path that emulates its instructions in software to test a kernel's code
// on CPUs without them (amx_emu): available where the CPU runs the
// emulator, never chosen by default (only by name), never benchmarked.
constexpr bool isa_emulated(Isa isa) { return isa == Isa::amx_emu; }

}  // namespace iqk
