"""PackedConvWeights: int8 convolution weights packed once for the kernels."""
from __future__ import annotations

import numpy as np

from . import _core
from . import _validate as v
from ._conv_common import channel_zero_points, check_output_channels, conv_groups, conv_weights
from ._cache import Cache
from ._dispatch import active_isa
from ._packed import column_offsets


class PackedConvWeights:
    """int8 convolution weights ``w`` of shape (OC, C/groups, KH, KW), packed.

    The promises of :class:`PackedWeights`: holds its own copy of the weights
    and per-output-channel zero points, packs for the active ISA path at
    creation and again on first use under another path (never misread), is
    immutable, safe to share between threads, and pickles as the weights,
    zero points and groups.

    Each layout is made in C++ by the code next to the kernels that read it,
    on first use by a convolution plan (:func:`conv_plan` names the layout a
    convolution reads): GEMM panels per path (one (K, OC/groups) matrix per
    group, k = (kh * KW + kw) * C/groups + c), the 1x1 NCHW rows, the
    depthwise kernels' int16 ``w - zero_point`` tap pairs, the small-group
    kernels' lanes. :attr:`layouts` lists those held.
    """

    __slots__ = ("_w", "_zero_point", "_groups", "_colsum", "_span", "_has_zp", "_fits_int8", "_offsets",
                 "_packed", "__weakref__")

    def __init__(self, w, *, groups=1, zero_point=0):
        w = conv_weights(w)
        groups = conv_groups(groups)
        oc = w.shape[0]
        check_output_channels(oc, groups)
        self._w = np.array(w, dtype=np.int8, order="C", copy=True)
        self._w.setflags(write=False)
        self._groups = groups
        self._zero_point = channel_zero_points(zero_point, oc, "zero_point")
        self._zero_point.setflags(write=False)
        self._colsum = self._w.reshape(oc, int(np.prod(self._w.shape[1:]))).sum(axis=1, dtype=np.int64).astype(np.int32)
        self._colsum.setflags(write=False)
        self._span = v.weight_span(self._zero_point)
        self._has_zp = bool(np.any(self._zero_point))
        # Every channel's w - zero_point fits int8 (some depthwise kernels
        # take only such channels; conv_plan asks).
        self._fits_int8 = True
        if self._has_zp:
            wd = self._w.reshape(oc, self.k).astype(np.int32) - self._zero_point[:, None]
            self._fits_int8 = bool(np.all((wd >= -128) & (wd <= 127)))
        self._offsets = Cache(maxsize=16)
        self._packed = Cache()  # (layout kind, ISA path or None) -> _core.Packed
        self._layout("depthwise" if self.depthwise else "gemm_panels", active_isa())

    @property
    def weights(self) -> np.ndarray:
        """The (OC, C/groups, KH, KW) int8 weights (read-only)."""
        return self._w

    @property
    def shape(self):
        return self._w.shape

    @property
    def groups(self) -> int:
        return self._groups

    @property
    def zero_point(self) -> np.ndarray:
        """(OC,) int32 per-output-channel zero points (read-only)."""
        return self._zero_point

    @property
    def depthwise(self) -> bool:
        """One input and one output channel per group (groups == C == OC)."""
        return self._w.shape[1] == 1 and self._w.shape[0] == self._groups

    @property
    def k(self) -> int:
        """Products summed per output: C/groups * KH * KW."""
        _, cg, kh, kw = self._w.shape
        return cg * kh * kw

    def packed_isas(self) -> list:
        """ISA paths this object currently holds GEMM panels for."""
        return sorted(isa for kind, isa in self._packed.keys() if kind == "gemm_panels")

    @property
    def layouts(self) -> list:
        """The packed layouts held, as the C++ that made them describes them."""
        return [p.describe() for p in self._packed.values()]

    def _layout(self, kind: str, isa: str):
        """The weights in the layout ``kind`` (a ``_core.Packed``; GEMM panels for ``isa``'s
        kernel), made on first use."""
        key = (kind, isa if kind == "gemm_panels" else None)
        return self._packed.get(key, lambda: _core.pack_conv_weights(self._w, self._zero_point, self._groups,
                                                                     kind, isa))

    def _column_offsets(self, x_zp_u: int, wrapped: bool = False) -> np.ndarray:
        """``x_zp_u * colsum[oc] - K * x_zp_u * zero_point[oc]`` (see csrc/gemm.h), cached.

        For depthwise weights this is ``x_zp_u * sum_t (w - zero_point)``, the
        same number (csrc/conv.h).
        """
        return column_offsets(self._offsets, self._colsum, self._zero_point if self._has_zp else None, self.k,
                              x_zp_u, wrapped)

    def __getstate__(self):
        return {"w": self._w, "zero_point": self._zero_point, "groups": self._groups}

    def __setstate__(self, state):
        self.__init__(state["w"], groups=state["groups"], zero_point=state["zero_point"])

    def __repr__(self):
        oc, cg, kh, kw = self.shape
        kind = "; ".join(p.kind + (f" for {p.isa}" if p.isa else "") for p in self._packed.values())
        return (f"PackedConvWeights(OC={oc}, C/groups={cg}, KH={kh}, KW={kw}, groups={self._groups}, "
                f"{kind or 'nothing packed'})")


def pack_conv_weights(w, *, groups=1, zero_point=0) -> PackedConvWeights:
    """Pack int8 convolution weights ``w`` (OC, C/groups, KH, KW) once for
    repeated conv2d/qconv2d calls. ``zero_point`` is a scalar or one per
    output channel (OC,), within [-128, 127]."""
    return PackedConvWeights(w, groups=groups, zero_point=zero_point)
