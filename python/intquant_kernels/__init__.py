"""intquant_kernels: exact int8 kernels for quantized inference on CPUs.

Every op has a NumPy twin in :mod:`intquant_kernels.reference` that defines its
result bit for bit. The kernels of the best ISA path of this CPU run by
default; ``INTQUANT_ISA`` (read at import), :func:`set_isa` and
:func:`use_isa` choose another, and never fall back silently.
"""
from __future__ import annotations

from . import reference
from ._dispatch import (
    EMULATED_ISAS,
    ISA_NAMES,
    active_isa,
    available_isas,
    cpu_features,
    get_num_threads,
    kernel_calls,
    kernel_names,
    set_isa,
    set_num_threads,
    use_isa,
)
from ._conv import ConvPlan, conv2d, conv_plan, qconv2d
from ._gemm import GemmPlan, gemm, gemm_plan, qgemm
from ._packed import PackedWeights, pack_weights
from ._packed_conv import PackedConvWeights, pack_conv_weights
from ._quantize import dequantize, dynamic_quantize, quantize

__version__ = "0.1.0"

__all__ = [
    "ConvPlan",
    "EMULATED_ISAS",
    "GemmPlan",
    "ISA_NAMES",
    "PackedConvWeights",
    "PackedWeights",
    "active_isa",
    "available_isas",
    "conv2d",
    "conv_plan",
    "cpu_features",
    "dequantize",
    "dynamic_quantize",
    "gemm",
    "gemm_plan",
    "get_num_threads",
    "kernel_calls",
    "kernel_names",
    "pack_conv_weights",
    "pack_weights",
    "qconv2d",
    "qgemm",
    "quantize",
    "reference",
    "set_isa",
    "set_num_threads",
    "use_isa",
]

from ._dispatch import _apply_environment  # noqa: E402

_apply_environment()
del _apply_environment
