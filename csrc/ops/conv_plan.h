// The convolution plan: which driver and kernels run a convolution, decided
// once, here, from its geometry, layout, output kind and the path. The
// drivers follow it; Python's conv2d, the tests and the bench ask it
// (intquant_kernels.conv_plan).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "ops/conv.h"
#include "ops/packed.h"
#include "runtime/isa.h"

namespace iqk {

enum class ConvKind : int {
  // 1x1, stride 1, unpadded, one group, NHWC: a GEMM of the pixels by the
  // channels on the input in place.
  gemm_in_place,
  // The same in NCHW with int32 output on a vnni4 GEMM kernel: the GEMM with
  // its roles swapped (ops/conv.h, Conv1x1Nchw).
  conv1x1_nchw,
  // Staged NHWC rows read by the GEMM tile kernel as its rows of A, one
  // kernel row per slice of K: no im2col copy.
  implicit_gemm,
  // Staged NHWC rows copied into im2col rows of one block of output pixels.
  im2col_gemm,
  // The small-group kernels on staged NHWC rows (kernels/conv/conv.h, GconvRow).
  small_groups,
  // The depthwise row kernels on staged NHWC rows (DwconvRow).
  depthwise_rows,
  // NCHW depthwise on the planes as given (DwconvPlanes); channels whose
  // weights the kernel cannot take (planes_bytes) on padded plane copies.
  depthwise_planes,
  // NCHW depthwise on a padded copy of each plane (DwconvPlane).
  depthwise_plane,
};

const char* conv_kind_name(ConvKind kind);

// NCHW depthwise planes narrower than this go through NHWC staging unless
// every channel reads its plane as given: the per-row cost of staging a
// plane outweighs the transposes there.
constexpr size_t kDwconvPlaneMinWidth = 24;

struct ConvPlan {
  Isa isa = Isa::scalar;
  ConvGeometry g;
  bool nchw = true;  // the layout of both x and y
  GemmOut out = GemmOut::i32;
  ConvKind kind = ConvKind::im2col_gemm;
  PackedKind weights = PackedKind::gemm_panels;  // the packed layout it reads
  // depthwise_rows: the kernel's 3x3 form (DwconvRow::w3) runs.
  bool dw_column_pairs = false;
  // depthwise_planes: every channel reads its plane as given (else the
  // channels whose weights do not fit int8 take padded copies).
  bool dw_all_given = false;
  // The GEMM kinds: the table's small-M GEMM kernel runs (KernelTable::
  // gemm_small_m; gemm_rows is below its gemm_small_m_rows), not its gemm.
  bool gemm_small_m = false;
  // The rows of A of the GEMMs the kind runs: output pixels per image
  // (implicit GEMM, im2col), all pixels (gemm_in_place), output channels
  // (conv1x1_nchw, weights x planes); what the small-M rule goes by.
  size_t gemm_rows = 0;
  // (role, kernel name) of each kernel that runs, as kernel_calls() counts them.
  std::vector<std::pair<std::string, std::string>> kernels;
  // How the input is read and the output written.
  std::string input, output;
};

// Throws std::invalid_argument for a geometry no driver can run (groups not
// dividing C and OC, a zero kernel, stride or dilation) or a path that is not
// available. `dw_weights_fit_int8`: every depthwise channel's w - w_zp fits
// int8 (true without weight zero points).
ConvPlan plan_conv(Isa isa, const ConvGeometry& g, bool nchw, GemmOut out, bool dw_weights_fit_int8);

// Runs p as the plan says, on the plan's path: w is the packed layout
// plan.weights (w_sum: the OC sums of the weights, for conv1x1_nchw).
void run_conv(const ConvPlan& plan, const ConvProblem& p, const Packed& w, const int32_t* w_sum);

}  // namespace iqk
