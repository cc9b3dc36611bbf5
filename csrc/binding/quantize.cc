// The binding of quantize.
#include "binding/common.h"

#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "ops/ops.h"

namespace iqk_binding {

namespace {
// The data of a C-contiguous float32 array, aligned to a float (the kernels
// load whole floats).
const float* checked_aligned_floats(const py::array& x, const char* what) {
  const float* p =
      checked_data<const float>(x, py::dtype::of<float>(), static_cast<size_t>(x.size()), what, false);
  if (reinterpret_cast<uintptr_t>(p) % alignof(float) != 0)
    throw py::value_error(std::string(what) + ": expected an array aligned to its dtype");
  return p;
}

const char* status_name(iqk::DynamicStatus s) {
  switch (s) {
    case iqk::DynamicStatus::ok:
      return "ok";
    case iqk::DynamicStatus::not_finite:
      return "not_finite";
    case iqk::DynamicStatus::range_overflow:
      return "range_overflow";
  }
  return "unknown";
}
}  // namespace

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

  // The range kernel of a path on any C-contiguous float32 array.
  m.def(
      "value_range",
      [](const std::string& isa, const py::array& x) {
        const iqk::KernelTable& t = table_of(isa);
        const float* xp = checked_aligned_floats(x, "x");
        float lo, hi;
        bool finite;
        {
          py::gil_scoped_release release;
          finite = iqk::value_range(t, xp, static_cast<size_t>(x.size()), &lo, &hi);
        }
        return py::make_tuple(lo, hi, finite);
      },
      py::arg("isa"), py::arg("x"),
      "(min, max, all_finite) of the float32 array x (C-contiguous, aligned, any shape) on ISA path `isa`: "
      "min and max are defined when all_finite is True (+inf, -inf for an empty x); a zero may come back "
      "with either sign.");

  // Dynamic quantization (python/intquant_kernels/_quantize.py checks the
  // arguments and raises for a status other than "ok").
  m.def(
      "dynamic_quantize_tensor",
      [](const py::array& x, const py::array& y) {
        const size_t n = static_cast<size_t>(x.size());
        const float* xp = checked_aligned_floats(x, "x");
        uint8_t* yp = checked_data<uint8_t>(y, py::dtype::of<uint8_t>(), n, "out", true);
        float scale = 0;
        int32_t zp = 0;
        iqk::DynamicStatus status;
        {
          py::gil_scoped_release release;
          status = iqk::dynamic_quantize_tensor(xp, yp, n, &scale, &zp);
        }
        return py::make_tuple(scale, zp, status_name(status));
      },
      py::arg("x"), py::arg("out"));

  m.def(
      "dynamic_quantize_rows",
      [](const py::array& x, const py::array& y, size_t rows, size_t cols, const py::array& scale) {
        const float* xp = checked_aligned_floats(x, "x");
        if (static_cast<size_t>(x.size()) != rows * cols)
          throw py::value_error("x: expected " + std::to_string(rows * cols) + " elements, got " +
                                std::to_string(x.size()));
        uint8_t* yp = checked_data<uint8_t>(y, py::dtype::of<int8_t>(), rows * cols, "out", true);
        float* sp = checked_data<float>(scale, py::dtype::of<float>(), rows, "scale", true);
        iqk::DynamicStatus status;
        {
          py::gil_scoped_release release;
          status = iqk::dynamic_quantize_rows(xp, yp, rows, cols, sp);
        }
        return status_name(status);
      },
      py::arg("x"), py::arg("out"), py::arg("rows"), py::arg("cols"), py::arg("scale"));
}

}  // namespace iqk_binding
