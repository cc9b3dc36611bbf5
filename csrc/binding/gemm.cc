// The binding of gemm.
#include "binding/common.h"

#include <pybind11/stl.h>

#include "ops/ops.h"

namespace iqk_binding {

namespace {

iqk::GemmShape shape_of(int layout, int mr, int nr) {
  if ((layout != 0 && layout != 1) || mr < 1 || nr < 1 || mr > 64 || nr > 256)
    throw py::value_error("invalid GEMM layout");
  return iqk::GemmShape{static_cast<iqk::GemmLayout>(layout), mr, nr};
}

}  // namespace

void bind_gemm(py::module_& m) {
  // What an epilogue writes (gemm.h); shared by gemm and conv2d.
  py::enum_<iqk::GemmOut>(m, "OutKind")
      .value("i32", iqk::GemmOut::i32)
      .value("f32", iqk::GemmOut::f32)
      .value("q8", iqk::GemmOut::q8);
  m.def("gemm_shape", [](const std::string& name) {
    const iqk::KernelTable& t = table_of(name);
    return py::make_tuple(static_cast<int>(t.gemm.shape.layout), t.gemm.shape.mr, t.gemm.shape.nr,
                          t.gemm.name);
  });

  m.def(
      "pack_b",
      [](const py::array& b, int layout, int mr, int nr) {
        if (b.ndim() != 2) throw py::value_error("b: expected a 2-D array");
        const size_t K = b.shape(0), N = b.shape(1);
        const int8_t* bp = checked_data<const int8_t>(b, py::dtype::of<int8_t>(), K * N, "b", false);
        const iqk::GemmShape s = shape_of(layout, mr, nr);
        py::array_t<uint8_t> out(static_cast<py::ssize_t>(iqk::packed_b_bytes(s, K, N)));
        uint8_t* op = out.mutable_data();
        {
          py::gil_scoped_release release;
          iqk::pack_b(s, bp, K, N, op);
        }
        return out;
      },
      py::arg("b"), py::arg("layout"), py::arg("mr"), py::arg("nr"));

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
      "gemm",
      [](const std::string& isa, const py::array& a, const py::array& packed, size_t K, size_t N,
         const py::object& b_zp, const py::array& col_off, iqk::GemmOut kind, const py::array& out,
         const py::object& scale, const py::object& bias, bool relu, int32_t out_zp, int32_t lo,
         int32_t hi) {
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
        p.packed_b = checked_data<const uint8_t>(packed, py::dtype::of<uint8_t>(),
                                                 iqk::packed_b_bytes(t.gemm.shape, K, N), "packed", false);
        if (!b_zp.is_none())
          p.b_zp = checked_data<const int32_t>(b_zp.cast<py::array>(), py::dtype::of<int32_t>(), N, "b_zp", false);
        p.col_off = checked_data<const int32_t>(col_off, py::dtype::of<int32_t>(), N, "col_off", false);
        p.epilogue = epilogue_of(kind, out, p.M, N, scale, bias, relu, out_zp, lo, hi);
        if (out.ndim() != 2 || static_cast<size_t>(out.shape(0)) != p.M || static_cast<size_t>(out.shape(1)) != N)
          throw py::value_error("out: expected shape (M, N)");
        p.epilogue.ldc = N;
        py::gil_scoped_release release;
        iqk::gemm(p, t.gemm);
      },
      py::arg("isa"), py::arg("a"), py::arg("packed"), py::arg("K"), py::arg("N"), py::arg("b_zp"),
      py::arg("col_off"), py::arg("kind"), py::arg("out"), py::arg("scale"), py::arg("bias"),
      py::arg("relu"), py::arg("out_zp"), py::arg("lo"), py::arg("hi"));
}

}  // namespace iqk_binding
