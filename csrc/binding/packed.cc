// The binding of packed weights: the opaque Packed object and the two ways
// to make one.
#include "binding/common.h"

#include "ops/packed.h"

namespace iqk_binding {

namespace {

iqk::PackedKind packed_kind_of(const std::string& name) {
  for (auto k : {iqk::PackedKind::gemm_panels, iqk::PackedKind::conv1x1_rows, iqk::PackedKind::depthwise,
                 iqk::PackedKind::small_groups})
    if (name == iqk::packed_kind_name(k)) return k;
  throw py::value_error("unknown packed layout '" + name +
                        "'; known: gemm_panels, conv1x1_rows, depthwise, small_groups");
}

}  // namespace

void check_packed(const iqk::Packed& w, iqk::PackedKind kind, iqk::Isa isa, size_t groups, size_t k, size_t n,
                  size_t kh, size_t kw) {
  const bool isa_ok = kind != iqk::PackedKind::gemm_panels || w.isa == isa;
  if (w.kind != kind || !isa_ok || w.groups != groups || w.k != k || w.n != n || w.kh != kh || w.kw != kw) {
    std::string want = std::string(iqk::packed_kind_name(kind)) +
                       (kind == iqk::PackedKind::gemm_panels ? std::string(" for ") + iqk::isa_name(isa) : "") + ", " +
                       std::to_string(groups) + " group(s) of K=" + std::to_string(k) + " x N=" + std::to_string(n) +
                       " (kernel " + std::to_string(kh) + "x" + std::to_string(kw) + ")";
    throw py::value_error("packed weights: expected " + want + ", got " + w.describe());
  }
}

void bind_packed(py::module_& m) {
  py::class_<iqk::Packed>(m, "Packed", "Weights in the layout of the kernels that read them (made in C++).")
      .def_property_readonly("kind", [](const iqk::Packed& p) { return iqk::packed_kind_name(p.kind); })
      .def_property_readonly("isa",
                             [](const iqk::Packed& p) -> py::object {
                               if (p.isa == iqk::Isa::count) return py::none();
                               return py::str(iqk::isa_name(p.isa));
                             })
      .def_property_readonly("nbytes", [](const iqk::Packed& p) { return p.bytes.size(); })
      .def("describe", &iqk::Packed::describe)
      .def("__repr__", [](const iqk::Packed& p) { return "<Packed " + p.describe() + ">"; });

  m.def(
      "pack_gemm_weights",
      [](const py::array& b, const std::string& isa) {
        if (b.ndim() != 2) throw py::value_error("b: expected a 2-D array");
        const size_t K = b.shape(0), N = b.shape(1);
        const int8_t* bp = checked_data<const int8_t>(b, py::dtype::of<int8_t>(), K * N, "b", false);
        const iqk::Isa path = table_of(isa).isa;  // available, or a ValueError naming the available paths
        py::gil_scoped_release release;
        return iqk::pack_gemm_weights(path, bp, K, N);
      },
      py::arg("b"), py::arg("isa"));

  m.def(
      "pack_conv_weights",
      [](const py::array& w, const py::array& zero_point, size_t groups, const std::string& kind,
         const std::string& isa) {
        if (w.ndim() != 4) throw py::value_error("w: expected a 4-D array");
        const size_t oc = w.shape(0), cg = w.shape(1), kh = w.shape(2), kw = w.shape(3);
        const int8_t* wp = checked_data<const int8_t>(w, py::dtype::of<int8_t>(), oc * cg * kh * kw, "w", false);
        const int32_t* zp =
            checked_data<const int32_t>(zero_point, py::dtype::of<int32_t>(), oc, "zero_point", false);
        const iqk::PackedKind k = packed_kind_of(kind);
        // GEMM panels are for an available path's kernel; the other layouts serve every path.
        const iqk::Isa path = k == iqk::PackedKind::gemm_panels ? table_of(isa).isa : isa_from_name(isa);
        py::gil_scoped_release release;
        try {
          return iqk::pack_conv_weights(k, path, wp, zp, oc, cg, kh, kw, groups);
        } catch (const std::invalid_argument& e) {
          py::gil_scoped_acquire acquire;
          throw py::value_error(e.what());
        }
      },
      py::arg("w"), py::arg("zero_point"), py::arg("groups"), py::arg("kind"), py::arg("isa"));
}

}  // namespace iqk_binding
