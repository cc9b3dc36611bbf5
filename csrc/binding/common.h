// What every file of the binding shares: argument checks that turn bad
// arrays into Python exceptions, and the lookup of a path's kernel table.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "kernels/gemm/gemm.h"
#include "ops/packed.h"
#include "runtime/kernel_table.h"

namespace iqk_binding {

namespace py = pybind11;

void bind_runtime(py::module_& m);
void bind_quantize(py::module_& m);
void bind_calibrate(py::module_& m);
void bind_gemm(py::module_& m);
void bind_conv(py::module_& m);
void bind_packed(py::module_& m);

iqk::Isa isa_from_name(const std::string& name);
const iqk::KernelTable& table_of(const std::string& name);

// The buffer of a C-contiguous array of the given dtype and element count.
template <typename T>
T* checked_data(const py::array& a, const py::dtype& dtype, size_t count, const char* what, bool writable) {
  if (!a.dtype().is(dtype) && !a.dtype().equal(dtype))
    throw py::type_error(std::string(what) + ": expected dtype " + py::str(dtype).cast<std::string>() +
                         ", got " + py::str(a.dtype()).cast<std::string>());
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(what) + ": expected a C-contiguous array");
  if (static_cast<size_t>(a.size()) != count)
    throw py::value_error(std::string(what) + ": expected " + std::to_string(count) + " elements, got " +
                          std::to_string(a.size()));
  if (writable && !a.writeable()) throw py::value_error(std::string(what) + ": array is read-only");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

// Whether `a` is int8 or uint8, and which.
bool is_q8(const py::array& a, bool* is_signed);

// The epilogue arguments shared by gemm and conv2d: the output array `out`
// of `rows` x `cols` elements (cols: the per-column arrays' length).
iqk::GemmEpilogue epilogue_of(iqk::GemmOut kind, const py::array& out, size_t rows, size_t cols,
                              const py::object& scale, const py::object& bias, bool relu, int32_t out_zp, int32_t lo,
                              int32_t hi);

// Raises ValueError unless w holds the layout `kind` (for gemm_panels, of
// `isa`'s kernel) of `groups` K x N matrices from a KH x KW kernel.
void check_packed(const iqk::Packed& w, iqk::PackedKind kind, iqk::Isa isa, size_t groups, size_t k, size_t n,
                  size_t kh, size_t kw);

}  // namespace iqk_binding
