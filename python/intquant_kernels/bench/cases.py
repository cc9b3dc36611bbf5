"""The benchmark cases of the GEMM and convolution issues, in one place: the
pytest-benchmark suite (benchmarks/) and ``python -m intquant_kernels bench``
both measure exactly these."""
from __future__ import annotations

from typing import NamedTuple

#: (M, K, N); 2*M*K*N operations. The last two are odd shapes (no multiple of any tile).
GEMM_SHAPES = [
    (1, 4096, 4096),
    (16, 4096, 4096),
    (128, 768, 3072),
    (128, 3072, 768),
    (256, 256, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (100, 1000, 300),
    (333, 777, 555),
]

#: GEMM shapes of `bench --quick`.
GEMM_QUICK = [(16, 4096, 4096), (128, 768, 3072), (512, 512, 512)]


class ConvLayer(NamedTuple):
    name: str
    n: int  # batch
    c: int  # input channels
    h: int
    w: int
    oc: int  # output channels
    k: int  # square kernel size
    stride: int
    padding: int
    groups: int

    @property
    def out_hw(self):
        oh = (self.h + 2 * self.padding - self.k) // self.stride + 1
        ow = (self.w + 2 * self.padding - self.k) // self.stride + 1
        return oh, ow

    @property
    def ops(self) -> int:
        """2 * N * OC * OH * OW * (C / groups) * KH * KW."""
        oh, ow = self.out_hw
        return 2 * self.n * self.oc * oh * ow * (self.c // self.groups) * self.k * self.k

    @property
    def depthwise(self) -> bool:
        return self.groups == self.c == self.oc


CONV_LAYERS = [
    ConvLayer("resnet50_3x3_56x56x64", 1, 64, 56, 56, 64, 3, 1, 1, 1),
    ConvLayer("resnet50_1x1_56x56_64to256", 1, 64, 56, 56, 256, 1, 1, 0, 1),
    ConvLayer("resnet50_3x3_28x28x128", 1, 128, 28, 28, 128, 3, 1, 1, 1),
    ConvLayer("resnet50_3x3_14x14x256", 1, 256, 14, 14, 256, 3, 1, 1, 1),
    ConvLayer("resnet50_3x3_7x7x512", 1, 512, 7, 7, 512, 3, 1, 1, 1),
    ConvLayer("resnet50_3x3s2_56x56x128", 1, 128, 56, 56, 128, 3, 2, 1, 1),
    ConvLayer("mobilenetv2_dw3x3_56x56x144", 1, 144, 56, 56, 144, 3, 1, 1, 144),
    ConvLayer("mobilenetv2_dw3x3s2_28x28x192", 1, 192, 28, 28, 192, 3, 2, 1, 192),
    ConvLayer("resnet50_3x3_56x56x64_batch8", 8, 64, 56, 56, 64, 3, 1, 1, 1),
    # Small groups (4 channels each), as in ResNeXt-50 32x4d: not one of the layers.
    ConvLayer("resnext50_3x3_56x56x128_g32", 1, 128, 56, 56, 128, 3, 1, 1, 32),
]

#: Conv layers of `bench --quick`.
CONV_QUICK = ["resnet50_3x3_28x28x128", "resnet50_1x1_56x56_64to256", "mobilenetv2_dw3x3_56x56x144"]
