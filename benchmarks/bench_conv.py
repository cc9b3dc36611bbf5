"""int8 2-D convolution throughput against float32 and the peers, one thread unless stated.

Each layer of CONV_LAYERS (intquant_kernels/bench/cases.py) is one
pytest-benchmark group, ``conv-<layer name>``. The baseline of the group is
torch's float32 conv2d (torch.nn.functional.conv2d, no grad) in whichever
memory format is the faster for that layer on this machine (NCHW-contiguous or
channels_last: both are timed briefly first, and both are also benchmarked as
rows of the group); without torch, NumPy float32 (peers.numpy_conv2d_f32) is
the baseline. The rows of a group:

* ``test_conv2d[<layer>-<isa>]``: int8 conv2d, NHWC input, packed weights, per
  available ISA (the scalar path on the smallest layers only);
* ``test_conv2d_nchw[<layer>]``: the default ISA on the NCHW input (the
  NCHW-against-NHWC target compares it with ``test_conv2d`` of the default ISA);
* ``test_qconv2d[<layer>-<epilogue>]``: qconv2d, float32 and requantized uint8
  epilogues, default ISA, NHWC;
* the peers: torch quantized Conv2d (x86 engine, channels_last) and
  onnxruntime QLinearConv (NCHW: the only layout of the ONNX op).

The batch-8 layer has a second group, ``conv-threads-<layer name>``: the default
path on 2 threads against 1 thread (the baseline). Activations are uint8 with
zero point 128, weights int8 in [-127, 127] with per-output-channel scales.
GOPS count 2*N*OC*OH*OW*(C/groups)*KH*KW operations (extra_info "ops"; "gops"
is the same count in 1e9 operations).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \\
        python -m pytest benchmarks/bench_conv.py --benchmark-enable --benchmark-json=conv.json
    python benchmarks/summarize.py conv.json
"""
import time
import zlib

import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels.bench import peers
from intquant_kernels.bench.cases import CONV_LAYERS

LAYERS = CONV_LAYERS
ids = [layer.name for layer in LAYERS]
# The scalar path is the portable fallback, not a performance path: only the
# smallest layers, so that a --benchmark-disable run stays quick.
ISAS = [isa for isa in iq.available_isas() if isa not in iq.EMULATED_ISAS]  # amx_emu: tests only
SMALL = {layer.name for layer in LAYERS if layer.ops <= 110_000_000}
CONV_CASES = [
    pytest.param(layer, isa, id=f"{layer.name}-{isa}",
                 marks=[pytest.mark.skip(reason="scalar path: smallest layers only")]
                 if isa == "scalar" and layer.name not in SMALL else [])
    for layer in LAYERS
    for isa in ISAS
]
BATCHED = [layer for layer in LAYERS if layer.n > 1]
HAS_TORCH = peers.available("torch")
needs_ort = pytest.mark.skipif(not peers.available("onnxruntime"), reason="onnxruntime not installed (pip install '.[bench]')")
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch not installed (pip install '.[bench]')")

X_SCALE, X_ZP = 0.02, 128


def group(layer):
    return f"conv-{layer.name}"


@pytest.fixture(scope="module")
def operands():
    """Inputs of each layer, built once with a fixed seed per layer."""
    cache = {}

    def get(layer):
        if layer.name not in cache:
            rng = np.random.default_rng(zlib.crc32(layer.name.encode()))
            x = rng.integers(0, 256, (layer.n, layer.c, layer.h, layer.w), dtype=np.uint8)
            w = rng.integers(-127, 128, (layer.oc, layer.c // layer.groups, layer.k, layer.k), dtype=np.int8)
            w_scale = rng.uniform(0.001, 0.01, layer.oc).astype(np.float32)
            cache[layer.name] = dict(
                x_nchw=x,
                x_nhwc=np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                w=w,
                w_scale=w_scale,
                x_f32=(x.astype(np.float32) - X_ZP) * X_SCALE,
                w_f32=w.astype(np.float32) * w_scale[:, None, None, None],
            )
        return cache[layer.name]

    return get


def _info(benchmark, layer, **kw):
    benchmark.group = group(layer)
    benchmark.extra_info.update({"layer": layer.name, "ops": layer.ops, "gops": layer.ops / 1e9,
                                 "N": layer.n, "C": layer.c, "H": layer.h, "W": layer.w, "OC": layer.oc,
                                 "K": layer.k, "stride": layer.stride, "padding": layer.padding,
                                 "groups": layer.groups, "threads": 1, **kw})


def _args(layer):
    return layer.stride, layer.padding, layer.groups


def _out_shape(layer, layout):
    oh, ow = layer.out_hw
    return (layer.n, oh, ow, layer.oc) if layout == "NHWC" else (layer.n, layer.oc, oh, ow)


def _median_seconds(runs, reps=15):
    """Median seconds of each callable of runs, timed interleaved (so that a
    change of the machine's load or clock affects all of them alike)."""
    times = {key: [] for key in runs}
    for fn in runs.values():
        fn()
    for _ in range(reps):
        for key, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    return {key: float(np.median(t)) for key, t in times.items()}


# --- float32 baseline and its variants ---------------------------------------

@needs_torch
@pytest.mark.parametrize("layer", LAYERS, ids=ids)
def test_torch_f32_baseline(benchmark, operands, layer):
    """Baseline: torch float32 conv2d in the faster of its two memory formats for this layer."""
    d = operands(layer)
    runs = {fmt: peers.torch_conv2d_f32(d["x_f32"], d["w_f32"], *_args(layer), threads=1,
                                         channels_last=fmt == "channels_last")
            for fmt in ("nchw", "channels_last")}
    if benchmark.enabled:
        seconds = _median_seconds(runs)
        fmt = min(seconds, key=seconds.get)
    else:
        seconds, fmt = {}, "channels_last"
    _info(benchmark, layer, baseline=True, peer="torch f32 conv2d", path="torch f32",
          layout="NHWC" if fmt == "channels_last" else "NCHW", torch_memory_format=fmt,
          **{f"torch_f32_{f}_seconds": s for f, s in seconds.items()})
    benchmark(runs[fmt])


@needs_torch
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
@pytest.mark.parametrize("layer", LAYERS, ids=ids)
def test_torch_f32(benchmark, operands, layer, fmt):
    """torch float32 conv2d in each memory format (the baseline is the faster of the two)."""
    d = operands(layer)
    run = peers.torch_conv2d_f32(d["x_f32"], d["w_f32"], *_args(layer), threads=1,
                                  channels_last=fmt == "channels_last")
    _info(benchmark, layer, peer="torch f32 conv2d", path="torch f32",
          layout="NHWC" if fmt == "channels_last" else "NCHW", torch_memory_format=fmt)
    benchmark(run)


@pytest.mark.parametrize("layer", LAYERS, ids=ids)
def test_numpy_f32(benchmark, operands, one_thread, layer):
    """NumPy float32 (peers.numpy_conv2d_f32: one matmul for 1x1, im2col from a strided view and a
    matmul per group, or a sum of strided views for depthwise): the baseline when torch is not installed."""
    d = operands(layer)
    run = peers.numpy_conv2d_f32(d["x_f32"], d["w_f32"], *_args(layer))
    _info(benchmark, layer, baseline=not HAS_TORCH, path=f"float32 {run.method}", layout="NHWC",
          openblas_core=peers.openblas_corename())
    benchmark(run)


# --- intquant_kernels ---------------------------------------------------------

@pytest.mark.parametrize("layer, isa", CONV_CASES)
def test_conv2d(benchmark, operands, one_thread, layer, isa):
    d = operands(layer)
    with iq.use_isa(isa):
        pw = iq.pack_conv_weights(d["w"], groups=layer.groups)
        out = np.empty(_out_shape(layer, "NHWC"), np.int32)
        _info(benchmark, layer, path="conv2d", isa=isa, layout="NHWC", weights="packed")
        benchmark(iq.conv2d, d["x_nhwc"], pw, stride=layer.stride, padding=layer.padding, groups=layer.groups,
                  layout="NHWC", x_zero_point=X_ZP, out=out)


@pytest.mark.parametrize("layer", LAYERS, ids=ids)
def test_conv2d_nchw(benchmark, operands, one_thread, layer):
    """The default path on the NCHW input: compare with test_conv2d of the default ISA (NHWC)."""
    d = operands(layer)
    pw = iq.pack_conv_weights(d["w"], groups=layer.groups)
    out = np.empty(_out_shape(layer, "NCHW"), np.int32)
    _info(benchmark, layer, path="conv2d", isa=iq.active_isa(), layout="NCHW", weights="packed")
    benchmark(iq.conv2d, d["x_nchw"], pw, stride=layer.stride, padding=layer.padding, groups=layer.groups,
              layout="NCHW", x_zero_point=X_ZP, out=out)


@pytest.mark.parametrize("epilogue", ["f32_bias", "requant_u8_bias_relu"])
@pytest.mark.parametrize("layer", LAYERS, ids=ids)
def test_qconv2d(benchmark, operands, one_thread, layer, epilogue):
    d = operands(layer)
    pw = iq.pack_conv_weights(d["w"], groups=layer.groups)
    bias = np.linspace(-1, 1, layer.oc, dtype=np.float32)
    out_scale = peers.conv_out_scale(layer.c // layer.groups * layer.k * layer.k, X_SCALE, d["w_scale"])
    kw = {
        "f32_bias": dict(bias=bias),
        "requant_u8_bias_relu": dict(bias=bias, relu=True, out_scale=out_scale, out_zero_point=128,
                                     out_dtype=np.uint8),
    }[epilogue]
    out = np.empty(_out_shape(layer, "NHWC"), np.uint8 if epilogue.startswith("requant") else np.float32)
    _info(benchmark, layer, path="qconv2d", isa=iq.active_isa(), layout="NHWC", weights="packed",
          epilogue=epilogue)
    benchmark(iq.qconv2d, d["x_nhwc"], pw, X_SCALE, d["w_scale"], stride=layer.stride, padding=layer.padding,
              groups=layer.groups, layout="NHWC", x_zero_point=X_ZP, out=out, **kw)


# --- quantized peers ----------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("layer", LAYERS, ids=ids)
def test_torch_quantized_conv2d(benchmark, operands, layer):
    d = operands(layer)
    run = peers.torch_quantized_conv2d(d["x_nchw"], d["w"], d["w_scale"], *_args(layer), threads=1,
                                        x_scale=X_SCALE, x_zero_point=X_ZP)
    extra = {}
    if layer.depthwise:
        # See peers.torch_quantized_conv2d: fbgemm's depthwise kernel
        # saturates on full-range uint8 activations (timing unaffected).
        extra["note"] = "fbgemm depthwise saturates int16 pair sums on full-range uint8 inputs"
    _info(benchmark, layer, peer="torch quantized Conv2d (x86)", path="torch quantized",
          layout="NHWC", torch_memory_format="channels_last", **extra)
    benchmark(run)


@needs_ort
@pytest.mark.parametrize("layer", LAYERS, ids=ids)
def test_onnxruntime_qlinearconv(benchmark, operands, layer):
    d = operands(layer)
    try:
        run = peers.onnxruntime_qlinearconv(d["x_nchw"], d["w"], d["w_scale"], *_args(layer), threads=1,
                                             x_scale=X_SCALE, x_zero_point=X_ZP)
    except peers.PeerUnavailable as e:
        pytest.skip(str(e))
    _info(benchmark, layer, peer="onnxruntime QLinearConv", path="onnxruntime", layout="NCHW")
    benchmark(run)


# --- threads ------------------------------------------------------------------

@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layer", BATCHED, ids=[layer.name for layer in BATCHED])
def test_conv2d_threads(benchmark, operands, layer, threads):
    """Thread scaling of the default path, NHWC (group baseline: one thread)."""
    d = operands(layer)
    pw = iq.pack_conv_weights(d["w"], groups=layer.groups)
    out = np.empty(_out_shape(layer, "NHWC"), np.int32)
    previous = iq.get_num_threads()
    iq.set_num_threads(threads)
    try:
        _info(benchmark, layer, path="conv2d", isa=iq.active_isa(), layout="NHWC", weights="packed",
              threads=threads, baseline=threads == 1)
        benchmark.group = f"conv-threads-{layer.name}"
        benchmark(iq.conv2d, d["x_nhwc"], pw, stride=layer.stride, padding=layer.padding, groups=layer.groups,
                  layout="NHWC", x_zero_point=X_ZP, out=out)
    finally:
        iq.set_num_threads(previous)
