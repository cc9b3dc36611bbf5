// Convolution drivers (see conv.h; conv_plan.cc chooses among them): conv2d stages the input rows of a block
// of output rows (any layout, padding filled) and feeds the GEMM tile kernels
// (implicit GEMM or im2col rows); dwconv2d and gconv2d run row kernels over
// staging rows of all channels (staged_rows), and dwconv2d the planar kernels
// on NCHW planes; conv1x1_nchw runs a 1x1 NCHW convolution as the GEMM with
// its roles swapped, on the channel planes packed per call (no staging).
#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/conv.h"
#include "ops/conv_plan.h"
#include "runtime/kernel_counter.h"
#include "ops/driver.h"
#include "ops/ops.h"
#include "runtime/thread_pool.h"
#include "kernels/layout/transpose.h"

namespace iqk {

namespace {

// The staging buffer of a block: `rows` input rows starting at input row
// ih0 (possibly negative or past H: padding), each of `cols` pixels starting
// at input column -pl, each pixel `cs` bytes: channels [c0, c0 + cs) as
// unsigned bytes (x ^ 0x80 for int8). Everything outside the input is the
// activation zero point.
struct Stage {
  long ih0 = 0;
  size_t rows = 0, cols = 0, c0 = 0, cs = 0;
  size_t row_bytes() const { return cols * cs; }
};

void stage_rows(const ConvProblem& p, size_t n, const Stage& st, uint8_t* out) {
  const ConvGeometry& g = p.g;
  const uint8_t flip = p.x_signed ? 0x80 : 0x00;
  const uint8_t fill = static_cast<uint8_t>(p.x_zp) ^ flip;
  const size_t cs = st.cs;
  // Input columns [iw_lo, iw_hi) land on staging pixels [iw_lo + pl, iw_hi + pl).
  const long pl = static_cast<long>(g.pl);
  const size_t iw_lo = 0;
  const size_t iw_hi = static_cast<size_t>(std::clamp<long>(static_cast<long>(st.cols) - pl, 0, static_cast<long>(g.w)));
  const size_t j_lo = std::min(st.cols, g.pl);  // first staging pixel inside
  const size_t j_hi = iw_hi > iw_lo ? iw_hi + g.pl : j_lo;
  for (size_t r = 0; r < st.rows; ++r) {
    uint8_t* row = out + r * st.row_bytes();
    const long ih = st.ih0 + static_cast<long>(r);
    if (ih < 0 || ih >= static_cast<long>(g.h) || j_hi <= j_lo) {
      std::memset(row, fill, st.row_bytes());
      continue;
    }
    std::memset(row, fill, j_lo * cs);
    std::memset(row + j_hi * cs, fill, (st.cols - j_hi) * cs);
    uint8_t* dst = row + j_lo * cs;
    const size_t width = j_hi - j_lo;
    if (!p.x_nchw) {
      const uint8_t* src = p.x + ((n * g.h + ih) * g.w) * g.c + st.c0;
      if (cs == g.c) {
        for (size_t i = 0; i < width * cs; ++i) dst[i] = src[i] ^ flip;
      } else {
        for (size_t j = 0; j < width; ++j)
          for (size_t c = 0; c < cs; ++c) dst[j * cs + c] = src[j * g.c + c] ^ flip;
      }
    } else if (cs == 1) {
      // NCHW, one channel: a plain row (the planar depthwise kernels).
      const uint8_t* src = p.x + ((n * g.c + st.c0) * g.h + ih) * g.w;
      if (flip)
        for (size_t j = 0; j < width; ++j) dst[j] = src[j] ^ flip;
      else
        std::memcpy(dst, src, width);
    } else {
      // NCHW: a transpose of cs plane rows into pixels, in 8 x 8 blocks; a
      // partial last block of pixels is a whole block ending at the last
      // pixel (it rewrites some pixels with the same bytes).
      const uint8_t* src = p.x + ((n * g.c + st.c0) * g.h + ih) * g.w;
      const size_t plane = g.h * g.w, c8 = cs / 8 * 8, jw = width < 8 ? 0 : width;  // pixels in 8 x 8 blocks
      for (size_t c = 0; c < c8; c += 8)
        for (size_t j = 0; j < jw; j += 8) {
          const size_t jb = std::min(j, jw - 8);
          transpose8x8_u8(src + c * plane + jb, plane, dst + jb * cs + c, cs, flip);
        }
      for (size_t j = 0; j < width; ++j)
        for (size_t c = j < jw ? c8 : 0; c < cs; ++c) dst[j * cs + c] = src[c * plane + j] ^ flip;
    }
  }
}

// The staging rows and columns that output rows [oh0, oh1) read.
Stage stage_for(const ConvGeometry& g, size_t oh0, size_t oh1, size_t c0, size_t cs) {
  Stage st;
  st.ih0 = static_cast<long>(oh0 * g.sh) - static_cast<long>(g.pt);
  st.rows = (oh1 - 1 - oh0) * g.sh + (g.kh - 1) * g.dh + 1;
  st.cols = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  st.c0 = c0;
  st.cs = cs;
  return st;
}

// Copies columns [j0, j1) of a (rows x ld) NHWC tile of output pixels
// [p0, p0 + rows) of image n into NCHW output channels ch0 + j.
void scatter_nchw(const ConvProblem& p, const uint8_t* tile, size_t rows, size_t ld, size_t j0, size_t j1,
                  size_t n, size_t ch0, size_t p0) {
  const size_t eb = gemm_out_bytes(p.epilogue.kind), plane = p.g.oh * p.g.ow;
  uint8_t* y = static_cast<uint8_t*>(p.epilogue.c) + ((n * p.g.oc + ch0) * plane + p0) * eb;
  // Whole B x B blocks through registers (a partial last block is a whole
  // block ending at the edge); tiles narrower than B one element at a time.
  // Channels go 16 at a time down all rows, so that only 16 output planes
  // take writes at once: planes are a multiple of 64 bytes apart at common
  // sizes, and more of them would map to too few L1 sets and evict each
  // other's lines before they are full.
  // A partial last block (of rows or of channels) is a whole block ending at
  // the last one, which rewrites some outputs with the same values.
  if (eb == 4 && p.transpose16 && rows >= 16 && j1 - j0 >= 16) {
    // 16 x 16 blocks of the ISA, 16 planes at a time.
    for (size_t jb0 = j0; jb0 < j1; jb0 += 16)
      for (size_t m0 = 0; m0 < rows; m0 += 16) {
        const size_t m = std::min(m0, rows - 16), j = std::min(jb0, j1 - 16);
        p.transpose16(tile + (m * ld + j) * 4, ld, y + (j * plane + m) * 4, plane);
      }
    return;
  }
  const size_t B = eb == 1 ? 8 : 4;
  const size_t mb = rows < B ? 0 : rows, jb = j1 - j0 < B ? j0 : j1;
  for (size_t j16 = j0; j16 < jb; j16 += 16)
    for (size_t m0 = 0; m0 < mb; m0 += B)
      for (size_t j0b = j16; j0b < std::min(jb, j16 + 16); j0b += B) {
        const size_t m = std::min(m0, mb - B), j = std::min(j0b, jb - B);
        if (eb == 1)
          transpose8x8_u8(tile + m * ld + j, ld, y + j * plane + m, plane, 0);
        else
          transpose4x4_b32(tile + (m * ld + j) * 4, ld, y + (j * plane + m) * 4, plane);
      }
  for (size_t j = j0; j < j1; ++j)
    for (size_t m = j < jb ? mb : 0; m < rows; ++m) std::memcpy(y + (j * plane + m) * eb, tile + (m * ld + j) * eb, eb);
}

// The row drivers' common part (the depthwise NHWC kernels and the
// small-group kernels, whose row kernels take all C channels of a staging
// pixel): tasks of blocks of output rows of one image, enough to share
// between threads, each block's staging rows small enough for L2; then
// kernel(row) per output row, row a copy of proto (DwconvRow or GconvRow)
// with x the staging pixel of tap (0, 0) for output column 0, x_row the
// bytes between staging rows, and ep writing rows m0 on into y (NHWC) or into
// a tile of output rows that goes into the NCHW planes when full. The
// staging rows have `slack` readable (zeroed) bytes past their end.
template <typename Row, typename RowFn>
void staged_rows(const ConvProblem& p, const Columns& cols, size_t threads, const Row& proto, RowFn&& kernel,
                 size_t slack = 64) {
  const ConvGeometry& g = p.g;
  const size_t C = g.c, OC = g.oc, P = g.oh * g.ow, eb = gemm_out_bytes(p.epilogue.kind);
  const size_t row_bytes = stage_for(g, 0, 1, 0, C).row_bytes();
  constexpr size_t kStageBytes = 256 * 1024;
  size_t per_task = std::max<size_t>(1, kStageBytes / std::max<size_t>(row_bytes * g.sh, 1));
  if (threads > 1) per_task = std::min(per_task, std::max<size_t>(1, ceil_div(g.n * g.oh, 4 * threads)));
  per_task = std::min(per_task, g.oh);
  const size_t blocks = ceil_div(g.oh, per_task);

  parallel_for(g.n * blocks, [&](size_t task) {
    const size_t n = task / blocks, blk = task % blocks;
    const size_t oh0 = blk * per_task, oh1 = std::min(g.oh, oh0 + per_task);
    thread_local std::vector<uint8_t> stage_buf, tmp_buf;
    const Stage st = stage_for(g, oh0, oh1, 0, C);
    uint8_t* stage = aligned(stage_buf, st.rows * st.row_bytes(), slack);
    stage_rows(p, n, st, stage);

    // NCHW output: runs of output rows through a tile of about 128 KB (in
    // L2), then transposed, so that each plane takes runs of several rows.
    const size_t tile_rows = p.y_nchw ? std::max<size_t>(1, (128 * 1024) / (g.ow * OC * eb)) : 1;
    void* c;
    size_t m_base;
    if (p.y_nchw) {
      c = aligned(tmp_buf, tile_rows * g.ow * OC * eb, 0);
      m_base = 0;
    } else {
      c = static_cast<uint8_t*>(p.epilogue.c) + n * P * OC * eb;
      m_base = oh0 * g.ow;
    }
    const GemmEpilogue ep = cols.of_group(p.epilogue, 0, c, OC, nullptr);
    for (size_t oh = oh0; oh < oh1; ++oh) {
      const size_t t0 = oh - (oh - oh0) % tile_rows;  // the tile's first row
      Row row = proto;
      row.x = stage + (oh - oh0) * g.sh * st.row_bytes();
      row.x_row = st.row_bytes();
      row.ep = &ep;
      row.m0 = p.y_nchw ? (oh - t0) * g.ow : m_base + (oh - oh0) * g.ow;
      kernel(row);
      if (p.y_nchw && (oh + 1 == oh1 || oh + 1 - t0 == tile_rows))
        scatter_nchw(p, static_cast<const uint8_t*>(c), (oh + 1 - t0) * g.ow, OC, 0, OC, n, 0, t0 * g.ow);
    }
  }, threads);
}

}  // namespace

void conv2d(const ConvProblem& p, const GemmKernel& kernel, bool implicit) {
  const ConvGeometry& g = p.g;
  const GemmShape& s = kernel.shape;
  const size_t G = g.groups, Cg = g.cg(), OCg = g.ocg(), K = g.k();
  const size_t P = g.oh * g.ow, mr = s.mr, nr = s.nr;
  if (g.n == 0 || P == 0 || g.oc == 0) return;
  const size_t kgroups = ceil_div(K, s.k_group());
  const size_t gb = s.group_bytes(), a_row_bytes = kgroups * gb;
  const size_t n_panels = ceil_div(OCg, nr), n_pad = n_panels * nr;
  const size_t b_panel = kgroups * nr * gb, b_group = n_panels * b_panel;
  const Columns cols(p.col_off, p.w_zp, p.epilogue, G, OCg, n_pad);
  const size_t eb = gemm_out_bytes(p.epilogue.kind);

  // Blocks of output pixels of one image, balanced, each about kABlockBytes
  // of A rows (as in the GEMM driver), so that they stay in L2 while the
  // group's B panels stream past.
  constexpr size_t kABlockBytes = 192 * 1024;
  // NCHW output goes through a tile of rows x OCg outputs, transposed when
  // done: keep that in L2 too.
  constexpr size_t kTileBytes = 128 * 1024;
  size_t max_rows = kABlockBytes / std::max<size_t>(a_row_bytes, 1);
  if (p.y_nchw) max_rows = std::min(max_rows, kTileBytes / (OCg * eb));
  max_rows = std::max(mr, max_rows / mr * mr);

  // Implicit GEMM (the plan's choice, conv_plan.cc): the tile kernel reads
  // its rows of A straight from the staging rows, one kernel row (kh) per
  // slice of K: consecutive output pixels of one output row are sw * Cg
  // bytes apart there.
  // Blocks: im2col, any run of output pixels of one image; implicit, whole
  // output rows. Balanced either way.
  const size_t units = implicit ? g.oh : P;
  const size_t per_block = implicit ? std::max<size_t>(1, max_rows / g.ow) : max_rows;
  const size_t blocks = ceil_div(units, per_block);
  // About 400 multiply-adds per ns on one thread of the fastest kernels.
  const size_t threads = threads_for(static_cast<double>(g.n) * P * g.oc * K / 400.0);
  const size_t outer = g.n * blocks * G;
  const PanelChunks chunks = panel_chunks(threads, outer, n_panels);

  // Slices of K of at most kernel.k_slice_bytes of B panel (kc groups x NR
  // columns), of equal size, that stay in cache while the block's tiles stream
  // past; partial sums wait in a per-thread buffer between slices. K is a
  // sequence of n_segs segments of seg groups: kernel rows for the implicit
  // GEMM (each a separate run of the staging rows), all of K for im2col. A
  // slice is either a run of whole segments (the tile kernel jumps between
  // them) or a piece of one segment.
  const size_t seg = implicit ? g.kw * Cg / gb : kgroups, n_segs = implicit ? g.kh : 1;
  const std::vector<KSlice> slices = k_slices(seg, n_segs, std::max<size_t>(1, kernel.k_slice_bytes / (nr * gb)));
  const size_t n_slices = slices.size();
  struct Tile {
    size_t m0, rows, oh, ow;  // first row of C (from the block's first pixel), its output row and column
  };

  parallel_for(outer * chunks.count, [&](size_t task) {
    const size_t nc = task % chunks.count, gi = (task / chunks.count) % G, blk = (task / chunks.count / G) % blocks,
                 n = task / chunks.count / G / blocks;
    const size_t u0 = blk * units / blocks, u1 = (blk + 1) * units / blocks;
    const size_t p0 = implicit ? u0 * g.ow : u0, p1 = implicit ? u1 * g.ow : u1, rows = p1 - p0;
    const size_t oh0 = p0 / g.ow, oh1 = (p1 - 1) / g.ow + 1;
    thread_local std::vector<uint8_t> stage_buf, a_buf, tmp_buf;
    thread_local std::vector<int32_t> row_sum, partial;
    thread_local std::vector<Tile> tiles;

    const Stage st = stage_for(g, oh0, oh1, gi * Cg, Cg);
    const size_t srow = st.row_bytes();
    uint8_t* stage = aligned(stage_buf, st.rows * srow);
    stage_rows(p, n, st, stage);
    if (p.w_zp && row_sum.size() < rows) row_sum.resize(rows);
    tiles.clear();

    uint8_t* a = nullptr;
    if (implicit) {
      for (size_t oh = oh0; oh < oh1; ++oh) {
        const size_t nt = ceil_div(g.ow, mr);
        for (size_t t = 0; t < nt; ++t) {
          const size_t ow0 = t * g.ow / nt, ow1 = (t + 1) * g.ow / nt;
          tiles.push_back({(oh - oh0) * g.ow + ow0, ow1 - ow0, oh - oh0, ow0});
        }
      }
      if (p.w_zp) {
        for (size_t m = 0; m < rows; ++m) {
          const uint8_t* base = stage + ((m / g.ow) * g.sh) * srow + (m % g.ow) * g.sw * Cg;
          int32_t sum = 0;
          for (size_t kh = 0; kh < g.kh; ++kh) sum += sum_u8(base + kh * g.dh * srow, g.kw * Cg);
          row_sum[m] = sum;
        }
      }
    } else {
      // One row of A per output pixel.
      a = aligned(a_buf, rows * a_row_bytes);
      const size_t run = g.dw == 1 ? g.kw * Cg : Cg;  // bytes contiguous in a staging row per copy
      for (size_t m = 0; m < rows; ++m) {
        const size_t oh = (p0 + m) / g.ow, ow = (p0 + m) % g.ow;
        const uint8_t* base = stage + ((oh - oh0) * g.sh) * srow + ow * g.sw * Cg;
        uint8_t* row = a + m * a_row_bytes;
        size_t k = 0;
        for (size_t kh = 0; kh < g.kh && Cg > 0; ++kh) {
          const uint8_t* src = base + kh * g.dh * srow;
          for (size_t kw = 0; kw < g.kw; kw += run / Cg, k += run) std::memcpy(row + k, src + kw * g.dw * Cg, run);
        }
        if (p.w_zp) row_sum[m] = sum_u8(row, K);
        if (s.layout == GemmLayout::pair16) {
          // Widen in place, back to front: rows are a_row_bytes (= 4 *
          // ceil(K / 2) >= 2K) apart, so this never overlaps the next row.
          int16_t* w16 = reinterpret_cast<int16_t*>(row);
          for (size_t i = K; i-- > 0;) w16[i] = row[i];
          std::memset(row + 2 * K, 0, a_row_bytes - 2 * K);
        } else {
          std::memset(row + K, 0, a_row_bytes - K);
        }
      }
      const size_t nt = ceil_div(rows, mr);
      for (size_t t = 0; t < nt; ++t) tiles.push_back({t * rows / nt, (t + 1) * rows / nt - t * rows / nt, 0, 0});
    }

    // Output: NHWC straight into y; NCHW through a tile, then transposed.
    void* c;
    size_t ldc;
    if (p.y_nchw) {
      c = aligned(tmp_buf, rows * OCg * eb, 0);
      ldc = OCg;
    } else {
      c = static_cast<uint8_t*>(p.epilogue.c) + ((n * P + p0) * g.oc + gi * OCg) * eb;
      ldc = g.oc;
    }
    const GemmEpilogue ep = cols.of_group(p.epilogue, gi, c, ldc, row_sum.data());

    const size_t np0 = nc * chunks.panels, np1 = std::min(n_panels, np0 + chunks.panels);
    if (n_slices > 1 && partial.size() < tiles.size() * mr * nr) partial.resize(tiles.size() * mr * nr);
    // Once: each use of a thread_local is a TLS lookup.
    int32_t* const part0 = partial.data();
    const Tile* const tile0 = tiles.data();
    const size_t n_tiles = tiles.size();
    const uint8_t* wg = p.packed_w + gi * b_group;
    for (size_t np = np0; np < np1; ++np) {
      const size_t n0 = np * nr;
      const uint8_t* bp = wg + np * b_panel;
      for (size_t ks = 0; ks < n_slices; ++ks) {
        const KSlice& sl = slices[ks];
        for (size_t t = 0; t < n_tiles; ++t) {
          const Tile& tl = tile0[t];
          // A group is gb bytes per row of A and per column of a B panel, so
          // a slice starts gb * g0 bytes into a row of A and gb * g0 * NR
          // bytes into a B panel.
          const uint8_t* arows;
          size_t a_stride, seg_skip;
          if (implicit) {
            arows = stage + (tl.oh * g.sh + sl.seg * g.dh) * srow + tl.ow * g.sw * Cg + gb * sl.off;
            a_stride = g.sw * Cg;
            seg_skip = g.dh * srow - gb * seg;  // from the end of one kernel row's run to the next
          } else {
            arows = a + tl.m0 * a_row_bytes + gb * sl.g0;
            a_stride = a_row_bytes;
            seg_skip = 0;
          }
          int32_t* part = part0 + t * mr * nr;
          kernel.fn(tl.rows, std::min(nr, OCg - n0), sl.gn, arows, a_stride, sl.seg_groups, seg_skip,
                    bp + gb * sl.g0 * nr, ks == 0 ? nullptr : part, ks + 1 == n_slices ? nullptr : part, ep, tl.m0,
                    n0);
        }
      }
    }
    if (p.y_nchw)
      scatter_nchw(p, static_cast<const uint8_t*>(c), rows, OCg, np0 * nr, std::min(OCg, np1 * nr), n,
                   gi * OCg, p0);
  }, threads);
}

void conv1x1_nchw(const Conv1x1Nchw& p, const GemmKernel& kernel) {
  IQK_KERNEL_ENTRY("conv1x1_nchw");
  const GemmShape& s = kernel.shape;
  const size_t M = p.oc, N = p.pixels, K = p.c, mr = s.mr, nr = s.nr;
  if (p.n == 0 || M == 0 || N == 0) return;
  const size_t groups = ceil_div(K, 4), a_row = groups * 4;
  const size_t m_panels = ceil_div(M, mr), n_panels = ceil_div(N, nr);
  const std::vector<size_t> first_rows = panel_starts(M, m_panels);
  // With a = w + 128 and b = x_u - 128 (x_u: x as unsigned, x_zp_u its zero
  // point), acc = sum_c a * b, and the convolution is
  //   sum_c (w - w_zp)(x_u - x_zp_u) = acc + r[oc] - (128 + w_zp[oc]) * s[p],
  //   r[oc] = (128 - x_zp_u) * sum_c w + 128 * 128 * C + C * x_zp_u * w_zp[oc],
  // s[p] = sum_c x_u: r starts the accumulators (acc_in), and the epilogue's
  // row_sum[m] * b_zp[n] term (gemm.h) is (128 + w_zp[oc]) * s[p]. All of it
  // modulo 2^32, like the kernels' own int32 arithmetic: the result is exact.
  const int64_t xzp_u = p.x_zp + (p.x_signed ? 128 : 0);
  std::vector<int32_t> row_mul(M), r_tiles(m_panels * mr * nr, 0);
  for (size_t mp = 0; mp < m_panels; ++mp)
    for (size_t m = first_rows[mp]; m < first_rows[mp + 1]; ++m) {
      const int64_t zp = p.w_zp ? p.w_zp[m] : 0;
      row_mul[m] = static_cast<int32_t>(128 + zp);
      const int64_t r = (128 - xzp_u) * p.w_sum[m] + 128 * 128 * static_cast<int64_t>(K) +
                        static_cast<int64_t>(K) * xzp_u * zp;
      const int32_t r32 = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(r)));
      std::fill_n(r_tiles.begin() + (mp * mr + (m - first_rows[mp])) * nr, nr, r32);
    }
  const std::vector<int32_t> zeros(n_panels * nr, 0);
  GemmEpilogue base;
  base.kind = GemmOut::i32;
  base.ldc = N;
  base.row_sum = row_mul.data();
  base.col_off = zeros.data();
  const std::vector<KSlice> slices = k_slices(groups, 1, std::max<size_t>(1, kernel.k_slice_bytes / (nr * 4)));
  const size_t n_slices = slices.size();
  const uint8_t flip = p.x_signed ? 0x00 : 0x80;  // to b = x_u - 128 as int8
  const size_t threads = threads_for(static_cast<double>(p.n) * M * N * K / 400.0);
  const PanelChunks chunks = panel_chunks(threads, p.n, n_panels);

  parallel_for(p.n * chunks.count, [&](size_t task) {
    const size_t img = task / chunks.count, nc = task % chunks.count;
    const size_t np0 = nc * chunks.panels, np1 = std::min(n_panels, np0 + chunks.panels);
    const size_t col0 = np0 * nr;
    const uint8_t* x = p.x + img * K * N;
    thread_local std::vector<uint8_t> b_buf;
    thread_local std::vector<int32_t> s_buf, partial;
    // B: the chunk's panels, vnni4 (gemm.h): per panel, per group of 4
    // channels, 4 bytes per pixel; zero past C and past the last pixel. And
    // s[p] = sum_c x_u[c, p], zero past the last pixel.
    const size_t b_panel = groups * nr * 4;
    uint8_t* b = aligned(b_buf, (np1 - np0) * b_panel, 0);
    if (s_buf.size() < (np1 - np0) * nr) s_buf.resize((np1 - np0) * nr);
    int32_t* const s = s_buf.data();
    thread_local std::vector<uint8_t> edge_buf;  // the last, partial strip: 16 columns, zero past N
    for (size_t col = col0; col < col0 + (np1 - np0) * nr; col += 16) {
      uint8_t* dst = b + ((col - col0) / nr) * b_panel + (col % nr) * 4;
      const uint8_t* src = x + col;
      if (p.pack64 && nr == 64 && col % 64 == 0 && col + 64 <= N) {
        // A whole panel of 64 columns at once.
        p.pack64(src, N, K, flip, dst, nr * 4, s + (col - col0));
        col += 48;
        continue;
      }
      if (col + 16 > N) {
        uint8_t* e = aligned(edge_buf, K * 16, 0);
        for (size_t k = 0; k < K; ++k)
          for (size_t i = 0; i < 16; ++i) e[k * 16 + i] = col + i < N ? x[k * N + col + i] : flip;
        pack_vnni4_strip16(e, 16, K, flip, dst, nr * 4, s + (col - col0));
        for (size_t i = 0; i < 16; ++i)
          if (col + i >= N) s[col - col0 + i] = 0;
      } else {
        pack_vnni4_strip16(src, N, K, flip, dst, nr * 4, s + (col - col0));
      }
    }
    // The chunk's columns are numbered from col0: its output and column arrays start there.
    GemmEpilogue ep = base;
    ep.c = p.y + img * M * N + col0;
    if (p.w_zp) {
      ep.b_zp = s;
    } else {
      // No weight zero point: the product term is 128 * s[p], a per-column
      // offset (no multiply in the epilogue).
      for (size_t i = 0; i < (np1 - np0) * nr; ++i) s[i] = static_cast<int32_t>(static_cast<uint32_t>(s[i]) << 7);
      ep.col_off = s;
      ep.row_sum = nullptr;
    }
    if (n_slices > 1 && partial.size() < m_panels * mr * nr) partial.resize(m_panels * mr * nr);
    // Locals for the tile loop (K is short here, so the per-tile call
    // overhead counts): once, rather than through the captures per tile.
    int32_t* const part0 = partial.data();
    const GemmTileFn fn = kernel.fn;
    const uint8_t* const w_rows = p.w_rows;
    const int32_t* const r0 = r_tiles.data();
    const size_t* const rows = first_rows.data();
    const size_t tile = mr * nr;
    // Blocks of 8 row panels, so that their starting sums (r0, 8 x MR x NR
    // int32) stay in L1 while the chunk's B panels pass.
    constexpr size_t kPanelsPerBlock = 8;
    for (size_t mb = 0; mb < m_panels; mb += kPanelsPerBlock)
      for (size_t np = np0; np < np1; ++np) {
        const size_t n0 = np * nr, ncols = std::min(nr, N - n0);
        const uint8_t* bp = b + (np - np0) * b_panel;
        for (size_t ks = 0; ks < n_slices; ++ks) {
          const KSlice sl = slices[ks];
          const bool first = ks == 0, last = ks + 1 == n_slices;
          for (size_t mp = mb; mp < std::min(m_panels, mb + kPanelsPerBlock); ++mp) {
            const size_t m0 = rows[mp];
            int32_t* part = part0 + mp * tile;  // a tile's slices run back to back
            fn(rows[mp + 1] - m0, ncols, sl.gn, w_rows + m0 * a_row + 4 * sl.g0, a_row, sl.seg_groups, 0,
               bp + 4 * sl.g0 * nr, first ? r0 + mp * tile : part, last ? nullptr : part, ep, m0, n0 - col0);
          }
        }
      }
  }, threads);
}

void dwconv2d(const ConvProblem& p, const DwconvKernel& kernel, const ConvPlan& plan) {
  const ConvGeometry& g = p.g;
  const size_t C = g.c, P = g.oh * g.ow;
  if (g.n == 0 || P == 0 || C == 0) return;
  const size_t c_pad = dwconv_c_pad(C);
  const Columns cols(p.col_off, nullptr, p.epilogue, 1, C, c_pad);
  const size_t eb = gemm_out_bytes(p.epilogue.kind);
  // About 80 multiply-adds per ns on one thread of the fastest kernels. They
  // are bound by memory: two threads only pay from about 75 us of work
  // (docs/design.md).
  const size_t threads = threads_for(static_cast<double>(g.n) * P * C * g.kh * g.kw / 80.0, 75e3);
  const DwconvWindow window{g.ow, g.sw, g.kh, g.kw, g.dh, g.dw};

  // NCHW planes (the plan's depthwise_planes and depthwise_plane): each
  // channel plane on its own, vectorized along the output rows, read from
  // and written to its planes directly (no transposes). DwconvPlanes kernels
  // read the planes as given, on the channels they take (those whose
  // weights w' fit int8, for a kernel of w_rows8); the others stage each
  // plane first (DwconvPlane).
  const DwconvPacked packed(C, g.kh, g.kw);
  const int16_t* const packed16 = reinterpret_cast<const int16_t*>(p.packed_w);
  const bool as_given = plan.kind == ConvKind::depthwise_planes;
  // Per channel: reads its plane as given (all of them, unless the kernel
  // needs the weights to fit int8).
  const int16_t* takes = as_given && !plan.dw_all_given ? packed16 + packed.fits : nullptr;
  size_t n_given = as_given ? C : 0;
  if (takes) n_given = static_cast<size_t>(std::count_if(takes, takes + C, [](int16_t f) { return f != 0; }));
  if (plan.kind != ConvKind::depthwise_rows) {
    const Stage st = stage_for(g, 0, g.oh, 0, 1);  // one channel plane, padded; c0 set per task
    // What every plane shares; each task fills in its channels' fields.
    DwconvPlane common;
    static_cast<DwconvWindow&>(common) = window;
    common.x_row = st.row_bytes();
    common.rows = g.oh;
    common.sh = g.sh;
    common.c_pad = c_pad;
    common.ep = &p.epilogue;
    DwconvPlanes given;
    static_cast<DwconvWindow&>(given) = window;
    given.in_h = g.h;
    given.in_w = g.w;
    given.pt = g.pt;
    given.pl = g.pl;
    given.rows = g.oh;
    given.sh = g.sh;
    given.zp = static_cast<uint8_t>(p.x_zp);
    given.flip = p.x_signed ? 0x80 : 0x00;
    const std::vector<uint8_t> fill_row(n_given ? g.w : 0, given.zp);
    given.fill_row = fill_row.data();
    given.ep = &p.epilogue;
    const int32_t* const rows8 = reinterpret_cast<const int32_t*>(packed16 + packed.rows8);
    const int32_t* const rows16 = reinterpret_cast<const int32_t*>(packed16 + packed.rows16);
    // Tasks: runs of channels of one image, a few per thread, so that the
    // per-call set-up of DwconvPlanes kernels is paid once per run.
    const size_t per_task = std::max<size_t>(1, ceil_div(g.n * C, 4 * threads) / std::max<size_t>(g.n, 1));
    const size_t runs = ceil_div(C, per_task);
    parallel_for(g.n * runs, [&](size_t task) {
      const size_t n = task / runs, c0 = task % runs * per_task, c1 = std::min(C, c0 + per_task);
      for (size_t ch = c0; ch < c1;) {
        if (n_given && (!takes || takes[ch])) {
          size_t end = ch + 1;
          while (end < c1 && (!takes || takes[end])) ++end;
          DwconvPlanes b = given;
          b.x = p.x + (n * C + ch) * g.h * g.w;
          b.planes = end - ch;
          b.w_rows8 = rows8 + ch * g.kh;
          b.w_rows16 = rows16 + ch * g.kh * 2;
          b.col_off = cols.col_off.data() + ch;
          b.scale = cols.scale.data() + ch;
          b.bias = cols.bias.data() + ch;
          b.y = static_cast<uint8_t*>(p.epilogue.c) + (n * C + ch) * P * eb;
          kernel.planes(b);
          ch = end;
          continue;
        }
        thread_local std::vector<uint8_t> plane_buf;
        uint8_t* stage = aligned(plane_buf, st.rows * st.row_bytes(), 128);
        Stage plane = st;
        plane.c0 = ch;
        stage_rows(p, n, plane, stage);
        DwconvPlane pl = common;
        pl.x = stage;
        pl.w_pairs = reinterpret_cast<const int32_t*>(p.packed_w) + ch;
        pl.col_off = cols.col_off[ch];
        pl.scale = cols.scale[ch];
        pl.bias = cols.bias[ch];
        pl.y = static_cast<uint8_t*>(p.epilogue.c) + (n * C + ch) * P * eb;
        kernel.plane(pl);
        ++ch;
      }
    }, threads);
    return;
  }

  // 3x3 without horizontal dilation, horizontal stride 1 or 2: the weights
  // also paired vertically (DwconvRow::w3) for kernels that reuse an input
  // column's pairs (DwconvKernel::column_pairs_name).
  const int16_t* w3 = plan.dw_column_pairs ? packed16 + packed.w3 : nullptr;

  DwconvRow r;
  r.c = C;
  r.c_pad = c_pad;
  static_cast<DwconvWindow&>(r) = window;
  r.w = packed16;
  r.w3 = w3;
  staged_rows(p, cols, threads, r, kernel.fn);
}

void gconv2d(const ConvProblem& p, GconvRowFn kernel) {
  const ConvGeometry& g = p.g;
  if (g.n == 0 || g.oh * g.ow == 0 || g.oc == 0) return;
  const size_t padded = ceil_div(g.oc, 16) * 16, cg4 = g.cg() / 4;
  const Columns cols(p.col_off, nullptr, p.epilogue, 1, g.oc, padded);
  // The kernels take the weight zero points themselves (GconvRow::w_zp).
  const std::vector<int32_t> w_zp = padded_columns<int32_t>(p.w_zp, 1, g.oc, padded, 0);
  // Per output channel, where its group's channels start (GconvRow::lane_dw).
  std::vector<int32_t> lane_dw(padded);
  for (size_t oc = 0; oc < padded; ++oc)
    lane_dw[oc] = static_cast<int32_t>((std::min(oc, g.oc - 1) / g.ocg()) * cg4);
  // About 130 multiply-adds per ns on one thread (docs/design.md).
  const size_t threads = threads_for(static_cast<double>(g.n) * g.oh * g.ow * g.oc * g.k() / 130.0);
  GconvRow r;
  static_cast<DwconvWindow&>(r) = DwconvWindow{g.ow, g.sw, g.kh, g.kw, g.dh, g.dw};
  r.c = g.c;
  r.oc = g.oc;
  r.cg = g.cg();
  r.ocg = g.ocg();
  r.w = p.gconv_w;
  r.w_zp = p.w_zp ? w_zp.data() : nullptr;
  r.lane_dw = lane_dw.data();
  staged_rows(p, cols, threads, r, kernel, kGconvSlackPixels * g.sw * g.c + 64);
}

}  // namespace iqk
