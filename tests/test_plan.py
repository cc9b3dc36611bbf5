"""conv_plan (what runs a convolution) and the packed layouts made in C++.

The plan is made once in C++ (csrc/ops/conv_plan.cc); test_conv.py checks on every path that the
drivers run exactly the kernels it names. Here: the public API (what it accepts, what it
rejects, what it reports), the kinds of canonical layers, and the packed objects' layouts.
"""
from __future__ import annotations

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import _core

from exact import AVAILABLE_ISAS


def vnni4(isa) -> bool:
    """A GEMM kernel on the vnni4 layout (groups of 4 k, 4 bytes per column), where the NCHW 1x1
    driver runs."""
    return _core.gemm_shape(isa)["layout"] == "vnni4"


def implicit_rows(isa, run) -> bool:
    """Whether the implicit GEMM can read ``isa``'s rows of A from staging rows whose kernel rows are
    ``run`` bytes (KW x C/groups): a kernel on rows of bytes (every layout but AVX2's int16 pairs)
    and runs of whole k-groups."""
    shape = _core.gemm_shape(isa)
    return shape["layout"] != "pair16" and run % shape["k_group"] == 0


def test_inputs_arrays_shapes_and_packed():
    x = np.zeros((1, 16, 10, 10), np.uint8)
    w = np.zeros((32, 16, 3, 3), np.int8)
    by_array = iq.conv_plan(x, w, padding=1)
    assert isinstance(by_array, iq.ConvPlan) and by_array.isa == iq.active_isa()
    assert iq.conv_plan(x.shape, w.shape, padding=1) == by_array
    assert iq.conv_plan((x.shape, np.int8), (w.shape, np.int8), padding=1).kind == by_array.kind
    assert iq.conv_plan(x, iq.pack_conv_weights(w), padding=1) == by_array
    text = str(by_array)
    assert by_array.kind in text and all(name in text for _, name in by_array.kernels)
    assert by_array.weights in ("gemm_panels", "conv1x1_rows", "depthwise", "small_groups")


def test_errors_as_conv2d():
    w = np.zeros((8, 4, 3, 3), np.int8)
    with pytest.raises(TypeError, match="int8 or uint8"):
        iq.conv_plan(np.zeros((1, 4, 5, 5), np.float32), w)
    with pytest.raises(TypeError, match="int8"):
        iq.conv_plan((1, 4, 5, 5), ((8, 4, 3, 3), np.uint8))
    with pytest.raises(TypeError, match="shape tuple"):
        iq.conv_plan([1, 4, 5, 5], w)
    with pytest.raises(TypeError, match="out_dtype"):
        iq.conv_plan((1, 4, 5, 5), w, out_dtype=np.int16)
    for kwargs in (dict(padding=-1), dict(stride=0), dict(groups=3), dict(layout="NCWH")):
        with pytest.raises(ValueError) as plan_err:
            iq.conv_plan((1, 4, 5, 5), w, **kwargs)
        with pytest.raises(ValueError) as conv_err:
            iq.conv2d(np.zeros((1, 4, 5, 5), np.uint8), w, **kwargs)
        assert str(plan_err.value) == str(conv_err.value), kwargs
    with pytest.raises(ValueError, match="output height"):
        iq.conv_plan((1, 4, 2, 2), w)
    with pytest.raises(ValueError, match="groups"):
        iq.conv_plan((1, 8, 5, 5), iq.pack_conv_weights(np.zeros((8, 4, 3, 3), np.int8), groups=2), groups=1)


@pytest.mark.parametrize("isa", AVAILABLE_ISAS)
def test_kinds_of_canonical_layers(isa):
    """The kinds the plan gives layers whose kind follows from the path's kernels alone."""
    names = iq.kernel_names(isa)
    with iq.use_isa(isa):
        # 1x1, stride 1, unpadded, one group: a GEMM on the NHWC pixels as they are.
        nhwc = iq.conv_plan((2, 7, 9, 64), (256, 64, 1, 1), layout="NHWC")
        assert nhwc.kind == "gemm_in_place" and nhwc.kernels == (("gemm", names["gemm"]),)
        # The same in NCHW: the swapped GEMM where the kernel takes groups of 4 k, for int32 output.
        nchw = iq.conv_plan((2, 64, 7, 9), (256, 64, 1, 1))
        if vnni4(isa):
            assert nchw.kind == "conv1x1_nchw" and nchw.weights == "conv1x1_rows"
            assert iq.conv_plan((2, 64, 7, 9), (256, 64, 1, 1), out_dtype=np.float32).kind != "conv1x1_nchw"
        else:
            assert nchw.kind in ("implicit_gemm", "im2col_gemm")
        # 3x3 on wide rows: the implicit GEMM on rows of bytes, im2col on int16 pairs.
        dense = iq.conv_plan((1, 56, 56, 64), (64, 64, 3, 3), padding=1, layout="NHWC")
        assert dense.kind == ("implicit_gemm" if implicit_rows(isa, 3 * 64) else "im2col_gemm")
        assert dense.weights == "gemm_panels"
        # Horizontal dilation breaks the kernel row into separate runs: im2col.
        dilated = iq.conv_plan((1, 56, 56, 64), (64, 64, 3, 3), padding=2, dilation=2, layout="NHWC")
        assert dilated.kind == "im2col_gemm"
        # Depthwise in NHWC: the row kernel; more than 64 taps: the grouped GEMM.
        dw = iq.conv_plan((1, 28, 28, 32), (32, 1, 5, 5), padding=2, groups=32, layout="NHWC")
        assert dw.kind == "depthwise_rows" and dw.weights == "depthwise"
        big = iq.conv_plan((1, 28, 28, 32), (32, 1, 9, 9), padding=4, groups=32, layout="NHWC")
        assert big.kind in ("implicit_gemm", "im2col_gemm")
        # NCHW depthwise on wide planes with a stride of 1: a planar kernel on every path.
        planes = iq.conv_plan((1, 32, 40, 40), (32, 1, 3, 3), padding=1, groups=32)
        assert planes.kind in ("depthwise_planes", "depthwise_plane")
        want = "depthwise_planes" if names["dwconv_nchw_planes"] else "depthwise_plane"
        assert planes.kind == want
        # Small groups: the path's kernel where it has one.
        grouped = iq.conv_plan((1, 128, 28, 28), (128, 4, 3, 3), padding=1, groups=32)
        assert grouped.kind == ("small_groups" if names["gconv"] else "implicit_gemm" if implicit_rows(isa, 3 * 4) else
                                "im2col_gemm")


def test_planar_minimum_width():
    """NCHW depthwise planes narrower than the planar minimum width take the row kernel on a path
    whose staging planar kernel is the only planar form (5-wide kernels)."""
    min_w = _core.DWCONV_PLANE_MIN_WIDTH
    for isa in AVAILABLE_ISAS:
        with iq.use_isa(isa):
            wide = iq.conv_plan((1, 16, 8, min_w), (16, 1, 5, 5), padding=2, groups=16)
            narrow = iq.conv_plan((1, 16, 8, min_w - 1), (16, 1, 5, 5), padding=2, groups=16)
            assert wide.kind == "depthwise_plane", isa
            assert narrow.kind == "depthwise_rows", isa


def test_packed_layouts_say_what_they_hold():
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (24, 24, 3, 3), dtype=np.int8)
    pw = iq.pack_conv_weights(w)
    for isa in AVAILABLE_ISAS:
        with iq.use_isa(isa):
            iq.conv2d(np.zeros((1, 24, 8, 8), np.uint8), pw, padding=1)
    assert pw.packed_isas() == sorted(AVAILABLE_ISAS)
    assert all(text.startswith("gemm_panels for ") for text in pw.layouts)
    dw = iq.pack_conv_weights(rng.integers(-128, 128, (24, 1, 3, 3), dtype=np.int8), groups=24)
    assert [t.split(",")[0] for t in dw.layouts] == ["depthwise"]
    b = iq.pack_weights(rng.integers(-128, 128, (40, 24), dtype=np.int8))
    assert b.layouts[0].startswith(f"gemm_panels for {iq.active_isa()}") and "K=40 x N=24" in b.layouts[0]


def test_a_layout_of_another_shape_is_refused():
    """The binding checks a packed layout against what the plan reads before the kernels see it."""
    w = np.ones((8, 4, 3, 3), np.int8)
    x = np.ones((1, 4, 6, 6), np.uint8)
    other = iq.pack_conv_weights(np.ones((8, 4, 1, 9), np.int8))  # the same K, another kernel
    isa = iq.active_isa()
    g = _core.ConvGeometry(n=1, c=4, h=6, w=6, oc=8, groups=1, kh=3, kw=3, sh=1, sw=1, dh=1, dw=1, pt=0, pl=0,
                           oh=4, ow=4)
    plan = _core.plan_conv(isa, g, True, _core.OutKind.i32, True)
    right = iq.pack_conv_weights(w)._layout(plan.weights, isa)
    wrong = other._layout(plan.weights, isa)
    out = np.empty((1, 8, 4, 4), np.int32)

    def run(weights):
        sums = np.full(8, 36, np.int32)
        _core.conv2d(plan, x, 0, weights, None, sums, np.zeros(8, np.int32), out, None, None, False, 0, 0, 0)

    run(right)
    assert (out == 36).all()
    with pytest.raises(ValueError, match="packed weights: expected"):
        run(wrong)
