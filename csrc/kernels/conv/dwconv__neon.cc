// Depthwise convolution, NEON (ARMv8.0 Advanced SIMD): one tap per multiply,
// the unsigned input bytes widened to int16 (uxtl) and multiplied by the
// int16 weights w' into int32 (smlal / smlal2: exact, |x| <= 255 and |w'| <=
// 255, at most kDwconvMaxTaps products per sum).
//
// Row kernel (DwconvRow, NHWC): 16 channels per step, four vectors of 4
// int32 per output pixel. A channel block's weights are split into one
// vector per tap and 8 channels once per block (vld2q_s16 separates the two
// taps of a pair); 3x3 kernels keep all 18 in registers for the whole row,
// two output pixels at a time; other kernels take 4 pixels at a time and
// read each tap's weights from the stack once for the 4.
//
// Plane kernel (DwconvPlane, NCHW, one staged channel plane): 16 output
// pixels of a row per step (at horizontal stride 2 the even bytes of 32, the
// low bytes of 16-bit lanes), four output rows at a time; each tap's weight
// is a lane of a vector (smlal by element), 3x3 and 5x5 kernels keep them
// all in registers.
//
// Per tap and 16 values: one load, two widenings (at stride 2 two masks),
// four smlal. Cortex-A72 and Neoverse N1 issue one smlal per cycle, on one
// vector pipe, and the widening on the other, so that the tap loops are
// bound by the multiply; the epilogue (simd/arm/epilogue_neon.h) shares both
// pipes.
#include <arm_neon.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/conv/conv.h"
#include "kernels/specialize.h"
#include "runtime/kernel_counter.h"
#include "simd/arm/epilogue_neon.h"

namespace iqk {

namespace {

// Every helper and every lambda of the unrolled loops is inlined whatever
// GCC's growth limits for the file: the kernels' loops stay whole.
#define IQK_ALWAYS_INLINE __attribute__((always_inline))
#define IQK_INLINE IQK_ALWAYS_INLINE inline

// f(std::integral_constant<size_t, i>{}) for i = 0 .. N-1, unrolled, so that
// tap indices (and the lanes they select) are constants.
template <size_t N, typename F>
IQK_INLINE void static_for(F&& f) {
  [&]<size_t... I>(std::index_sequence<I...>) IQK_ALWAYS_INLINE { (f(std::integral_constant<size_t, I>{}), ...); }
  (std::make_index_sequence<N>{});
}

// ---- NHWC rows (DwconvRow): 16 channels, P output pixels at a time ----

// One tap's weights for 16 channels: lo channels 0-7, hi 8-15.
struct TapW {
  int16x8_t lo, hi;
};

// acc[0..4) += the 16 bytes x (unsigned; channels 0-3 into acc[0], ..., 12-15
// into acc[3]) times w.
static IQK_INLINE void mac16(int32x4_t* acc, uint8x16_t x, const TapW& w) {
  const int16x8_t lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x)));
  const int16x8_t hi = vreinterpretq_s16_u16(vmovl_high_u8(x));
  acc[0] = vmlal_s16(acc[0], vget_low_s16(lo), vget_low_s16(w.lo));
  acc[1] = vmlal_high_s16(acc[1], lo, w.lo);
  acc[2] = vmlal_s16(acc[2], vget_low_s16(hi), vget_low_s16(w.hi));
  acc[3] = vmlal_high_s16(acc[3], hi, w.hi);
}

// Where the outputs of a block of 16 channels from c0 go: pixel i to out + i *
// step, its first n channels (n == 16 for every block but the last).
struct Block {
  size_t c0, n;
  uint8_t* out;
  size_t step;
};

// Pixel i's channels of the block; Full: all 16. The per-channel terms are
// loaded here rather than kept in registers across the pixels (the weights
// and accumulators need those); the per-channel arrays are padded to c_pad,
// a multiple of 32, so whole vectors past C are readable. Depthwise
// epilogues have no b_zp: the correction is the offset alone.
template <bool Full, GemmOut Kind>
IQK_INLINE void store(const GemmEpilogue& ep, const Block& b, size_t i, const int32x4_t* acc) {
  uint8_t* y = b.out + i * b.step;
  constexpr size_t bytes = gemm_out_bytes(Kind);
  static_for<4>([&](auto v) IQK_ALWAYS_INLINE {
    if (!Full && 4 * v >= b.n) return;
    const NeonCols4 c = gemm_cols4_neon<Kind>(ep, b.c0 + 4 * v);
    const size_t cols = Full || b.n - 4 * v >= 4 ? 4 : b.n - 4 * v;
    gemm_finish4_neon<Kind>(ep, vsubq_s32(acc[v], c.off), c.scale, c.bias, y + 4 * v * bytes, cols);
  });
}

// The row kernel's view of its window: KH x KW taps, or any (KH == 0, the
// tap offsets in `off`).
template <size_t KH, size_t KW>
struct Taps {
  static constexpr size_t T = KH * KW;
  // Output pixels per step: 3x3 holds its 18 weight vectors in registers,
  // with 8 accumulators (2 pixels); the others hold 16 accumulators (4
  // pixels) and load each tap's weights once for the 4.
  static constexpr size_t P = T == 9 ? 2 : 4;
};

// The 16 channels' weights of every tap of the block from c0 (`taps` of them;
// channels past C have zero weights: the packing pads to c_pad).
template <size_t T>
IQK_INLINE void block_weights(const DwconvRow& r, size_t c0, size_t taps, TapW* w) {
  auto pair = [&](size_t q, bool second) IQK_ALWAYS_INLINE {
    const int16_t* p = r.w + (q * r.c_pad + c0) * 2;
    const int16x8x2_t a = vld2q_s16(p), b = vld2q_s16(p + 16);
    w[2 * q] = {a.val[0], b.val[0]};
    if (second) w[2 * q + 1] = {a.val[1], b.val[1]};
  };
  if constexpr (T) {
    static_for<(T + 1) / 2>([&](auto q) IQK_ALWAYS_INLINE { pair(q, 2 * q + 1 < T); });
  } else {
    for (size_t q = 0; 2 * q < taps; ++q) pair(q, 2 * q + 1 < taps);
  }
}

// P output pixels from column ow, the block's 16 channels: 4 P independent
// accumulators.
template <size_t KH, size_t KW, size_t P, bool Full, GemmOut Kind>
IQK_INLINE void dw_pixels(const DwconvRow& r, const GemmEpilogue& ep, const Block& blk, size_t ow, const TapW* w,
                          size_t taps, const size_t* off) {
  const size_t step = r.sw * r.c;
  const uint8_t* px = r.x + ow * step + blk.c0;
  int32x4_t acc[P][4];
  static_for<P>([&](auto i) IQK_ALWAYS_INLINE { static_for<4>([&](auto v) IQK_ALWAYS_INLINE { acc[i][v] = vdupq_n_s32(0); }); });
  // Channels past C read the staging buffer's next bytes (it has slack);
  // their weights are zero and they are never stored.
  if constexpr (KH) {
    // One pointer per pixel and kernel row; the columns are register offsets.
    const size_t rs = r.dh * r.x_row, cs = r.dw * r.c;
    const uint8_t* row[P][KH];
    static_for<P>([&](auto i) IQK_ALWAYS_INLINE {
      static_for<KH>([&](auto kh) IQK_ALWAYS_INLINE { row[i][kh] = px + i * step + kh * rs; });
    });
    static_for<KH>([&](auto kh) IQK_ALWAYS_INLINE {
      static_for<KW>([&](auto kw) IQK_ALWAYS_INLINE {
        const TapW wt = w[kh * KW + kw];
        static_for<P>([&](auto i) IQK_ALWAYS_INLINE { mac16(acc[i], vld1q_u8(row[i][kh] + kw * cs), wt); });
      });
    });
  } else {
    for (size_t t = 0; t < taps; ++t) {
      const TapW wt = w[t];
      const uint8_t* pt = px + off[t];
      static_for<P>([&](auto i) IQK_ALWAYS_INLINE { mac16(acc[i], vld1q_u8(pt + i * step), wt); });
    }
  }
  static_for<P>([&](auto i) IQK_ALWAYS_INLINE { store<Full, Kind>(ep, blk, ow + i, acc[i]); });
}

template <size_t KH, size_t KW, bool Full, GemmOut Kind>
IQK_INLINE void dw_block(const DwconvRow& r, const GemmEpilogue& ep, const Block& blk, const TapW* w, size_t taps,
                         const size_t* off) {
  constexpr size_t P = Taps<KH, KW>::P;
  size_t ow = 0;
  for (; ow + P <= r.ow; ow += P) dw_pixels<KH, KW, P, Full, Kind>(r, ep, blk, ow, w, taps, off);
  if constexpr (P > 2) {
    if (ow + 2 <= r.ow) {
      dw_pixels<KH, KW, 2, Full, Kind>(r, ep, blk, ow, w, taps, off);
      ow += 2;
    }
  }
  if constexpr (P > 1) {
    if (ow < r.ow) dw_pixels<KH, KW, 1, Full, Kind>(r, ep, blk, ow, w, taps, off);
  }
}

template <size_t KH, size_t KW, GemmOut Kind>
void dw_row(const DwconvRow& r) {
  const GemmEpilogue ep = *r.ep;  // a local copy: the stores cannot change it
  size_t off[2 * kDwconvMaxPairs];
  if constexpr (!KH) dwconv_tap_offsets(r.kh, r.kw, r.dh * r.x_row, r.dw * r.c, off);
  const size_t taps = r.kh * r.kw;
  constexpr size_t T = Taps<KH, KW>::T;
  TapW w[T ? T : kDwconvMaxTaps];
  const size_t bytes = gemm_out_bytes(Kind);
  uint8_t* const out = static_cast<uint8_t*>(ep.c) + r.m0 * ep.ldc * bytes;
  for (size_t c0 = 0; c0 < r.c; c0 += 16) {
    const Block blk{c0, r.c - c0 < 16 ? r.c - c0 : 16, out + c0 * bytes, ep.ldc * bytes};
    block_weights<T>(r, c0, taps, w);
    if (blk.n == 16)
      dw_block<KH, KW, true, Kind>(r, ep, blk, w, taps, off);
    else
      dw_block<KH, KW, false, Kind>(r, ep, blk, w, taps, off);
  }
}

// ---- NCHW planes (DwconvPlane): one staged channel plane, V vectors of 4
// output pixels (V 4 or 2) of R rows at a time ----

// V * 4 output pixels of one tap, as int16 vectors of 8, from a staging row:
// bytes p[0..4 V) at stride 1; at stride 2 the even bytes p[0], p[2], ...,
// the low bytes of little-endian 16-bit lanes.
template <size_t V, size_t S>
static IQK_INLINE void plane_pixels(const uint8_t* p, int16x8_t* x) {
  if constexpr (S == 1) {
    if constexpr (V == 4) {
      const uint8x16_t b = vld1q_u8(p);
      x[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(b)));
      x[1] = vreinterpretq_s16_u16(vmovl_high_u8(b));
    } else {
      x[0] = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(p)));
    }
  } else {
    const uint16x8_t low = vdupq_n_u16(0x00FF);
    static_for<V / 2>([&](auto h) IQK_ALWAYS_INLINE {
      x[h] = vreinterpretq_s16_u16(vandq_u16(vreinterpretq_u16_u8(vld1q_u8(p + 16 * h)), low));
    });
  }
}

// acc[0..V) += x (V * 4 pixels) times lane L of w.
template <size_t V, size_t L>
static IQK_INLINE void mac_lane(int32x4_t* acc, const int16x8_t* x, int16x8_t w) {
  static_for<V / 2>([&](auto h) IQK_ALWAYS_INLINE {
    acc[2 * h] = vmlal_laneq_s16(acc[2 * h], vget_low_s16(x[h]), w, L);
    acc[2 * h + 1] = vmlal_high_laneq_s16(acc[2 * h + 1], x[h], w, L);
  });
}

// The same with the weight in every lane of w.
template <size_t V>
static IQK_INLINE void mac_splat(int32x4_t* acc, const int16x8_t* x, int16x8_t w) {
  static_for<V / 2>([&](auto h) IQK_ALWAYS_INLINE {
    acc[2 * h] = vmlal_s16(acc[2 * h], vget_low_s16(x[h]), vget_low_s16(w));
    acc[2 * h + 1] = vmlal_high_s16(acc[2 * h + 1], x[h], w);
  });
}

// The plane kernel's weights: for KH x KW kernels (KH > 0) tap t's in lane t %
// 8 of vector t / 8 (zero past the last tap); for any other (KH == 0) one
// vector per tap, the weight in every lane.
template <size_t KH, size_t KW>
struct PlaneW {
  static constexpr size_t kVectors = KH ? (KH * KW + 7) / 8 : kDwconvMaxTaps;
  int16x8_t v[kVectors];
};

// R output rows from oh0, V * 4 pixels from ow0, those inside the row stored
// (Full: all of them).
template <size_t KH, size_t KW, size_t R, size_t V, size_t S, bool Full, GemmOut Kind>
IQK_INLINE void dw_plane_block(const DwconvPlane& p, const GemmEpilogue& ep, size_t oh0, size_t ow0,
                               const PlaneW<KH, KW>& w, size_t taps, const size_t* off) {
  const size_t step = p.sh * p.x_row;
  const uint8_t* base = p.x + oh0 * step + ow0 * S;
  int32x4_t acc[R][V];
  static_for<R>([&](auto i) IQK_ALWAYS_INLINE { static_for<V>([&](auto v) IQK_ALWAYS_INLINE { acc[i][v] = vdupq_n_s32(0); }); });
  // Pixels past the row read the staging plane's next bytes (it has slack);
  // they are never stored.
  if constexpr (KH) {
    // No horizontal dilation: one pointer per output row and kernel row, the
    // columns immediate offsets.
    const size_t rs = p.dh * p.x_row;
    const uint8_t* row[R][KH];
    static_for<R>([&](auto i) IQK_ALWAYS_INLINE {
      static_for<KH>([&](auto kh) IQK_ALWAYS_INLINE { row[i][kh] = base + i * step + kh * rs; });
    });
    static_for<KH>([&](auto kh) IQK_ALWAYS_INLINE {
      static_for<KW>([&](auto kw) IQK_ALWAYS_INLINE {
        constexpr size_t t = kh * KW + kw;
        static_for<R>([&](auto i) IQK_ALWAYS_INLINE {
          int16x8_t x[V / 2];
          plane_pixels<V, S>(row[i][kh] + kw, x);
          mac_lane<V, t % 8>(acc[i], x, w.v[t / 8]);
        });
      });
    });
  } else {
    for (size_t t = 0; t < taps; ++t) {
      const int16x8_t wt = w.v[t];
      const uint8_t* pt = base + off[t];
      static_for<R>([&](auto i) IQK_ALWAYS_INLINE {
        int16x8_t x[V / 2];
        plane_pixels<V, S>(pt + i * step, x);
        mac_splat<V>(acc[i], x, wt);
      });
    }
  }
  // The channel's terms in every lane.
  const int32x4_t col_off = vdupq_n_s32(p.col_off);
  const float32x4_t scale = vdupq_n_f32(p.scale), bias = vdupq_n_f32(p.bias);
  const size_t left = p.ow - ow0;
  constexpr size_t bytes = gemm_out_bytes(Kind);
  static_for<R>([&](auto i) IQK_ALWAYS_INLINE {
    uint8_t* y = p.y + ((oh0 + i) * p.ow + ow0) * bytes;
    static_for<V>([&](auto v) IQK_ALWAYS_INLINE {
      if (!Full && 4 * v >= left) return;
      const size_t cols = Full || left - 4 * v >= 4 ? 4 : left - 4 * v;
      gemm_finish4_neon<Kind>(ep, vsubq_s32(acc[i][v], col_off), scale, bias, y + 4 * v * bytes, cols);
    });
  });
}

// Output rows per block.
constexpr size_t kPlaneRows = 4;

template <size_t KH, size_t KW, size_t R, size_t S, GemmOut Kind>
IQK_INLINE void dw_plane_rows(const DwconvPlane& p, const GemmEpilogue& ep, size_t oh, const PlaneW<KH, KW>& w,
                              size_t taps, const size_t* off) {
  size_t ow0 = 0;
  for (; ow0 + 16 <= p.ow; ow0 += 16) dw_plane_block<KH, KW, R, 4, S, true, Kind>(p, ep, oh, ow0, w, taps, off);
  // The last 1-15 pixels: one step of 8 or 16.
  if (ow0 + 8 >= p.ow) {
    if (ow0 < p.ow) dw_plane_block<KH, KW, R, 2, S, false, Kind>(p, ep, oh, ow0, w, taps, off);
  } else {
    dw_plane_block<KH, KW, R, 4, S, false, Kind>(p, ep, oh, ow0, w, taps, off);
  }
}

template <size_t KH, size_t KW, size_t S, GemmOut Kind>
void dw_plane(const DwconvPlane& p) {
  const GemmEpilogue ep = *p.ep;
  size_t off[2 * kDwconvMaxPairs];
  if constexpr (!KH) dwconv_tap_offsets(p.kh, p.kw, p.dh * p.x_row, p.dw, off);
  const size_t taps = p.kh * p.kw;
  // {w'[2q], w'[2q + 1]} as int16, low first.
  auto weight = [&](size_t t) {
    const uint32_t pair = static_cast<uint32_t>(p.w_pairs[(t / 2) * p.c_pad]);
    return static_cast<int16_t>(t % 2 ? pair >> 16 : pair & 0xFFFFu);
  };
  PlaneW<KH, KW> w;
  if constexpr (KH) {
    int16_t lanes[PlaneW<KH, KW>::kVectors * 8] = {};
    for (size_t t = 0; t < KH * KW; ++t) lanes[t] = weight(t);
    static_for<PlaneW<KH, KW>::kVectors>([&](auto v) IQK_ALWAYS_INLINE { w.v[v] = vld1q_s16(lanes + 8 * v); });
  } else {
    for (size_t t = 0; t < taps; ++t) w.v[t] = vdupq_n_s16(weight(t));
  }
  size_t oh = 0;
  for (; oh + kPlaneRows <= p.rows; oh += kPlaneRows) dw_plane_rows<KH, KW, kPlaneRows, S, Kind>(p, ep, oh, w, taps, off);
  for (; oh < p.rows; ++oh) dw_plane_rows<KH, KW, 1, S, Kind>(p, ep, oh, w, taps, off);
}

// Calls f(kh, kw) with std::integral_constants for the plane kernel: 3 x 3
// and 5 x 5 kernels without horizontal dilation unrolled, with their weights
// in registers; (0, 0) for any other (a loop over the taps).
template <typename F>
inline void with_plane_window(const DwconvPlane& p, F&& f) {
  using K3 = std::integral_constant<size_t, 3>;
  using K5 = std::integral_constant<size_t, 5>;
  using K0 = std::integral_constant<size_t, 0>;
  if (p.kh == 3 && p.kw == 3 && p.dw == 1) return f(K3{}, K3{});
  if (p.kh == 5 && p.kw == 5 && p.dw == 1) return f(K5{}, K5{});
  f(K0{}, K0{});
}

#undef IQK_INLINE
#undef IQK_ALWAYS_INLINE

}  // namespace

void dwconv_u8s16_c16__neon(const DwconvRow& r) {
  IQK_KERNEL_ENTRY("dwconv_u8s16_c16__neon");
  with_kind(r.ep->kind, [&](auto kind) {
    // 5 x 5: 50 weight vectors do not fit the registers; the general form.
    if (r.kh == 3 && r.kw == 3) return dw_row<3, 3, decltype(kind)::value>(r);
    dw_row<0, 0, decltype(kind)::value>(r);
  });
}

void dwconv_nchw_u8s16_p16__neon(const DwconvPlane& p) {
  IQK_KERNEL_ENTRY("dwconv_nchw_u8s16_p16__neon");
  with_kind(p.ep->kind, [&](auto kind) {
    with_stride_1_or_2(p.sw, [&](auto s) {
      with_plane_window(p, [&](auto kh, auto kw) {
        dw_plane<decltype(kh)::value, decltype(kw)::value, decltype(s)::value, decltype(kind)::value>(p);
      });
    });
  });
}

extern const DwconvKernel dwconv_kernel__neon{
    .fn = &dwconv_u8s16_c16__neon,
    .name = "dwconv_u8s16_c16__neon",
    .plane = &dwconv_nchw_u8s16_p16__neon,
    .plane_name = "dwconv_nchw_u8s16_p16__neon",
};

}  // namespace iqk
