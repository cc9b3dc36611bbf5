"""Which kind of kernel runs a bench conv layer on a path (a key of peaks.PATH_INSTRUCTION)."""
from __future__ import annotations

from .. import _conv


def conv_kind(layer, isa: str) -> str:
    """The kind of kernel (PATH_INSTRUCTION) that runs ``layer`` on ``isa``."""
    if layer.depthwise:
        return "dwconv"
    cg, ocg = layer.c // layer.groups, layer.oc // layer.groups
    return "gconv" if layer.groups > 1 and _conv._gconv(isa, layer.oc, cg, ocg, layer.k * layer.k) else "gemm"
