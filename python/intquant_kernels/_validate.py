"""Argument checking shared by the fast ops and the NumPy reference.

Both paths accept and reject exactly the same inputs, with the same messages:
a TypeError for a wrong dtype or argument type, a ValueError for a value or
shape that is out of range.
"""
from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import numpy as np

_Q_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}


def q_dtype(dtype, what="dtype") -> np.dtype:
    """The int8/uint8 dtype named by ``dtype``, or TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{what} must be int8 or uint8, got {dtype!r}") from None
    if dt not in _Q_RANGES:
        raise TypeError(f"{what} must be int8 or uint8, got {dt}")
    return dt


def q_range(dtype: np.dtype, narrow_range: bool = False) -> tuple[int, int]:
    lo, hi = _Q_RANGES[dtype]
    if narrow_range:
        if dtype != np.int8:
            raise ValueError(
                "narrow_range=True is the symmetric int8 range [-127, 127]; it is not defined for "
                f"{dtype} (use dtype=np.int8)"
            )
        lo = -127
    return lo, hi


def array_of(x, dtype, what: str) -> np.ndarray:
    """``x`` as an ndarray that must already have ``dtype`` (no silent casts)."""
    a = np.asarray(x)
    if a.dtype != dtype:
        raise TypeError(
            f"{what} must be a {np.dtype(dtype)} array, got {a.dtype}"
            + (f"; convert it with .astype(np.{np.dtype(dtype)})" if a.dtype.kind in "fiub" else "")
        )
    return a


def normalize_axis(axis, ndim: int, what: str = "axis") -> int:
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"{what} must be an integer or None, got {type(axis).__name__}") from None
    if not -ndim <= ax < ndim:
        raise ValueError(f"{what}={ax} is out of range for an array of {ndim} dimension(s)")
    return ax % ndim


@dataclass(frozen=True)
class QuantParams:
    """Scale and zero point resolved against an array's shape.

    The array is viewed as ``outer x channels x inner`` (``channels == 1`` for
    per-tensor parameters); ``scale[c]`` and ``zero_point[c]`` apply to channel c.
    """

    scale: np.ndarray  # float32, shape (channels,)
    zero_point: np.ndarray  # int32, shape (channels,)
    axis: int | None
    outer: int
    channels: int
    inner: int

    def broadcast(self, ndim: int, values: np.ndarray) -> np.ndarray:
        """``values`` (one per channel) reshaped to broadcast along the axis."""
        if self.axis is None:
            return values.reshape(())
        shape = [1] * ndim
        shape[self.axis] = self.channels
        return values.reshape(shape)


def integers(value, what: str, lo: int, hi: int, forms: str = "an integer or a 1-D integer array") -> np.ndarray:
    """``value`` as an integer array. Python integers too large for any NumPy integer dtype
    (an object array) are a ValueError giving the range [lo, hi]; non-integers a TypeError."""
    a = np.asarray(value)
    if a.dtype == object and a.size and all(isinstance(e, int) and not isinstance(e, bool) for e in a.flat):
        bad = next(e for e in a.flat if not lo <= e <= hi)
        raise ValueError(f"{what} must lie in [{lo}, {hi}], got {bad}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be {forms}, got dtype {a.dtype}")
    return a


def quant_params(shape, scale, zero_point, axis, qmin: int, qmax: int) -> QuantParams:
    scale_a = np.asarray(scale)
    if scale_a.dtype.kind not in "fiu":
        raise TypeError(f"scale must be a real number or a 1-D array of them, got dtype {scale_a.dtype}")
    zp_a = integers(zero_point, "zero_point", qmin, qmax)
    for name, a in (("scale", scale_a), ("zero_point", zp_a)):
        if a.ndim > 1:
            raise ValueError(f"{name} must be a scalar or 1-D (one value per channel), got shape {a.shape}")

    per_channel = scale_a.ndim == 1 or zp_a.ndim == 1
    ndim = len(shape)
    if axis is None:
        if per_channel:
            raise ValueError(
                "a 1-D scale or zero_point is per-channel and needs axis= (the channel axis)"
            )
        ax = None
    else:
        ax = normalize_axis(axis, ndim)

    with np.errstate(over="ignore"):
        scale32 = scale_a.astype(np.float32)
    bad = ~(np.isfinite(scale32) & (scale32 > 0))
    if np.any(bad):
        first = scale_a.reshape(-1)[np.argmax(bad.reshape(-1))]
        raise ValueError(
            f"scale must be finite and > 0 in float32, got {first!r}"
            + (" (which is not representable in float32)" if np.isfinite(first) and first > 0 else "")
        )
    if np.any((zp_a < qmin) | (zp_a > qmax)):
        first = zp_a.reshape(-1)[np.argmax(((zp_a < qmin) | (zp_a > qmax)).reshape(-1))]
        raise ValueError(f"zero_point must lie in [{qmin}, {qmax}] for this dtype, got {int(first)}")

    if ax is None:
        size = int(np.prod(shape, dtype=np.int64))
        return QuantParams(scale32.reshape(1), zp_a.astype(np.int32).reshape(1), None, 1, 1, size)

    channels = shape[ax]
    for name, a in (("scale", scale_a), ("zero_point", zp_a)):
        if a.ndim == 1 and a.shape[0] != channels:
            raise ValueError(
                f"{name} has {a.shape[0]} entries but x.shape[{ax}] is {channels}: per-channel "
                "parameters need one value per channel along axis"
            )
    outer = int(np.prod(shape[:ax], dtype=np.int64))
    inner = int(np.prod(shape[ax + 1:], dtype=np.int64))
    return QuantParams(
        np.ascontiguousarray(np.broadcast_to(scale32, (channels,))),
        np.ascontiguousarray(np.broadcast_to(zp_a.astype(np.int32), (channels,))),
        ax,
        outer,
        channels,
        inner,
    )


def no_overlap(out, *pairs) -> None:
    """``out`` must not share memory (``np.may_share_memory``) with an input the kernels read in
    place while they write ``out``: the activations, and quantize's and dequantize's per-channel
    parameters. ``pairs``: (name, value) flattened. Weights, their zero points, scales and bias
    are copied (packed or resolved) before anything is written, so ``out`` may overlap them."""
    if not isinstance(out, np.ndarray):
        return
    for i in range(1, len(pairs), 2):
        value = pairs[i]
        if not isinstance(value, np.ndarray):
            continue
        # Two different arrays that each own their memory share none: no need to ask NumPy.
        if value is not out and value.base is None and out.base is None:
            continue
        if np.may_share_memory(out, value):
            raise ValueError(f"out shares memory with {pairs[i - 1]}: an output must not overlap an input "
                             f"that the kernels read while they write it")


def aligned(y: np.ndarray) -> np.ndarray:
    """``y``, or where ``y`` (a caller's ``out``) is not aligned to its dtype, a fresh array of
    its shape and dtype for the kernels to write (their scalar code stores whole elements);
    :func:`finish` copies it into ``y``."""
    return y if y.flags.aligned else np.empty(y.shape, y.dtype)


def finish(y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``y`` holding what the kernels wrote into ``target`` (from :func:`aligned`)."""
    if target is not y:
        y[...] = target
    return y


def check_out(out, shape, dtype, what: str = "out") -> np.ndarray:
    """A caller-supplied output array: right type, dtype, shape, C-contiguous, writable."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{what} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{what} must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{what} must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{what} is read-only")
    return out


# --- GEMM ---------------------------------------------------------------------

INT32_MAX = 2**31 - 1


def scalar_int(value, what: str, lo: int, hi: int) -> int:
    """An integer scalar within [lo, hi]."""
    if type(value) is int and lo <= value <= hi:  # the common case, without a NumPy round trip
        return value
    a = integers(value, what, lo, hi, "an integer")
    if a.ndim != 0:
        raise ValueError(f"{what} must be a scalar (per-tensor), got shape {a.shape}")
    v = int(a)
    if not lo <= v <= hi:
        raise ValueError(f"{what} must lie in [{lo}, {hi}], got {v}")
    return v


def column_zero_points(zero_point, n: int, what: str = "b_zero_point", each: str = "column") -> np.ndarray:
    """A scalar or (N,) int8-range zero point (one per ``each``), as (N,) int32."""
    zp = integers(zero_point, what, -128, 127)
    if zp.ndim > 1 or (zp.ndim == 1 and zp.shape[0] != n):
        raise ValueError(f"{what} must be a scalar or have shape ({n},) (one per {each}), got {zp.shape}")
    if np.any((zp < -128) | (zp > 127)):
        raise ValueError(f"{what} must lie in [-128, 127] (int8 weights)")
    return np.ascontiguousarray(np.broadcast_to(zp.astype(np.int32), (n,)))


def weights(b, what: str = "b", packed: str = "PackedWeights", axes: tuple = ("K", "N")) -> np.ndarray:
    """int8 weights with one dimension per name in ``axes`` (any strides)."""
    b = np.asarray(b)
    if b.dtype != np.int8:
        raise TypeError(f"{what} must be an int8 array or {packed}, got dtype {b.dtype}")
    if b.ndim != len(axes):
        raise ValueError(f"{what} must be {len(axes)}-D ({', '.join(axes)}), got shape {b.shape}")
    return b


def activations(a, k: int) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype not in _Q_RANGES:
        raise TypeError(f"a must be an int8 or uint8 array, got dtype {a.dtype}")
    if a.ndim < 1:
        raise ValueError("a must have at least one dimension (..., K)")
    if a.shape[-1] != k:
        raise ValueError(f"a has K={a.shape[-1]} (last axis) but b has K={k} rows")
    return a


def weight_span(b_zp: np.ndarray) -> int:
    """max over columns of max|b - b_zp[n]| for int8 weights b."""
    if b_zp.size == 0:
        return 128
    z = b_zp.astype(np.int64)
    return int(max(np.max(np.abs(-128 - z)), np.max(np.abs(127 - z))))


@functools.lru_cache(maxsize=1024)  # a model checks the same few layers on every call; a refusal raises every time
def accumulator_bound(k: int, a_dtype: np.dtype, a_zp: int, bmax: int, extra: int = 0,
                      names=("a", "b"), k_what: str = "") -> None:
    """Refuse shapes whose exact result could leave int32.

    |sum_k (a - a_zp)(b - b_zp)| <= K * max|a - a_zp| * max|b - b_zp| (``bmax``,
    from :func:`weight_span`); with an added bias, plus max|bias|. Beyond
    2**31 - 1 the int32 accumulator would wrap, so the call is refused rather
    than answered wrongly. ``names`` are the two operands' names in the
    message, ``k_what`` what K is made of (for convolution).
    """
    lo, hi = _Q_RANGES[np.dtype(a_dtype)]
    amax = max(abs(lo - a_zp), abs(hi - a_zp))
    if extra > INT32_MAX:
        raise ValueError(f"bias: max|bias| = {extra} leaves no room in the int32 accumulator "
                         f"(|bias| must be <= {INT32_MAX})")
    worst = k * amax * bmax + extra
    if worst > INT32_MAX:
        kmax = (INT32_MAX - extra) // max(1, amax * bmax)
        a, b = names
        raise ValueError(
            f"K={k}{k_what} could overflow the int32 accumulator for these dtypes and zero points "
            f"(|{a} - {a}_zero_point| <= {amax}, |{b} - {b}_zero_point| <= {bmax}"
            + (f", |bias| <= {extra}" if extra else "")
            + f"): K must be <= {kmax}"
        )


_FLT_MAX = float(np.finfo(np.float32).max)


def positive_scale(value, what: str, shape=None, check_values: bool = True) -> np.ndarray:
    """float32 scale(s), finite and > 0; scalar, or 1-D matching ``shape``.

    ``check_values=False`` skips the finite-and-positive test of an array, for
    a caller that tests a product of it instead (and reports it by name).
    """
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_)):
        # Fast path for the common Python/NumPy scalar (this runs on every call).
        f = float(value)
        if 0 < f <= _FLT_MAX:
            s = np.float32(f)
            if s > 0:
                return s
        raise ValueError(f"{what} must be finite and > 0 in float32, got {value!r}")
    a = np.asarray(value)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be a real number or a 1-D array of them, got dtype {a.dtype}")
    if shape is None and a.ndim != 0:
        raise ValueError(f"{what} must be a scalar (per-tensor), got shape {a.shape}")
    if a.ndim > 1 or (a.ndim == 1 and a.shape != shape):
        raise ValueError(f"{what} must be a scalar or have shape {shape}, got {a.shape}")
    if a.dtype == np.float32:
        a32 = a
    else:
        with np.errstate(over="ignore"):
            a32 = a.astype(np.float32)
    if check_values and not (np.isfinite(a32) & (a32 > 0)).all():
        raise ValueError(f"{what} must be finite and > 0 in float32")
    return a32


# --- dynamic quantization ---------------------------------------------------------


def dynamic_args(x, axis, dtype) -> tuple[np.ndarray, int | None, np.dtype]:
    """dynamic_quantize's ``x`` (float32), ``axis`` (normalized, or None: per tensor) and output dtype.

    Per tensor (``axis=None``) is ONNX DynamicQuantizeLinear: uint8 only.
    With ``axis`` it is symmetric int8 per slice: int8 only.
    """
    if dtype is not None:
        dt = q_dtype(dtype)
        if axis is None and dt != np.uint8:
            raise ValueError(
                f"dynamic_quantize without axis is ONNX DynamicQuantizeLinear, which gives uint8; got dtype={dt} "
                "(for symmetric int8 with one scale per slice, give axis=)"
            )
        if axis is not None and dt != np.int8:
            raise ValueError(
                f"dynamic_quantize with axis= is symmetric int8 ([-127, 127], zero point 0); got dtype={dt} "
                "(for uint8, per tensor, leave axis=None)"
            )
    x = array_of(x, np.float32, "x")
    if axis is None:
        return x, None, np.dtype(np.uint8)
    return x, normalize_axis(axis, x.ndim), np.dtype(np.int8)


def not_finite_error(x: np.ndarray) -> ValueError:
    """The error for a float32 ``x`` holding a NaN or an infinity, naming the first one."""
    bad = np.unravel_index(int(np.flatnonzero(~np.isfinite(x))[0]), x.shape)
    where = "[" + ", ".join(str(int(i)) for i in bad) + "]" if x.ndim else ""
    return ValueError(
        f"dynamic_quantize: x must be finite, got x{where} = {x[bad]!s} "
        "(a NaN or an infinity has no quantization scale)"
    )


def range_overflow_error(x: np.ndarray) -> ValueError:
    """The error for a float32 ``x`` whose range max(x, 0) - min(x, 0) overflows float32."""
    lo, hi = np.min(x, initial=np.float32(0)), np.max(x, initial=np.float32(0))
    return ValueError(
        f"dynamic_quantize: the range of x, max(x, 0) - min(x, 0) = {hi!s} - ({lo!s}), overflows float32, "
        "so the scale (max - min) / 255 is not finite"
    )
