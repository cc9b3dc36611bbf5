// The 64-byte operand of ldtilecfg (palette 1), shared by the AMX tile
// policies: the hardware's (amx_tiles.h) and the emulator's
// (amx_emulator.h). No intrinsics.
#pragma once

#include <cstdint>

namespace iqk {

// Palette 1: 8 tiles of at most 16 rows of at most 64 bytes. A tile with 0
// rows and 0 bytes per row is unconfigured; bytes 2-15 and the entries of
// tiles 8-15 are reserved and must be zero, or ldtilecfg faults (#GP).
constexpr int kAmxTiles = 8;
constexpr int kAmxMaxRows = 16;
constexpr int kAmxMaxColsb = 64;

struct alignas(64) AmxTileConfig {
  uint8_t palette = 0;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};  // bytes per row
  uint8_t rows[16] = {};
};
static_assert(sizeof(AmxTileConfig) == 64, "ldtilecfg reads 64 bytes");

}  // namespace iqk
