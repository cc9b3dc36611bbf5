// The binding of runtime.
#include "binding/common.h"

#include <pybind11/stl.h>

#include "runtime/clock.h"
#include "runtime/cpu_features.h"
#include "runtime/kernel_counter.h"
#include "runtime/thread_pool.h"

namespace iqk_binding {

void bind_runtime(py::module_& m) {
  m.def("isa_names", [] {
    std::vector<std::string> out;
    for (int i = 0; i < iqk::kIsaCount; ++i) out.emplace_back(iqk::isa_name(static_cast<iqk::Isa>(i)));
    return out;
  });
  m.def("isa_built", [](const std::string& name) { return iqk::isa_built(isa_from_name(name)); });
  m.def("isa_supported_by_cpu",
        [](const std::string& name) { return iqk::isa_supported_by_cpu(isa_from_name(name)); });
  m.def("isa_emulated", [](const std::string& name) { return iqk::isa_emulated(isa_from_name(name)); });
  m.def("isa_required_features",
        [](const std::string& name) { return iqk::isa_required_features(isa_from_name(name)); });
  m.def("isa_missing_features",
        [](const std::string& name) { return iqk::isa_missing_features(isa_from_name(name)); });
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
  m.def("cpu_id", [] {
    const iqk::CpuFeatures& f = iqk::cpu_features();
    auto field = [](int v) -> py::object { return v < 0 ? py::object(py::none()) : py::object(py::int_(v)); };
    py::dict d;
    d["arch"] = f.arch;
    d["vendor"] = f.vendor;
    d["brand"] = f.brand;
    d["family"] = field(f.family);
    d["model"] = field(f.model);
    d["stepping"] = field(f.stepping);
    d["midr_implementer"] = field(f.midr_implementer);
    d["midr_variant"] = field(f.midr_variant);
    d["midr_part"] = field(f.midr_part);
    d["midr_revision"] = field(f.midr_revision);
    return d;
  });
  m.def("kernel_names", [](const std::string& name) {
    const iqk::KernelTable* t = &table_of(name);
    py::dict d;
    d["range"] = t->range.name;
    d["quantize"] = t->quantize.name;
    d["quantize_channels"] = t->quantize_channels.name;
    d["dequantize_s8"] = t->dequantize_s8.name;
    d["dequantize_u8"] = t->dequantize_u8.name;
    d["dequantize_channels_s8"] = t->dequantize_channels_s8.name;
    d["dequantize_channels_u8"] = t->dequantize_channels_u8.name;
    d["abs_histogram"] = t->abs_histogram.name;
    d["gemm"] = t->gemm.name;
    d["gemm_small_m"] = t->gemm_small_m.name;  // None where one kernel runs every GEMM
    d["dwconv"] = t->dwconv.name;
    d["dwconv_nchw"] = t->dwconv.plane_name;
    d["dwconv3x3"] = t->dwconv.column_pairs_name;  // None where the row kernel has no 3x3 form
    d["dwconv_nchw_planes"] = t->dwconv.planes_name;  // None where no planar kernel reads the planes as given
    d["gconv"] = t->gconv.name;  // None where small groups run as a grouped GEMM
    return d;
  });
  m.def("gemm_shape", [](const std::string& name) {
    const iqk::GemmShape& s = table_of(name).gemm.shape;
    py::dict d;
    d["layout"] = iqk::gemm_layout_name(s.layout);  // kernels/gemm/gemm.h, GemmLayout
    d["mr"] = s.mr;
    d["nr"] = s.nr;
    d["k_group"] = s.k_group();
    return d;
  });
  // The small-M rule of a path's table: GEMMs of fewer rows run gemm_small_m.
  m.def("gemm_small_m_rows", [](const std::string& name) { return table_of(name).gemm_small_m_rows; });
  m.def(
      "gemm_kernel_for",
      [](const std::string& name, size_t m) { return std::string(iqk::gemm_kernel_for(table_of(name), m).name); },
      py::arg("isa"), py::arg("m"), "The GEMM kernel that runs a product of m rows on a path (the small-M rule).");
  // The emulated tile unit of the calling thread (amx_emu; kernel_table.h,
  // EmulatedTiles), for the tests.
  auto emulated = [](const std::string& name) -> const iqk::EmulatedTiles& {
    const iqk::KernelTable& t = table_of(name);
    if (!t.emulated_tiles) throw py::value_error("ISA '" + name + "' has no emulated tiles");
    return *t.emulated_tiles;
  };
  m.def("emulated_tiles_configured", [emulated](const std::string& name) { return emulated(name).configured(); });
  m.def("emulated_tiles_disturb", [emulated](const std::string& name) { emulated(name).disturb(); });
  m.def("emulated_tiles_self_check", [emulated](const std::string& name) { return emulated(name).self_check(); });
  m.def("emulated_tiles_misuse", [emulated](const std::string& name, const std::string& misuse) {
    return emulated(name).misuse(misuse.c_str());
  });
  m.def("kernel_call_counts", [] {
    py::dict d;
    for (const auto& [name, calls] : iqk::kernel_call_counts()) d[py::str(name)] = calls;
    return d;
  });
  m.def(
      "estimate_clock_hz",
      [](int runs, int64_t iterations) {
        if (runs < 1 || iterations < 1)
          throw py::value_error("estimate_clock_hz: runs and iterations must be positive, got " +
                                std::to_string(runs) + " and " + std::to_string(iterations));
        py::gil_scoped_release release;
        return iqk::estimate_clock_hz(runs, iterations);
      },
      py::arg("runs") = 200, py::arg("iterations") = 100'000,
      "The core clock while busy (Hz), from the fastest of `runs` timed chains of 16 * `iterations` dependent "
      "integer adds; None where no chain is written for this architecture (x86-64 and AArch64 have one).");
  m.def("get_num_threads", &iqk::get_num_threads);
  m.def("parallel_runs", &iqk::parallel_runs);
  m.def("default_num_threads", &iqk::default_num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("number of threads must be a positive integer, got " + std::to_string(n));
    iqk::set_num_threads(n);
  });
}

}  // namespace iqk_binding
