// The Python module _core: the thin binding of the C++ API. Each file of
// binding/ checks dtypes, shapes and contiguity for its ops, releases the GIL
// and calls the drivers; argument validation with user-facing messages, axis
// handling and defaults live in python/intquant_kernels/.
#include "binding/common.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "intquant_kernels compiled core (use the intquant_kernels package, not this module)";
  iqk_binding::bind_runtime(m);
  iqk_binding::bind_quantize(m);
  iqk_binding::bind_calibrate(m);
  iqk_binding::bind_packed(m);
  iqk_binding::bind_gemm(m);
  iqk_binding::bind_conv(m);
}
