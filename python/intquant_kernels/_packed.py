"""PackedWeights: int8 weights packed once for the GEMM kernels."""
from __future__ import annotations

import numpy as np

from . import _core
from . import _validate as v
from ._cache import Cache
from ._dispatch import active_isa


def column_offsets(cache, colsum, zero_point, k: int, a_zp_u: int, wrapped: bool) -> np.ndarray:
    """``a_zp_u * colsum - k * a_zp_u * zero_point`` (zero_point None: all zero), kept in
    ``cache`` (a Cache) per activation zero point: int64, or with ``wrapped`` the int32 the
    kernels use (modulo 2**32). Shared by PackedWeights and PackedConvWeights."""
    pair = cache.get_if_present(a_zp_u)
    if pair is not None:
        return pair[1 if wrapped else 0]

    def build():
        off = a_zp_u * colsum.astype(np.int64)
        if zero_point is not None:
            off -= k * a_zp_u * zero_point.astype(np.int64)
        pair = (off, off.astype(np.uint32, casting="unsafe").view(np.int32))
        for arr in pair:
            arr.setflags(write=False)
        return pair
    return cache.get(a_zp_u, build)[1 if wrapped else 0]


class PackedWeights:
    """int8 weights ``b`` of shape (K, N), packed for the GEMM kernels.

    Holds the weights, their per-column zero points and column sums (for the
    zero-point and signed-activation corrections), and the packed layout of
    each ISA path it has been used with: packed for the active path at
    creation, and packed again on first use if another path is chosen later,
    never misread. Immutable and safe to share between threads. Pickles as
    the weights and zero points; it repacks for the unpickling machine.
    """

    __slots__ = ("_b", "_zero_point", "_colsum", "_packed", "_span", "_has_zp", "_offsets", "__weakref__")

    def __init__(self, b, *, zero_point=0):
        b = v.weights(b)
        # Our own copy: later changes to the caller's array must not reach the
        # packed layouts, and marking it read-only must not touch the caller's.
        self._b = np.array(b, dtype=np.int8, order="C", copy=True)
        self._b.setflags(write=False)
        self._zero_point = v.column_zero_points(zero_point, b.shape[1], "zero_point")
        self._zero_point.setflags(write=False)
        self._colsum = self._b.sum(axis=0, dtype=np.int64).astype(np.int32)
        self._colsum.setflags(write=False)
        self._span = v.weight_span(self._zero_point)  # for the exactness bound
        self._has_zp = bool(np.any(self._zero_point))
        self._offsets = Cache(maxsize=16)  # activation zero point (unsigned) -> column offsets
        self._packed = Cache()  # ISA path -> _core.Packed (its GEMM kernel's panels)
        self._for_isa(active_isa())

    @property
    def shape(self):
        return self._b.shape

    @property
    def weights(self) -> np.ndarray:
        """The (K, N) int8 weights (read-only)."""
        return self._b

    @property
    def zero_point(self) -> np.ndarray:
        """(N,) int32 per-column zero points (read-only)."""
        return self._zero_point

    @property
    def column_sums(self) -> np.ndarray:
        """(N,) int32 sums of each column of the weights (read-only)."""
        return self._colsum

    def packed_isas(self) -> list:
        """ISA paths this object currently holds a packed layout for."""
        return sorted(self._packed.keys())

    @property
    def layouts(self) -> list:
        """The packed layouts held, as the C++ that made them describes them."""
        return [p.describe() for p in self._packed.values()]

    def _for_isa(self, isa: str):
        """The weights packed for ``isa``'s GEMM kernel (a ``_core.Packed``), packed on first use."""
        return self._packed.get(isa, lambda: _core.pack_gemm_weights(self._b, isa))

    def _column_offsets(self, a_zp_u: int, wrapped: bool = False) -> np.ndarray:
        """``a_zp_u * colsum[n] - K * a_zp_u * zero_point[n]`` (see csrc/gemm.h), cached.

        int64, or with ``wrapped`` the int32 the kernels use (modulo 2**32).
        """
        return column_offsets(self._offsets, self._colsum, self._zero_point if self._has_zp else None,
                              self._b.shape[0], a_zp_u, wrapped)

    def __getstate__(self):
        return {"b": self._b, "zero_point": self._zero_point}

    def __setstate__(self, state):
        self.__init__(state["b"], zero_point=state["zero_point"])

    def __repr__(self):
        k, n = self.shape
        return f"PackedWeights(K={k}, N={n}, packed for {', '.join(self.packed_isas())})"


def check_no_zero_point(b_zero_point) -> None:
    """A PackedWeights carries its zero point; a b_zero_point beside it must be the default 0."""
    if type(b_zero_point) is int and b_zero_point == 0:  # the common case, without NumPy calls
        return
    if not (np.ndim(b_zero_point) == 0 and np.asarray(b_zero_point).dtype.kind in "iu" and b_zero_point == 0):
        raise ValueError("b is PackedWeights: its zero point was fixed by pack_weights(zero_point=...)")


def pack_weights(b, *, zero_point=0) -> PackedWeights:
    """Pack int8 weights ``b`` (K, N) once for repeated gemm/qgemm calls.

    ``b`` may be any strided view, e.g. ``w.T`` of a PyTorch (out, in) weight.
    ``zero_point`` is a scalar or one per column (N,), within [-128, 127].
    """
    return PackedWeights(b, zero_point=zero_point)
