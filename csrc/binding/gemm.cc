// The binding of gemm.
#include "binding/common.h"

#include <pybind11/stl.h>

#include "ops/ops.h"

namespace iqk_binding {

void bind_gemm(py::module_& m) {
  // What an epilogue writes (gemm.h); shared by gemm and conv2d.
  py::enum_<iqk::GemmOut>(m, "OutKind")
      .value("i32", iqk::GemmOut::i32)
      .value("f32", iqk::GemmOut::f32)
      .value("q8", iqk::GemmOut::q8);
  m.def(
      "qgemm_columns",
      [](size_t n, float a_scale, const py::array& b_scale, const py::object& bias,
         const py::object& out_scale) -> py::object {
        const size_t nb = static_cast<size_t>(b_scale.size());
        if (nb != 1 && nb != n) throw py::value_error("b_scale: expected 1 or N values");
        const float* bs = checked_data<const float>(b_scale, py::dtype::of<float>(), nb, "b_scale", false);
        const bool requantize = !out_scale.is_none();
        const float* bp = nullptr;
        if (!bias.is_none()) {
          if (!requantize) throw py::value_error("bias: only a requantized epilogue quantizes its bias");
          bp = checked_data<const float>(bias.cast<py::array>(), py::dtype::of<float>(), n, "bias", false);
        }
        py::array_t<float> out(static_cast<py::ssize_t>(n));
        py::array_t<int64_t> bias_q(static_cast<py::ssize_t>(bp ? n : 0));
        const std::string err = iqk::gemm_columns(
            n, a_scale, bs, nb == n && n != 1, bp, requantize,
            requantize ? out_scale.cast<float>() : 1.0f, out.mutable_data(), bias_q.mutable_data());
        if (!err.empty()) throw py::value_error(err);
        return py::make_tuple(out, bp ? py::object(bias_q) : py::object(py::none()));
      },
      py::arg("n"), py::arg("a_scale"), py::arg("b_scale"), py::arg("bias"), py::arg("out_scale"));

  m.def(
      "qgemm_row_scales",
      [](const py::array& a_scale, const py::object& b_range, const py::object& out_scale) {
        const size_t m = static_cast<size_t>(a_scale.size());
        const float* a = checked_data<const float>(a_scale, py::dtype::of<float>(), m, "a_scale", false);
        float b_lo = 1.0f, b_hi = 1.0f;
        const bool products = !b_range.is_none();
        if (products) {
          const auto range = b_range.cast<std::pair<float, float>>();
          b_lo = range.first;
          b_hi = range.second;
        }
        py::array_t<float> rows(static_cast<py::ssize_t>(m));
        const std::string err = iqk::gemm_row_scales(m, a, products, b_lo, b_hi, !out_scale.is_none(),
                                                     out_scale.is_none() ? 1.0f : out_scale.cast<float>(),
                                                     rows.mutable_data());
        if (!err.empty()) throw py::value_error(err);
        return rows;
      },
      py::arg("a_scale"), py::arg("b_range"), py::arg("out_scale"));

  m.def(
      "gemm",
      [](const std::string& isa, const py::array& a, const iqk::Packed& packed, size_t K, size_t N,
         const py::object& b_zp, const py::array& col_off, iqk::GemmOut kind, const py::array& out,
         const py::object& scale, const py::object& bias, bool relu, int32_t out_zp, int32_t lo,
         int32_t hi, const py::object& row_scale, float out_scale) {
        const iqk::KernelTable& t = table_of(isa);
        iqk::GemmProblem p;
        bool a_signed;
        if (a.ndim() != 2 || !is_q8(a, &a_signed))
          throw py::type_error("a: expected a 2-D int8 or uint8 array");
        p.M = a.shape(0);
        if (static_cast<size_t>(a.shape(1)) != K) throw py::value_error("a: expected K columns");
        // Strides of an empty array mean nothing; otherwise rows must be
        // contiguous runs of K bytes that do not overlap.
        if (p.M > 0 && K > 1 && a.strides(1) != 1) throw py::value_error("a: rows must be contiguous");
        if (p.M > 1 && K > 0 && a.strides(0) < static_cast<py::ssize_t>(K))
          throw py::value_error("a: rows must not overlap");
        p.a = static_cast<const uint8_t*>(a.data());
        p.a_signed = a_signed;
        p.lda = p.M > 1 ? a.strides(0) : K;
        p.K = K;
        p.N = N;
        check_packed(packed, iqk::PackedKind::gemm_panels, t.isa, 1, K, N, 1, 1);
        p.packed_b = packed.bytes.data();
        if (!b_zp.is_none())
          p.b_zp = checked_data<const int32_t>(b_zp.cast<py::array>(), py::dtype::of<int32_t>(), N, "b_zp", false);
        p.col_off = checked_data<const int32_t>(col_off, py::dtype::of<int32_t>(), N, "col_off", false);
        p.epilogue = epilogue_of(kind, out, p.M, N, scale, bias, relu, out_zp, lo, hi);
        if (out.ndim() != 2 || static_cast<size_t>(out.shape(0)) != p.M || static_cast<size_t>(out.shape(1)) != N)
          throw py::value_error("out: expected shape (M, N)");
        p.epilogue.ldc = N;
        if (!row_scale.is_none()) {
          if (kind == iqk::GemmOut::i32) throw py::value_error("row_scale: only for float32 and 8-bit output");
          p.epilogue.row_scale =
              checked_data<const float>(row_scale.cast<py::array>(), py::dtype::of<float>(), p.M, "row_scale", false);
          p.epilogue.out_scale = out_scale;
        }
        py::gil_scoped_release release;
        iqk::gemm(p, iqk::gemm_kernel_for(t, p.M));
      },
      py::arg("isa"), py::arg("a"), py::arg("packed"), py::arg("K"), py::arg("N"), py::arg("b_zp"),
      py::arg("col_off"), py::arg("kind"), py::arg("out"), py::arg("scale"), py::arg("bias"),
      py::arg("relu"), py::arg("out_zp"), py::arg("lo"), py::arg("hi"), py::arg("row_scale") = py::none(),
      py::arg("out_scale") = 1.0f);
}

}  // namespace iqk_binding
