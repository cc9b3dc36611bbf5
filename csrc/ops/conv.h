// int8 2-D convolution: the problem description of the drivers (ops/conv.cc).
//
// The drivers first copy the input rows a block of output rows needs into a
// staging buffer: NHWC pixels of the group's channels (all C channels for
// the row kernels), as unsigned bytes (int8 activations shifted by 128, as
// in the GEMM), with the padding filled by the activation zero point. From
// there:
//  - the general case builds rows of A (im2col of one block of output pixels,
//    k = (kh * KW + kw) * Cg + c), or reads them from the staging rows (the
//    implicit GEMM), and runs the GEMM tile kernel of the ISA on them against
//    each group's packed weights (conv2d);
//  - depthwise (groups == C == OC) runs a depthwise row kernel over the
//    staging rows (dwconv2d), and small groups a small-group row kernel
//    (gconv2d).
// So NCHW and NHWC input, any padding, stride and dilation reach the kernels
// in one form, and no full im2col buffer is ever made. Two paths do without
// the NHWC staging: the planar NCHW depthwise kernels, which read the planes
// as given (DwconvPlanes) or a padded copy of one plane (DwconvPlane), and
// the 1x1 NCHW convolution with int32 output (Conv1x1Nchw).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/conv/conv.h"
#include "kernels/gemm/gemm.h"
#include "kernels/layout/transpose.h"

namespace iqk {

struct ConvGeometry {
  size_t n = 0, c = 0, h = 0, w = 0;  // input
  size_t oc = 0, groups = 1, kh = 1, kw = 1;
  size_t sh = 1, sw = 1, dh = 1, dw = 1;
  size_t pt = 0, pl = 0;  // top and left padding (bottom/right follow from oh, ow)
  size_t oh = 0, ow = 0;
  size_t cg() const { return c / groups; }
  size_t ocg() const { return oc / groups; }
  size_t k() const { return cg() * kh * kw; }
};

struct ConvProblem {
  ConvGeometry g;
  const uint8_t* x = nullptr;
  bool x_nchw = false, x_signed = false;
  int32_t x_zp = 0;  // in x's own dtype range
  bool y_nchw = false;
  // General case: per group, pack_b() of the (K, OCg) weight matrix, one
  // after the other. Depthwise: see DwconvRow.
  const uint8_t* packed_w = nullptr;
  const int32_t* w_zp = nullptr;    // OC entries, or null when all are zero (general case only)
  const int32_t* col_off = nullptr;  // OC entries (gemm.h; depthwise: DwconvRow)
  // Small groups (gconv2d): the weights of GconvRow.
  const int8_t* gconv_w = nullptr;
  // NCHW output: 16 x 16 transposes of the ISA, or null (kernel_table.h).
  Transpose16x16Fn transpose16 = nullptr;
  // kind, c (the output array, in y's layout), relu, out_zp, lo, hi as given;
  // scale (OC, required for f32 and q8) and bias (OC or null). ldc is set by
  // the driver.
  GemmEpilogue epilogue;
};

// A 1x1, stride-1, unpadded NCHW convolution of one group with int32 output:
// each image's output planes are Y = W X, OC x P (P = H * W pixels), the
// product of the weight rows and the image's channel planes. It runs on the
// GEMM tile kernels with the roles of the GEMM swapped, so that tiles of Y
// are stored straight into the NCHW planes (no transposes): A = w + 128
// (uint8 rows of OC), B = x_u - 128 (int8, packed per call from the planes),
// and the corrections of both shifts and both zero points come in as each
// tile's starting sums (acc_in: the per-row terms) and through the epilogue
// (the per-column and product terms); see conv1x1_nchw in ops/conv.cc.
// vnni4 kernels only.
struct Conv1x1Nchw {
  size_t n = 0, c = 0, pixels = 0, oc = 0;
  const uint8_t* x = nullptr;  // N x C x pixels
  bool x_signed = false;
  int32_t x_zp = 0;               // in x's own dtype range
  const uint8_t* w_rows = nullptr;  // OC rows of ceil(C / 4) * 4 bytes: w ^ 0x80, zero past C
  const int32_t* w_sum = nullptr;   // OC: sum over c of w[oc, c]
  const int32_t* w_zp = nullptr;    // OC, or null when all are zero
  int32_t* y = nullptr;             // N x OC x pixels
  PackVnni4Strips64Fn pack64 = nullptr;  // the ISA's packing of 64 columns at once, or null
};

struct ConvPlan;  // conv_plan.h

// The drivers, each for the plan kinds named in conv_plan.h (run_conv calls
// them): conv2d for implicit_gemm (implicit) and im2col_gemm.
void conv2d(const ConvProblem& p, const GemmKernel& kernel, bool implicit);
void gconv2d(const ConvProblem& p, GconvRowFn kernel);
void conv1x1_nchw(const Conv1x1Nchw& p, const GemmKernel& kernel);
void dwconv2d(const ConvProblem& p, const DwconvKernel& kernel, const ConvPlan& plan);

}  // namespace iqk
