// The binding of quantize.
#include "binding/common.h"

#include <pybind11/stl.h>

#include "ops/ops.h"

namespace iqk_binding {

void bind_quantize(py::module_& m) {
  m.def(
      "quantize",
      [](const py::array& x, const py::array& y, size_t outer, size_t channels, size_t inner,
         const py::array& scale, const py::array& zp, int32_t qmin, int32_t qmax) {
        const size_t n = outer * channels * inner;
        const float* xp = checked_data<const float>(x, py::dtype::of<float>(), n, "x", false);
        bool y_signed;
        if (!is_q8(y, &y_signed)) throw py::type_error("out: expected dtype int8 or uint8");
        uint8_t* yp = checked_data<uint8_t>(y, y.dtype(), n, "out", true);
        const float* sp = checked_data<const float>(scale, py::dtype::of<float>(), channels, "scale", false);
        const int32_t* zpp = checked_data<const int32_t>(zp, py::dtype::of<int32_t>(), channels, "zero_point", false);
        const int32_t lo = y_signed ? -128 : 0, hi = y_signed ? 127 : 255;
        if (qmin < lo || qmax > hi || qmin > qmax)
          throw py::value_error("quantize: bounds outside the output dtype's range");
        py::gil_scoped_release release;
        iqk::quantize(xp, yp, outer, channels, inner, sp, zpp, qmin, qmax);
      },
      py::arg("x"), py::arg("out"), py::arg("outer"), py::arg("channels"), py::arg("inner"),
      py::arg("scale"), py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"));

  m.def(
      "dequantize",
      [](const py::array& q, const py::array& y, size_t outer, size_t channels, size_t inner,
         const py::array& scale, const py::array& zp) {
        const size_t n = outer * channels * inner;
        bool q_signed;
        if (!is_q8(q, &q_signed)) throw py::type_error("q: expected dtype int8 or uint8");
        const void* qp = checked_data<const void>(q, q.dtype(), n, "q", false);
        float* yp = checked_data<float>(y, py::dtype::of<float>(), n, "out", true);
        const float* sp = checked_data<const float>(scale, py::dtype::of<float>(), channels, "scale", false);
        const int32_t* zpp = checked_data<const int32_t>(zp, py::dtype::of<int32_t>(), channels, "zero_point", false);
        py::gil_scoped_release release;
        iqk::dequantize(qp, q_signed, yp, outer, channels, inner, sp, zpp);
      },
      py::arg("q"), py::arg("out"), py::arg("outer"), py::arg("channels"), py::arg("inner"),
      py::arg("scale"), py::arg("zero_point"));
}

}  // namespace iqk_binding
