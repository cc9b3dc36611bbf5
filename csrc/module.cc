// The binding layer: checks dtypes, shapes and contiguity, releases the GIL and
// calls the C++ API. Argument validation with user-facing messages, axis
// handling and defaults live in python/intquant_kernels/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "cpu_features.h"
#include "kernel_counter.h"
#include "kernel_table.h"
#include "ops.h"
#include "thread_pool.h"

namespace py = pybind11;

namespace {

iqk::Isa isa_from_name(const std::string& name) {
  const auto isa = iqk::parse_isa(name);
  if (!isa) {
    std::string all;
    for (int i = 0; i < iqk::kIsaCount; ++i)
      all += (all.empty() ? "" : ", ") + std::string(iqk::isa_name(static_cast<iqk::Isa>(i)));
    std::string avail;
    for (const auto& s : iqk::available_isas()) avail += (avail.empty() ? "" : ", ") + s;
    throw py::value_error("unknown ISA '" + name + "'; known: " + all + "; available: " + avail);
  }
  return *isa;
}

// The buffer of a C-contiguous array of the given dtype and element count.
template <typename T>
T* checked_data(const py::array& a, const py::dtype& dtype, size_t count, const char* what,
                bool writable) {
  if (!a.dtype().is(dtype) && !a.dtype().equal(dtype))
    throw py::type_error(std::string(what) + ": expected dtype " + py::str(dtype).cast<std::string>() +
                         ", got " + py::str(a.dtype()).cast<std::string>());
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(what) + ": expected a C-contiguous array");
  if (static_cast<size_t>(a.size()) != count)
    throw py::value_error(std::string(what) + ": expected " + std::to_string(count) +
                          " elements, got " + std::to_string(a.size()));
  if (writable && !a.writeable()) throw py::value_error(std::string(what) + ": array is read-only");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

bool is_q8(const py::array& a, bool* is_signed) {
  if (a.dtype().equal(py::dtype::of<int8_t>())) return *is_signed = true;
  if (a.dtype().equal(py::dtype::of<uint8_t>())) return !(*is_signed = false);
  return false;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "intquant_kernels compiled core (use the intquant_kernels package, not this module)";

  m.def("isa_names", [] {
    std::vector<std::string> out;
    for (int i = 0; i < iqk::kIsaCount; ++i) out.emplace_back(iqk::isa_name(static_cast<iqk::Isa>(i)));
    return out;
  });
  m.def("isa_built", [](const std::string& name) { return iqk::isa_built(isa_from_name(name)); });
  m.def("isa_supported_by_cpu",
        [](const std::string& name) { return iqk::isa_supported_by_cpu(isa_from_name(name)); });
  m.def("available_isas", &iqk::available_isas);
  m.def("active_isa", [] { return std::string(iqk::isa_name(iqk::active_isa())); });
  m.def("set_isa", [](const std::string& name) {
    try {
      iqk::set_active_isa(isa_from_name(name));
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  });
  m.def("cpu_features", [] {
    py::dict d;
    for (const auto& [name, on] : iqk::cpu_features().flags()) d[py::str(name)] = on;
    return d;
  });
  m.def("cpu_vendor", [] { return iqk::cpu_features().vendor; });
  m.def("cpu_brand", [] { return iqk::cpu_features().brand; });
  m.def("kernel_names", [](const std::string& name) {
    const iqk::KernelTable* t;
    try {
      t = &iqk::kernel_table(isa_from_name(name));
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
    py::dict d;
    d["quantize"] = t->quantize.name;
    d["quantize_channels"] = t->quantize_channels.name;
    d["dequantize_s8"] = t->dequantize_s8.name;
    d["dequantize_u8"] = t->dequantize_u8.name;
    d["dequantize_channels_s8"] = t->dequantize_channels_s8.name;
    d["dequantize_channels_u8"] = t->dequantize_channels_u8.name;
    return d;
  });
  m.def("kernel_call_counts", [] {
    py::dict d;
    for (const auto& [name, calls] : iqk::kernel_call_counts()) d[py::str(name)] = calls;
    return d;
  });
  m.def("get_num_threads", &iqk::get_num_threads);
  m.def("default_num_threads", &iqk::default_num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("number of threads must be a positive integer, got " + std::to_string(n));
    iqk::set_num_threads(n);
  });

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
