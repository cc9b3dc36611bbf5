#include "binding/common.h"

#include <stdexcept>

namespace iqk_binding {

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

const iqk::KernelTable& table_of(const std::string& name) {
  try {
    return iqk::kernel_table(isa_from_name(name));
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

bool is_q8(const py::array& a, bool* is_signed) {
  if (a.dtype().equal(py::dtype::of<int8_t>())) return *is_signed = true;
  if (a.dtype().equal(py::dtype::of<uint8_t>())) return !(*is_signed = false);
  return false;
}

iqk::GemmEpilogue epilogue_of(iqk::GemmOut kind, const py::array& out, size_t rows, size_t cols,
                              const py::object& scale, const py::object& bias, bool relu, int32_t out_zp, int32_t lo,
                              int32_t hi) {
  iqk::GemmEpilogue ep;
  ep.kind = kind;
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

}  // namespace iqk_binding
