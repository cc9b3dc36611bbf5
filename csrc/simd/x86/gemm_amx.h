// The AMX-INT8 GEMM tile kernel (gemm.h, GemmTileFn), written once against a
// tile policy and built twice: on the tile instructions (gemm__amx.cc,
// amx_tiles.h) and on the scalar tile emulator (gemm__amxemu.cc,
// amx_emulator.h). Intrinsics (AVX-512, the epilogue): include only from
// files built with AVX-512 enabled; internal linkage, so each file gets its
// own copy built with its own flags.
//
// A tile policy provides, T, C, A, B tile numbers:
//   configure(cfg)        ldtilecfg (AmxTileConfig)
//   zero<T>()             tilezero
//   load<T>(p, stride)    tileloadd: the configured rows of T from p, p + stride, ...
//   store<T>(p, stride)   tilestored
//   dpbusd<C, A, B>()     tdpbusd: C += A (u8) x B (s8), 4 k per int32 lane
//   release()             tilerelease
//
// The tile is 32 rows x 64 columns, in two halves of 32 columns, each 2 A
// tiles x 2 B tiles -> 4 C tiles: tmm(2r + j) = C rows 16r.., columns
// 16j.. of the half; tmm(4 + r) = A rows 16r..; tmm(6 + j) = B columns
// 16j... A tile is 16 rows x 64 bytes (16 groups of 4 k), a B tile 16 groups
// x 16 columns x 4 bytes. B is the vnni4 layout of the avx512_vnni kernel
// (NR = 64: 256 bytes per group, each B tile's rows 64 bytes of them), so
// the amx path's small-M kernel reads the same packed weights, and tiles
// load B panels in place with a stride of 256. The 16 x 16 x 64-byte
// tdpbusd is the same accumulation as vpdpbusd, so the drivers' zero point
// and shift corrections and the AVX-512 epilogue apply unchanged.
//
// The tile state is per thread and other libraries in the process may
// change it: every call loads its own configuration first and releases the
// tiles before it returns. The C tiles go to a scratch tile on the stack
// (or acc_out), finished by the AVX-512 epilogue after the release.
//
// Tails, never reading outside the caller's arrays:
// - M: the A and C tiles of rows 16r.. are configured with the rows there
//   are (none past mr; the second pair unused up to 16 rows).
// - N: B panels are zero past N (pack_b); a half or a B tile of columns past
//   nr is skipped, and the epilogue stores only columns < nr.
// - K: a chunk of 16 groups whose 64 bytes of A lie in one run of each row
//   (one segment, all 16 groups in the call) is loaded in place; any other
//   (the last, partial chunk; a chunk across a convolution's kernel rows) is
//   copied first into a zero-padded 32 x 64-byte block; a partial last chunk
//   of B into a zero-padded 16 x 256-byte block. Copies are made once per
//   call and used by both halves.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/specialize.h"
#include "simd/x86/amx_tile_config.h"
#include "simd/x86/gemm_zmm.h"

namespace iqk {
namespace {

constexpr size_t kAmxMR = 32, kAmxNR = 64;
constexpr size_t kAmxChunk = 16;               // groups of 4 k per A tile row and per B tile
constexpr size_t kAmxBRow = kAmxNR * 4;        // bytes per group in a B panel
constexpr size_t kAmxABlock = kAmxMR * 64;     // a copied chunk of A: 32 rows x 64 bytes
constexpr size_t kAmxLd = kAmxNR * 4;          // bytes between rows of acc_in, acc_out and the C scratch

// K slices of up to 256 KB of B panel (1024 groups), as on avx512_vnni: they
// stay in L2 while a block's A rows pass. Not measured on AMX hardware.
constexpr size_t kAmxKSliceBytes = 256 * 1024;

// The implicit GEMM's tiles stay within one output row (conv_plan.cc): from
// 16 pixels wide every tile fills its first A tile (rows of 33 to 64 pixels
// make two tiles of at least 16 rows), where twice the tile height (64)
// would send the common 56- and 28-wide layers to im2col copies. Not
// measured on AMX hardware.
constexpr size_t kAmxImplicitMinWidth = 16;

// A per-thread buffer that grows as needed, freed with its thread: malloc,
// not std::vector, whose member functions instantiated in a file built with
// ISA flags could be the copy the linker gives to portable code.
struct AmxScratch {
  uint8_t* base = nullptr;
  size_t cap = 0;
  ~AmxScratch() { std::free(base); }
  uint8_t* get(size_t bytes) {
    if (cap < bytes + 64) {
      std::free(base);
      cap = bytes + bytes / 2 + 64;
      base = static_cast<uint8_t*>(std::malloc(cap));
      if (!base) {
        std::fprintf(stderr, "intquant_kernels: out of memory for %zu bytes of AMX scratch\n", cap);
        std::abort();
      }
    }
    return base + (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
  }
};

// Where group p of row i of a call's A is: row i at a + i * stride, and in a
// row, after every seg_groups groups the next run seg_skip bytes further on
// (gemm.h).
struct AmxRowsA {
  const uint8_t* a;
  size_t stride, seg_groups, seg_bytes, groups;
  bool plain;  // one run per row (seg_groups >= groups): no division per chunk
  const uint8_t* at(size_t i, size_t p) const {
    return a + i * stride + (plain ? 4 * p : (p / seg_groups) * seg_bytes + (p % seg_groups) * 4);
  }
  // The chunk of groups [p0, p0 + 16) is all in the call and in one run.
  bool in_place(size_t p0) const {
    return groups - p0 >= kAmxChunk && (plain || p0 % seg_groups + kAmxChunk <= seg_groups);
  }
  // Copies the chunk from p0 (rows < rows) into 64-byte rows, zero past the
  // call's groups.
  void copy(size_t rows, size_t p0, uint8_t* dst) const {
    const size_t end = groups - p0 < kAmxChunk ? groups : p0 + kAmxChunk;
    for (size_t i = 0; i < rows; ++i, dst += 64) {
      for (size_t p = p0; p < end;) {
        const size_t left_in_run = seg_groups - p % seg_groups, run = end - p < left_in_run ? end - p : left_in_run;
        std::memcpy(dst + 4 * (p - p0), at(i, p), 4 * run);
        p += run;
      }
      std::memset(dst + 4 * (end - p0), 0, 64 - 4 * (end - p0));
    }
  }
};

// One half (32 columns from col) of the tile over all of the call's K, into
// c_out (row stride kAmxLd bytes). TwoA: rows 16-31 exist; TwoB: columns
// col + 16.. exist.
template <class Tiles, bool TwoA, bool TwoB>
void amx_half(const AmxRowsA& A, const uint8_t* copied_a, const uint8_t* b, const uint8_t* b_tail, size_t col,
              const int32_t* acc_in, int32_t* c_out) {
  constexpr size_t low = 16 * kAmxNR;  // int32 from row 0 to row 16
  if (acc_in) {
    Tiles::template load<0>(acc_in + col, kAmxLd);
    if constexpr (TwoB) Tiles::template load<1>(acc_in + col + 16, kAmxLd);
    if constexpr (TwoA) Tiles::template load<2>(acc_in + low + col, kAmxLd);
    if constexpr (TwoA && TwoB) Tiles::template load<3>(acc_in + low + col + 16, kAmxLd);
  } else {
    Tiles::template zero<0>();
    if constexpr (TwoB) Tiles::template zero<1>();
    if constexpr (TwoA) Tiles::template zero<2>();
    if constexpr (TwoA && TwoB) Tiles::template zero<3>();
  }
  for (size_t p0 = 0; p0 < A.groups; p0 += kAmxChunk) {
    const uint8_t* ap;
    size_t as;
    if (A.in_place(p0)) {
      ap = A.at(0, p0);
      as = A.stride;
    } else {
      ap = copied_a;
      as = 64;
      copied_a += kAmxABlock;
    }
    const uint8_t* bp = (A.groups - p0 >= kAmxChunk ? b + p0 * kAmxBRow : b_tail) + 4 * col;
    Tiles::template load<4>(ap, as);
    if constexpr (TwoA) Tiles::template load<5>(ap + 16 * as, as);
    Tiles::template load<6>(bp, kAmxBRow);
    if constexpr (TwoB) Tiles::template load<7>(bp + 64, kAmxBRow);
    Tiles::template dpbusd<0, 4, 6>();
    if constexpr (TwoB) Tiles::template dpbusd<1, 4, 7>();
    if constexpr (TwoA) Tiles::template dpbusd<2, 5, 6>();
    if constexpr (TwoA && TwoB) Tiles::template dpbusd<3, 5, 7>();
  }
  Tiles::template store<0>(c_out + col, kAmxLd);
  if constexpr (TwoB) Tiles::template store<1>(c_out + col + 16, kAmxLd);
  if constexpr (TwoA) Tiles::template store<2>(c_out + low + col, kAmxLd);
  if constexpr (TwoA && TwoB) Tiles::template store<3>(c_out + low + col + 16, kAmxLd);
}

// The epilogue of gemm_epilogue.h on the finished tile c (mr x nr, row
// stride kAmxNR), each column vector's terms loaded once; with a per-row
// scale (Rows == e.row_scale != null), each row's scale vectors from them.
// `e` is the caller's local copy (stores through e.c cannot alias it).
template <GemmOut Kind, bool Rows>
void amx_store(const GemmEpilogue& e, size_t mr, size_t nr, size_t m0, size_t n0, const int32_t* c) {
  const size_t eb = gemm_out_bytes(Kind), nv = (nr + 15) / 16;
  GemmCols16 cols[4] = {};  // zeroed only to spare GCC's doubts: entries from nv on are not read
  __m512i zp[4] = {};
  __mmask16 mask[4] = {};
  for (size_t v = 0; v < nv; ++v) {
    cols[v] = gemm_cols16_avx512<Kind>(e, n0 + 16 * v);
    zp[v] = e.b_zp ? _mm512_loadu_si512(e.b_zp + n0 + 16 * v) : _mm512_setzero_si512();
    mask[v] = gemm_tail_mask16(nr - 16 * v);
  }
  char* row = static_cast<char*>(e.c) + (m0 * e.ldc + n0) * eb;
  for (size_t i = 0; i < mr; ++i, row += e.ldc * eb, c += kAmxNR) {
    const __m512i rs = e.b_zp ? _mm512_set1_epi32(e.row_sum[m0 + i]) : _mm512_setzero_si512();
    const __m512 r = gemm_row16_avx512<Rows>(e, m0 + i);
    for (size_t v = 0; v < nv; ++v) {
      __m512i acc = _mm512_loadu_si512(c + 16 * v);
      if (e.b_zp) acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(rs, zp[v]));
      acc = _mm512_sub_epi32(acc, cols[v].off);
      gemm_finish16_avx512<Kind>(e, acc, gemm_row_scale16_avx512<Kind, Rows>(e, r, cols[v].scale), cols[v].bias,
                                 row + 16 * v * eb, mask[v], nr >= 16 * (v + 1));
    }
  }
}

template <class Tiles>
void amx_gemm_tile(size_t mr, size_t nr, size_t groups, const uint8_t* a, size_t a_stride, size_t seg_groups,
                   size_t seg_skip, const uint8_t* b, const int32_t* acc_in, int32_t* acc_out,
                   const GemmEpilogue& ep, size_t m0, size_t n0) {
  if (mr == 0 || nr == 0) return;
  const AmxRowsA A{a, a_stride, seg_groups, seg_groups * 4 + seg_skip, groups, seg_groups >= groups};

  // The copies, once for both halves: A chunks that cannot be loaded in
  // place, in order, then the partial last chunk of B.
  size_t n_copied = 0;
  for (size_t p0 = 0; p0 < groups; p0 += kAmxChunk) n_copied += !A.in_place(p0);
  const size_t b_left = groups % kAmxChunk;  // groups of a partial last chunk
  static thread_local AmxScratch scratch;
  uint8_t* copied_a = nullptr;
  uint8_t* b_tail = nullptr;
  if (n_copied || b_left) {
    copied_a = scratch.get(n_copied * kAmxABlock + (b_left ? kAmxChunk * kAmxBRow : 0));
    b_tail = copied_a + n_copied * kAmxABlock;
    uint8_t* dst = copied_a;
    for (size_t p0 = 0; p0 < groups; p0 += kAmxChunk)
      if (!A.in_place(p0)) {
        A.copy(mr, p0, dst);
        dst += kAmxABlock;
      }
    if (b_left) {
      std::memcpy(b_tail, b + (groups - b_left) * kAmxBRow, b_left * kAmxBRow);
      std::memset(b_tail + b_left * kAmxBRow, 0, (kAmxChunk - b_left) * kAmxBRow);
    }
  }

  // Palette 1: the C and A tiles of rows 16r.. with the rows there are;
  // unconfigured (0 x 0) where there are none.
  AmxTileConfig cfg;
  cfg.palette = 1;
  const size_t rows[2] = {mr < 16 ? mr : 16, mr > 16 ? mr - 16 : 0};
  for (int r = 0; r < 2; ++r) {
    const int tiles[] = {2 * r, 2 * r + 1, 4 + r};  // C, C, A
    for (int t : tiles) {
      cfg.rows[t] = static_cast<uint8_t>(rows[r]);
      cfg.colsb[t] = rows[r] ? 64 : 0;
    }
  }
  for (int t = 6; t < 8; ++t) {  // B
    cfg.rows[t] = kAmxChunk;
    cfg.colsb[t] = 64;
  }
  alignas(64) int32_t c_buf[kAmxMR * kAmxNR];
  int32_t* const c_out = acc_out ? acc_out : c_buf;
  Tiles::configure(cfg);
  for (size_t col = 0; col < nr; col += 32) {
    const bool two_b = nr > col + 16;
    if (rows[1]) {
      if (two_b)
        amx_half<Tiles, true, true>(A, copied_a, b, b_tail, col, acc_in, c_out);
      else
        amx_half<Tiles, true, false>(A, copied_a, b, b_tail, col, acc_in, c_out);
    } else {
      if (two_b)
        amx_half<Tiles, false, true>(A, copied_a, b, b_tail, col, acc_in, c_out);
      else
        amx_half<Tiles, false, false>(A, copied_a, b, b_tail, col, acc_in, c_out);
    }
  }
  Tiles::release();
  if (acc_out) return;
  // The epilogue, its kind and per-row scale dispatched once per tile, on a
  // local copy.
  const GemmEpilogue e = ep;
  with_kind_rows(e, [&](auto kind, auto rows) {
    amx_store<decltype(kind)::value, decltype(rows)::value>(e, mr, nr, m0, n0, c_buf);
  });
}

}  // namespace
}  // namespace iqk
