"""Argument resolution shared by the fast conv2d/qconv2d and the reference.

Both paths resolve their arguments here, so they accept, reject and describe
the same inputs identically: a TypeError for a wrong dtype or argument type, a
ValueError for a value or shape out of range, each naming what was expected.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from . import _validate as v
from ._gemm_common import QgemmEpilogue, columns_numpy, resolve_qgemm

LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class ConvGeometry:
    """The resolved shape of a convolution.

    Input (n, c, h, w) and output (n, oc, oh, ow) in logical NCHW order
    whatever the memory ``layout``; ``cg = c // groups`` input and ``ocg = oc //
    groups`` output channels per group; kernel (kh, kw), stride (sh, sw),
    dilation (dh, dw), padding top, left, bottom, right (pt, pl, pb, pr).
    """

    n: int
    c: int
    h: int
    w: int
    oc: int
    groups: int
    cg: int
    ocg: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pl: int
    pb: int
    pr: int
    oh: int
    ow: int
    layout: str

    @property
    def out_shape(self) -> tuple:
        """The output's shape in ``layout``: (N, OC, OH, OW) or (N, OH, OW, OC)."""
        if self.layout == "NCHW":
            return (self.n, self.oc, self.oh, self.ow)
        return (self.n, self.oh, self.ow, self.oc)

    @property
    def k(self) -> int:
        """The reduction length of one output value: (C/groups) * KH * KW."""
        return self.cg * self.kh * self.kw

    @property
    def depthwise(self) -> bool:
        """One input and one output channel per group (groups == C == OC)."""
        return self.groups == self.c == self.oc


def _int(value, what: str) -> int:
    """A Python or NumPy integer (not a bool, not a float)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def _int_tuple(value, what: str, forms: str, lengths: tuple) -> tuple:
    """An integer or a tuple/list of one of ``lengths`` integers, as a tuple."""
    if isinstance(value, (tuple, list)):
        if len(value) not in lengths:
            raise ValueError(f"{what} must be {forms}, got {tuple(value)!r}")
        return tuple(_int(e, f"each entry of {what}") for e in value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be {forms}, got {type(value).__name__} {value!r}")
    return (int(value),)


def _pair(value, what: str, least: int) -> tuple:
    """stride or dilation: an integer or (h, w), each >= ``least``."""
    t = _int_tuple(value, what, "an integer or a pair (h, w)", (2,))
    if min(t) < least:
        raise ValueError(f"{what} must be >= {least}, got {value!r}")
    return t * 2 if len(t) == 1 else t


def _padding(value) -> tuple:
    """(top, left, bottom, right) from an integer, (h, w) or (top, left, bottom, right)."""
    t = _int_tuple(value, "padding", "an integer, a pair (h, w) or (top, left, bottom, right)", (2, 4))
    if min(t) < 0:
        raise ValueError(f"padding must be >= 0, got {value!r}")
    return t * 4 if len(t) == 1 else t * 2 if len(t) == 2 else t


def conv_layout(layout) -> str:
    if not isinstance(layout, str):
        raise TypeError(f"layout must be the str 'NCHW' or 'NHWC', got {type(layout).__name__}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    return layout


def conv_groups(groups) -> int:
    g = _int(groups, "groups")
    if g < 1:
        raise ValueError(f"groups must be >= 1, got {g}")
    return g


def check_output_channels(oc: int, groups: int) -> None:
    """The output channels OC = w.shape[0] must be divisible by groups (conv2d and pack_conv_weights)."""
    if oc % groups:
        raise ValueError(f"w has OC={oc} output channels (w.shape[0]), which groups={groups} does not divide")


def _out_size(what, size, before, after, kernel, stride, dilation) -> int:
    """(size + before + after - dilation*(kernel - 1) - 1) // stride + 1, which must be >= 1."""
    span = dilation * (kernel - 1) + 1  # the dilated kernel
    padded = size + before + after
    if span > padded:
        raise ValueError(
            f"the output {what} would be < 1: the dilated kernel ({span}) is larger than the padded input "
            f"({size} + {before} + {after} = {padded}); the output {what} must be >= 1"
        )
    return (padded - span) // stride + 1


def conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, layout) -> ConvGeometry:
    """Checks a convolution's shapes and parameters and resolves its geometry.

    ``x_shape`` is (N, C, H, W) for layout "NCHW" or (N, H, W, C) for "NHWC";
    ``w_shape`` is (OC, C/groups, KH, KW) in both layouts. stride and dilation
    are an integer or (h, w), each >= 1; padding an integer, (h, w) or (top,
    left, bottom, right), each >= 0; groups an integer >= 1 dividing C and OC.
    Integers are Python or NumPy integers; bools and floats raise TypeError.
    """
    layout = conv_layout(layout)
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    pt, pl, pb, pr = _padding(padding)
    g = conv_groups(groups)
    if len(x_shape) != 4:
        raise ValueError(f"x must be 4-D ({', '.join(layout)}), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"w must be 4-D (OC, C/groups, KH, KW), got shape {tuple(w_shape)}")
    if layout == "NCHW":
        n, c, h, w = x_shape
    else:
        n, h, w, c = x_shape
    oc, wc, kh, kw = w_shape
    if c % g:
        raise ValueError(f"x has C={c} channels, which groups={g} does not divide")
    check_output_channels(oc, g)
    if wc != c // g:
        raise ValueError(
            f"w.shape[1] must be C/groups = {c // g} (x has C={c} channels, groups={g}), got {wc}"
        )
    if kh < 1 or kw < 1:
        raise ValueError(f"w's kernel must be at least 1x1, got KH={kh}, KW={kw}")
    oh = _out_size("height", h, pt, pb, kh, sh, dh)
    ow = _out_size("width", w, pl, pr, kw, sw, dw)
    return ConvGeometry(n=n, c=c, h=h, w=w, oc=oc, groups=g, cg=c // g, ocg=oc // g, kh=kh, kw=kw,
                        sh=sh, sw=sw, dh=dh, dw=dw, pt=pt, pl=pl, pb=pb, pr=pr, oh=oh, ow=ow, layout=layout)


_Q8 = (np.dtype(np.int8), np.dtype(np.uint8))


def conv_activations(x) -> np.ndarray:
    """``x`` as an int8 or uint8 4-D ndarray (any strides)."""
    x = np.asarray(x)
    if x.dtype not in _Q8:
        raise TypeError(f"x must be an int8 or uint8 array, got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(
            f"x must be 4-D, (N, C, H, W) with layout='NCHW' or (N, H, W, C) with layout='NHWC'; got shape {x.shape}"
        )
    return x


def conv_weights(w) -> np.ndarray:
    """``w`` as an int8 (OC, C/groups, KH, KW) ndarray (any strides)."""
    return v.weights(w, "w", "PackedConvWeights", ("OC", "C/groups", "KH", "KW"))


def channel_zero_points(zero_point, oc: int, what: str = "w_zero_point") -> np.ndarray:
    """A scalar or (OC,) weight zero point within [-128, 127], as (OC,) int32."""
    return v.column_zero_points(zero_point, oc, what, each="output channel")


def check_packed_args(packed_groups: int, w_zero_point, groups) -> None:
    """With PackedConvWeights, ``w_zero_point`` must be the default 0 and ``groups`` the packed one."""
    if not (np.ndim(w_zero_point) == 0 and np.asarray(w_zero_point).dtype.kind in "iu" and w_zero_point == 0):
        # The wording of _packed.check_no_zero_point(w_zero_point, "w", "pack_conv_weights").
        raise ValueError("w is packed: its zero point was fixed by pack_conv_weights(zero_point=...)")
    if conv_groups(groups) != packed_groups:
        raise ValueError(
            f"w is PackedConvWeights packed with groups={packed_groups}, but groups={groups} was given"
        )


def accumulator_bound(k: int, x_dtype, x_zp: int, w_span: int, extra: int = 0) -> None:
    """_validate.accumulator_bound for K = (C/groups) * KH * KW, in conv's names."""
    v.accumulator_bound(k, x_dtype, x_zp, w_span, extra, names=("x", "w"), k_what=" (C/groups * KH * KW)")


# qgemm's per-column helpers (columns_numpy, or the C++ one the fast gemm uses)
# speak of a_scale, b_scale and columns; conv's arguments are x_scale, w_scale
# and output channels.
_CONV_WORDS = {"a_scale": "x_scale", "b_scale": "w_scale", "for every column": "for every output channel"}
_CONV_WORDS_RE = re.compile(r"\b(" + "|".join(map(re.escape, _CONV_WORDS)) + r")\b")


def _in_conv_words(columns):
    """``columns`` with the messages of its errors reworded for conv (same exception type)."""
    def conv_columns(n, a_s, b_s, bias32, o_s):
        try:
            return columns(n, a_s, b_s, bias32, o_s)
        except (TypeError, ValueError) as e:
            raise type(e)(_CONV_WORDS_RE.sub(lambda m: _CONV_WORDS[m.group(1)], str(e))) from None
    return conv_columns


def resolve_qconv(oc, x_scale, w_scale, bias, relu, out_scale, out_zero_point, out_dtype,
                  columns=columns_numpy) -> QgemmEpilogue:
    """qconv2d's epilogue arguments, checked and resolved per output channel.

    Exactly qgemm's (see :func:`_gemm_common.resolve_qgemm`) with N = OC,
    ``a_scale`` = ``x_scale`` and ``b_scale`` = ``w_scale``; messages name
    x_scale, w_scale and output channels. ``columns`` is as for resolve_qgemm
    (``columns_numpy``, or the fast path's C++ helper): its error messages are
    reworded here, so both give the same text.
    """
    return resolve_qgemm(oc, x_scale, w_scale, bias, relu, out_scale, out_zero_point, out_dtype,
                         columns=_in_conv_words(columns), scale_names=("x_scale", "w_scale"))
