// The binding of conv.
#include "binding/common.h"

#include <pybind11/stl.h>

#include "ops/ops.h"

namespace iqk_binding {

void bind_conv(py::module_& m) {
  m.def(
      "conv2d",
      [](const std::string& isa, const py::array& x, bool x_nchw, const std::vector<size_t>& geom,
         int32_t x_zp, const py::array& packed, bool depthwise, const py::object& w_zp,
         const py::array& col_off, iqk::GemmOut kind, const py::array& out, bool y_nchw, const py::object& scale,
         const py::object& bias, bool relu, int32_t out_zp, int32_t lo, int32_t hi, const py::object& gconv) {
        const iqk::KernelTable& t = table_of(isa);
        if (geom.size() != 16) throw py::value_error("geometry: expected 16 values");
        iqk::ConvProblem p;
        iqk::ConvGeometry& g = p.g;
        g.n = geom[0], g.c = geom[1], g.h = geom[2], g.w = geom[3], g.oc = geom[4], g.groups = geom[5];
        g.kh = geom[6], g.kw = geom[7], g.sh = geom[8], g.sw = geom[9], g.dh = geom[10], g.dw = geom[11];
        g.pt = geom[12], g.pl = geom[13];
        g.oh = geom[14], g.ow = geom[15];
        if (g.groups < 1 || g.c % g.groups || g.oc % g.groups || g.kh < 1 || g.kw < 1 || g.sh < 1 ||
            g.sw < 1 || g.dh < 1 || g.dw < 1)
          throw py::value_error("geometry: invalid convolution parameters");
        if (depthwise && !(g.groups == g.c && g.c == g.oc))
          throw py::value_error("depthwise: expected groups == C == OC");
        if (depthwise && g.kh * g.kw > iqk::kDwconvMaxTaps)
          throw py::value_error("depthwise: at most " + std::to_string(iqk::kDwconvMaxTaps) + " taps");
        if (x.ndim() != 4 || !is_q8(x, &p.x_signed)) throw py::type_error("x: expected a 4-D int8 or uint8 array");
        p.x = checked_data<const uint8_t>(x, x.dtype(), g.n * g.c * g.h * g.w, "x", false);
        p.x_nchw = x_nchw;
        p.x_zp = x_zp;
        if (p.x_signed ? (x_zp < -128 || x_zp > 127) : (x_zp < 0 || x_zp > 255))
          throw py::value_error("x_zp: outside x's dtype range");
        if (depthwise) {
          p.packed_w = checked_data<const uint8_t>(packed, py::dtype::of<int16_t>(),
                                                   iqk::dwconv_packed_elems(g.c, g.kh, g.kw), "packed", false);
          if (!w_zp.is_none()) throw py::value_error("w_zp: depthwise weights carry their zero point");
        } else {
          p.packed_w = checked_data<const uint8_t>(
              packed, py::dtype::of<uint8_t>(), g.groups * iqk::packed_b_bytes(t.gemm.shape, g.k(), g.ocg()),
              "packed", false);
          if (!w_zp.is_none())
            p.w_zp = checked_data<const int32_t>(w_zp.cast<py::array>(), py::dtype::of<int32_t>(), g.oc, "w_zp", false);
        }
        p.col_off = checked_data<const int32_t>(col_off, py::dtype::of<int32_t>(), g.oc, "col_off", false);
        if (!gconv.is_none()) {
          if (depthwise || !t.gconv.fn || g.groups < 2 || !iqk::gconv_fits(g.oc, g.cg(), g.ocg(), g.kh * g.kw))
            throw py::value_error("gconv: this convolution or path has no small-group kernel");
          p.gconv_w = checked_data<const int8_t>(gconv.cast<py::array>(), py::dtype::of<int8_t>(),
                                                 iqk::gconv_packed_bytes(g.oc, g.cg(), g.kh * g.kw), "gconv", false);
        }
        p.y_nchw = y_nchw;
        p.transpose16 = t.transpose16x16_b32;
        p.epilogue = epilogue_of(kind, out, g.n * g.oh * g.ow, g.oc, scale, bias, relu, out_zp, lo, hi);
        py::gil_scoped_release release;
        if (depthwise)
          iqk::dwconv2d(p, t.dwconv);
        else if (p.gconv_w)
          iqk::gconv2d(p, t.gconv.fn);
        else
          iqk::conv2d(p, t.gemm);
      },
      py::arg("isa"), py::arg("x"), py::arg("x_nchw"), py::arg("geometry"), py::arg("x_zp"), py::arg("packed"),
      py::arg("depthwise"), py::arg("w_zp"), py::arg("col_off"), py::arg("kind"), py::arg("out"),
      py::arg("y_nchw"), py::arg("scale"), py::arg("bias"), py::arg("relu"), py::arg("out_zp"), py::arg("lo"),
      py::arg("hi"), py::arg("gconv") = py::none());
  m.def("gconv_fits", &iqk::gconv_fits, py::arg("oc"), py::arg("cg"), py::arg("ocg"), py::arg("taps"));

  m.def(
      "conv1x1_nchw",
      [](const std::string& isa, const py::array& x, size_t n, size_t c, size_t pixels, size_t oc, int32_t x_zp,
         const py::array& w_rows, const py::array& w_sum, const py::object& w_zp, const py::array& out) {
        const iqk::KernelTable& t = table_of(isa);
        if (t.gemm.shape.layout != iqk::GemmLayout::vnni4)
          throw py::value_error("conv1x1_nchw: needs a vnni4 GEMM kernel, " + isa + " has " + t.gemm.name);
        iqk::Conv1x1Nchw p;
        p.n = n, p.c = c, p.pixels = pixels, p.oc = oc;
        if (x.ndim() != 4 || !is_q8(x, &p.x_signed)) throw py::type_error("x: expected a 4-D int8 or uint8 array");
        p.x = checked_data<const uint8_t>(x, x.dtype(), n * c * pixels, "x", false);
        if (p.x_signed ? (x_zp < -128 || x_zp > 127) : (x_zp < 0 || x_zp > 255))
          throw py::value_error("x_zp: outside x's dtype range");
        p.x_zp = x_zp;
        p.w_rows = checked_data<const uint8_t>(w_rows, py::dtype::of<uint8_t>(), oc * ((c + 3) / 4 * 4), "w_rows", false);
        p.w_sum = checked_data<const int32_t>(w_sum, py::dtype::of<int32_t>(), oc, "w_sum", false);
        p.pack64 = t.pack_vnni4_strips64;
        if (!w_zp.is_none())
          p.w_zp = checked_data<const int32_t>(w_zp.cast<py::array>(), py::dtype::of<int32_t>(), oc, "w_zp", false);
        p.y = checked_data<int32_t>(out, py::dtype::of<int32_t>(), n * oc * pixels, "out", true);
        py::gil_scoped_release release;
        iqk::conv1x1_nchw(p, t.gemm);
      },
      py::arg("isa"), py::arg("x"), py::arg("n"), py::arg("c"), py::arg("pixels"), py::arg("oc"), py::arg("x_zp"),
      py::arg("w_rows"), py::arg("w_sum"), py::arg("w_zp"), py::arg("out"));

  m.def("dwconv_packed_elems", &iqk::dwconv_packed_elems, py::arg("c"), py::arg("kh"), py::arg("kw"));
  m.attr("GEMM_LAYOUT_VNNI4") = static_cast<int>(iqk::GemmLayout::vnni4);
  m.attr("DWCONV_MAX_TAPS") = iqk::kDwconvMaxTaps;
}

}  // namespace iqk_binding
