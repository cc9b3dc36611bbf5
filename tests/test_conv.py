"""int8 convolution (conv2d, qconv2d, PackedConvWeights): exact equality with the NumPy reference
on every ISA path.

Every comparison is exact: int results by value, float results by bit pattern. Random
configurations come from ``random_case`` of tests/test_conv_reference.py (which checks that the
reference itself computes a convolution), seeded by the test's purpose and index, so a failure
reproduces from its id alone. ISA paths come from the ``isa`` fixture of conftest.py; every test
that forces a path also checks, through ``iq.kernel_calls()``, that the path's conv kernel ran
(``conv_kernel_runs``): the GEMM tile kernel (``kernel_names(isa)["gemm"]``) for a general
convolution, or the swapped-GEMM driver for a 1x1 NCHW one (``conv1x1_nchw``); the small-group
kernel (``"gconv"``) for small groups; for depthwise (groups == C == OC > 1) the row kernel
(``"dwconv"``, or its 3x3 form ``"dwconv3x3"``) or, for NCHW, a planar kernel (``"dwconv_nchw"``,
or ``"dwconv_nchw_planes"``, which reads the planes as given).
"""
from __future__ import annotations

import contextlib
import functools
import pickle

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels import _core
from intquant_kernels import reference as ref
from intquant_kernels._conv_common import conv_geometry

from exact import (AVAILABLE_ISAS, EXTREMES, IMPLS, assert_same, assert_same_errors, check_error, raises_on_both,
                   read_only, shape_in)

# The random configurations, helpers and error table of the reference's own tests.
from test_conv_reference import (
    BOUND_CASES,
    EMPTY,
    EPILOGUES,
    ERRORS,
    OUT_SHAPE,
    Q_RANGE,
    X,
    W,
    epilogue_args,
    rand_q,
    random_case,
    rng_for,
    to_nchw,
)


# --- helpers ---------------------------------------------------------------------------


#: The driver of 1x1 NCHW int32 convolutions on the vnni4 GEMM kernels (csrc/ops/conv.h, Conv1x1Nchw).
NCHW_1X1 = "conv1x1_nchw"
#: The plan kinds that read NCHW planes directly (no NHWC staging).
PLANAR = ("depthwise_planes", "depthwise_plane")


def vnni4(isa) -> bool:
    """Whether ``isa``'s GEMM kernel takes the vnni4 layout (groups of 4 k, 4 bytes per column),
    where the NCHW 1x1 driver runs."""
    return _core.gemm_shape(isa)["layout"] == "vnni4"


def plan_for(x, w, kw, out_dtype=np.int32):
    """``iq.conv_plan`` of the call ``conv2d(x, w, **kw)`` (``qconv2d`` with ``out_dtype``) on the
    active path."""
    pkw = {k: kw[k] for k in ("stride", "padding", "dilation", "groups", "layout") if k in kw}
    if not isinstance(w, iq.PackedConvWeights):
        w = iq.pack_conv_weights(w, groups=kw.get("groups", 1), zero_point=kw.get("w_zero_point", 0))
    return iq.conv_plan(x, w, out_dtype=out_dtype, **pkw)


@contextlib.contextmanager
def conv_kernel_runs(isa, x, w, what, kw, out_dtype=np.int32):
    """Checks that the block, ``conv2d(x, w, **kw)`` on the forced path ``isa`` (``qconv2d`` with
    ``out_dtype``), ran exactly the kernels that ``iq.conv_plan`` names for it, all of them the
    path's own (``kernel_names(isa)``), and nothing else. Where the plan reads NCHW planes as given
    but only some channels' weights fit the kernel's int8 bytes, it names both planar kernels, and
    either or both may run (the channels decide). An empty output runs nothing."""
    plan = plan_for(x, w, kw, out_dtype)
    assert plan.isa == isa, f"{what}: planned for {plan.isa}, forced {isa}"
    expected = {name for _, name in plan.kernels}
    own = set(iq.kernel_names(isa).values()) | {NCHW_1X1}
    assert expected <= own, f"{what}: {expected - own} not kernels of {isa}"
    before = iq.kernel_calls()
    yield plan
    after = iq.kernel_calls()
    ran = {name: count - before.get(name, 0) for name, count in after.items() if count != before.get(name, 0)}
    if x.size == 0 or w.shape[0] == 0:
        return
    if plan.kind == "depthwise_planes" and len(expected) == 2:
        assert ran and set(ran) <= expected, f"{what}: expected {' or '.join(sorted(expected))}, ran {ran}"
    else:
        assert set(ran) == expected, f"{what}: expected {' and '.join(sorted(expected))} ({plan.kind}), ran {ran}"


def assert_qconv_epilogues(rng, x, wt, kw, what, out_scale, out_zero_point, relu):
    """qconv2d against the reference with both epilogues: requantized to int8 (an int32 bias,
    ``relu`` as given) and float32 (per-channel scales, a float bias)."""
    oc = wt.shape[0]
    qkw = dict(kw, bias=rng.integers(-900, 900, oc).astype(np.int32), out_scale=out_scale,
               out_zero_point=out_zero_point, out_dtype=np.int8, relu=relu)
    assert_same(iq.qconv2d(x, wt, 0.05, 0.01, **qkw), ref.qconv2d(x, wt, 0.05, 0.01, **qkw), f"{what} qconv2d")
    ws = (rng.random(oc) * 0.02 + 0.001).astype(np.float32)
    fkw = dict(kw, bias=rng.standard_normal(oc).astype(np.float32))
    assert_same(iq.qconv2d(x, wt, 0.05, ws, **fkw), ref.qconv2d(x, wt, 0.05, ws, **fkw), f"{what} qconv2d float")


@functools.lru_cache(maxsize=None)
def cached_case(*key, groups=None):
    """``random_case(*key)`` and its reference conv2d, computed once for all ISA paths. The arrays
    are read-only (so the fast path is also checked to accept read-only inputs)."""
    case = random_case(*key, groups=groups)
    case.x, case.w = read_only(case.x), read_only(case.w)
    want = read_only(ref.conv2d(case.x, case.w, **case.kw))
    return case, want


def check_conv(isa, case, want, where=""):
    what = f"isa={isa} {case} {where}".rstrip()
    with conv_kernel_runs(isa, case.x, case.w, what, case.kw):
        got = iq.conv2d(case.x, case.w, **case.kw)
    assert_same(got, want, what)
    assert got.flags.c_contiguous, what


# --- random configurations -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(150))
def test_random_configs(isa, seed):
    """Kernels 1-7 and non-square, strides 1-3, dilation 1-2, any padding, groups 1/2/4/depthwise,
    odd channel counts, tiny, square, wide and tall images, both layouts, int8/uint8, zero points."""
    case, want = cached_case("fast", seed)
    check_conv(isa, case, want)


@pytest.mark.parametrize("groups", [1, 2, 4, "depthwise"])
@pytest.mark.parametrize("seed", range(10))
def test_group_kinds(isa, groups, seed):
    case, want = cached_case("fast_groups", groups, seed, groups=groups)
    check_conv(isa, case, want)


@pytest.mark.parametrize("epilogue", list(EPILOGUES))
@pytest.mark.parametrize("seed", range(8))
def test_qconv2d_epilogues(isa, epilogue, seed):
    """Float32 and requantized epilogues, bias float/int32, relu, w_scale per channel or scalar:
    bit for bit the reference, with raw and packed weights and into ``out=``."""
    case, _ = cached_case("fast_q", seed, groups=[1, 2, "depthwise", 4][seed % 4])
    rng = rng_for("fast_q_scales", seed, epilogue)
    x_scale, w_scale, kw = epilogue_args(rng, case.w.shape[0], epilogue)
    want = ref.qconv2d(case.x, case.w, x_scale, w_scale, **case.kw, **kw)
    what = f"isa={isa} epilogue={epilogue} {case}"
    with conv_kernel_runs(isa, case.x, case.w, what, case.kw, want.dtype):
        got = iq.qconv2d(case.x, case.w, x_scale, w_scale, **case.kw, **kw)
    assert_same(got, want, what)

    args = dict(case.kw)
    pw = iq.pack_conv_weights(case.w, groups=args["groups"], zero_point=args.pop("w_zero_point"))
    assert_same(iq.qconv2d(case.x, pw, x_scale, w_scale, **args, **kw), want, f"{what} packed")
    out = np.full(want.shape, 99, want.dtype)
    assert iq.qconv2d(case.x, pw, x_scale, w_scale, out=out, **args, **kw) is out
    assert_same(out, want, f"{what} out=")


# --- depthwise, pointwise, layouts -----------------------------------------------------------

DEPTHWISE_C = (1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 144)


@pytest.mark.parametrize("c", DEPTHWISE_C, ids=lambda c: f"C={c}")
def test_depthwise(isa, c):
    """groups == C == OC with C around the vector widths, 3x3 and 5x5 kernels, strides 1, 2 and 3,
    padding k // 2, batch 2, both layouts (NCHW runs the planar kernel for horizontal strides 1
    and 2), rows 3 to 74 pixels wide (several 16- and 32-pixel blocks and their tails): conv2d,
    and qconv2d with requantizing and float epilogues."""
    rng = rng_for("depthwise", c)
    for k in (3, 5):
        for stride in (1, 2, 3):
            for layout in ("NCHW", "NHWC"):
                dtype = (np.int8, np.uint8)[rng.integers(2)]
                lo, hi = Q_RANGE[np.dtype(dtype)]
                h, w = int(rng.integers(3, 12)), int(rng.integers(3, 75))
                x = rand_q(rng, shape_in(layout, 2, c, h, w), dtype)
                wt = rand_q(rng, (c, 1, k, k), np.int8)
                kw = dict(stride=stride, padding=k // 2, groups=c, layout=layout,
                          x_zero_point=int(rng.integers(lo, hi + 1)),
                          w_zero_point=rng.integers(-128, 128, c).astype(np.int32) if rng.random() < 0.5 else 3)
                what = f"isa={isa} C={c} k={k} stride={stride} {layout} x={np.dtype(dtype)} {h}x{w}"
                with conv_kernel_runs(isa, x, wt, what, kw):
                    got = iq.conv2d(x, wt, **kw)
                assert_same(got, ref.conv2d(x, wt, **kw), what)
                qkw = dict(kw, bias=rng.integers(-500, 500, c).astype(np.int32), out_scale=0.02,
                           out_zero_point=5, out_dtype=np.int8, relu=bool(stride == 2))
                assert_same(iq.qconv2d(x, wt, 0.05, 0.01, **qkw), ref.qconv2d(x, wt, 0.05, 0.01, **qkw),
                            f"{what} qconv2d")
                fkw = dict(kw, bias=rng.standard_normal(c).astype(np.float32), relu=bool(stride != 2))
                ws = (rng.random(c) * 0.02 + 0.001).astype(np.float32)
                assert_same(iq.qconv2d(x, wt, 0.05, ws, **fkw), ref.qconv2d(x, wt, 0.05, ws, **fkw),
                            f"{what} qconv2d float")


DW3X3_CHANNELS = [1, 16, 31, 33, 144]


@pytest.mark.parametrize("c", DW3X3_CHANNELS)
def test_depthwise_3x3_column_pairs(isa, c):
    """3x3 depthwise without horizontal dilation (the kernels that pair an input column's rows once
    for every output pixel that reads it): horizontal strides 1 and 2 (and 3, which does not take
    that path), vertical strides 1 and 2, vertical dilation 1 and 2, asymmetric padding, inputs 1 to
    13 pixels wide (output rows of 1 to 13 pixels, around the 4-pixel blocks), both layouts and
    dtypes, weight zero points, and all three epilogues."""
    rng = rng_for("dw3x3", c)
    for sh, sw, dh, width in [(1, 1, 1, 1), (1, 1, 1, 4), (1, 1, 1, 7), (2, 1, 1, 13), (1, 2, 1, 9), (2, 2, 1, 8),
                              (1, 2, 2, 5), (1, 1, 2, 11), (2, 3, 1, 10), (1, 1, 1, 3)]:
        for layout in ("NHWC", "NCHW"):
            dtype = (np.int8, np.uint8)[rng.integers(2)]
            lo, hi = Q_RANGE[np.dtype(dtype)]
            x = rand_q(rng, shape_in(layout, 2, c, int(rng.integers(5, 9)), width), dtype)
            wt = rand_q(rng, (c, 1, 3, 3), np.int8)
            kw = dict(stride=(sh, sw), dilation=(dh, 1), padding=(1, 1, 2, 1), groups=c, layout=layout,
                      x_zero_point=int(rng.integers(lo, hi + 1)),
                      w_zero_point=rng.integers(-128, 128, c).astype(np.int32) if rng.random() < 0.5 else 0)
            what = f"isa={isa} C={c} stride=({sh},{sw}) dilation=({dh},1) width={width} {layout} {np.dtype(dtype)}"
            form = iq.kernel_names(isa)["dwconv3x3"]  # None on paths without a 3x3 form
            before = iq.kernel_calls().get(form, 0)
            assert_same(iq.conv2d(x, wt, **kw), ref.conv2d(x, wt, **kw), what)
            ran = iq.kernel_calls().get(form, 0) > before
            # NCHW planes may take a planar kernel instead (the plan says where).
            plan = plan_for(x, wt, kw)
            planar = plan.kind in PLANAR
            assert planar or plan.kind == "depthwise_rows", f"{what}: {plan.kind}"
            assert not planar or layout == "NCHW", f"{what}: NHWC input read as planes"
            pairs = form is not None and sw <= 2 and not planar
            assert ran == pairs, f"{what}: the 3x3 column-pair kernel {'did not run' if pairs else 'ran'}"
            assert ((form, True) in {(n, True) for _, n in plan.kernels}) == pairs, f"{what}: {plan.kernels}"
            qkw = dict(kw, bias=rng.integers(-500, 500, c).astype(np.int32), out_scale=0.02, out_zero_point=5,
                       out_dtype=np.uint8)
            assert_same(iq.qconv2d(x, wt, 0.05, 0.01, **qkw), ref.qconv2d(x, wt, 0.05, 0.01, **qkw),
                        f"{what} qconv2d")
            fkw = dict(kw, bias=rng.standard_normal(c).astype(np.float32), relu=True)
            assert_same(iq.qconv2d(x, wt, 0.05, 0.003, **fkw), ref.qconv2d(x, wt, 0.05, 0.003, **fkw),
                        f"{what} qconv2d float")


POINTWISE = [(1, 1), (3, 17), (16, 16), (33, 130), (64, 64), (144, 24)]


@pytest.mark.parametrize("c,oc", POINTWISE, ids=[f"C={c}-OC={oc}" for c, oc in POINTWISE])
def test_pointwise_nhwc_is_a_gemm(isa, c, oc):
    """A 1x1 stride-1 NHWC convolution is the GEMM of the pixels by the (C, OC) weights."""
    rng = rng_for("pointwise", c, oc)
    for dtype, x_zp in ((np.uint8, 128), (np.int8, -3)):
        x = rand_q(rng, (2, 5, 9, c), dtype)
        w = rand_q(rng, (oc, c, 1, 1), np.int8)
        w_zp = rng.integers(-128, 128, oc).astype(np.int32)
        want = ref.gemm(x.reshape(-1, c), w[:, :, 0, 0].T, a_zero_point=x_zp, b_zero_point=w_zp).reshape(2, 5, 9, oc)
        what = f"isa={isa} 1x1 NHWC C={c} OC={oc} x={np.dtype(dtype)}"
        with conv_kernel_runs(isa, x, w, what, dict(layout="NHWC", w_zero_point=w_zp)):
            got = iq.conv2d(x, w, layout="NHWC", x_zero_point=x_zp, w_zero_point=w_zp)
        assert_same(got, want, what)
        assert_same(ref.conv2d(x, w, layout="NHWC", x_zero_point=x_zp, w_zero_point=w_zp), want, f"{what} reference")


TILE_OC = (1, 15, 16, 17, 63, 64, 65, 127, 130)


@pytest.mark.parametrize("oc", TILE_OC, ids=lambda oc: f"OC={oc}")
def test_tile_remainders(isa, oc):
    """Output channels around the GEMM tiles' 16 and 64 columns, output pixels per image around
    their 4 and 5 rows (OH * OW in 1..13), and K past the kernels' L1 slice (C=200, 3x3: K=1800),
    through the im2col path (NCHW, padded)."""
    rng = rng_for("tiles", oc)
    for c, ow in ((5, 1), (5, 2), (3, 3), (4, 4), (6, 5), (200, 3)):
        for oh in (1, 2):
            layout = ("NCHW", "NHWC")[(ow + oh) % 2]
            x = rand_q(rng, shape_in(layout, 2, c, oh, ow), np.uint8)
            w = rand_q(rng, (oc, c, 3, 3), np.int8)
            kw = dict(padding=1, layout=layout, x_zero_point=7, w_zero_point=rng.integers(-5, 5, oc))
            what = f"isa={isa} OC={oc} C={c} OH={oh} OW={ow} {layout}"
            with conv_kernel_runs(isa, x, w, what, kw):
                got = iq.conv2d(x, w, **kw)
            assert_same(got, ref.conv2d(x, w, **kw), what)


IMPLICIT = [  # (C/groups, groups, KH, KW, stride, dilation, padding, W)
    (4, 1, 3, 3, 1, 1, 1, 40),
    (8, 2, 3, 1, (1, 2), (2, 1), (0, 1, 2, 0), 33),
    (12, 1, 5, 5, 2, 1, 2, 64),
    (64, 1, 3, 3, 1, 1, 1, 21),
    (1, 1, 2, 4, 1, 1, 0, 17),
    (3, 1, 3, 3, 1, 1, 1, 30),  # KW * C/groups = 9: not whole k-groups, im2col
    (4, 1, 3, 3, 1, (1, 2), 1, 30),  # horizontal dilation: im2col
]


@pytest.mark.parametrize("case", IMPLICIT, ids=[f"case{i}" for i in range(len(IMPLICIT))])
def test_wide_rows(isa, case):
    """Output rows at least twice the tile height, where the tile kernels read kernel rows straight
    from the staged input (when KW * C/groups fills whole k-groups and there is no horizontal
    dilation): every layout, activation dtype and zero-point form, one and two threads."""
    cg, groups, kh, kw, stride, dilation, padding, width = case
    rng = rng_for("wide", cg, kw, width)
    oc = groups * (67 if groups == 1 else 33)  # column tails past the 16- and 64-wide tiles
    w = rand_q(rng, (oc, cg, kh, kw), np.int8)
    for layout in ("NCHW", "NHWC"):
        for dt, xzp, wzp in ((np.uint8, 200, 0), (np.int8, -3, rng.integers(-128, 128, oc))):
            x = rand_q(rng, shape_in(layout, 2, cg * groups, 9, width), dt)
            kwargs = dict(stride=stride, dilation=dilation, padding=padding, groups=groups, layout=layout,
                          x_zero_point=xzp, w_zero_point=wzp)
            want = ref.conv2d(x, w, **kwargs)
            for threads in (1, 2):
                iq.set_num_threads(threads)
                what = f"isa={isa} {case} {layout} {np.dtype(dt)} threads={threads}"
                with conv_kernel_runs(isa, x, w, what, kwargs):
                    got = iq.conv2d(x, w, **kwargs)
                assert_same(got, want, what)


@pytest.mark.parametrize("seed", range(6))
def test_layouts_agree(isa, seed):
    """The same data in NCHW and NHWC (contiguous, or a transposed view of the other) gives the same
    result after transposition."""
    case, _ = cached_case("fast_layouts", seed, groups=[1, 2, "depthwise"][seed % 3])
    kw = dict(case.kw)
    x_nchw = np.ascontiguousarray(to_nchw(case.x, kw.pop("layout")))
    x_nhwc = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    what = f"isa={isa} {case}"
    want = ref.conv2d(x_nchw, case.w, layout="NCHW", **kw)
    for x, layout, view in ((x_nchw, "NCHW", "contiguous"), (x_nhwc, "NHWC", "contiguous"),
                            (x_nhwc.transpose(0, 3, 1, 2), "NCHW", "view of NHWC"),
                            (x_nchw.transpose(0, 2, 3, 1), "NHWC", "view of NCHW")):
        with conv_kernel_runs(isa, x, case.w, what, dict(kw, layout=layout)):
            got = iq.conv2d(x, case.w, layout=layout, **kw)
        assert_same(np.ascontiguousarray(to_nchw(got, layout)), want, f"{what} {layout} ({view})")


def test_strided_views(isa):
    """x and w as non-contiguous views (every other element, Fortran order, negative strides) are
    read correctly and left unchanged."""
    case, want = cached_case("fast_views", 0, groups=2)
    x_view = np.repeat(case.x, 2, axis=-1)[..., ::2]
    w_view = np.asfortranarray(case.w)
    assert_same(iq.conv2d(x_view, w_view, **case.kw), want, f"isa={isa} every other element, Fortran w {case}")
    x_rev = np.ascontiguousarray(case.x[:, ::-1])[:, ::-1]
    w_rev = np.ascontiguousarray(case.w[:, :, ::-1])[:, :, ::-1]
    assert_same(iq.conv2d(x_rev, w_rev, **case.kw), want, f"isa={isa} negative strides {case}")
    assert_same(x_rev, case.x, "x was modified")


def test_zero_points_as_other_integer_types(isa):
    case, want = cached_case("fast_zp_types", 0, groups=1)
    kw = dict(case.kw)
    kw["x_zero_point"] = np.int64(kw["x_zero_point"])
    kw["w_zero_point"] = np.asarray(kw["w_zero_point"], np.int64)
    assert_same(iq.conv2d(case.x, case.w, **kw), want, f"isa={isa} int64 zero points {case}")
    kw["w_zero_point"] = np.asarray(kw["w_zero_point"]).tolist()
    assert_same(iq.conv2d(case.x, case.w, **kw), want, f"isa={isa} zero points as Python ints {case}")


# --- PackedConvWeights ------------------------------------------------------------------------


@pytest.mark.parametrize("groups", [1, 3, "depthwise"])
def test_packed_conv_weights(isa, groups):
    """Packed once, reused: across calls with other inputs, strides, paddings, layouts and dtypes;
    across ISA paths (it packs again for a path on first use); after pickling; unaffected by later
    writes to the caller's array."""
    rng = rng_for("packed", groups)
    c = 12 if groups == "depthwise" else 3 * 5
    g = c if groups == "depthwise" else groups
    oc = c if groups == "depthwise" else 3 * 7
    base = rand_q(rng, (oc, c // g, 3, 3), np.int8)
    w = base.copy()
    w_zp = rng.integers(-128, 128, oc).astype(np.int32)
    pw = iq.pack_conv_weights(base, groups=g, zero_point=w_zp)
    assert isinstance(pw, iq.PackedConvWeights)
    assert pw.groups == g
    assert_same(pw.weights, w, "weights")
    assert_same(pw.zero_point, w_zp, "zero_point")
    assert not pw.weights.flags.writeable and not pw.zero_point.flags.writeable
    assert base.flags.writeable, "pack_conv_weights made the caller's array read-only"
    base[...] = -base  # the caller reuses its buffer: the packed weights must not follow
    assert_same(pw.weights, w, "weights after the caller's array changed")
    assert_same(iq.pack_conv_weights(w, groups=g, zero_point=-4).zero_point, np.full(oc, -4, np.int32),
                "scalar zero_point")

    calls = []
    for i, (layout, dtype, stride, padding) in enumerate([("NCHW", np.uint8, 1, 1), ("NHWC", np.int8, 2, (0, 1, 2, 0)),
                                                          ("NHWC", np.uint8, (1, 2), 0), ("NCHW", np.int8, 3, 2)]):
        lo, hi = Q_RANGE[np.dtype(dtype)]
        x = rand_q(rng, shape_in(layout, 2, c, 9, 8), dtype)
        kw = dict(stride=stride, padding=padding, groups=g, layout=layout, x_zero_point=int(rng.integers(lo, hi + 1)))
        calls.append((x, kw, ref.conv2d(x, w, w_zero_point=w_zp, **kw)))

    for x, kw, want in calls:
        what = f"isa={isa} groups={g} {kw}"
        with conv_kernel_runs(isa, x, pw, what, kw):
            assert_same(iq.conv2d(x, pw, **kw), want, f"{what} packed")
        assert_same(ref.conv2d(x, pw, **kw), want, f"{what} reference with PackedConvWeights")
        assert_same(iq.conv2d(x, w, w_zero_point=w_zp, **kw), want, f"{what} raw w")
        assert_same(iq.qconv2d(x, pw, 0.1, 0.2, **kw), ref.qconv2d(x, w, 0.1, 0.2, w_zero_point=w_zp, **kw),
                    f"{what} qconv2d packed")

    for other in AVAILABLE_ISAS:  # including paths this object has not packed for yet
        with iq.use_isa(other):
            for x, kw, want in calls:
                what = f"packed under {isa}, run under {other}, {kw}"
                with conv_kernel_runs(other, x, pw, what, kw):
                    assert_same(iq.conv2d(x, pw, **kw), want, what)

    pw2 = pickle.loads(pickle.dumps(pw))
    assert isinstance(pw2, iq.PackedConvWeights) and pw2.groups == g
    assert_same(pw2.weights, w, "unpickled weights")
    assert_same(pw2.zero_point, w_zp, "unpickled zero_point")
    for x, kw, want in calls:
        assert_same(iq.conv2d(x, pw2, **kw), want, f"isa={isa} unpickled {kw}")


# --- batch, threads, extreme values, the exactness bound ------------------------------------

THREADED = {
    "general": dict(x=(4, 16, 19, 23), w=(40, 16, 3, 3), kw=dict(padding=1)),
    "grouped": dict(x=(3, 24, 17, 15), w=(36, 6, 3, 2), kw=dict(groups=4, stride=(2, 1), padding=(1, 0, 0, 1))),
    "depthwise": dict(x=(4, 48, 21, 18), w=(48, 1, 3, 3), kw=dict(groups=48, stride=2, padding=1)),
    "pointwise": dict(x=(5, 32, 11, 13), w=(64, 32, 1, 1), kw=dict()),
    "dilated_5x5": dict(x=(2, 8, 23, 29), w=(24, 8, 5, 5), kw=dict(dilation=2, padding=(4, 3))),
    "wide_oc_deep_k": dict(x=(2, 200, 9, 11), w=(130, 200, 3, 3), kw=dict(padding=(1, 0, 1, 0))),
}


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", list(THREADED))
def test_batch_and_two_threads(isa, case, layout):
    """Batch > 1 on 2 threads gives exactly the single-thread result and the reference."""
    spec = THREADED[case]
    rng = rng_for("threads", case, layout)
    n, c, h, w = spec["x"]
    x = rand_q(rng, shape_in(layout, n, c, h, w), np.uint8)
    wt = rand_q(rng, spec["w"], np.int8)
    kw = dict(spec["kw"], layout=layout, x_zero_point=113, w_zero_point=rng.integers(-9, 9, spec["w"][0]))
    want = ref.conv2d(x, wt, **kw)
    what = f"isa={isa} {case} {layout}"
    iq.set_num_threads(2)
    with conv_kernel_runs(isa, x, wt, what, kw):
        assert_same(iq.conv2d(x, wt, **kw), want, f"{what} 2 threads")
    qkw = dict(kw, bias=rng.standard_normal(spec["w"][0]).astype(np.float32), relu=True)
    assert_same(iq.qconv2d(x, wt, 0.02, 0.003, **qkw), ref.qconv2d(x, wt, 0.02, 0.003, **qkw),
                f"{what} qconv2d 2 threads")
    iq.set_num_threads(1)
    assert_same(iq.conv2d(x, wt, **kw), want, f"{what} 1 thread")


@pytest.mark.parametrize("x_dtype,x_fill,x_zp,w_fill,w_zp", EXTREMES,
                         ids=[f"{np.dtype(d).name}{xf}-xzp={xz}-w{wf}-wzp={wz}" for d, xf, xz, wf, wz in EXTREMES])
def test_all_extreme_values(isa, x_dtype, x_fill, x_zp, w_fill, w_zp):
    """Without padding every output is K * (x - x_zp) * (w - w_zp); with padding, the reference."""
    for name, c, oc, groups, layout in (("general", 33, 20, 1, "NCHW"), ("depthwise", 33, 33, 33, "NHWC")):
        x = np.full(shape_in(layout, 2, c, 6, 7), x_fill, x_dtype)
        w = np.full((oc, c // groups, 3, 3), w_fill, np.int8)
        kw = dict(groups=groups, layout=layout, x_zero_point=x_zp, w_zero_point=w_zp)
        k = c // groups * 9
        want = np.full(shape_in(layout, 2, oc, 4, 5), k * (x_fill - x_zp) * (w_fill - w_zp), np.int32)
        what = f"isa={isa} {name} x={x_fill} x_zp={x_zp} w={w_fill} w_zp={w_zp}"
        assert_same(ref.conv2d(x, w, **kw), want, f"{what} reference")
        with conv_kernel_runs(isa, x, w, what, kw):
            assert_same(iq.conv2d(x, w, **kw), want, what)
        assert_same(iq.conv2d(x, w, padding=(2, 1, 0, 3), **kw), ref.conv2d(x, w, padding=(2, 1, 0, 3), **kw),
                    f"{what} padded")


@pytest.mark.parametrize("case", list(BOUND_CASES))
def test_deep_k_bound(isa, case):
    """K = (C/groups) * KH * KW at the exactness bound with the values farthest from the zero points
    gives the exact extreme value; one more is refused with ValueError on both paths."""
    dt, xv, x_zp, wv, w_zp, at, past = BOUND_CASES[case]
    k = int(np.prod(at))
    x = np.full((1, *at), xv, dt)
    w = np.full((2, *at), wv, np.int8)
    want = np.full((1, 2, 1, 1), k * (xv - x_zp) * (wv - w_zp), np.int32)
    what = f"isa={isa} {case} K={k}"
    with conv_kernel_runs(isa, x, w, what, dict(x_zero_point=x_zp, w_zero_point=w_zp)):
        assert_same(iq.conv2d(x, w, x_zero_point=x_zp, w_zero_point=w_zp), want, what)
    assert_same(iq.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), iq.pack_conv_weights(w, zero_point=w_zp),
                          x_zero_point=x_zp, layout="NHWC"), want.transpose(0, 2, 3, 1), f"{what} NHWC packed")

    kp = int(np.prod(past))
    xp = np.full((1, *past), xv, dt)
    wp = np.full((2, *past), wv, np.int8)
    msg = rf"K={kp} \(C/groups \* KH \* KW\) could overflow.*K must be <= {k}$"
    raises_on_both(ValueError, lambda impl: impl.conv2d(xp, wp, x_zero_point=x_zp, w_zero_point=w_zp), msg)
    raises_on_both(ValueError, lambda impl: impl.conv2d(xp, iq.pack_conv_weights(wp, zero_point=w_zp),
                                                        x_zero_point=x_zp), msg)
    raises_on_both(ValueError, lambda impl: impl.qconv2d(xp, wp, 1.0, 1.0, x_zero_point=x_zp, w_zero_point=w_zp),
                   msg)


def test_deep_k_bound_includes_int32_bias(isa):
    """With an int32 bias the bound leaves room for it: K = (INT32_MAX - |bias|) // (255 * 128)."""
    bias = np.array([-10**6, 10**6 - 1], np.int32)
    k = (2**31 - 1 - 10**6) // (255 * 128)
    kw = dict(bias=bias, out_scale=2.0**25, out_dtype=np.int8)
    x, w = np.full((1, k, 1, 1), 255, np.uint8), np.full((2, k, 1, 1), -128, np.int8)
    assert_same(iq.qconv2d(x, w, 1.0, 1.0, **kw), ref.qconv2d(x, w, 1.0, 1.0, **kw), f"isa={isa} K={k}")
    x1, w1 = np.full((1, k + 1, 1, 1), 255, np.uint8), np.full((2, k + 1, 1, 1), -128, np.int8)
    for impl in (iq, ref):
        with pytest.raises(ValueError, match=rf"\|bias\| <= 1000000\): K must be <= {k}$"):
            impl.qconv2d(x1, w1, 1.0, 1.0, **kw)


# --- out=, empty ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_out(isa, layout):
    rng = rng_for("out", layout)
    x = rand_q(rng, shape_in(layout, 2, 6, 9, 10), np.int8)
    w = rand_q(rng, (10, 3, 3, 3), np.int8)
    kw = dict(groups=2, stride=(1, 2), padding=1, layout=layout, x_zero_point=-5, w_zero_point=2)
    want = ref.conv2d(x, w, **kw)
    out = np.full(want.shape, 77, np.int32)
    assert iq.conv2d(x, w, out=out, **kw) is out
    assert_same(out, want, f"isa={isa} {layout} conv2d out=")
    for qkw in (dict(), dict(out_scale=0.5, out_dtype=np.uint8, out_zero_point=128, relu=True)):
        qwant = ref.qconv2d(x, w, 0.1, 0.01, **kw, **qkw)
        qout = np.zeros(qwant.shape, qwant.dtype)
        assert iq.qconv2d(x, w, 0.1, 0.01, out=qout, **kw, **qkw) is qout
        assert_same(qout, qwant, f"isa={isa} {layout} qconv2d out= {qkw}")


def test_out_untouched_on_error(isa):
    out = np.full(OUT_SHAPE, 77, np.int32)
    with pytest.raises(ValueError):
        iq.conv2d(X, W, groups=2, x_zero_point=300, out=out)
    with pytest.raises(ValueError):
        iq.conv2d(X, W, groups=2, stride=0, out=out)
    assert (out == 77).all()


@pytest.mark.parametrize("case", list(EMPTY))
def test_empty(isa, case):
    x_shape, w_shape, kw = EMPTY[case]
    x = np.full(x_shape, 3, np.uint8)
    w = np.ones(w_shape, np.int8)
    assert_same(iq.conv2d(x, w, x_zero_point=1, **kw), ref.conv2d(x, w, x_zero_point=1, **kw), f"isa={isa} {case}")
    assert_same(iq.qconv2d(x, w, 0.5, 0.5, x_zero_point=1, **kw), ref.qconv2d(x, w, 0.5, 0.5, x_zero_point=1, **kw),
                f"isa={isa} {case} qconv2d")


# --- errors ----------------------------------------------------------------------------------

PACKED_ERRORS = {
    "packed_w_zero_point_given": (ValueError, r"zero point was fixed by pack_conv_weights",
                                  lambda f: f.conv2d(X, iq.pack_conv_weights(W, groups=2), groups=2, w_zero_point=3)),
    "packed_w_zero_point_array_given": (ValueError, r"zero point was fixed by pack_conv_weights",
                                        lambda f: f.conv2d(X, iq.pack_conv_weights(W, groups=2), groups=2,
                                                           w_zero_point=np.zeros(6, np.int32))),
    "packed_groups_differ": (ValueError, r"packed with groups=2, but groups=3",
                             lambda f: f.conv2d(X, iq.pack_conv_weights(W, groups=2), groups=3)),
    "packed_groups_default": (ValueError, r"packed with groups=2, but groups=1",
                              lambda f: f.conv2d(X, iq.pack_conv_weights(W, groups=2))),
    "packed_channels_mismatch": (ValueError, r"w.shape\[1\] must be C/groups = 2",
                                 lambda f: f.conv2d(X, iq.pack_conv_weights(W[:, :1], groups=2), groups=2)),
    "packed_qconv_w_zero_point_given": (ValueError, r"zero point was fixed by pack_conv_weights",
                                        lambda f: f.qconv2d(X, iq.pack_conv_weights(W, groups=2), 1.0, 1.0,
                                                            groups=2, w_zero_point=-1)),
    "packed_k_past_bound": (ValueError, r"K must be <= 65793$",
                            lambda f: f.conv2d(np.zeros((1, 65794, 1, 1), np.uint8),
                                               iq.pack_conv_weights(np.zeros((1, 65794, 1, 1), np.int8)))),
}
ALL_ERRORS = {**ERRORS, **PACKED_ERRORS}


# The reference alone on the cases of ERRORS is tests/test_conv_reference.py::test_errors.
@pytest.mark.parametrize("impl,case", [(impl, case) for case in ALL_ERRORS for impl in IMPLS
                                       if impl != "reference" or case in PACKED_ERRORS])
def test_errors(impl, case):
    """The fast path (under each ISA) rejects what the reference rejects (tests/test_conv_reference.py
    checks the reference alone, without PackedConvWeights), with the same exception type."""
    check_error(impl, *ALL_ERRORS[case])


def test_error_messages_agree():
    """The fast path and the reference raise the same exception type with the same message."""
    assert_same_errors(ALL_ERRORS)


@pytest.mark.parametrize("case,exc,pattern,args", [
    ("uint8", TypeError, r"w must be an int8 array", dict(w=W.view(np.uint8))),
    ("float", TypeError, r"w must be an int8 array", dict(w=W.astype(np.float32))),
    ("3d", ValueError, r"w must be 4-D", dict(w=W[0])),
    ("oc_not_divisible", ValueError, r"OC=6 .*groups=4", dict(groups=4)),
    ("groups_zero", ValueError, r"groups must be >= 1", dict(groups=0)),
    ("groups_float", TypeError, r"groups must be an integer", dict(groups=2.0)),
    ("groups_bool", TypeError, r"groups must be an integer", dict(groups=True)),
    ("zp_200", ValueError, r"zero_point must lie in \[-128, 127\]", dict(zero_point=200)),
    ("zp_wrong_length", ValueError, r"zero_point must be a scalar or have shape \(6,\)", dict(zero_point=[1, 2])),
    ("zp_float", TypeError, r"zero_point must be an integer", dict(zero_point=1.5)),
])
def test_pack_conv_weights_errors(isa, case, exc, pattern, args):
    args = dict(args)
    w = args.pop("w", W)
    with pytest.raises(exc, match=pattern):
        iq.pack_conv_weights(w, **args)


def test_epilogue_arguments_changed_in_place(isa):
    """Resolved epilogues are remembered by the arguments' contents: scales and bias changed in
    place between calls take effect."""
    rng = rng_for("epilogue-cache", 0)
    x = rand_q(rng, (1, 5, 6, 7), np.uint8)
    for groups, oc in ((1, 9), (5, 5)):
        pw = iq.pack_conv_weights(rand_q(rng, (oc, 5 // groups, 3, 3), np.int8), groups=groups)
        w_scale = np.full(oc, 0.01, np.float32)
        bias = np.zeros(oc, np.float32)
        for out_scale, dtype in ((None, np.float32), (0.5, np.uint8)):
            for step in range(3):
                kw = dict(padding=1, groups=groups, bias=bias, out_scale=out_scale, out_dtype=dtype)
                assert_same(iq.qconv2d(x, pw, 0.02, w_scale, **kw),
                            ref.qconv2d(x, pw.weights, 0.02, w_scale, **kw), f"groups={groups} step {step}")
                w_scale *= 1.5
                bias += 0.25


def test_bias_offsets_remembered_per_weights_and_zero_point(isa):
    """A requantized epilogue with a bias folds the bias into each packed weights' column offsets
    once per activation zero point and remembers it: one epilogue used in turn with two packed
    weights and two zero points, repeated, gives the reference every time, and the weights it
    remembered can still be freed."""
    import gc
    import weakref

    rng = rng_for("bias-offsets", 0)
    oc = 7
    pws = [iq.pack_conv_weights(rand_q(rng, (oc, 4, 3, 3), np.int8), zero_point=zp) for zp in (0, 5)]
    x = rand_q(rng, (1, 4, 6, 7), np.uint8)
    kw = dict(padding=1, bias=(rng.standard_normal(oc) * 40).astype(np.float32), out_scale=0.5,
              out_zero_point=3, out_dtype=np.uint8)
    xs = {np.uint8: x, np.int8: rand_q(rng, x.shape, np.int8)}
    for _ in range(2):
        for pw in pws:
            # uint8 zero point 0 and int8 -128 are the same unsigned zero point: one remembered entry.
            for dt, x_zp in ((np.uint8, 0), (np.uint8, 200), (np.int8, -128), (np.int8, 5)):
                assert_same(iq.qconv2d(xs[dt], pw, 0.02, 0.01, x_zero_point=x_zp, **kw),
                            ref.qconv2d(xs[dt], pw.weights, 0.02, 0.01, x_zero_point=x_zp, w_zero_point=pw.zero_point,
                                        **kw), f"isa={isa} w_zp={pw.zero_point[0]} x={np.dtype(dt)} x_zp={x_zp}")
    # The same through qgemm (the GEMM fast path shares the helper).
    a = rand_q(rng, (5, 12), np.uint8)
    pgs = [iq.pack_weights(rand_q(rng, (12, oc), np.int8), zero_point=zp) for zp in (0, -3)]
    for _ in range(2):
        for pg in pgs:
            for a_zp in (0, 131):
                gkw = dict(a_zero_point=a_zp, bias=kw["bias"], out_scale=0.5, out_zero_point=3, out_dtype=np.uint8)
                assert_same(iq.qgemm(a, pg, 0.02, 0.01, **gkw),
                            ref.qgemm(a, pg.weights, 0.02, 0.01, b_zero_point=pg.zero_point, **gkw),
                            f"isa={isa} qgemm b_zp={pg.zero_point[0]} a_zp={a_zp}")
    gone = weakref.ref(pws[0])
    del pws[0], pw
    gc.collect()
    assert gone() is None, "the remembered offsets kept the packed weights alive"


@pytest.mark.parametrize("c,k,layout", [(1536, 3, "NHWC"), (2100, 3, "NCHW"), (4104, 1, "NHWC")],
                         ids=["implicit-C1536", "im2col-C2100", "pointwise-C4104"])
def test_deep_channels(isa, c, k, layout):
    """Channel counts whose K (or whose kernel row, for the implicit GEMM) spans several of the
    kernels' K slices, on both thread counts."""
    rng = rng_for("deep", c)
    x = rand_q(rng, (2, 5, 14, c) if layout == "NHWC" else (2, c, 5, 14), np.uint8)
    w = rand_q(rng, (70, c, k, k), np.int8)
    kw = dict(padding=k // 2, layout=layout, x_zero_point=131, w_zero_point=rng.integers(-20, 20, 70))
    want = ref.conv2d(x, w, **kw)
    for threads in (1, 2):
        iq.set_num_threads(threads)
        what = f"isa={isa} C={c} k={k} {layout} threads={threads}"
        with conv_kernel_runs(isa, x, w, what, kw):
            got = iq.conv2d(x, w, **kw)
        assert_same(got, want, what)


SHARED = {  # name: (x shape in NCHW, OC, KH, KW, groups, stride, layout)
    "implicit": ((2, 64, 28, 28), 64, 3, 3, 1, 1, "NHWC"),
    "im2col-nchw": ((2, 30, 28, 28), 70, 3, 3, 1, 1, "NCHW"),
    "grouped": ((4, 64, 28, 28), 64, 3, 3, 4, 1, "NCHW"),
    "small-groups": ((8, 64, 40, 40), 64, 3, 3, 16, 1, "NHWC"),
    # Depthwise is bound by memory: two threads only from about 75 us of work (ops_conv.cc).
    "depthwise-nhwc": ((4, 96, 56, 56), 96, 3, 3, 96, 1, "NHWC"),
    "depthwise-planar": ((4, 96, 56, 56), 96, 3, 3, 96, 1, "NCHW"),
    "depthwise-nchw-staged": ((16, 96, 90, 90), 96, 3, 3, 96, 3, "NCHW"),
}


@pytest.mark.parametrize("case", list(SHARED))
def test_work_is_shared_between_threads(isa, case):
    """Convolutions big enough to be worth it run on two threads (the pool really ran) and give the
    reference's result exactly; with one thread the pool is not used."""
    shape, oc, kh, kw_, groups, stride, layout = SHARED[case]
    rng = rng_for("shared", case)
    x = rand_q(rng, shape_in(layout, *shape), np.uint8)
    w = rand_q(rng, (oc, shape[1] // groups, kh, kw_), np.int8)
    kw = dict(padding=1, stride=stride, groups=groups, layout=layout, x_zero_point=5)
    want = ref.conv2d(x, w, **kw)
    for threads in (1, 2):
        iq.set_num_threads(threads)
        before = _core.parallel_runs()
        got = iq.conv2d(x, w, **kw)
        assert_same(got, want, f"isa={isa} {case} threads={threads}")
        ran_parallel = _core.parallel_runs() > before
        assert ran_parallel == (threads == 2), f"isa={isa} {case} threads={threads}: pool used: {ran_parallel}"


def test_small_work_stays_on_the_calling_thread(isa):
    """A convolution of a few microseconds is not handed to the pool, whatever the thread count."""
    iq.set_num_threads(2)
    x = np.zeros((1, 8, 6, 6), np.uint8)
    for w, groups in ((np.ones((8, 8, 3, 3), np.int8), 1), (np.ones((8, 1, 3, 3), np.int8), 8)):
        before = _core.parallel_runs()
        iq.conv2d(x, w, padding=1, groups=groups)
        assert _core.parallel_runs() == before


def test_concurrent_python_threads(isa):
    """One PackedConvWeights used by several Python threads at once (the GIL is released in the
    kernels, and each call's staging buffers are its own), general, depthwise and small groups,
    both layouts."""
    import concurrent.futures

    rng = rng_for("concurrent", 0)
    cases = []
    for groups, c, oc in ((1, 24, 40), (24, 24, 24), (6, 24, 24)):
        pw = iq.pack_conv_weights(rand_q(rng, (oc, c // groups, 3, 3), np.int8), groups=groups)
        for layout in ("NCHW", "NHWC"):
            xs = [rand_q(rng, shape_in(layout, 2, c, 30, 30), np.uint8) for _ in range(4)]
            kw = dict(padding=1, groups=groups, layout=layout, x_zero_point=9)
            cases.append((pw, xs, kw, [ref.conv2d(x, pw.weights, **kw) for x in xs]))
    # 1x1 NCHW (the swapped GEMM, with its own per-thread buffers), per-channel weight zero points.
    pw = iq.pack_conv_weights(rand_q(rng, (96, 64, 1, 1), np.int8), zero_point=rng.integers(-5, 5, 96))
    xs = [rand_q(rng, (2, 64, 30, 31), np.uint8) for _ in range(4)]
    cases.append((pw, xs, dict(x_zero_point=9), [ref.conv2d(x, pw.weights, x_zero_point=9, w_zero_point=pw.zero_point)
                                                 for x in xs]))
    iq.set_num_threads(2)

    def work(i):
        pw, xs, kw, wants = cases[i % len(cases)]
        for x, want in zip(xs, wants):
            assert_same(iq.conv2d(x, pw, **kw), want, f"isa={isa} worker {i} {kw}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        for f in [ex.submit(work, i) for i in range(16)]:
            f.result()


# --- 1x1 NCHW: the GEMM with its roles swapped ---------------------------------------------------


@pytest.mark.parametrize("c,oc,hw", [(1, 1, (1, 1)), (3, 17, (5, 7)), (64, 256, (9, 13)), (17, 67, (1, 130)),
                                     (130, 5, (3, 40)), (1601, 6, (2, 9)), (4101, 3, (1, 3)), (64, 128, (36, 37))])
def test_nchw_1x1_swapped_gemm(isa, c, oc, hw):
    """1x1, stride-1, unpadded NCHW conv2d with int32 output on a vnni4 GEMM kernel runs as
    W x X (csrc/conv.h, Conv1x1Nchw), exactly: both dtypes and zero points (none, scalar, per
    channel, extremes), pixel counts around the 16- and 64-column panels, K past the kernel's K
    slice (1601 on avx_vnni, 4101 on avx512_vnni), batch 2, one and two threads. The float and
    requantized epilogues, and the other paths, keep the general driver."""
    rng = rng_for("nchw_1x1", c, oc, hw)
    h, w = hw
    wt = wt_random = rand_q(rng, (oc, c, 1, 1), np.int8)
    swapped = vnni4(isa)
    cases = [(np.uint8, 0, 0), (np.uint8, 0, 127), (np.int8, -128, 127), (np.int8, 17, rng.integers(-128, 128, oc)),
             (np.uint8, 131, rng.integers(-128, 128, oc))]
    wt_extreme = np.full((oc, c, 1, 1), -128, np.int8)
    for i, (dt, xzp, wzp) in enumerate(cases):
        x = rand_q(rng, (2, c, h, w), dt)
        if i == 1:
            x[:] = 255  # every product at its largest: (255 - 0) * (-128 - 127)
        wt = wt_extreme if i == 1 else wt_random
        kw = dict(x_zero_point=xzp, w_zero_point=wzp)
        want = ref.conv2d(x, wt, **kw)
        for threads in (1, 2):
            iq.set_num_threads(threads)
            try:
                before, runs = iq.kernel_calls().get(NCHW_1X1, 0), _core.parallel_runs()
                got = iq.conv2d(x, wt, **kw)
                ran, shared = iq.kernel_calls().get(NCHW_1X1, 0) - before, _core.parallel_runs() > runs
            finally:
                iq.set_num_threads(1)
            what = f"isa={isa} C={c} OC={oc} {h}x{w} x={np.dtype(dt).name} x_zp={xzp} w_zp={wzp} threads={threads}"
            assert_same(got, want, what)
            assert ran == (1 if swapped else 0), f"{what}: conv1x1_nchw ran {ran} times"
            if swapped and threads == 2 and hw == (36, 37):
                assert shared, f"{what}: the work was not shared between threads"
            # Packed weights, and out= (a view into a larger buffer whose ends must stay untouched),
            # take the same path.
            buf = np.full(want.size + 64, -7, np.int32)
            out = buf[32:32 + want.size].reshape(want.shape)
            iq.conv2d(x, iq.pack_conv_weights(wt, zero_point=wzp), x_zero_point=xzp, out=out)
            assert_same(out, want, f"{what} packed, out=")
            assert (buf[:32] == -7).all() and (buf[32 + want.size:] == -7).all(), f"{what}: wrote outside out"
    # The float epilogue is per output channel, a row here: the general driver.
    wt = wt_random
    x = rand_q(rng, (2, c, h, w), np.uint8)
    qkw = dict(x_zero_point=3, bias=rng.standard_normal(oc).astype(np.float32))
    before = iq.kernel_calls().get(NCHW_1X1, 0)
    assert_same(iq.qconv2d(x, wt, 0.02, 0.003, **qkw), ref.qconv2d(x, wt, 0.02, 0.003, **qkw), f"isa={isa} qconv2d")
    assert iq.kernel_calls().get(NCHW_1X1, 0) == before, f"isa={isa}: qconv2d took the int32-only driver"


def test_nchw_1x1_at_the_bound(isa):
    """The swapped GEMM at the largest K the int32 bound allows for full-range extremes (every
    product (255 - 0) * (-128 - 127)), over whole 16-pixel strips and a partial one, so that the
    packed column sums run through many 16-bit flushes."""
    k = (2**31 - 1) // (255 * 255)
    x = np.full((1, k, 1, 17), 255, np.uint8)
    w = np.full((2, k, 1, 1), -128, np.int8)
    want = np.full((1, 2, 1, 17), k * 255 * -255, np.int32)
    assert_same(ref.conv2d(x, w, w_zero_point=127), want, "reference")
    before = iq.kernel_calls().get(NCHW_1X1, 0)
    assert_same(iq.conv2d(x, w, w_zero_point=127), want, f"isa={isa} K={k}")
    assert iq.kernel_calls().get(NCHW_1X1, 0) - before == (1 if vnni4(isa) else 0)


def test_depthwise_nchw_output_tiles(isa):
    """NCHW depthwise output through several 128 KB tiles of output rows per task, the last one
    partial (512 channels, 23-pixel rows: two rows a tile, 13 rows), one and two threads."""
    rng = rng_for("dw-tiles", 0)
    x = rand_q(rng, (2, 512, 13, 23), np.uint8)
    w = rand_q(rng, (512, 1, 5, 5), np.int8)
    kw = dict(padding=2, groups=512, x_zero_point=77, w_zero_point=rng.integers(-9, 9, 512))
    want = ref.conv2d(x, w, **kw)
    # No planar kernel reads 5-wide kernels as given, so these narrow planes take the row kernel.
    assert plan_for(x, w, kw).kind == "depthwise_rows"
    for threads in (1, 2):
        iq.set_num_threads(threads)
        try:
            with conv_kernel_runs(isa, x, w, f"isa={isa} threads={threads}", kw):
                got = iq.conv2d(x, w, **kw)
            assert_same(got, want, f"isa={isa} threads={threads}")
        finally:
            iq.set_num_threads(1)


PLANES_CASES = [
    # (kh, kw), (sh, sw), (dh, dw), (top, left, bottom, right), (H, W): the unrolled 3-row forms
    # (vertical stride 1 and 2), the looked-up schedules (other kernel heights, strides, vertical
    # dilation), kernels 1 to 4 wide, padding wider than the kernel, rows around the 16-pixel runs
    # and the 4-row blocks, planes 1 pixel wide or high.
    ((3, 3), (1, 1), (1, 1), (1, 1, 1, 1), (9, 33)),
    ((3, 3), (2, 2), (1, 1), (1, 1, 1, 1), (14, 35)),
    ((3, 3), (2, 1), (1, 1), (0, 2, 3, 1), (7, 16)),
    ((3, 3), (1, 2), (2, 1), (2, 0, 1, 2), (11, 47)),
    ((3, 3), (3, 1), (1, 1), (1, 1, 1, 1), (13, 17)),
    ((1, 1), (1, 1), (1, 1), (0, 0, 0, 0), (5, 15)),
    ((1, 4), (1, 2), (1, 1), (0, 3, 0, 3), (4, 64)),
    ((2, 2), (2, 2), (3, 1), (1, 0, 0, 1), (8, 31)),
    ((5, 3), (1, 1), (1, 1), (2, 1, 2, 1), (6, 49)),
    ((7, 2), (3, 2), (2, 1), (5, 4, 6, 5), (3, 2)),
    ((3, 1), (1, 1), (1, 1), (1, 0, 1, 0), (1, 1)),
    ((3, 4), (1, 1), (1, 1), (4, 5, 4, 5), (2, 3)),
    # Rows narrower than 16 bytes under output rows of 24 and more (wide padding).
    ((3, 3), (1, 1), (1, 1), (1, 12, 1, 12), (3, 2)),
    ((1, 4), (1, 2), (1, 1), (0, 25, 0, 25), (2, 3)),
    ((3, 3), (2, 2), (1, 1), (1, 20, 2, 21), (7, 15)),
]


@pytest.mark.parametrize("case", range(len(PLANES_CASES)), ids=lambda i: f"case{i}")
def test_depthwise_nchw_planes_as_given(isa, case):
    """The planar kernels that read the planes as given (DwconvPlanes): NCHW depthwise with the
    padding read as the zero point without touching memory outside the planes. Both dtypes, the
    extreme zero points, weights that all fit int8 and per-channel weight zero points that push
    some channels out of int8 (on a path whose kernel multiplies bytes, both planar kernels in one
    call), all three epilogues, one and two threads. The kernels must run exactly where the plan
    says, which for weights without a zero point and output rows of at least the planar minimum
    width is the kernel that reads the planes on every path that has one (horizontal stride 1 or
    2)."""
    (kh, kw_), stride, dilation, padding, (h, w_) = PLANES_CASES[case]
    rng = rng_for("dw-bytes", case)
    names = iq.kernel_names(isa)
    for c in (1, 3, 17, 64):
        for dtype, x_zp in ((np.uint8, 0), (np.uint8, 255), (np.int8, -128), (np.int8, 127), (np.int8, 5)):
            x = rand_q(rng, (2, c, h, w_), dtype)
            wt = rand_q(rng, (c, 1, kh, kw_), np.int8)
            mixed = rng.integers(-128, 128, c).astype(np.int32)
            mixed[0] = 0  # one channel that fits, whatever the draws
            for w_zp in (0, mixed):
                kw = dict(stride=stride, padding=padding, dilation=dilation, groups=c, x_zero_point=x_zp,
                          w_zero_point=w_zp)
                what = f"isa={isa} C={c} x={np.dtype(dtype)} x_zp={x_zp} w_zp={'mixed' if np.ndim(w_zp) else 0}"
                threads = 1 + int(rng.integers(2))
                iq.set_num_threads(threads)
                try:
                    with conv_kernel_runs(isa, x, wt, f"{what} threads={threads}", kw):
                        got = iq.conv2d(x, wt, **kw)
                finally:
                    iq.set_num_threads(1)
                assert_same(got, ref.conv2d(x, wt, **kw), what)
                g = conv_geometry(x.shape, wt.shape, stride=stride, padding=padding, dilation=dilation,
                                  groups=c, layout="NCHW")
                if names["dwconv_nchw_planes"] and np.ndim(w_zp) == 0 and stride[1] <= 2 and \
                        g.ow >= _core.DWCONV_PLANE_MIN_WIDTH:
                    plan = plan_for(x, wt, kw)
                    assert plan.kind == "depthwise_planes", what
                    assert plan.kernels == (("dwconv_nchw_planes", names["dwconv_nchw_planes"]),), what
                assert_qconv_epilogues(rng, x, wt, kw, what, out_scale=0.07, out_zero_point=-3, relu=True)


def test_depthwise_nchw_planes_at_the_bound(isa):
    """The extremes of the kernels that read the planes as given: every input byte 255 (uint8,
    zero point 0) or -128 (int8, zero point 127) against weights of -128 and 127, so that each
    4-byte window sums the largest products, over 7 kernel rows."""
    for dtype, fill, x_zp in ((np.uint8, 255, 0), (np.int8, -128, 127)):
        for wv in (-128, 127):
            x = np.full((1, 5, 12, 40), fill, dtype)
            w = np.full((5, 1, 7, 4), wv, np.int8)
            kw = dict(padding=3, groups=5, x_zero_point=x_zp)
            what = f"isa={isa} x={np.dtype(dtype)} fill={fill} w={wv}"
            with conv_kernel_runs(isa, x, w, what, kw):
                got = iq.conv2d(x, w, **kw)
            assert_same(got, ref.conv2d(x, w, **kw), what)


# --- small groups ---------------------------------------------------------------------------

SMALL_GROUPS = [
    # (C, OC, groups): C/groups 4, 8, 12, 16 and 24; OC/groups 1, 2, 4, 12, 16, 24 and 32 (blocks of
    # 16 output channels spanning one group, several, or straddling two); OC off the blocks of 16.
    (8, 8, 2), (16, 4, 4), (64, 64, 16), (128, 128, 32), (12, 36, 3), (48, 96, 12), (32, 64, 2),
    (40, 120, 5), (64, 32, 8), (96, 24, 24), (48, 48, 3),
    # C/groups 24, OC/groups 12: 8 output channels straddling two groups read 12 dwords (AVX2: two loads).
    (48, 24, 2),
    # Blocks that would read 32 dwords of a pixel, and C/groups not a multiple of 4: the grouped GEMM.
    (128, 16, 8), (12, 12, 2),
]
#: The cases above that the small-group kernel takes (without a weight zero point, kernels up to 64 taps).
SMALL_GROUPS_FIT = {(c, oc, g) for c, oc, g in SMALL_GROUPS if (c, oc, g) not in {(128, 16, 8), (12, 12, 2)}}


@pytest.mark.parametrize("c,oc,groups", SMALL_GROUPS, ids=[f"C={c}-OC={oc}-G={g}" for c, oc, g in SMALL_GROUPS])
def test_small_groups(isa, c, oc, groups):
    """Small-group convolution (csrc/conv.h, GconvRow: one lane per output channel, the group's
    input channels 4 at a time): kernels 1x1 to 5x3 and 1x7, strides, dilation, asymmetric
    padding, output rows around the 4-pixel steps, both layouts and dtypes, extreme zero points,
    all three epilogues, one and two threads, with and without weight zero points. It must run
    exactly on the cases of SMALL_GROUPS_FIT on a path that has the kernel; elsewhere the grouped
    GEMM runs."""
    rng = rng_for("small-groups", c, oc, groups)
    names = iq.kernel_names(isa)
    cases = [((3, 3), 1, 1, 1, (5, 9)), ((3, 3), 2, 1, 1, (9, 17)), ((1, 1), 1, 0, 1, (4, 3)),
             ((5, 3), (1, 2), (2, 1, 0, 3), (2, 1), (7, 9)), ((1, 7), 1, (0, 3), 1, (2, 5)), ((3, 3), 1, 1, 1, (1, 1))]
    for i, ((kh, kw_), stride, padding, dilation, (h, w_)) in enumerate(cases):
        layout = ("NHWC", "NCHW")[i % 2]
        dtype, x_zp = ((np.uint8, 0), (np.uint8, 255), (np.int8, -128), (np.int8, 127), (np.uint8, 77), (np.int8, 3))[i]
        x = rand_q(rng, shape_in(layout, 2, c, h, w_), dtype)
        wt = rand_q(rng, (oc, c // groups, kh, kw_), np.int8)
        for w_zp in (0, rng.integers(-128, 128, oc).astype(np.int32)):
            kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout,
                      x_zero_point=x_zp, w_zero_point=w_zp)
            what = f"isa={isa} C={c} OC={oc} G={groups} k={kh}x{kw_} {layout} {np.dtype(dtype)} w_zp={np.ndim(w_zp)}"
            small = bool(names["gconv"]) and (c, oc, groups) in SMALL_GROUPS_FIT
            assert (plan_for(x, wt, kw).kind == "small_groups") == small, what
            threads = 1 + i % 2
            iq.set_num_threads(threads)
            try:
                before = iq.kernel_calls()
                got = iq.conv2d(x, wt, **kw)
                after = iq.kernel_calls()
            finally:
                iq.set_num_threads(1)
            assert_same(got, ref.conv2d(x, wt, **kw), what)
            ran = {k for k in after if after[k] != before.get(k, 0)}
            want = {names["gconv"]} if small else {names["gemm"]}
            assert ran == want, f"{what}: expected {want}, ran {ran}"
            assert_qconv_epilogues(rng, x, wt, kw, what, out_scale=0.5, out_zero_point=-7, relu=bool(i % 2))


def small_groups_plan(oc, cg, ocg, kh, kw):
    """Whether the plan runs the small-group kernel for OC output channels, C/groups = cg and
    OC/groups = ocg, with a kh x kw kernel, on the best path that has the kernel."""
    return iq.conv_plan((1, cg * oc // ocg, 16, 16), (oc, cg, kh, kw), groups=oc // ocg).kind == "small_groups"


def test_small_groups_fit():
    """Where the small-group kernel runs: C/groups a multiple of 4, at most 64 taps, and every block
    of 16 output channels reading at most 16 dwords of a pixel."""
    with_kernel = [isa for isa in AVAILABLE_ISAS if iq.kernel_names(isa)["gconv"]]
    if not with_kernel:
        pytest.skip("no available path has a small-group kernel")
    with iq.use_isa(with_kernel[-1]):
        assert small_groups_plan(128, 4, 4, 3, 3) and small_groups_plan(64, 16, 16, 3, 3)
        assert small_groups_plan(36, 4, 12, 3, 3)
        assert small_groups_plan(64, 64, 16, 1, 1)        # one group per block, 16 dwords
        assert not small_groups_plan(64, 80, 16, 1, 1)    # 20 dwords
        assert small_groups_plan(64, 16, 8, 3, 3)         # two groups of 4 dwords
        assert not small_groups_plan(16, 16, 2, 3, 3)     # eight groups of 4 dwords
        assert not small_groups_plan(12, 6, 6, 3, 3)      # C/groups not a multiple of 4
        assert not small_groups_plan(16, 4, 4, 5, 13)     # more than 64 taps
        assert small_groups_plan(16, 4, 4, 8, 8)          # 64 taps


def test_small_groups_extremes(isa):
    """The small-group kernel's largest sums: extreme activations and weights over 16 input channels
    and 49 taps (K = 784, as far as its at most 64 taps and 16 dwords per block go), four groups per
    block of output channels."""
    for dtype, fill, x_zp in ((np.uint8, 255, 0), (np.int8, -128, 127)):
        for wv in (-128, 127):
            c, groups = 64, 4
            x = np.full((1, c, 4, 6), fill, dtype)
            w = np.full((8, c // groups, 7, 7), wv, np.int8)
            kw = dict(padding=3, groups=groups, x_zero_point=x_zp)
            what = f"isa={isa} {np.dtype(dtype)} w={wv}"
            with conv_kernel_runs(isa, x, w, what, kw):
                got = iq.conv2d(x, w, **kw)
            assert_same(got, ref.conv2d(x, w, **kw), what)
