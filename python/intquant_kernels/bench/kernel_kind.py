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
