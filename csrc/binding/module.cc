// The binding layer: checks dtypes, shapes and contiguity, releases the GIL and
// calls the C++ API. Argument validation with user-facing messages, axis
// handling and defaults live in python/intquant_kernels/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "kernels/conv/conv.h"
#include "runtime/cpu_features.h"
#include "runtime/kernel_counter.h"
#include "runtime/kernel_table.h"
#include "ops/ops.h"
#include "runtime/thread_pool.h"

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

const iqk::KernelTable& table_of(const std::string& name) {
  try {
    return iqk::kernel_table(isa_from_name(name));
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

iqk::GemmShape shape_of(int layout, int mr, int nr) {
  if ((layout != 0 && layout != 1) || mr < 1 || nr < 1 || mr > 64 || nr > 256)
    throw py::value_error("invalid GEMM layout");
  return iqk::GemmShape{static_cast<iqk::GemmLayout>(layout), mr, nr};
}

bool is_q8(const py::array& a, bool* is_signed) {
  if (a.dtype().equal(py::dtype::of<int8_t>())) return *is_signed = true;
  if (a.dtype().equal(py::dtype::of<uint8_t>())) return !(*is_signed = false);
  return false;
}

// The epilogue arguments shared by gemm and conv2d: the output array `out`
// of `rows` x `cols` elements (cols: the per-column arrays' length).
iqk::GemmEpilogue epilogue_of(int kind, const py::array& out, size_t rows, size_t cols,
                              const py::object& scale, const py::object& bias, bool relu, int32_t out_zp,
                              int32_t lo, int32_t hi) {
  iqk::GemmEpilogue ep;
  if (kind < 0 || kind > 2) throw py::value_error("kind: expected 0 (int32), 1 (float32) or 2 (8-bit)");
  ep.kind = static_cast<iqk::GemmOut>(kind);
  const py::dtype out_dt = ep.kind == iqk::GemmOut::i32   ? py::dtype::of<int32_t>()
                           : ep.kind == iqk::GemmOut::f32 ? py::dtype::of<float>()
                                                          : out.dtype();
  if (ep.kind == iqk::GemmOut::q8) {
    bool o_signed;
    if (!is_q8(out, &o_signed)) throw py::type_error("out: expected int8 or uint8");
    const int32_t olo = o_signed ? -128 : 0, ohi = o_signed ? 127 : 255;
    if (lo < olo || hi > ohi || lo > hi) throw py::value_error("bounds outside the output dtype's range");
  }
  ep.c = checked_data<void>(out, out_dt, rows * cols, "out", true);
  if (ep.kind != iqk::GemmOut::i32) {
    if (scale.is_none()) throw py::value_error("scale: required for float32 and 8-bit output");
    ep.scale = checked_data<const float>(scale.cast<py::array>(), py::dtype::of<float>(), cols, "scale", false);
  }
  if (!bias.is_none())
    ep.bias = checked_data<const float>(bias.cast<py::array>(), py::dtype::of<float>(), cols, "bias", false);
  ep.relu = relu;
  ep.out_zp = out_zp;
  ep.lo = lo;
  ep.hi = hi;
  return ep;
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
    const iqk::KernelTable* t = &table_of(name);
    py::dict d;
    d["quantize"] = t->quantize.name;
    d["quantize_channels"] = t->quantize_channels.name;
    d["dequantize_s8"] = t->dequantize_s8.name;
    d["dequantize_u8"] = t->dequantize_u8.name;
    d["dequantize_channels_s8"] = t->dequantize_channels_s8.name;
    d["dequantize_channels_u8"] = t->dequantize_channels_u8.name;
    d["gemm"] = t->gemm.name;
    d["dwconv"] = t->dwconv.name;
    d["dwconv_nchw"] = t->dwconv.plane_name;
    d["dwconv3x3"] = t->dwconv.column_pairs_name;  // None where the row kernel has no 3x3 form
    d["dwconv_nchw_planes"] = t->dwconv.planes_name;  // None where no planar kernel reads the planes as given
    d["gconv"] = t->gconv.name;  // None where small groups run as a grouped GEMM
    return d;
  });
  // Where the path's DwconvPlanes kernel runs (conv.h, DwconvKernel): whether
  // it takes only channels whose weights fit int8, and whether it takes
  // narrow output rows; for the tests' expectations of what runs.
  m.def("dwconv_planes_rules", [](const std::string& name) {
    const iqk::DwconvKernel& k = table_of(name).dwconv;
    return py::make_tuple(k.planes_bytes, k.planes_narrow);
  });
  m.def("kernel_call_counts", [] {
    py::dict d;
    for (const auto& [name, calls] : iqk::kernel_call_counts()) d[py::str(name)] = calls;
    return d;
  });
  m.def("get_num_threads", &iqk::get_num_threads);
  m.def("parallel_runs", &iqk::parallel_runs);
  m.def("default_num_threads", &iqk::default_num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("number of threads must be a positive integer, got " + std::to_string(n));
    iqk::set_num_threads(n);
  });

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
         const py::object& b_zp, const py::array& col_off, int kind, const py::array& out,
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

  m.def(
      "conv2d",
      [](const std::string& isa, const py::array& x, bool x_nchw, const std::vector<size_t>& geom,
         int32_t x_zp, const py::array& packed, bool depthwise, const py::object& w_zp,
         const py::array& col_off, int kind, const py::array& out, bool y_nchw, const py::object& scale,
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
