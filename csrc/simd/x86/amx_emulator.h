// A scalar emulator of the AMX tile unit, the tile policy of the amx_emu
// path (gemm_amx.h): the amx kernels' code, tested on CPUs without AMX. No
// intrinsics; include only from the amx_emu kernel file (its state is that
// file's own).
//
// It follows the architecture (Intel SDM, AMX-TILE and AMX-INT8) for what
// the kernels use, and aborts, naming the instruction, wherever the hardware
// would fault:
// - ldtilecfg (palette 1): at most 16 rows and 64 bytes per row per tile, a
//   tile's rows and bytes per row both zero (unconfigured) or both not,
//   reserved bytes zero; palette 0 releases, any other palette faults. It
//   zeroes every tile. A non-zero start_row (the restart point of an
//   interrupted load or store) also aborts: the kernels never set one.
// - tileloadd, tilestored, tilezero, tdpbusd: the tiles must be configured
//   (no tilerelease since the ldtilecfg) and the tiles named must have rows,
//   their bytes per row a multiple of 4.
// - tdpbusd C, A, B: three distinct tiles with C's rows == A's rows, C's
//   bytes per row == B's, A's bytes per row == 4 x B's rows.
// Loads read exactly the configured rows x bytes per row at the stride, and
// stores write exactly those, with ordinary C++ accesses (which the guard
// page tests and AddressSanitizer see); a load zeroes the rest of its tile
// (rows and bytes past the configuration read as zero). tdpbusd adds the
// four u8 x s8 products of each dword modulo 2^32, over the configured
// shape, and zeroes the rest of C.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "simd/x86/amx_tile_config.h"

namespace iqk {
namespace {

// One thread's tile unit, as the hardware keeps one per thread.
struct AmxEmulatorState {
  bool configured = false;  // palette 1 loaded, no tilerelease since
  AmxTileConfig cfg;
  uint8_t tile[kAmxTiles][kAmxMaxRows][kAmxMaxColsb] = {};
};

AmxEmulatorState& amx_emulator_state() {
  static thread_local AmxEmulatorState s;
  return s;
}

[[noreturn]] __attribute__((format(printf, 2, 3))) void amx_emulator_fault(const char* insn, const char* fmt,
                                                                             ...) {
  std::fprintf(stderr, "intquant_kernels amx_emu: %s would fault on AMX hardware: ", insn);
  va_list args;
  va_start(args, fmt);
  std::vfprintf(stderr, fmt, args);
  va_end(args);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

struct AmxTilesEmulated {
  static void configure(const AmxTileConfig& c) {
    AmxEmulatorState& s = amx_emulator_state();
    if (c.palette == 0) {  // the INIT state, as tilerelease
      release();
      return;
    }
    if (c.palette != 1) amx_emulator_fault("ldtilecfg", "palette %d (palette 1 is the only one)", c.palette);
    if (c.start_row != 0)
      amx_emulator_fault("ldtilecfg", "start_row %d (the emulator models no restarted loads)", c.start_row);
    for (uint8_t r : c.reserved)
      if (r) amx_emulator_fault("ldtilecfg", "reserved bytes 2-15 set");
    for (int t = kAmxTiles; t < 16; ++t)
      if (c.colsb[t] || c.rows[t]) amx_emulator_fault("ldtilecfg", "tile %d configured (palette 1 has 8)", t);
    for (int t = 0; t < kAmxTiles; ++t) {
      if (c.rows[t] > kAmxMaxRows) amx_emulator_fault("ldtilecfg", "tmm%d: %d rows (at most 16)", t, c.rows[t]);
      if (c.colsb[t] > kAmxMaxColsb)
        amx_emulator_fault("ldtilecfg", "tmm%d: %d bytes per row (at most 64)", t, c.colsb[t]);
      if ((c.rows[t] == 0) != (c.colsb[t] == 0))
        amx_emulator_fault("ldtilecfg", "tmm%d: %d rows of %d bytes (both zero or neither)", t, c.rows[t],
                           c.colsb[t]);
    }
    std::memcpy(&s.cfg, &c, sizeof c);
    std::memset(s.tile, 0, sizeof s.tile);
    s.configured = true;
  }

  static void release() {
    AmxEmulatorState& s = amx_emulator_state();
    s.configured = false;
    s.cfg = AmxTileConfig{};
    std::memset(s.tile, 0, sizeof s.tile);
  }

  template <int T>
  static void zero() {
    static_assert(T >= 0 && T < kAmxTiles);
    AmxEmulatorState& s = valid(T, "tilezero", false);
    std::memset(s.tile[T], 0, sizeof s.tile[T]);
  }

  template <int T>
  static void load(const void* p, size_t stride) {
    static_assert(T >= 0 && T < kAmxTiles);
    AmxEmulatorState& s = valid(T, "tileloadd", true);
    const int rows = s.cfg.rows[T], colsb = s.cfg.colsb[T];
    std::memset(s.tile[T], 0, sizeof s.tile[T]);
    for (int r = 0; r < rows; ++r) std::memcpy(s.tile[T][r], static_cast<const uint8_t*>(p) + r * stride, colsb);
  }

  template <int T>
  static void store(void* p, size_t stride) {
    static_assert(T >= 0 && T < kAmxTiles);
    AmxEmulatorState& s = valid(T, "tilestored", true);
    const int rows = s.cfg.rows[T], colsb = s.cfg.colsb[T];
    for (int r = 0; r < rows; ++r) std::memcpy(static_cast<uint8_t*>(p) + r * stride, s.tile[T][r], colsb);
  }

  template <int C, int A, int B>
  static void dpbusd() {
    static_assert(C >= 0 && C < kAmxTiles && A >= 0 && A < kAmxTiles && B >= 0 && B < kAmxTiles);
    if (C == A || C == B || A == B) amx_emulator_fault("tdpbusd", "tmm%d, tmm%d, tmm%d are not distinct", C, A, B);
    AmxEmulatorState& s = valid(C, "tdpbusd", true);
    valid(A, "tdpbusd", true);
    valid(B, "tdpbusd", true);
    const AmxTileConfig& c = s.cfg;
    const int m = c.rows[C], n = c.colsb[C] / 4, k = c.rows[B];
    if (c.colsb[B] != c.colsb[C] || c.rows[A] != m || c.colsb[A] != 4 * k)
      amx_emulator_fault("tdpbusd",
                         "tmm%d (%d x %d bytes) += tmm%d (%d x %d bytes) x tmm%d (%d x %d bytes): C's rows must be "
                         "A's, C's bytes per row B's, A's bytes per row 4 x B's rows",
                         C, m, c.colsb[C], A, c.rows[A], c.colsb[A], B, k, c.colsb[B]);
    for (int i = 0; i < m; ++i) {
      uint32_t acc[16];
      std::memcpy(acc, s.tile[C][i], sizeof acc);
      for (int g = 0; g < k; ++g) {
        const uint8_t* a = s.tile[A][i] + 4 * g;
        for (int j = 0; j < n; ++j) {
          const uint8_t* b = s.tile[B][g] + 4 * j;
          int32_t dot = 0;  // at most 4 x 255 x 128 in magnitude: exact
          for (int t = 0; t < 4; ++t) dot += static_cast<int32_t>(a[t]) * static_cast<int8_t>(b[t]);
          acc[j] += static_cast<uint32_t>(dot);  // the accumulator wraps modulo 2^32
        }
      }
      std::memset(acc + n, 0, sizeof(uint32_t) * (16 - n));
      std::memcpy(s.tile[C][i], acc, sizeof acc);
    }
    for (int i = m; i < kAmxMaxRows; ++i) std::memset(s.tile[C][i], 0, kAmxMaxColsb);
  }

 private:
  // The checks of every instruction that names tile t; `whole` adds
  // tileloadd's, tilestored's and tdpbusd's on its bytes per row.
  static AmxEmulatorState& valid(int t, const char* insn, bool whole) {
    AmxEmulatorState& s = amx_emulator_state();
    if (!s.configured) amx_emulator_fault(insn, "tmm%d: the tiles are not configured (no ldtilecfg since the "
                                                "last tilerelease on this thread)", t);
    if (s.cfg.rows[t] == 0) amx_emulator_fault(insn, "tmm%d is not configured (0 rows)", t);
    if (whole && s.cfg.colsb[t] % 4)
      amx_emulator_fault(insn, "tmm%d: %d bytes per row (a multiple of 4 only)", t, s.cfg.colsb[t]);
    return s;
  }
};

// The tests' view of this thread's tile unit (KernelTable::emulated_tiles_*).
bool amx_emulator_configured() { return amx_emulator_state().configured; }

// What another library may leave configured on a thread: other shapes, data
// in every tile.
void amx_emulator_disturb() {
  AmxTileConfig c;
  c.palette = 1;
  for (int t = 0; t < kAmxTiles; ++t) {
    c.rows[t] = static_cast<uint8_t>(3 + t);
    c.colsb[t] = static_cast<uint16_t>(8 * (t + 1));
  }
  AmxTilesEmulated::configure(c);
  std::memset(amx_emulator_state().tile, 0x5A, sizeof amx_emulator_state().tile);
}

// The architecture's results on a small case, checked (EmulatedTiles::
// self_check): C (3 rows x 2 int32) += A (3 x 3 groups) x B (3 groups x 2
// columns), C starting near INT32_MAX so that it wraps; tiles loaded from
// buffers with data past the configured shape, which must read as zero; C
// stored into sentinels, which only the configured shape may overwrite.
bool amx_emulator_self_check() {
  constexpr int M = 3, G = 3, N = 2;
  uint8_t a[kAmxMaxRows][kAmxMaxColsb], b[kAmxMaxRows][kAmxMaxColsb];
  for (int i = 0; i < kAmxMaxRows; ++i)
    for (int j = 0; j < kAmxMaxColsb; ++j) {
      a[i][j] = static_cast<uint8_t>(i < M && j < 4 * G ? 200 + 7 * i + j : 0xEE);
      b[i][j] = static_cast<uint8_t>(i < G && j < 4 * N ? 0x80 + 13 * i + 5 * j : 0xEE);  // negative int8
    }
  int32_t c0[kAmxMaxRows][16];
  for (int i = 0; i < kAmxMaxRows; ++i)
    for (int j = 0; j < 16; ++j) c0[i][j] = 2147483600 - i - j;
  AmxTileConfig cfg;
  cfg.palette = 1;
  cfg.rows[0] = M, cfg.colsb[0] = 4 * N;  // C
  cfg.rows[4] = M, cfg.colsb[4] = 4 * G;  // A
  cfg.rows[6] = G, cfg.colsb[6] = 4 * N;  // B
  AmxTilesEmulated::configure(cfg);
  AmxTilesEmulated::load<0>(c0, sizeof c0[0]);
  AmxTilesEmulated::load<4>(a, sizeof a[0]);
  AmxTilesEmulated::load<6>(b, sizeof b[0]);
  AmxEmulatorState& s = amx_emulator_state();
  bool ok = true;
  const int loaded[] = {4, 6};
  for (int t : loaded)  // rows and bytes past the configuration read as zero
    for (int i = 0; i < kAmxMaxRows; ++i)
      for (int j = 0; j < kAmxMaxColsb; ++j) ok &= (i < cfg.rows[t] && j < cfg.colsb[t]) || s.tile[t][i][j] == 0;
  AmxTilesEmulated::dpbusd<0, 4, 6>();
  int32_t c[kAmxMaxRows][16];
  std::memset(c, 0x77, sizeof c);
  AmxTilesEmulated::store<0>(c, sizeof c[0]);
  AmxTilesEmulated::release();
  ok &= !s.configured;
  int32_t sentinel;
  std::memset(&sentinel, 0x77, sizeof sentinel);
  for (int i = 0; i < kAmxMaxRows; ++i)
    for (int j = 0; j < 16; ++j) {
      if (i >= M || j >= N) {
        ok &= c[i][j] == sentinel;
        continue;
      }
      int64_t want = c0[i][j];
      for (int k = 0; k < 4 * G; ++k) want += int64_t{a[i][k]} * static_cast<int8_t>(b[k / 4][4 * j + k % 4]);
      const uint32_t wrapped = static_cast<uint32_t>(static_cast<uint64_t>(want));
      int32_t w;
      std::memcpy(&w, &wrapped, sizeof w);
      ok &= c[i][j] == w;
    }
  return ok;
}

// Performs a use the hardware faults on (EmulatedTiles::misuse): the
// emulator must abort. False for an unknown name.
bool amx_emulator_misuse(const char* misuse) {
  const auto is = [misuse](const char* name) { return std::strcmp(misuse, name) == 0; };
  alignas(64) uint8_t buf[kAmxMaxRows * kAmxMaxColsb] = {};
  AmxTileConfig c;
  c.palette = 1;
  auto tile = [&c](int t, int rows, int colsb) {
    c.rows[t] = static_cast<uint8_t>(rows);
    c.colsb[t] = static_cast<uint16_t>(colsb);
  };
  if (is("load_after_release")) {  // the state every kernel call leaves
    tile(0, 16, 64);
    AmxTilesEmulated::configure(c);
    AmxTilesEmulated::release();
    AmxTilesEmulated::load<0>(buf, 64);
  } else if (is("load_unconfigured_tile")) {
    tile(0, 16, 64);
    AmxTilesEmulated::configure(c);
    AmxTilesEmulated::load<1>(buf, 64);
  } else if (is("store_unconfigured_tile")) {
    tile(0, 16, 64);
    AmxTilesEmulated::configure(c);
    AmxTilesEmulated::store<3>(buf, 64);
  } else if (is("rows_17")) {
    tile(0, 17, 64);
    AmxTilesEmulated::configure(c);
  } else if (is("colsb_68")) {
    tile(0, 16, 68);
    AmxTilesEmulated::configure(c);
  } else if (is("rows_without_colsb")) {
    tile(0, 4, 0);
    AmxTilesEmulated::configure(c);
  } else if (is("reserved_byte")) {
    c.reserved[3] = 1;
    AmxTilesEmulated::configure(c);
  } else if (is("tile_8")) {
    tile(8, 16, 64);
    AmxTilesEmulated::configure(c);
  } else if (is("palette_2")) {
    c.palette = 2;
    AmxTilesEmulated::configure(c);
  } else if (is("colsb_not_dwords")) {
    tile(0, 16, 62);
    AmxTilesEmulated::configure(c);
    AmxTilesEmulated::load<0>(buf, 64);
  } else if (is("dpbusd_rows")) {  // C's rows != A's
    tile(0, 16, 64), tile(4, 8, 64), tile(6, 16, 64);
    AmxTilesEmulated::configure(c);
    AmxTilesEmulated::dpbusd<0, 4, 6>();
  } else if (is("dpbusd_k")) {  // A's bytes per row != 4 x B's rows
    tile(0, 16, 64), tile(4, 16, 64), tile(6, 8, 64);
    AmxTilesEmulated::configure(c);
    AmxTilesEmulated::dpbusd<0, 4, 6>();
  } else if (is("dpbusd_n")) {  // C's bytes per row != B's
    tile(0, 16, 64), tile(4, 16, 64), tile(6, 16, 32);
    AmxTilesEmulated::configure(c);
    AmxTilesEmulated::dpbusd<0, 4, 6>();
  } else if (is("dpbusd_same_tile")) {
    tile(0, 16, 64), tile(6, 16, 64);
    AmxTilesEmulated::configure(c);
    AmxTilesEmulated::dpbusd<0, 6, 6>();
  } else {
    return false;
  }
  return true;  // not reached for a known misuse: the emulator aborts
}

}  // namespace
}  // namespace iqk
