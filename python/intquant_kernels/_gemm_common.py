"""Argument resolution shared by the fast gemm/qgemm and the reference."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

import numpy as np

from . import _validate as v
from ._cache import Cache


@dataclass(frozen=True)
class QgemmEpilogue:
    """The resolved epilogue of qgemm (see reference.qgemm for the arithmetic)."""

    scale: np.ndarray  # (N,) float32: float32(a_scale * b_scale[n]), or the requantize multiplier;
    #                    per row: b_scale[n] (the row's scale multiplies it per call)
    bias: np.ndarray | None  # (N,) float32, float output only
    bias_q: np.ndarray | None  # (N,) int64, requantized output only
    relu: bool
    out_dtype: np.dtype
    requantize: bool
    out_zp: int
    lo: int
    hi: int
    bias_bound: int = 0  # max |bias_q| (0 without a quantized bias), for the exactness bound
    # A per-row a_scale (given with each call, checked and copied per call: row_scales,
    # _core.qgemm_row_scales): scale holds b_scale, and these describe the rest.
    per_row: bool = False
    out_scale: float | None = None  # float32(out_scale) as a float, requantized output only
    scale_range: tuple | None = None  # (min, max) of b_scale as floats; None when N == 0
    # The epilogue arguments of the compiled kernels, and per packed weights and
    # activation zero point the column offsets with bias_q folded in (kernel_args).
    args: tuple = field(init=False, repr=False, compare=False)
    memo: Cache = field(init=False, repr=False, compare=False, default_factory=lambda: Cache(weak_keys=True))

    def __post_init__(self):
        object.__setattr__(self, "args", (self.scale, self.bias, self.relu, self.out_zp, self.lo, self.hi))


# scale, bias, relu, out_zero_point, lo, hi of the int32 output (unused there)
NO_EPILOGUE = (None, None, False, 0, 0, 0)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """int64 values modulo 2**32 as int32 (the kernels' arithmetic)."""
    return x.astype(np.uint32, casting="unsafe").view(np.int32)


def kernel_args(pw, a_zp_u: int, ep: "QgemmEpilogue | None"):
    """The column offsets (int32: every per-column constant folded in, see csrc/gemm.h) and the
    epilogue arguments of one call on packed weights ``pw``, remembered: with a quantized bias
    the offsets are ``pw``'s offsets minus ``bias_q``, kept with the epilogue per weights and
    activation zero point (the weights weakly, so that they can go)."""
    if ep is None:
        return pw._column_offsets(a_zp_u, wrapped=True), NO_EPILOGUE
    if ep.bias_q is None:
        return pw._column_offsets(a_zp_u, wrapped=True), ep.args
    def offsets():
        col_off = wrap_int32(pw._column_offsets(a_zp_u) - ep.bias_q)
        col_off.setflags(write=False)
        return col_off
    col_off = ep.memo.get(pw, lambda: Cache(maxsize=16)).get(a_zp_u, offsets)
    return col_off, ep.args



def columns_numpy(n, a_s, b_s, bias32, o_s):
    """The per-column float32 constants of the epilogue, in NumPy.

    Returns ``(scale, bias_q)``: ``scale[n] = a_s * b_s[n]`` (float32), divided
    by ``o_s`` when requantizing; ``bias_q = round_half_even(bias32 / s)`` for
    a float bias when requantizing, else None. Raises ValueError naming the
    first constraint that fails. ``_core.qgemm_columns`` computes the same in
    one C++ pass for the fast path.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        s = np.multiply(a_s, b_s, dtype=np.float32)
        if s.ndim == 0:
            s = np.full(n, s, np.float32)
        if not (np.isfinite(s) & (s > 0)).all():
            v.positive_scale(b_s, "b_scale", (n,))  # names b_scale if it is the culprit
            raise ValueError("a_scale * b_scale must be finite and > 0 in float32 for every column")
        if o_s is None:
            return s, None
        m = np.divide(s, o_s, dtype=np.float32)
        if not np.isfinite(m).all():
            raise ValueError("a_scale * b_scale / out_scale must be finite in float32")
        if bias32 is None:
            return m, None
        bq = np.rint(np.divide(bias32, s, dtype=np.float32))
        # In float64: float32 cannot hold INT32_MAX (it rounds to 2**31), and the C++ of the
        # fast path compares in double.
        if not (np.abs(bq.astype(np.float64)) <= v.INT32_MAX).all():
            raise ValueError("bias / (a_scale * b_scale) must be finite and fit int32")
        return m, bq.astype(np.int64)


#: The message of a float bias with a per-row a_scale and requantized output.
FLOAT_BIAS_PER_ROW = ("a float bias with a per-row a_scale and requantized output would be quantized per element "
                      "(bias[n] / (a_scale[m] * b_scale[n])): give an int32 bias (already quantized), or request "
                      "float32 output (no out_scale)")


def resolve_qgemm(n, a_scale, b_scale, bias, relu, out_scale, out_zero_point, out_dtype,
                  columns=columns_numpy, scale_names=("a_scale", "b_scale"), per_row=False) -> QgemmEpilogue:
    """Checks qgemm's epilogue arguments and resolves them per column.

    ``columns`` computes the float32 per-column constants (see
    :func:`columns_numpy`); everything else is shared by both paths, so they
    accept, reject and describe arguments identically. ``scale_names`` are
    the names the messages give the two scales (qconv2d: x_scale, w_scale;
    the messages of ``columns`` are its own).

    ``per_row``: ``a_scale`` is per row and not looked at here (it comes with
    each call: :func:`row_scales`); the columns are those of ``a_scale = 1``,
    i.e. ``b_scale`` itself (1 * b is exact), checked finite and > 0, with
    ``out_scale`` kept apart for the per-row multiplier; a float bias is
    refused with requantized output.
    """
    a_name, b_name = scale_names
    a_s = np.float32(1) if per_row else v.positive_scale(a_scale, a_name)
    # b_scale's values are tested through the product: a finite positive a_scale
    # times an invalid b_scale is never finite and positive.
    b_s = v.positive_scale(b_scale, b_name, (n,), check_values=False)
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu must be a bool, got {type(relu).__name__}")
    relu = bool(relu)

    bias_a = None
    if bias is not None:
        bias_a = np.asarray(bias)
        if bias_a.dtype.kind not in "fi":
            raise TypeError(f"bias must be a float or int32 array, got dtype {bias_a.dtype}")
        if bias_a.ndim > 1 or (bias_a.ndim == 1 and bias_a.shape[0] != n):
            raise ValueError(f"bias must be a scalar or have shape ({n},), got {bias_a.shape}")
        if bias_a.ndim == 0:
            bias_a = np.full(n, bias_a, bias_a.dtype)

    if out_scale is None:
        odt = np.dtype(out_dtype)
        if odt != np.float32:
            raise ValueError(f"without out_scale the output is float32; got out_dtype={odt} (give out_scale to requantize)")
        if not (np.ndim(out_zero_point) == 0 and out_zero_point == 0):
            raise ValueError("out_zero_point applies only to requantized output (give out_scale)")
        if bias_a is not None and bias_a.dtype.kind != "f":
            raise TypeError("an integer bias is a quantized (int32) bias: it applies to requantized output only")
        with np.errstate(over="ignore"):  # a float64 bias past float32 becomes +-inf, as in C
            b32 = None if bias_a is None else np.ascontiguousarray(bias_a, dtype=np.float32)
        s, _ = columns(n, a_s, b_s, None, None)
        return QgemmEpilogue(s, b32, None, relu, odt, False, 0, 0, 0, per_row=per_row,
                             scale_range=_range(s) if per_row else None)

    odt = np.dtype(out_dtype)
    if odt not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise ValueError(f"with out_scale the output is requantized: out_dtype must be int8 or uint8, got {odt}")
    qmin, qmax = v.q_range(odt)
    o_s = v.positive_scale(out_scale, "out_scale")
    ozp = v.scalar_int(out_zero_point, "out_zero_point", qmin, qmax)
    float_bias = bias_a is not None and bias_a.dtype.kind == "f"
    if bias_a is not None and not float_bias and bias_a.dtype != np.int32:
        raise TypeError(f"an integer bias must be int32, got {bias_a.dtype}")
    if per_row and float_bias:
        raise ValueError(FLOAT_BIAS_PER_ROW)
    with np.errstate(over="ignore"):
        b32 = np.ascontiguousarray(bias_a, dtype=np.float32) if float_bias else None
    if per_row:
        m, bias_q = columns(n, a_s, b_s, None, None)  # b_scale; the multiplier is formed per row
    else:
        m, bias_q = columns(n, a_s, b_s, b32, o_s)
    if bias_a is not None and not float_bias:
        bias_q = bias_a.astype(np.int64)
    lo = max(qmin, ozp) if relu else qmin
    bound = int(np.max(np.abs(bias_q))) if bias_q is not None and bias_q.size else 0
    if per_row:
        return QgemmEpilogue(m, None, bias_q, relu, odt, True, ozp, lo, qmax, bound, per_row=True,
                             out_scale=float(o_s), scale_range=_range(m))
    return QgemmEpilogue(m, None, bias_q, relu, odt, True, ozp, lo, qmax, bound)


def _range(s: np.ndarray) -> tuple | None:
    """(min, max) of float32 scales, as floats; None when there are none."""
    return (float(s.min()), float(s.max())) if s.size else None


def is_per_row(a_scale) -> bool:
    """Whether qgemm's ``a_scale`` is per row (an array of at least one dimension) rather than
    per tensor (a scalar, or a 0-d array)."""
    return type(a_scale) is not float and np.ndim(a_scale) > 0


def row_scales(a_scale, rows: tuple) -> np.ndarray:
    """A per-row ``a_scale`` as float32 of shape ``rows`` (``a.shape[:-1]``), broadcast there.

    Checks its type and shape only (TypeError, ValueError naming the expected shape); the values
    are checked with the products they make (see reference.qgemm).
    """
    a = np.asarray(a_scale)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"a_scale must be a real number or an array of them, got dtype {a.dtype}")
    if a.shape != rows:
        try:
            fits = np.broadcast_shapes(a.shape, rows) == rows
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"a_scale must be a scalar (per tensor) or have a shape broadcastable to "
                             f"a.shape[:-1] = {rows} (per row), got shape {a.shape}")
        a = np.broadcast_to(a, rows)
    if a.dtype != np.float32:
        with np.errstate(over="ignore"):  # past float32: +inf, refused with the values
            a = a.astype(np.float32)
    return a


_SCALAR_TYPES = frozenset((type(None), bool, int, float))


def _key(value):
    """A hashable key that determines ``value`` as an argument (type and contents), or
    raises TypeError for values it cannot describe that way."""
    t = type(value)
    if t in _SCALAR_TYPES:
        return (t, value)
    a = value if t is np.ndarray else np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise TypeError("no key")
    return (t, a.dtype.str, a.shape, a.tobytes())


@functools.lru_cache(maxsize=64)
def _dtype_key(dtype) -> str:
    """``np.dtype(dtype).str``, remembered per ``dtype`` argument (an unhashable one raises
    TypeError, and the call is resolved without the cache)."""
    return np.dtype(dtype).str


class EpilogueCache:
    """Remembers resolved epilogues of the fast paths, keyed by the arguments' types and contents:
    a model calls the same layer with the same scales again and again, and resolving them costs
    several microseconds per call. Arguments that cannot be keyed, and arguments that raise, are
    resolved every time. The remembered arrays are private read-only copies."""

    def __init__(self, resolve, size=64):
        self._resolve = resolve
        self._cache = Cache(maxsize=size)

    def __call__(self, n, scale_a, scale_b, bias, relu, out_scale, out_zero_point, out_dtype, columns):
        args = (n, scale_a, scale_b, bias, relu, out_scale, out_zero_point, out_dtype)
        try:
            key = (n, _key(scale_a), _key(scale_b), _key(bias), _key(relu), _key(out_scale),
                   _key(out_zero_point), _dtype_key(out_dtype), columns)
        except (TypeError, ValueError):
            return self._resolve(*args, columns=columns)

        def resolve():
            ep = self._resolve(*args, columns=columns)
            # Private read-only copies: a resolved array may be the caller's own (a float32
            # bias passes through), which may change after this call.
            own = {}
            for name in ("scale", "bias", "bias_q"):
                arr = getattr(ep, name)
                if arr is not None:
                    arr = np.array(arr, copy=True)
                    arr.setflags(write=False)
                    own[name] = arr
            return dataclasses.replace(ep, **own)
        return self._cache.get(key, resolve)
