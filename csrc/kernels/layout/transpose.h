// Small-block transposes and packings for moving between NCHW and NHWC. The
// portable ones (layout.cc) use the architecture's baseline vectors where
// it has some (SSE2 on x86-64); wider ones come from the path's table
// (kernel_table.h). No intrinsics here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace iqk {

// A 16 x 16 transpose of 4-byte elements, strides in elements: dst[j *
// dst_stride + i] = src[i * src_stride + j]. Per ISA (kernel table), null
// where there is none; the 4 x 4 one below serves everywhere.
using Transpose16x16Fn = void (*)(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride);

// pack_vnni4_strip16 (below) for 4 strips of 16 columns at once (64 columns
// from src): strip s at dst + 64 * s of every group row (dst_step bytes
// apart, at least 256), sums[0..64). The ISA's, or null (kernel_table.h).
using PackVnni4Strips64Fn = void (*)(const uint8_t* src, size_t stride, size_t K, uint8_t flip, uint8_t* dst,
                                     size_t dst_step, int32_t* sums);

// dst[j * dst_stride + i] = src[i * src_stride + j] ^ flip for i, j < 8.
void transpose8x8_u8(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, uint8_t flip);

// The same for 4x4 elements of 4 bytes (int32 or float32); strides in elements.
void transpose4x4_b32(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride);

// One 16-column strip of a K x N byte matrix (row k at src + k * stride, 16
// readable bytes per row), packed in vnni4 groups and summed: for group g of
// 4 rows, 64 bytes at dst + g * dst_step with column j's 4 rows at 4 j + t,
// each byte x ^ flip, zero (not flipped) past K; and sums[j] = sum over k < K
// of (x ^ flip ^ 0x80), each byte read as unsigned.
void pack_vnni4_strip16(const uint8_t* src, size_t stride, size_t K, uint8_t flip, uint8_t* dst, size_t dst_step,
                        int32_t* sums);

}  // namespace iqk
