"""PackedConvWeights: int8 convolution weights packed once for the kernels."""
from __future__ import annotations

import threading

import numpy as np

from . import _core
from . import _validate as v
from ._conv_common import channel_zero_points, check_output_channels, conv_groups, conv_weights
from ._dispatch import active_isa
from ._packed import column_offsets


class PackedConvWeights:
    """int8 convolution weights ``w`` of shape (OC, C/groups, KH, KW), packed.

    The promises of :class:`PackedWeights`: holds its own copy of the weights
    and per-output-channel zero points, packs for the active ISA path at
    creation and again on first use under another path (never misread), is
    immutable, safe to share between threads, and pickles as the weights,
    zero points and groups.

    Depthwise weights (one input and one output channel per group) are kept
    as int16 ``w - zero_point`` in tap pairs, the layout of the depthwise
    kernels of every path; other weights as one (K, OC/groups) GEMM matrix per
    group, k = (kh * KW + kw) * C/groups + c, packed per path.
    """

    __slots__ = ("_w", "_zero_point", "_groups", "_colsum", "_span", "_has_zp", "_offsets", "_packed",
                 "_lock", "__weakref__")

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
        self._offsets = {}
        self._packed = {}
        self._lock = threading.Lock()
        self._for_isa(active_isa(), self.depthwise)

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
        return sorted(k for k in self._packed if k not in ("rows", "gconv"))

    def _for_isa(self, isa: str, depthwise: bool = False) -> np.ndarray:
        """The packed weights for ``isa``'s GEMM kernel, or with ``depthwise``
        for the depthwise kernels (one layout for every path), packed on first use."""
        if depthwise:
            return self._cached("depthwise", self._pack_depthwise)
        return self._cached(isa, lambda: self._pack_gemm(isa))

    def _cached(self, key: str, build) -> np.ndarray:
        """``build()``'s read-only array, made once (under the lock) and kept under ``key``."""
        buf = self._packed.get(key)
        if buf is None:
            with self._lock:
                buf = self._packed.get(key)
                if buf is None:
                    buf = build()
                    buf.setflags(write=False)
                    self._packed[key] = buf
        return buf

    def _pack_gemm(self, isa):
        layout, mr, nr, _ = _core.gemm_shape(isa)
        oc, cg, kh, kw = self._w.shape
        g = self._groups
        # b[g][(kh * KW + kw) * Cg + c, j] = w[g * OCg + j, c, kh, kw]
        b = self._w.reshape(g, oc // g, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(g, kh * kw * cg, oc // g)
        return np.concatenate([_core.pack_b(np.ascontiguousarray(b[i]), layout, mr, nr) for i in range(g)])

    def _rows_u8(self) -> np.ndarray:
        """The weights as (OC, ceil(K / 4) * 4) uint8 rows of w + 128 (w ^ 0x80),
        zero past K: the A operand of the NCHW 1x1 path (csrc/conv.h,
        Conv1x1Nchw), made on first use."""
        def build():
            oc, k = self._w.shape[0], self.k
            buf = np.zeros((oc, -(-k // 4) * 4), np.uint8)
            buf[:, :k] = self._w.reshape(oc, k).view(np.uint8) ^ 0x80
            return buf
        return self._cached("rows", build)

    def _gconv(self) -> np.ndarray:
        """The weights of the small-group kernels (csrc/conv.h, GconvRow): per
        block of 16 output channels, tap and 4 input channels of each group,
        16 dwords of 4 weights (zero past OC), made on first use."""
        def build():
            oc, cg, kh, kw = self._w.shape
            blocks, taps = -(-oc // 16), kh * kw
            w = np.zeros((blocks * 16, cg, taps), np.int8)
            w[:oc] = self._w.reshape(oc, cg, taps)
            # [block][tap][j][lane][4]: lane l's 4 weights of input channels 4j .. 4j + 3.
            return np.ascontiguousarray(w.reshape(blocks, 16, cg // 4, 4, taps).transpose(0, 4, 2, 1, 3)).reshape(-1)
        return self._cached("gconv", build)

    def _pack_depthwise(self):
        """The depthwise kernels' weights, int16, in the order of csrc/conv.h
        (DwconvPacked): the tap pairs of ``w' = w - zero_point``; for 3x3
        kernels the same weights paired vertically; for kernels at most 4 wide
        each kernel row's weights as 4 int8 bytes (one int32 per channel and
        row, zero where they do not fit int8) and as two int16 pairs, and per
        channel whether all its weights fit int8."""
        c, _, kh, kw = self._w.shape
        taps = kh * kw
        pairs = (taps + 1) // 2
        c_pad = -(-c // 32) * 32
        wd = self._w.reshape(c, taps).astype(np.int16) - self._zero_point[:, None].astype(np.int16)
        t = np.zeros((2 * pairs, c_pad), np.int16)
        t[:taps, :c] = wd.T
        # [pair][channel][2]: both taps of a pair side by side per channel.
        parts = [np.ascontiguousarray(t.reshape(pairs, 2, c_pad).transpose(0, 2, 1)).reshape(-1)]
        if kh == 3 and kw == 3:
            # [kw][pair p][channel][2] = (kh 2p, kh 2p + 1) of column kw, zero for kh 3.
            v = np.zeros((3, 2, c_pad, 2), np.int16)
            taps3 = wd.reshape(c, 3, 3)
            v[:, 0, :c, 0] = taps3[:, 0, :].T
            v[:, 0, :c, 1] = taps3[:, 1, :].T
            v[:, 1, :c, 0] = taps3[:, 2, :].T
            parts.append(v.reshape(-1))
        if kw <= 4:
            fits = ((wd >= -128) & (wd <= 127)).all(axis=1)
            rows16 = np.zeros((c, kh, 4), np.int16)  # int16 pairs (w'0, w'1), (w'2, w'3), little-endian
            rows16[:, :, :kw] = wd.reshape(c, kh, kw)
            rows8 = np.where(fits[:, None, None], rows16, 0).astype(np.int8)  # 4 bytes = one int32
            parts += [rows8.reshape(-1).view(np.int16), rows16.reshape(-1), fits.astype(np.int16)]
        packed = np.concatenate(parts)
        assert packed.size == _core.dwconv_packed_elems(c, kh, kw)
        return packed

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
        kind = "depthwise" if self.depthwise else f"packed for {', '.join(self.packed_isas())}"
        return f"PackedConvWeights(OC={oc}, C/groups={cg}, KH={kh}, KW={kw}, groups={self._groups}, {kind})"


def pack_conv_weights(w, *, groups=1, zero_point=0) -> PackedConvWeights:
    """Pack int8 convolution weights ``w`` (OC, C/groups, KH, KW) once for
    repeated conv2d/qconv2d calls. ``zero_point`` is a scalar or one per
    output channel (OC,), within [-128, 127]."""
    return PackedConvWeights(w, groups=groups, zero_point=zero_point)
