// The C++ API of the package: drivers that validate nothing the binding has
// not already checked, split the work over threads and call the active ISA's
// kernels. Arrays are C-contiguous; a per-channel array is viewed as
// outer x channels x inner, with scale[c] and zp[c] for channel c (channels==1
// is per-tensor).
#pragma once

#include <cstddef>
#include <cstdint>

namespace iqk {

void quantize(const float* x, uint8_t* y, size_t outer, size_t channels, size_t inner,
              const float* scale, const int32_t* zp, int32_t qmin, int32_t qmax);

void dequantize(const void* q, bool q_signed, float* y, size_t outer, size_t channels,
                size_t inner, const float* scale, const int32_t* zp);

}  // namespace iqk
