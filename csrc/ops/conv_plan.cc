#include "ops/conv_plan.h"

#include <stdexcept>

#include "ops/ops.h"
#include "runtime/kernel_table.h"

namespace iqk {

const char* conv_kind_name(ConvKind kind) {
  switch (kind) {
    case ConvKind::gemm_in_place: return "gemm_in_place";
    case ConvKind::conv1x1_nchw: return "conv1x1_nchw";
    case ConvKind::implicit_gemm: return "implicit_gemm";
    case ConvKind::im2col_gemm: return "im2col_gemm";
    case ConvKind::small_groups: return "small_groups";
    case ConvKind::depthwise_rows: return "depthwise_rows";
    case ConvKind::depthwise_planes: return "depthwise_planes";
    case ConvKind::depthwise_plane: return "depthwise_plane";
  }
  return "?";
}

namespace {

// The GEMM kinds: which of the three, from the geometry and the kernel.
ConvKind gemm_kind(const ConvGeometry& g, bool nchw, GemmOut out, const GemmKernel& gemm) {
  const bool one_by_one = g.groups == 1 && g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 &&
                          g.pl == 0 && g.oh == g.h && g.ow == g.w;
  if (one_by_one && !nchw) return ConvKind::gemm_in_place;
  if (one_by_one && out == GemmOut::i32 && gemm.shape.layout == GemmLayout::vnni4) return ConvKind::conv1x1_nchw;
  // Implicit GEMM: when the KW taps of one kernel row are one contiguous run
  // of staging bytes (no horizontal dilation) that fills whole k-groups, the
  // tile kernel reads its rows of A straight from the staging rows. Its
  // tiles stay within one output row, so rows much narrower than the tile
  // height (the kernel's implicit_min_width) take im2col.
  const size_t cg = g.cg();
  const size_t min_width = gemm.implicit_min_width ? gemm.implicit_min_width : 2 * static_cast<size_t>(gemm.shape.mr);
  if (gemm.shape.a_bytes() && g.dw == 1 && cg > 0 && (g.kw * cg) % gemm.shape.group_bytes() == 0 &&
      g.ow >= min_width)
    return ConvKind::implicit_gemm;
  return ConvKind::im2col_gemm;
}

}  // namespace

ConvPlan plan_conv(Isa isa, const ConvGeometry& g, bool nchw, GemmOut out, bool dw_weights_fit_int8) {
  if (g.groups < 1 || g.c % g.groups || g.oc % g.groups || g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1 ||
      g.dh < 1 || g.dw < 1)
    throw std::invalid_argument("geometry: invalid convolution parameters");
  const KernelTable& t = kernel_table(isa);
  ConvPlan p;
  p.isa = isa;
  p.g = g;
  p.nchw = nchw;
  p.out = out;
  const char* staged = nchw ? "NCHW planes staged as NHWC rows (padding filled)" : "NHWC rows staged (padding filled)";
  p.input = staged;
  p.output = nchw ? "tiles of output rows transposed into the NCHW planes" : "NHWC rows in place";

  // A 1x1 convolution of one group is a GEMM as it stands (one channel
  // included, which is also depthwise).
  const ConvKind gk = gemm_kind(g, nchw, out, t.gemm);
  const bool depthwise = g.groups == g.c && g.c == g.oc && g.kh * g.kw <= kDwconvMaxTaps;
  if (depthwise && gk != ConvKind::gemm_in_place && gk != ConvKind::conv1x1_nchw) {
    p.weights = PackedKind::depthwise;
    const DwconvKernel& k = t.dwconv;
    const bool planar_ok = nchw && g.sw <= 2 && k.plane;
    const bool as_given = planar_ok && k.planes && g.kw <= 4 && g.dw == 1 &&
                          3 * g.sh + (g.kh - 1) * g.dh + 1 <= kDwconvPlanesMaxSpan;
    p.dw_all_given = as_given && (!k.planes_bytes || dw_weights_fit_int8);
    if (planar_ok && ((p.dw_all_given && k.planes_narrow) || g.ow >= kDwconvPlaneMinWidth)) {
      p.output = "NCHW planes in place";
      if (as_given) {
        p.kind = ConvKind::depthwise_planes;
        p.input = p.dw_all_given ? "NCHW planes as given" : "NCHW planes as given; the others as padded plane copies";
        p.kernels.emplace_back("dwconv_nchw_planes", k.planes_name);
        if (!p.dw_all_given) p.kernels.emplace_back("dwconv_nchw", k.plane_name);
      } else {
        p.kind = ConvKind::depthwise_plane;
        p.input = "padded copies of each NCHW plane";
        p.kernels.emplace_back("dwconv_nchw", k.plane_name);
      }
      return p;
    }
    p.kind = ConvKind::depthwise_rows;
    p.dw_column_pairs = k.column_pairs_name && g.kh == 3 && g.kw == 3 && g.dw == 1 && g.sw <= 2;
    p.kernels.emplace_back("dwconv", k.name);
    // The row kernel runs its 3x3 form, which counts itself too.
    if (p.dw_column_pairs) p.kernels.emplace_back("dwconv3x3", k.column_pairs_name);
    return p;
  }
  if (g.groups > 1 && t.gconv.fn && gconv_fits(g.oc, g.cg(), g.ocg(), g.kh * g.kw)) {
    p.kind = ConvKind::small_groups;
    p.weights = PackedKind::small_groups;
    p.kernels.emplace_back("gconv", t.gconv.name);
    return p;
  }
  // The small-M rule (gemm_kernel_for) by the rows of the kind's GEMMs; both
  // kernels share a layout, so only the implicit GEMM's fit to the tile
  // height may change with the kernel.
  p.gemm_rows = gk == ConvKind::conv1x1_nchw ? g.oc : gk == ConvKind::gemm_in_place ? g.n * g.h * g.w : g.oh * g.ow;
  const GemmKernel& gemm = gemm_kernel_for(t, p.gemm_rows);
  p.gemm_small_m = &gemm != &t.gemm;
  p.kind = gemm_kind(g, nchw, out, gemm);
  p.weights = p.kind == ConvKind::conv1x1_nchw ? PackedKind::conv1x1_rows : PackedKind::gemm_panels;
  if (p.kind == ConvKind::gemm_in_place) {
    p.input = "NHWC pixels in place (a GEMM of pixels by channels)";
  } else if (p.kind == ConvKind::conv1x1_nchw) {
    p.input = "NCHW planes packed per call in strips of pixel columns";
    p.output = "NCHW planes in place (weights x planes)";
    p.kernels.emplace_back("driver", "conv1x1_nchw");
  }
  p.kernels.emplace_back("gemm", gemm.name);
  return p;
}

void run_conv(const ConvPlan& plan, const ConvProblem& p, const Packed& w, const int32_t* w_sum) {
  const KernelTable& t = kernel_table(plan.isa);
  const ConvGeometry& g = plan.g;
  const GemmKernel& gemm_k = plan.gemm_small_m ? t.gemm_small_m : t.gemm;
  switch (plan.kind) {
    case ConvKind::gemm_in_place: {
      GemmProblem q;
      q.a = p.x;
      q.a_signed = p.x_signed;
      q.M = g.n * g.h * g.w;
      q.K = g.c;
      q.N = g.oc;
      q.lda = g.c;
      q.packed_b = w.bytes.data();
      q.b_zp = p.w_zp;
      q.col_off = p.col_off;
      q.epilogue = p.epilogue;
      q.epilogue.ldc = g.oc;
      gemm(q, gemm_k);
      return;
    }
    case ConvKind::conv1x1_nchw: {
      Conv1x1Nchw q;
      q.n = g.n;
      q.c = g.c;
      q.pixels = g.h * g.w;
      q.oc = g.oc;
      q.x = p.x;
      q.x_signed = p.x_signed;
      q.x_zp = p.x_zp;
      q.w_rows = w.bytes.data();
      q.w_sum = w_sum;
      q.w_zp = p.w_zp;
      q.y = static_cast<int32_t*>(p.epilogue.c);
      q.pack64 = t.pack_vnni4_strips64;
      conv1x1_nchw(q, gemm_k);
      return;
    }
    case ConvKind::implicit_gemm:
    case ConvKind::im2col_gemm: {
      ConvProblem q = p;
      q.packed_w = w.bytes.data();
      q.transpose16 = t.transpose16x16_b32;
      conv2d(q, gemm_k, plan.kind == ConvKind::implicit_gemm);
      return;
    }
    case ConvKind::small_groups: {
      ConvProblem q = p;
      q.gconv_w = reinterpret_cast<const int8_t*>(w.bytes.data());
      q.transpose16 = t.transpose16x16_b32;
      gconv2d(q, t.gconv.fn);
      return;
    }
    case ConvKind::depthwise_rows:
    case ConvKind::depthwise_planes:
    case ConvKind::depthwise_plane: {
      if (plan.kind == ConvKind::depthwise_planes && plan.dw_all_given && t.dwconv.planes_bytes) {
        const DwconvPacked at(g.c, g.kh, g.kw);
        const int16_t* fits = reinterpret_cast<const int16_t*>(w.bytes.data()) + at.fits;
        for (size_t c = 0; c < g.c; ++c)
          if (!fits[c]) throw std::invalid_argument("plan: made for depthwise weights that fit int8; these do not");
      }
      ConvProblem q = p;
      q.packed_w = w.bytes.data();
      q.transpose16 = t.transpose16x16_b32;
      dwconv2d(q, t.dwconv, plan);
      return;
    }
  }
}

}  // namespace iqk
