// The binding of the calibration histogram and its threshold searches
// (python/intquant_kernels/calibration.py).
#include <cmath>

#include "binding/common.h"
#include "ops/calibrate.h"

namespace iqk_binding {

namespace {

// The candidates as a C-contiguous int64 array, each in [1, bins].
const int64_t* checked_candidates(const py::array& candidates, size_t bins) {
  const int64_t* c = checked_data<const int64_t>(candidates, py::dtype::of<int64_t>(),
                                                 static_cast<size_t>(candidates.size()), "candidates", false);
  for (py::ssize_t i = 0; i < candidates.size(); ++i)
    if (c[i] < 1 || static_cast<size_t>(c[i]) > bins)
      throw py::value_error("candidates: expected bin counts in [1, " + std::to_string(bins) + "]");
  return c;
}

const int64_t* checked_counts(const py::array& counts, bool writable) {
  const size_t bins = static_cast<size_t>(counts.size());
  if (bins == 0 || bins > (size_t{1} << 24)) throw py::value_error("counts: expected 1 to 2**24 bins");
  return checked_data<const int64_t>(counts, py::dtype::of<int64_t>(), bins, "counts", writable);
}

// One value per candidate threshold from f(counts, bins, candidates, n, out), without the GIL.
template <typename F>
py::array_t<double> search(const py::array& counts, const py::array& candidates, F&& f) {
  const int64_t* cp = checked_counts(counts, false);
  const size_t bins = static_cast<size_t>(counts.size());
  const int64_t* cand = checked_candidates(candidates, bins);
  py::array_t<double> out(candidates.size());
  double* op = out.mutable_data();
  py::gil_scoped_release release;
  f(cp, bins, cand, static_cast<size_t>(candidates.size()), op);
  return out;
}

}  // namespace

void bind_calibrate(py::module_& m) {
  m.def(
      "abs_histogram",
      [](const std::string& isa, const py::array& x, const py::array& counts, double inv_width) {
        const iqk::KernelTable& t = table_of(isa);
        const float* xp =
            checked_data<const float>(x, py::dtype::of<float>(), static_cast<size_t>(x.size()), "x", false);
        int64_t* cp = const_cast<int64_t*>(checked_counts(counts, true));
        if (!(std::isfinite(inv_width) && inv_width > 0)) throw py::value_error("inv_width: expected finite and > 0");
        py::gil_scoped_release release;
        iqk::abs_histogram(t, xp, static_cast<size_t>(x.size()), inv_width, static_cast<uint32_t>(counts.size()), cp);
      },
      py::arg("isa"), py::arg("x"), py::arg("counts"), py::arg("inv_width"));

  m.def(
      "histogram_divergences",
      [](const py::array& counts, const py::array& candidates, size_t levels) {
        if (levels < 1) throw py::value_error("levels: expected >= 1");
        return search(counts, candidates, [&](const int64_t* c, size_t bins, const int64_t* cand, size_t n, double* out) {
          iqk::histogram_divergences(c, bins, cand, n, levels, out);
        });
      },
      py::arg("counts"), py::arg("candidates"), py::arg("levels"));

  m.def(
      "histogram_mse",
      [](const py::array& counts, const py::array& candidates, double qmax) {
        if (!(qmax >= 1)) throw py::value_error("qmax: expected >= 1");
        return search(counts, candidates, [&](const int64_t* c, size_t bins, const int64_t* cand, size_t n, double* out) {
          iqk::histogram_mse(c, bins, cand, n, qmax, out);
        });
      },
      py::arg("counts"), py::arg("candidates"), py::arg("qmax"));
}

}  // namespace iqk_binding
