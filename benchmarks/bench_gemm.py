"""int8 GEMM throughput against float32 and the peers, one thread unless stated.

Each shape is one pytest-benchmark group; the baseline of the group is NumPy's
float32 matmul in this process (OpenBLAS picks its kernel from the
environment: run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for its
AVX-512 kernel). Each baseline also records, in extra_info, a float32 matmul
timed in a subprocess with OpenBLAS limited to its AVX2 kernel
(OPENBLAS_CORETYPE=Haswell), the fair comparison for the avx2 path.
GOPS count 2*M*K*N operations.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \\
        python -m pytest benchmarks/bench_gemm.py --benchmark-enable --benchmark-json=gemm.json
    python benchmarks/summarize.py gemm.json
"""
import numpy as np
import pytest

import intquant_kernels as iq
from intquant_kernels.bench import peers
from intquant_kernels.bench.cases import GEMM_SHAPES

SHAPES = GEMM_SHAPES
# The scalar path is the portable fallback, not a performance path: only the
# small shapes, so that a --benchmark-disable run stays quick.
ISAS = [isa for isa in iq.available_isas() if isa not in iq.EMULATED_ISAS]  # amx_emu: tests only
SMALL = {s for s in SHAPES if s[0] * s[1] * s[2] <= 512**3}
ids = [f"{m}x{k}x{n}" for m, k, n in SHAPES]
GEMM_CASES = [
    pytest.param(shape, isa, id=f"{sid}-{isa}",
                 marks=[pytest.mark.skip(reason="scalar path: small shapes only")]
                 if isa == "scalar" and shape not in SMALL else [])
    for shape, sid in zip(SHAPES, ids)
    for isa in ISAS
]
needs_ort = pytest.mark.skipif(not peers.available("onnxruntime"), reason="onnxruntime not installed (pip install '.[bench]')")
needs_torch = pytest.mark.skipif(not peers.available("torch"), reason="torch not installed (pip install '.[bench]')")


def group(shape):
    return "gemm-%dx%dx%d" % shape


@pytest.fixture(scope="module")
def operands():
    cache = {}

    def get(shape):
        if shape not in cache:
            m, k, n = shape
            rng = np.random.default_rng(m * 1_000_003 + k * 1009 + n)
            a = rng.integers(0, 256, (m, k), dtype=np.uint8)
            b = rng.integers(-127, 128, (k, n), dtype=np.int8)
            w_scale = rng.uniform(0.001, 0.01, n).astype(np.float32)
            cache[shape] = (a, b, w_scale)
        return cache[shape]

    return get


def _info(benchmark, shape, **kw):
    m, k, n = shape
    benchmark.group = group(shape)
    benchmark.extra_info.update({"M": m, "K": k, "N": n, "ops": 2 * m * k * n, **kw})


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_numpy_f32(benchmark, operands, one_thread, shape):
    """Baseline: float32 matmul, same shape, same run."""
    a, b, _ = operands(shape)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    out = np.empty((shape[0], shape[2]), np.float32)
    haswell = peers.numpy_matmul_time(*shape, coretype="Haswell") if benchmark.enabled else None
    _info(benchmark, shape, baseline=True, openblas_core=peers.openblas_corename(),
          numpy_f32_avx2_seconds=haswell and haswell["median"])
    benchmark(np.matmul, af, bf, out=out)


@pytest.mark.parametrize("shape, isa", GEMM_CASES)
def test_gemm(benchmark, operands, one_thread, shape, isa):
    a, b, _ = operands(shape)
    with iq.use_isa(isa):
        pw = iq.pack_weights(b)
        out = np.empty((shape[0], shape[2]), np.int32)
        _info(benchmark, shape, isa=isa, kernel=iq.kernel_names(isa)["gemm"])
        benchmark(iq.gemm, a, pw, out=out)


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_gemm_affine_weights(benchmark, operands, one_thread, shape):
    """Per-column weight zero points: the cost of affine against scale (symmetric) weights."""
    a, b, _ = operands(shape)
    zp = np.arange(shape[2], dtype=np.int32) % 7 - 3
    pw = iq.pack_weights(b, zero_point=zp)
    out = np.empty((shape[0], shape[2]), np.int32)
    _info(benchmark, shape, isa=iq.active_isa(), variant="affine weights")
    benchmark(iq.gemm, a, pw, out=out)


@pytest.mark.parametrize("epilogue", ["f32", "f32_bias_relu", "requant_u8"])
@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_qgemm(benchmark, operands, one_thread, shape, epilogue):
    a, b, w_scale = operands(shape)
    pw = iq.pack_weights(b)
    n = shape[2]
    bias = np.linspace(-1, 1, n, dtype=np.float32)
    kw = {
        "f32": dict(),
        "f32_bias_relu": dict(bias=bias, relu=True),
        "requant_u8": dict(bias=bias, out_scale=0.05, out_zero_point=128, out_dtype=np.uint8),
    }[epilogue]
    out = np.empty((shape[0], n), np.uint8 if epilogue == "requant_u8" else np.float32)
    _info(benchmark, shape, isa=iq.active_isa(), epilogue=epilogue)
    benchmark(iq.qgemm, a, pw, 0.02, w_scale, a_zero_point=128, out=out, **kw)


ROW_SHAPES = [(16, 1024, 1024), (128, 1024, 1024), (1024, 1024, 1024)]


@pytest.mark.parametrize("a_scale", ["per_tensor", "per_row"])
@pytest.mark.parametrize("shape", ROW_SHAPES, ids=[f"{m}x{k}x{n}" for m, k, n in ROW_SHAPES])
def test_qgemm_row_scales(benchmark, operands, one_thread, shape, a_scale):
    """A per-row a_scale (one per row of a, as dynamic quantization gives) against a per-tensor
    one, float32 output, default path (group baseline: per tensor). Side by side in one run,
    interleaved: benchmarks/qgemm_rows_ratio.py."""
    a, b, w_scale = operands(shape)
    pw = iq.pack_weights(b)
    scale = 0.02 if a_scale == "per_tensor" else np.linspace(0.01, 0.03, shape[0], dtype=np.float32)
    out = np.empty((shape[0], shape[2]), np.float32)
    m, k, n = shape
    benchmark.group = "qgemm-a_scale-%dx%dx%d" % shape
    benchmark.extra_info.update({"M": m, "K": k, "N": n, "ops": 2 * m * k * n, "isa": iq.active_isa(),
                                 "a_scale": a_scale, "baseline": a_scale == "per_tensor"})
    benchmark(iq.qgemm, a, pw, scale, w_scale, a_zero_point=128, out=out)


@needs_ort
@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_onnxruntime_matmulinteger(benchmark, operands, shape):
    a, b, _ = operands(shape)
    run = peers.onnxruntime_matmulinteger(a, b, threads=1)
    _info(benchmark, shape, peer="onnxruntime MatMulInteger")
    benchmark(run)


@needs_torch
@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_torch_quantized_linear(benchmark, operands, shape):
    a, b, w_scale = operands(shape)
    run = peers.torch_quantized_linear(a, b, w_scale, threads=1)
    _info(benchmark, shape, peer="torch quantized Linear (x86)")
    benchmark(run)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(1024, 1024, 1024), (2048, 2048, 2048)], ids=["1024^3", "2048^3"])
def test_gemm_threads(benchmark, operands, shape, threads):
    """Thread scaling of the default path (group baseline: one thread)."""
    a, b, _ = operands(shape)
    pw = iq.pack_weights(b)
    out = np.empty((shape[0], shape[2]), np.int32)
    previous = iq.get_num_threads()
    iq.set_num_threads(threads)
    try:
        benchmark.group = "gemm-threads-%dx%dx%d" % shape
        benchmark.extra_info.update({"ops": 2 * shape[0] * shape[1] * shape[2], "threads": threads,
                                     "baseline": threads == 1, "isa": iq.active_isa()})
        benchmark(iq.gemm, a, pw, out=out)
    finally:
        iq.set_num_threads(previous)
