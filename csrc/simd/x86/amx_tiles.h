// The tile policy of the amx path (gemm_amx.h): the AMX-TILE and AMX-INT8
// instructions themselves. Include only from files built with -mamx-tile
// -mamx-int8; internal linkage, like every header here.
//
// GCC 12's intrinsics under-declare their memory reads: _tile_loadconfig
// reads 64 bytes but tells the compiler 8, and _tile_loadd tells it none.
// Stores the compiler does not know are read may be sunk past the asm or
// dropped, so every configure and load first puts a compiler barrier: the
// configuration (on the stack, fully written) and scratch written just before
// (zero-padded copies of A and B) are in memory when the instruction reads
// them. _tile_stored declares its writes ("memory").
#pragma once

#include <immintrin.h>

#include <cstddef>

#include "simd/x86/amx_tile_config.h"

namespace iqk {
namespace {

inline void amx_compiler_barrier() { asm volatile("" ::: "memory"); }

// The tile numbers are immediates of the instructions, so each operation
// spells out the numbers it may be given.
struct AmxTiles {
  static void configure(const AmxTileConfig& c) {
    amx_compiler_barrier();
    _tile_loadconfig(&c);
  }

  static void release() { _tile_release(); }

  template <int T>
  static void zero() {
    static_assert(T >= 0 && T < kAmxTiles);
    if constexpr (T == 0) _tile_zero(0);
    else if constexpr (T == 1) _tile_zero(1);
    else if constexpr (T == 2) _tile_zero(2);
    else if constexpr (T == 3) _tile_zero(3);
    else if constexpr (T == 4) _tile_zero(4);
    else if constexpr (T == 5) _tile_zero(5);
    else if constexpr (T == 6) _tile_zero(6);
    else _tile_zero(7);
  }

  template <int T>
  static void load(const void* p, size_t stride) {
    static_assert(T >= 0 && T < kAmxTiles);
    amx_compiler_barrier();
    if constexpr (T == 0) _tile_loadd(0, p, stride);
    else if constexpr (T == 1) _tile_loadd(1, p, stride);
    else if constexpr (T == 2) _tile_loadd(2, p, stride);
    else if constexpr (T == 3) _tile_loadd(3, p, stride);
    else if constexpr (T == 4) _tile_loadd(4, p, stride);
    else if constexpr (T == 5) _tile_loadd(5, p, stride);
    else if constexpr (T == 6) _tile_loadd(6, p, stride);
    else _tile_loadd(7, p, stride);
  }

  template <int T>
  static void store(void* p, size_t stride) {
    static_assert(T >= 0 && T < kAmxTiles);
    if constexpr (T == 0) _tile_stored(0, p, stride);
    else if constexpr (T == 1) _tile_stored(1, p, stride);
    else if constexpr (T == 2) _tile_stored(2, p, stride);
    else if constexpr (T == 3) _tile_stored(3, p, stride);
    else if constexpr (T == 4) _tile_stored(4, p, stride);
    else if constexpr (T == 5) _tile_stored(5, p, stride);
    else if constexpr (T == 6) _tile_stored(6, p, stride);
    else _tile_stored(7, p, stride);
  }

  // tmmC += tmmA (u8) x tmmB (s8): the four (C, A, B) of gemm_amx.h's 2 x 2
  // blocking, the only ones it uses.
  template <int C, int A, int B>
  static void dpbusd() {
    if constexpr (C == 0 && A == 4 && B == 6) _tile_dpbusd(0, 4, 6);
    else if constexpr (C == 1 && A == 4 && B == 7) _tile_dpbusd(1, 4, 7);
    else if constexpr (C == 2 && A == 5 && B == 6) _tile_dpbusd(2, 5, 6);
    else {
      static_assert(C == 3 && A == 5 && B == 7, "tiles other than gemm_amx.h's blocking");
      _tile_dpbusd(3, 5, 7);
    }
  }
};

}  // namespace
}  // namespace iqk
