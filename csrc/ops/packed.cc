#include "ops/packed.h"

#include <stdexcept>

#include "kernels/conv/conv.h"
#include "kernels/gemm/pack.h"
#include "runtime/kernel_table.h"

namespace iqk {

const char* packed_kind_name(PackedKind kind) {
  switch (kind) {
    case PackedKind::gemm_panels: return "gemm_panels";
    case PackedKind::conv1x1_rows: return "conv1x1_rows";
    case PackedKind::depthwise: return "depthwise";
    case PackedKind::small_groups: return "small_groups";
  }
  return "?";
}

std::string Packed::describe() const {
  std::string s = packed_kind_name(kind);
  if (kind == PackedKind::gemm_panels) {
    s += std::string(" for ") + isa_name(isa) + " (" + gemm_layout_name(shape.layout) + ", " +
         std::to_string(shape.mr) + "x" + std::to_string(shape.nr) + " tiles)";
  }
  s += ", " + std::to_string(groups) + (groups == 1 ? " group" : " groups") + " of K=" + std::to_string(k) +
       " x N=" + std::to_string(n) + " (kernel " + std::to_string(kh) + "x" + std::to_string(kw) + "), " +
       std::to_string(bytes.size()) + " bytes";
  return s;
}

Packed pack_gemm_weights(Isa isa, const int8_t* b, size_t K, size_t N) {
  Packed p;
  p.kind = PackedKind::gemm_panels;
  p.isa = isa;
  p.shape = kernel_table(isa).gemm.shape;
  p.k = K;
  p.n = N;
  p.bytes.resize(packed_b_bytes(p.shape, K, N));
  pack_b(p.shape, b, K, N, p.bytes.data());
  return p;
}

Packed pack_conv_weights(PackedKind kind, Isa isa, const int8_t* w, const int32_t* zp, size_t oc, size_t cg,
                         size_t kh, size_t kw, size_t groups) {
  if (groups == 0 || oc % groups) throw std::invalid_argument("pack: OC must be a multiple of groups");
  const size_t taps = kh * kw, K = cg * taps, ocg = oc / groups;
  Packed p;
  p.kind = kind;
  p.groups = groups;
  p.k = K;
  p.n = ocg;
  p.kh = kh;
  p.kw = kw;
  switch (kind) {
    case PackedKind::gemm_panels: {
      p.isa = isa;
      p.shape = kernel_table(isa).gemm.shape;
      const size_t per_group = packed_b_bytes(p.shape, K, ocg);
      p.bytes.resize(groups * per_group);
      // b[(kh * KW + kw) * Cg + c, j] = w[g * OCg + j, c, kh, kw], per group.
      std::vector<int8_t> b(K * ocg);
      for (size_t g = 0; g < groups; ++g) {
        for (size_t j = 0; j < ocg; ++j)
          for (size_t c = 0; c < cg; ++c)
            for (size_t t = 0; t < taps; ++t) b[(t * cg + c) * ocg + j] = w[((g * ocg + j) * cg + c) * taps + t];
        pack_b(p.shape, b.data(), K, ocg, p.bytes.data() + g * per_group);
      }
      break;
    }
    case PackedKind::conv1x1_rows: {
      const size_t row = (K + 3) / 4 * 4;
      p.bytes.assign(oc * row, 0);
      for (size_t o = 0; o < oc; ++o)
        for (size_t i = 0; i < K; ++i) p.bytes[o * row + i] = static_cast<uint8_t>(w[o * K + i]) ^ 0x80;
      break;
    }
    case PackedKind::depthwise: {
      if (cg != 1 || ocg != 1) throw std::invalid_argument("pack: depthwise weights need groups == C == OC");
      p.bytes.resize(DwconvPacked(oc, kh, kw).total * sizeof(int16_t));
      pack_depthwise(w, zp, oc, kh, kw, reinterpret_cast<int16_t*>(p.bytes.data()));
      break;
    }
    case PackedKind::small_groups: {
      if (groups < 2 || !gconv_fits(oc, cg, ocg, taps))
        throw std::invalid_argument("pack: these weights do not fit the small-group kernels (gconv_fits)");
      p.bytes.resize(gconv_packed_bytes(oc, cg, taps));
      pack_gconv(w, oc, cg, taps, reinterpret_cast<int8_t*>(p.bytes.data()));
      break;
    }
  }
  return p;
}

}  // namespace iqk
