// The binding of convolution: its geometry, its plan, and running a plan.
#include <pybind11/stl.h>

#include <stdexcept>

#include "binding/common.h"
#include "ops/conv_plan.h"
#include "ops/ops.h"

namespace iqk_binding {

namespace {

iqk::ConvPlan make_plan(const std::string& isa, const iqk::ConvGeometry& g, bool nchw, iqk::GemmOut out,
                        bool dw_weights_fit_int8) {
  const iqk::Isa path = table_of(isa).isa;  // available, or a ValueError naming the available paths
  try {
    return iqk::plan_conv(path, g, nchw, out, dw_weights_fit_int8);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

void run(const iqk::ConvPlan& plan, const py::array& x, int32_t x_zp, const iqk::Packed& weights,
         const py::object& w_zp, const py::object& w_sum, const py::array& col_off, const py::array& out,
         const py::object& scale, const py::object& bias, bool relu, int32_t out_zp, int32_t lo, int32_t hi) {
  const iqk::ConvGeometry& g = plan.g;
  iqk::ConvProblem p;
  p.g = g;
  if (x.ndim() != 4 || !is_q8(x, &p.x_signed)) throw py::type_error("x: expected a 4-D int8 or uint8 array");
  p.x = checked_data<const uint8_t>(x, x.dtype(), g.n * g.c * g.h * g.w, "x", false);
  p.x_nchw = p.y_nchw = plan.nchw;
  if (p.x_signed ? (x_zp < -128 || x_zp > 127) : (x_zp < 0 || x_zp > 255))
    throw py::value_error("x_zp: outside x's dtype range");
  p.x_zp = x_zp;
  check_packed(weights, plan.weights, plan.isa, g.groups, g.k(), g.ocg(), g.kh, g.kw);
  if (!w_zp.is_none()) {
    if (plan.weights == iqk::PackedKind::depthwise)
      throw py::value_error("w_zp: depthwise weights carry their zero point");
    p.w_zp = checked_data<const int32_t>(w_zp.cast<py::array>(), py::dtype::of<int32_t>(), g.oc, "w_zp", false);
  }
  const int32_t* sums = nullptr;
  if (plan.kind == iqk::ConvKind::conv1x1_nchw) {
    if (w_sum.is_none()) throw py::value_error("w_sum: required by conv1x1_nchw");
    sums = checked_data<const int32_t>(w_sum.cast<py::array>(), py::dtype::of<int32_t>(), g.oc, "w_sum", false);
  }
  p.col_off = checked_data<const int32_t>(col_off, py::dtype::of<int32_t>(), g.oc, "col_off", false);
  p.epilogue = epilogue_of(plan.out, out, g.n * g.oh * g.ow, g.oc, scale, bias, relu, out_zp, lo, hi);
  py::gil_scoped_release release;
  try {
    iqk::run_conv(plan, p, weights, sums);
  } catch (const std::invalid_argument& e) {
    py::gil_scoped_acquire acquire;
    throw py::value_error(e.what());
  }
}

}  // namespace

void bind_conv(py::module_& m) {
  py::class_<iqk::ConvGeometry>(m, "ConvGeometry", "A convolution's sizes: input, output channels, kernel, "
                                                   "stride, dilation, top/left padding and output size.")
      .def(py::init([](size_t n, size_t c, size_t h, size_t w, size_t oc, size_t groups, size_t kh, size_t kw,
                       size_t sh, size_t sw, size_t dh, size_t dw, size_t pt, size_t pl, size_t oh, size_t ow) {
             iqk::ConvGeometry g;
             g.n = n, g.c = c, g.h = h, g.w = w, g.oc = oc, g.groups = groups, g.kh = kh, g.kw = kw;
             g.sh = sh, g.sw = sw, g.dh = dh, g.dw = dw, g.pt = pt, g.pl = pl, g.oh = oh, g.ow = ow;
             return g;
           }),
           py::kw_only(), py::arg("n"), py::arg("c"), py::arg("h"), py::arg("w"), py::arg("oc"), py::arg("groups"),
           py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("dh"), py::arg("dw"), py::arg("pt"),
           py::arg("pl"), py::arg("oh"), py::arg("ow"))
#define IQK_FIELD(f) .def_readonly(#f, &iqk::ConvGeometry::f)
      IQK_FIELD(n) IQK_FIELD(c) IQK_FIELD(h) IQK_FIELD(w) IQK_FIELD(oc) IQK_FIELD(groups) IQK_FIELD(kh)
      IQK_FIELD(kw) IQK_FIELD(sh) IQK_FIELD(sw) IQK_FIELD(dh) IQK_FIELD(dw) IQK_FIELD(pt) IQK_FIELD(pl)
      IQK_FIELD(oh) IQK_FIELD(ow);
#undef IQK_FIELD

  py::class_<iqk::ConvPlan>(m, "ConvPlan", "What runs a convolution (csrc/ops/conv_plan.h).")
      .def_property_readonly("isa", [](const iqk::ConvPlan& p) { return iqk::isa_name(p.isa); })
      .def_property_readonly("kind", [](const iqk::ConvPlan& p) { return iqk::conv_kind_name(p.kind); })
      .def_property_readonly("weights", [](const iqk::ConvPlan& p) { return iqk::packed_kind_name(p.weights); })
      .def_readonly("kernels", &iqk::ConvPlan::kernels)
      .def_readonly("gemm_small_m", &iqk::ConvPlan::gemm_small_m)
      .def_readonly("gemm_rows", &iqk::ConvPlan::gemm_rows)
      .def_readonly("input", &iqk::ConvPlan::input)
      .def_readonly("output", &iqk::ConvPlan::output)
      .def_readonly("nchw", &iqk::ConvPlan::nchw)
      .def_readonly("out", &iqk::ConvPlan::out)
      .def_readonly("geometry", &iqk::ConvPlan::g);

  m.def("plan_conv", &make_plan, py::arg("isa"), py::arg("geometry"), py::arg("nchw"), py::arg("out"),
        py::arg("dw_weights_fit_int8"));
  m.attr("DWCONV_PLANE_MIN_WIDTH") = iqk::kDwconvPlaneMinWidth;

  m.def("conv2d", &run, py::arg("plan"), py::arg("x"), py::arg("x_zp"), py::arg("weights"), py::arg("w_zp"),
        py::arg("w_sum"), py::arg("col_off"), py::arg("out"), py::arg("scale"), py::arg("bias"), py::arg("relu"),
        py::arg("out_zp"), py::arg("lo"), py::arg("hi"));
}

}  // namespace iqk_binding
