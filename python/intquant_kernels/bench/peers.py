"""Peers and baselines for benchmarks: NumPy float32 (OpenBLAS), onnxruntime
and torch. Each builder returns a zero-argument callable that runs the peer's
operation on prepared inputs, or raises PeerUnavailable with the reason (the
peers are the optional `bench` extra, never a dependency)."""
from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import json
import os
import subprocess
import sys
import warnings

import numpy as np


class PeerUnavailable(RuntimeError):
    pass


def available(module: str) -> bool:
    """Whether an optional peer package can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


@functools.lru_cache(maxsize=None)
def openblas_libs() -> tuple:
    """The OpenBLAS libraries NumPy's wheel carries (numpy.libs), loaded with ctypes; empty if none."""
    pattern = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")
    libs = []
    for path in glob.glob(pattern):
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return tuple(libs)


@functools.lru_cache(maxsize=None)
def openblas_corename() -> str:
    """The kernel OpenBLAS (inside NumPy) picked in this process, e.g. 'SkylakeX' or 'Haswell';
    it picks once, at load, so this asks once."""
    for lib in openblas_libs():
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return "unknown"


def openblas_threads(n: int | None) -> int | None:
    """Set OpenBLAS's thread count in this process (if n) and return the previous one, or None."""
    libs = openblas_libs()
    if not libs:
        return None
    lib = libs[0]
    for suffix in ("64_", ""):
        for prefix in ("scipy_openblas", "openblas"):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                previous = int(get())
                if n is not None:
                    put(ctypes.c_int(n))
                return previous
    return None


_SUBPROCESS_TIMER = r"""
import json, sys, time, numpy as np
from intquant_kernels.bench.peers import openblas_corename
m, k, n, reps = map(int, sys.argv[1:5])
rng = np.random.default_rng(0)
a = rng.standard_normal((m, k), dtype=np.float32); b = rng.standard_normal((k, n), dtype=np.float32)
out = np.empty((m, n), np.float32)
np.matmul(a, b, out=out)
times = []
for _ in range(reps):
    t = time.perf_counter(); np.matmul(a, b, out=out); times.append(time.perf_counter() - t)
print(json.dumps({"median": float(np.median(times)), "corename": openblas_corename()}))
"""


def numpy_matmul_time(m, k, n, coretype=None, reps=7) -> dict:
    """Median seconds of a one-thread float32 np.matmul in a fresh process.

    ``coretype=None`` lets OpenBLAS pick its kernel for this CPU (both of the
    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides removed); 'Haswell' limits it
    to its AVX2 kernel. Returns {"median": s, "corename": ...}.
    """
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    env["OPENBLAS_NUM_THREADS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_TIMER, str(m), str(k), str(n), str(reps)],
        env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def _onnx():
    """onnxruntime and onnx's TensorProto, helper and numpy_helper, or PeerUnavailable."""
    try:
        import onnx  # noqa: F401
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as e:
        raise PeerUnavailable(f"onnxruntime/onnx not installed ({e.name}); pip install '.[bench]'") from None
    return ort, TensorProto, helper, numpy_helper


def _onnx_session(ort, helper, graph, threads: int):
    """An onnxruntime CPU session of the one-graph model ``graph`` (opset 13, IR version at most 9),
    ``threads`` threads within the op and one between ops."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 9)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _torch(threads):
    try:
        import torch
    except ImportError:
        raise PeerUnavailable("torch not installed; pip install '.[bench]'") from None
    torch.set_num_threads(threads)
    return torch


def _torch_x86_quantized(threads):
    """torch, with its x86 quantized engine (fbgemm) selected."""
    torch = _torch(threads)
    if "x86" not in torch.backends.quantized.supported_engines:
        raise PeerUnavailable("torch has no x86 quantized engine")
    torch.backends.quantized.engine = "x86"
    return torch


@contextlib.contextmanager
def _quantized_tensors_allowed():
    # torch marks its quantized tensors deprecated; they are what its quantized
    # Linear and Conv2d run on, which is what we compare against.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _torch_qint8_per_channel(torch, w_s8: np.ndarray, w_scale: np.ndarray):
    """int8 weights (output channel first) as torch's per-channel qint8 tensor: scales ``w_scale``
    (float32, one per output channel), zero points 0. Call inside _quantized_tensors_allowed()."""
    oc = w_s8.shape[0]
    w = torch.from_numpy(w_s8.astype(np.float32) * w_scale.reshape((oc,) + (1,) * (w_s8.ndim - 1)))
    return torch.quantize_per_channel(w, torch.from_numpy(w_scale.astype(np.float64)),
                                      torch.zeros(oc, dtype=torch.int64), 0, torch.qint8)


def onnxruntime_matmulinteger(a_u8: np.ndarray, b_s8: np.ndarray, threads: int = 1):
    """onnxruntime MatMulInteger: uint8 activations (input), int8 weights (initializer)."""
    ort, TensorProto, helper, numpy_helper = _onnx()
    m, k = a_u8.shape
    n = b_s8.shape[1]
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])],
        "mmi",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        initializer=[numpy_helper.from_array(b_s8, "B")],
    )
    sess = _onnx_session(ort, helper, graph, threads)
    feed = {"A": a_u8}
    return lambda: sess.run(None, feed)


def torch_quantized_linear(a_u8: np.ndarray, b_s8: np.ndarray, w_scale: np.ndarray, threads: int = 1):
    """torch's quantized Linear (x86 engine): quint8 activations, per-channel qint8 weights."""
    torch = _torch_x86_quantized(threads)
    k, n = b_s8.shape
    with _quantized_tensors_allowed():
        wq = _torch_qint8_per_channel(torch, np.ascontiguousarray(b_s8.T), w_scale)
    lin = torch.ao.nn.quantized.Linear(k, n, bias_=False, dtype=torch.qint8)
    lin.set_weight_bias(wq, None)
    lin.scale, lin.zero_point = 0.05, 128
    x = torch._make_per_tensor_quantized_tensor(torch.from_numpy(a_u8), 0.02, 128)

    def run():
        with torch.no_grad():
            return lin(x)

    return run


# --- 2-D convolution peers ------------------------------------------------
# Weights are (OC, C/groups, KH, KW) and activations NCHW, as in ONNX and torch.


def _conv_out_hw(h, w, k, stride, padding):
    return (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1


def torch_conv2d_f32(x_f32_nchw: np.ndarray, w_f32: np.ndarray, stride, padding, groups, threads: int = 1,
                     channels_last: bool = False):
    """torch.nn.functional.conv2d in float32 (no grad): the float baseline of the conv benchmarks.

    ``channels_last=False`` runs on the NCHW-contiguous input; ``True`` converts
    input and weights to torch.channels_last once, here, so that the timed call
    runs torch's NHWC path (the output is channels_last too). Neither is the
    faster everywhere. Measured with one thread (torch 2.13.0+cpu, oneDNN 3.12,
    AVX-512 Zen 5 CPU) on CONV_LAYERS: channels_last is about 10% faster on the
    batch-1 3x3 ResNet-50 layers, 1.8x on the depthwise ones and 2x on the
    batch-8 layer (NCHW takes a slower oneDNN path there); on the 1x1 layer
    they are within noise (NCHW slightly ahead). benchmarks/bench_conv.py
    therefore times both and takes the faster of the two, per layer, as the
    float32 baseline.
    """
    torch = _torch(threads)
    x = torch.from_numpy(np.ascontiguousarray(x_f32_nchw, dtype=np.float32))
    w = torch.from_numpy(np.ascontiguousarray(w_f32, dtype=np.float32))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        w = w.contiguous(memory_format=torch.channels_last)
    conv = torch.nn.functional.conv2d

    def run():
        with torch.no_grad():
            return conv(x, w, None, stride, padding, 1, groups)

    return run


def numpy_conv2d_f32(x_f32_nchw: np.ndarray, w_f32: np.ndarray, stride, padding, groups):
    """Float32 convolution in NumPy, the baseline when torch is not installed,
    as fast as NumPy allows: everything that does not depend on the values
    (the NHWC copy of the input, its zero padding, the weights as matrices)
    is made here, before timing, and the timed call returns the NHWC output
    (N, OH, OW, OC). The callable's ``method`` names how it computes, and
    ``product`` the float32 matmul it runs, ``(groups, rows, K, columns)``
    (None for the depthwise sum):

    - 1x1, stride 1, no padding, one group: one ``numpy.matmul`` of the
      (N*OH*OW, C) pixels by the (C, OC) weights;
    - otherwise, not depthwise: im2col rows (N*OH*OW, KH*KW*C/groups) per
      group, copied from a strided window view of the padded input, then one
      batched ``numpy.matmul`` (one product per group), moved to the NHWC
      output where there are several groups. The copies move each pixel's
      C/groups channels (OC/groups outputs) as one element (a NumPy void of
      their bytes), so that small groups are not copied 4 bytes at a time;
    - depthwise (groups == C == OC): the sum over the KH*KW taps of a strided
      view of the padded input times that tap's per-channel weights.
    """
    x = np.asarray(x_f32_nchw, dtype=np.float32)
    w = np.asarray(w_f32, dtype=np.float32)
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    if c != cg * groups or oc % groups:
        raise ValueError(f"numpy_conv2d_f32: C={c}, OC={oc} and weights {w.shape} do not match groups={groups}")
    ocg = oc // groups
    s, p = stride, padding
    oh, ow = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
    rows = n * oh * ow
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))

    if kh == kw == 1 and s == 1 and p == 0 and groups == 1:
        pixels = x_nhwc.reshape(rows, c)
        wmat = np.ascontiguousarray(w.reshape(oc, c).T)
        out = np.empty((rows, oc), np.float32)

        def run():
            np.matmul(pixels, wmat, out=out)
            return out.reshape(n, oh, ow, oc)

        run.method, run.product = "numpy matmul (1x1)", (1, rows, c, oc)
        return run

    xp = np.pad(x_nhwc, ((0, 0), (p, p), (p, p), (0, 0)))
    if groups == c == oc:
        taps = [xp[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :] for i in range(kh) for j in range(kw)]
        wtaps = np.ascontiguousarray(w.reshape(c, kh * kw).T)  # (KH*KW, C)
        out = np.empty((n, oh, ow, c), np.float32)
        tmp = np.empty_like(out)

        def run():
            np.multiply(taps[0], wtaps[0], out=out)
            for t in range(1, len(taps)):
                np.multiply(taps[t], wtaps[t], out=tmp)
                np.add(out, tmp, out=out)
            return out

        run.method, run.product = f"numpy depthwise (sum of {kh}x{kw} strided views)", None
        return run

    k = kh * kw * cg
    group = np.dtype((np.void, cg * 4))  # one group's channels of one pixel
    windows = np.lib.stride_tricks.sliding_window_view(xp.view(group), (kh, kw), axis=(1, 2))
    windows = windows[:, ::s, ::s][:, :oh, :ow].transpose(3, 0, 1, 2, 4, 5)  # (G, N, OH, OW, KH, KW)
    cols = np.empty((groups, rows, k), np.float32)  # K ordered (KH, KW, C/G)
    cols_view = cols.view(group).reshape(groups, n, oh, ow, kh, kw)
    wmat = np.ascontiguousarray(w.reshape(groups, ocg, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(groups, k, ocg))
    by_group = np.empty((groups, rows, ocg), np.float32)
    out = by_group[0] if groups == 1 else np.empty((rows, groups, ocg), np.float32)
    # Several groups: the product is written contiguously (OpenBLAS is slower
    # writing rows strided by OC), then each pixel's group outputs move to NHWC
    # as one element each.
    column = np.dtype((np.void, ocg * 4))
    by_group_columns = by_group.view(column).reshape(groups, rows).T
    out_columns = out.view(column).reshape(rows, groups)

    def run():
        np.copyto(cols_view, windows)
        np.matmul(cols, wmat, out=by_group)
        if groups > 1:
            np.copyto(out_columns, by_group_columns)
        return out.reshape(n, oh, ow, oc)

    run.method = "numpy im2col(strided view)+" + ("matmul" if groups == 1 else f"batched matmul ({groups} groups)")
    run.product = (groups, rows, k, ocg)
    return run


def conv_out_scale(k: int, x_scale: float, w_scale: np.ndarray) -> float:
    """An output scale covering about +-4 standard deviations of the float result
    of a convolution over k taps of uniform uint8 (zero point 128) by uniform int8."""
    std = np.sqrt(k) * 74.0 * x_scale * 73.0 * float(np.mean(w_scale))
    return float(8.0 * std / 255.0)


def torch_quantized_conv2d(x_u8_nchw: np.ndarray, w_s8: np.ndarray, w_scale: np.ndarray, stride, padding, groups,
                           threads: int = 1, x_scale: float = 0.02, x_zero_point: int = 128,
                           out_scale=None, out_zero_point: int = 128, channels_last: bool = True):
    """torch's quantized Conv2d (x86 engine, i.e. fbgemm): per-tensor quint8
    activations, per-channel qint8 weights (axis 0), quint8 output.

    The input is converted once, here, to a quantized tensor in
    torch.channels_last (``channels_last=False`` keeps it NCHW-contiguous).
    fbgemm computes in NHWC: an NCHW input costs a transposition of the input
    and of the output on each call. channels_last is the faster on every layer
    of CONV_LAYERS (one thread, torch 2.13.0+cpu): by 5-45% on the dense layers,
    2x and 3x on the depthwise ones; so it is the default.

    Beware: fbgemm's depthwise kernels add pairs of uint8*int8 products in
    int16 with saturation (vpmaddubsw), so with full-range uint8 activations
    (as the benchmarks use) about 11% of the depthwise outputs are wrong, by up
    to 129 steps; torch avoids this by quantizing activations to 7 bits
    (reduce_range). The dense layers are exact to +-1 rounding step. The
    timing does not depend on the values.
    """
    torch = _torch_x86_quantized(threads)
    oc, cg, kh, kw = w_s8.shape
    c = x_u8_nchw.shape[1]
    w_scale = np.broadcast_to(np.asarray(w_scale, np.float32), (oc,))
    if out_scale is None:
        out_scale = conv_out_scale(cg * kh * kw, x_scale, w_scale)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with _quantized_tensors_allowed():
        wq = _torch_qint8_per_channel(torch, np.asarray(w_s8), w_scale)
        conv = torch.ao.nn.quantized.Conv2d(c, oc, (kh, kw), stride=stride, padding=padding, groups=groups,
                                            bias=False)
        conv.set_weight_bias(wq, None)
        conv.scale, conv.zero_point = float(out_scale), int(out_zero_point)
        x = torch._make_per_tensor_quantized_tensor(
            torch.from_numpy(np.ascontiguousarray(x_u8_nchw, dtype=np.uint8)), float(x_scale), int(x_zero_point))
        x = x.contiguous(memory_format=fmt)

    def run():
        with torch.no_grad():
            return conv(x)

    return run


def onnxruntime_qlinearconv(x_u8_nchw: np.ndarray, w_s8: np.ndarray, w_scale: np.ndarray, stride, padding, groups,
                            threads: int = 1, x_scale: float = 0.02, x_zero_point: int = 128,
                            out_scale=None, out_zero_point: int = 128):
    """onnxruntime QLinearConv (one node; CPU provider): uint8 activations (the
    graph's input, NCHW), int8 weights with per-channel w_scale and zero points 0,
    uint8 output; weights, scales and zero points are initializers."""
    ort, TensorProto, helper, numpy_helper = _onnx()
    oc, cg, kh, kw = w_s8.shape
    n, c, h, wd = x_u8_nchw.shape
    oh, ow = _conv_out_hw(h, wd, kh, stride, padding)
    w_scale = np.ascontiguousarray(np.broadcast_to(np.asarray(w_scale, np.float32), (oc,)))
    if out_scale is None:
        out_scale = conv_out_scale(cg * kh * kw, x_scale, w_scale)
    inits = [
        numpy_helper.from_array(np.array(x_scale, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(x_zero_point, np.uint8), "x_zp"),
        numpy_helper.from_array(np.ascontiguousarray(w_s8, dtype=np.int8), "w"),
        numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(np.zeros(oc, np.int8), "w_zp"),
        numpy_helper.from_array(np.array(out_scale, np.float32), "y_scale"),
        numpy_helper.from_array(np.array(out_zero_point, np.uint8), "y_zp"),
    ]
    node = helper.make_node("QLinearConv", ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"],
                            ["y"], kernel_shape=[kh, kw], strides=[stride, stride], pads=[padding] * 4,
                            dilations=[1, 1], group=groups)
    graph = helper.make_graph(
        [node], "qlinearconv",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [n, c, h, wd])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [n, oc, oh, ow])],
        initializer=inits,
    )
    try:
        sess = _onnx_session(ort, helper, graph, threads)
        feed = {"x": np.ascontiguousarray(x_u8_nchw, dtype=np.uint8)}
        sess.run(None, feed)
    except Exception as e:  # onnxruntime raises its own exception types
        raise PeerUnavailable(f"onnxruntime refuses this QLinearConv: {e}") from None
    return lambda: sess.run(None, feed)
