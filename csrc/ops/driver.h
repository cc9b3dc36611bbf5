// Helpers shared by the op drivers (ops/*.cc): padded per-column arrays,
// aligned scratch, the split of work into panels, blocks and K slices. No
// intrinsics; not part of the API.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/gemm/gemm.h"

namespace iqk {

// A per-column array for the kernels: `groups` runs of `len` entries of
// `src` (all `fill` when src is null), each padded with `fill` to `padded`
// entries (a whole number of vectors: kernels load full vectors from them).
template <typename T>
std::vector<T> padded_columns(const T* src, size_t groups, size_t len, size_t padded, T fill) {
  std::vector<T> v(groups * padded, fill);
  if (src)
    for (size_t g = 0; g < groups; ++g) std::copy(src + g * len, src + (g + 1) * len, v.begin() + g * padded);
  return v;
}

inline size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

// A buffer aligned to 64 bytes with `slack` zeroed readable bytes past
// `bytes`; grows `buf` as needed.
inline uint8_t* aligned(std::vector<uint8_t>& buf, size_t bytes, size_t slack = 64) {
  if (buf.size() < bytes + slack + 64) buf.resize(bytes + slack + 64);
  uint8_t* p = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
  std::fill(p + bytes, p + bytes + slack, uint8_t{0});
  return p;
}

// The sum of n bytes, each XORed with `flip` (0x80: int8 read as a + 128).
inline int32_t sum_u8(const uint8_t* p, size_t n, uint8_t flip = 0) {
  uint32_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<uint8_t>(p[i] ^ flip);
  return static_cast<int32_t>(sum);
}

// The per-column epilogue arrays of `groups` runs of `len` columns, each
// padded to `padded` (padded_columns), and the epilogue of one run.
struct Columns {
  std::vector<int32_t> col_off, b_zp;
  std::vector<float> scale, bias;
  size_t padded;
  bool has_zp;
  Columns(const int32_t* col_off_, const int32_t* b_zp_, const GemmEpilogue& e, size_t groups, size_t len,
          size_t padded_)
      : col_off(padded_columns<int32_t>(col_off_, groups, len, padded_, 0)),
        b_zp(padded_columns<int32_t>(b_zp_, groups, len, padded_, 0)),
        scale(padded_columns<float>(e.scale, groups, len, padded_, 1.0f)),
        bias(padded_columns<float>(e.bias, groups, len, padded_, -0.0f)),
        padded(padded_),
        has_zp(b_zp_ != nullptr) {}
  // `e` with run g's columns, writing to c (ldc elements per row); row_sum
  // holds the row sums of the rows numbered from c's first row.
  GemmEpilogue of_group(const GemmEpilogue& e, size_t g, void* c, size_t ldc, const int32_t* row_sum) const {
    GemmEpilogue ep = e;
    ep.c = c;
    ep.ldc = ldc;
    ep.col_off = col_off.data() + g * padded;
    ep.b_zp = has_zp ? b_zp.data() + g * padded : nullptr;
    ep.row_sum = has_zp ? row_sum : nullptr;
    ep.scale = scale.data() + g * padded;
    ep.bias = bias.data() + g * padded;
    return ep;
  }
};

// The first row of each of m_panels row panels of M rows, and M at the end:
// rows spread evenly (16 rows at MR = 5 as 4+4+4+4, not 5+5+5+1: a nearly
// empty panel costs almost a full pass over its B panel), looked up rather
// than divided per tile (with a short K, two divisions per tile showed).
inline std::vector<size_t> panel_starts(size_t M, size_t m_panels) {
  std::vector<size_t> first(m_panels + 1);
  for (size_t mp = 0; mp <= m_panels; ++mp) first[mp] = mp * M / m_panels;
  return first;
}

// Output-column panels split into chunks, so that `outer` tasks (row blocks)
// times the chunks give each of `threads` threads about four tasks.
struct PanelChunks {
  size_t count = 1, panels = 0;  // chunks, and panels per chunk (the last may have fewer)
};
inline PanelChunks panel_chunks(size_t threads, size_t outer, size_t n_panels) {
  PanelChunks c;
  if (threads > 1 && outer < 4 * threads) c.count = std::min(n_panels, ceil_div(4 * threads, outer));
  c.count = std::max<size_t>(c.count, 1);
  c.panels = ceil_div(n_panels, c.count);
  c.count = c.panels ? ceil_div(n_panels, c.panels) : 1;
  return c;
}

// Slices of K (in k-groups) of at most kc_max groups each, of equal size,
// over K made of n_segs segments of seg groups each (segments are separate
// runs of A for the tile kernel: see the kernel signature in gemm.h). A slice
// is a run of whole segments, or a piece of one segment when a segment is
// longer than kc_max. K == 0 gives one empty slice (the epilogue alone).
struct KSlice {
  size_t g0, gn;      // groups [g0, g0 + gn) of K
  size_t seg, off;    // the segment g0 lies in, and g0's offset in it
  size_t seg_groups;  // groups before the tile kernel jumps to the next segment
};
std::vector<KSlice> k_slices(size_t seg, size_t n_segs, size_t kc_max);

std::vector<KSlice> k_slices(size_t seg, size_t n_segs, size_t kc_max);

}  // namespace iqk
