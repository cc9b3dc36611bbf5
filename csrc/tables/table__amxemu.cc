// The amx_emu path: the amx table on the emulated tile unit, for tests on
// CPUs without AMX (never the default: isa.h). It has no small-M rule: it
// exists to test the tile kernel, so the tile kernel runs every GEMM, the
// rows a real amx table sends to avx512_vnni included.
#include "runtime/kernel_table.h"

namespace iqk {

IQK_DECLARE_TABLE(avx512vnni)
extern const GemmKernel gemm_kernel__amxemu;
extern const EmulatedTiles emulated_tiles__amxemu;

void fill_table__amxemu(KernelTable& t) {
  fill_table__avx512vnni(t);
  t.gemm = gemm_kernel__amxemu;
  t.emulated_tiles = &emulated_tiles__amxemu;
}

}  // namespace iqk
