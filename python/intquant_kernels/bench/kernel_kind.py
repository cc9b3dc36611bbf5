"""Which kind of kernel runs a bench conv layer on a path (a key of peaks.PATH_INSTRUCTION)."""
from __future__ import annotations

import intquant_kernels as iq


def conv_plan(layer, isa: str, layout: str = "NHWC", out_dtype=None):
    """``iq.conv_plan`` of ``layer`` on ``isa`` in ``layout`` (int32 output unless ``out_dtype``)."""
    x_shape = (layer.n, layer.c, layer.h, layer.w) if layout == "NCHW" else (layer.n, layer.h, layer.w, layer.c)
    kw = {} if out_dtype is None else {"out_dtype": out_dtype}
    with iq.use_isa(isa):
        return iq.conv_plan(x_shape, (layer.oc, layer.c // layer.groups, layer.k, layer.k), stride=layer.stride,
                            padding=layer.padding, groups=layer.groups, layout=layout, **kw)


def kind_of(plan) -> str:
    """The kind of kernel (PATH_INSTRUCTION) of a conv plan."""
    return "dwconv" if plan.kind.startswith("depthwise") else "gconv" if plan.kind == "small_groups" else "gemm"


def conv_kind(layer, isa: str, layout: str = "NHWC") -> str:
    """The kind of kernel (PATH_INSTRUCTION) that runs ``layer`` on ``isa``, from its plan."""
    return kind_of(conv_plan(layer, isa, layout))


def kernels_of(plan) -> str:
    """The kernels a conv plan runs, as kernel_calls() names them."""
    return ", ".join(name for role, name in plan.kernels if role != "driver")


def conv_kernels(layer, isa: str, layout: str = "NHWC", out_dtype=None) -> str:
    """The kernels that run ``layer`` on ``isa`` in ``layout``, as its plan names them."""
    return kernels_of(conv_plan(layer, isa, layout, out_dtype))


def kernel_path(name: str) -> str:
    """The ISA path whose kernel ``name`` is (its token, after the double underscore)."""
    token = name.rsplit("__", 1)[-1]
    return next(isa for isa in iq.ISA_NAMES if isa.replace("_", "") == token)


def gemm_kernel(isa: str, m: int, k: int, n: int) -> tuple:
    """(kernel name, the path it belongs to) that runs an m x k x n GEMM on ``isa``: on amx, GEMMs of
    fewer rows than one tile run the avx512_vnni kernel (``iq.gemm_plan``)."""
    with iq.use_isa(isa):
        name = iq.gemm_plan((m, k), (k, n)).kernels[0][1]
    return name, kernel_path(name)


def path_of(plan) -> str:
    """The ISA path whose kernel does a conv plan's multiplies (amx plans run the avx512_vnni depthwise and
    small-group kernels, and its GEMM kernel below 16 rows): what the peak table is read for."""
    return kernel_path(next(name for role, name in plan.kernels if role != "driver"))
