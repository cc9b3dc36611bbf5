// GEMM driver: packs B once (pack_weights) and A per call, walks the tiles,
// splits them over threads. Layout and tile size come from the kernel.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "ops/driver.h"
#include "ops/ops.h"
#include "runtime/thread_pool.h"

namespace iqk {

namespace {

// Copies `rows` rows of A into rows of `row_bytes` bytes (a whole number of
// k-groups): a_u = a (uint8) or a ^ 0x80 (int8, i.e. a + 128), widened to
// int16 for pair16, zero past K. Row-major, so this is a streaming copy that
// the compiler vectorises; it runs once per call over A and must stay cheap
// beside the kernels (an interleaved panel layout cost 10% of a 1024^3 GEMM).
void copy_a_rows(const GemmShape& s, const uint8_t* a, size_t lda, bool a_signed, size_t K,
                 size_t rows, size_t row_bytes, uint8_t* out) {
  const uint8_t flip = a_signed ? 0x80 : 0x00;
  for (size_t i = 0; i < rows; ++i, a += lda, out += row_bytes) {
    if (s.a_bytes()) {
      for (size_t k = 0; k < K; ++k) out[k] = a[k] ^ flip;
      std::memset(out + K, 0, row_bytes - K);
    } else {
      int16_t* o = reinterpret_cast<int16_t*>(out);
      for (size_t k = 0; k < K; ++k) o[k] = static_cast<uint8_t>(a[k] ^ flip);
      std::memset(o + K, 0, row_bytes - 2 * K);
    }
  }
}

}  // namespace

std::vector<KSlice> k_slices(size_t seg, size_t n_segs, size_t kc_max) {
  std::vector<KSlice> slices;
  if (seg <= kc_max) {
    const size_t per = kc_max / std::max<size_t>(seg, 1);  // whole segments per slice
    const size_t n = ceil_div(n_segs, per), each = ceil_div(n_segs, std::max<size_t>(n, 1));
    for (size_t s0 = 0; s0 < n_segs; s0 += each)
      slices.push_back({s0 * seg, std::min(each, n_segs - s0) * seg, s0, 0, std::max<size_t>(seg, 1)});
  } else {
    const size_t kc = ceil_div(seg, ceil_div(seg, kc_max));
    for (size_t sg = 0; sg < n_segs; ++sg)
      for (size_t off = 0; off < seg; off += kc) {
        const size_t gn = std::min(kc, seg - off);
        slices.push_back({sg * seg + off, gn, sg, off, gn});
      }
  }
  if (slices.empty() || seg == 0) slices.assign(1, KSlice{0, 0, 0, 0, 1});
  return slices;
}

void gemm(const GemmProblem& p, const GemmKernel& kernel) {
  const GemmShape& s = kernel.shape;
  const size_t M = p.M, N = p.N, K = p.K, mr = s.mr, nr = s.nr;
  if (M == 0 || N == 0) return;
  const size_t groups = ceil_div(K, s.k_group());
  const size_t n_panels = ceil_div(N, nr), m_panels = ceil_div(M, mr);
  const std::vector<size_t> first_rows = panel_starts(M, m_panels);
  auto panel_row = [&](size_t mp) { return first_rows[mp]; };
  const size_t a_panel = s.panel_bytes(K, mr), b_panel = s.panel_bytes(K, nr);
  const size_t gb = s.group_bytes(), a_row_bytes = groups * gb;
  // uint8 rows whose length is a whole number of groups are read in place:
  // no copy at all. Otherwise rows are copied (shifted, padded, widened).
  const bool a_in_place = s.a_bytes() && !p.a_signed && K % s.k_group() == 0;

  // Per-column arrays padded to whole panels so that kernels can load full
  // vectors; the padding columns are never stored.
  const Columns cols(p.col_off, p.b_zp, p.epilogue, 1, N, n_panels * nr);
  std::vector<int32_t> row_sum;
  if (p.b_zp) {
    row_sum.resize(M);
    for (size_t m = 0; m < M; ++m) row_sum[m] = sum_u8(p.a + m * p.lda, K, p.a_signed ? 0x80 : 0x00);
  }
  const GemmEpilogue ep = cols.of_group(p.epilogue, 0, p.epilogue.c, p.epilogue.ldc, row_sum.data());

  // An M block's rows of A stay in L2 while the task's B panels stream past.
  constexpr size_t kABlockBytes = 192 * 1024;
  const size_t block_panels =
      std::max<size_t>(1, std::min(m_panels, kABlockBytes / std::max<size_t>(a_panel, 1)));  // K may be 0
  const size_t m_blocks = ceil_div(m_panels, block_panels);
  // Enough tasks to share between threads; each task copies its own A rows
  // when they cannot be read in place.
  // About 400 multiply-adds per ns on one thread of the fastest kernels.
  const size_t threads = threads_for(static_cast<double>(M) * N * K / 400.0);
  const PanelChunks chunks = panel_chunks(threads, m_blocks, n_panels);

  // K is cut into slices of at most kernel.k_slice_bytes of B panel (kc
  // groups x NR columns), of equal size, that stay in cache while the block's
  // A panels stream past; partial sums of a slice wait in a per-thread buffer
  // of MR x NR tiles.
  const std::vector<KSlice> slices = k_slices(groups, 1, std::max<size_t>(1, kernel.k_slice_bytes / (nr * gb)));
  const size_t n_slices = slices.size();

  parallel_for(m_blocks * chunks.count, [&](size_t task) {
    const size_t mb = task / chunks.count, nc = task % chunks.count;
    const size_t mp0 = mb * block_panels, mp1 = std::min(m_panels, mp0 + block_panels);
    const size_t np0 = nc * chunks.panels, np1 = std::min(n_panels, np0 + chunks.panels);
    thread_local std::vector<uint8_t> abuf;
    thread_local std::vector<int32_t> partial;
    const uint8_t* arows;  // row m at arows + (m - m_first) * a_stride
    size_t a_stride;
    const size_t m_first = panel_row(mp0);
    if (a_in_place) {
      arows = p.a + m_first * p.lda;
      a_stride = p.lda;
    } else {
      const size_t n_rows = panel_row(mp1) - m_first;
      uint8_t* ablock = aligned(abuf, n_rows * a_row_bytes, 0);
      copy_a_rows(s, p.a + m_first * p.lda, p.lda, p.a_signed, K, n_rows, a_row_bytes, ablock);
      arows = ablock;
      a_stride = a_row_bytes;
    }
    if (n_slices > 1 && partial.size() < (mp1 - mp0) * mr * nr) partial.resize((mp1 - mp0) * mr * nr);
    int32_t* const part0 = partial.data();  // once: each use of a thread_local is a TLS lookup
    for (size_t np = np0; np < np1; ++np) {
      const size_t n0 = np * nr;
      const uint8_t* bp = p.packed_b + np * b_panel;
      for (size_t ks = 0; ks < n_slices; ++ks) {
        // A group is gb bytes per row of A and per column of a B panel, so a
        // slice starts gb * g0 bytes into a row of A and gb * g0 * NR bytes
        // into a B panel.
        const KSlice& sl = slices[ks];
        for (size_t mp = mp0; mp < mp1; ++mp) {
          const size_t m0 = panel_row(mp);
          int32_t* part = part0 + (mp - mp0) * mr * nr;
          kernel.fn(panel_row(mp + 1) - m0, std::min(nr, N - n0), sl.gn,
                    arows + (m0 - m_first) * a_stride + gb * sl.g0, a_stride, sl.seg_groups, 0,
                    bp + gb * sl.g0 * nr,
                    ks == 0 ? nullptr : part, ks + 1 == n_slices ? nullptr : part, ep, m0, n0);
        }
      }
    }
  }, threads);
}

std::string gemm_columns(size_t n, float a_scale, const float* b_scale, bool per_column,
                         const float* bias, bool requantize, float out_scale, float* out,
                         int64_t* bias_q) {
  // Each constraint over every column before the next constraint, in the
  // reference's order, so that both name the same fault first.
  bool products_ok = true;
  for (size_t j = 0; j < n; ++j) {
    out[j] = a_scale * b_scale[per_column ? j : 0];
    products_ok = products_ok && std::isfinite(out[j]) && out[j] > 0.0f;
  }
  if (!products_ok) {
    for (size_t j = 0; j < (per_column ? n : 1); ++j)
      if (!(std::isfinite(b_scale[j]) && b_scale[j] > 0.0f)) return "b_scale must be finite and > 0 in float32";
    return "a_scale * b_scale must be finite and > 0 in float32 for every column";
  }
  if (!requantize) return "";
  for (size_t j = 0; j < n; ++j)
    if (!std::isfinite(out[j] / out_scale)) return "a_scale * b_scale / out_scale must be finite in float32";
  if (bias) {
    for (size_t j = 0; j < n; ++j) {
      const float q = std::nearbyintf(bias[j] / out[j]);
      if (!(static_cast<double>(std::fabs(q)) <= 2147483647.0))
        return "bias / (a_scale * b_scale) must be finite and fit int32";
      bias_q[j] = static_cast<int64_t>(q);
    }
  }
  for (size_t j = 0; j < n; ++j) out[j] = out[j] / out_scale;
  return "";
}

std::string gemm_row_scales(size_t m, const float* a_scale, bool products, float b_lo, float b_hi,
                            bool requantize, float out_scale, float* out) {
  if (m == 0) return "";
  float lo = a_scale[0], hi = a_scale[0];
  bool ok = true;
  for (size_t i = 0; i < m; ++i) {
    const float s = a_scale[i];
    out[i] = s;
    ok = ok && std::isfinite(s) && s > 0.0f;
    lo = s < lo ? s : lo;
    hi = s > hi ? s : hi;
  }
  if (!ok) return "a_scale must be finite and > 0 in float32";
  if (!products) return "";
  const float s_lo = lo * b_lo, s_hi = hi * b_hi;
  if (!(s_lo > 0.0f && std::isfinite(s_hi)))
    return "a_scale * b_scale must be finite and > 0 in float32 for every row and column";
  if (requantize && !std::isfinite(s_hi / out_scale)) return "a_scale * b_scale / out_scale must be finite in float32";
  return "";
}

}  // namespace iqk
