"""Peers and baselines for benchmarks: NumPy float32 (OpenBLAS), onnxruntime
and torch. Each builder returns a zero-argument callable that runs the peer's
operation on prepared inputs, or raises PeerUnavailable with the reason (the
peers are the optional `bench` extra, never a dependency)."""
from __future__ import annotations

import ctypes
import glob
import json
import os
import subprocess
import sys

import numpy as np


class PeerUnavailable(RuntimeError):
    pass


def available(module: str) -> bool:
    """Whether an optional peer package can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def openblas_corename() -> str:
    """The kernel OpenBLAS (inside NumPy) picked in this process, e.g. 'SkylakeX' or 'Haswell'."""
    pattern = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")
    for path in glob.glob(pattern):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return "unknown"


_SUBPROCESS_TIMER = r"""
import json, sys, time, numpy as np
from intquant_kernels._peers import openblas_corename
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


def onnxruntime_matmulinteger(a_u8: np.ndarray, b_s8: np.ndarray, threads: int = 1):
    """onnxruntime MatMulInteger: uint8 activations (input), int8 weights (initializer)."""
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as e:
        raise PeerUnavailable(f"onnxruntime/onnx not installed ({e.name}); pip install '.[bench]'") from None
    m, k = a_u8.shape
    n = b_s8.shape[1]
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])],
        "mmi",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        initializer=[numpy_helper.from_array(b_s8, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 9)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {"A": a_u8}
    return lambda: sess.run(None, feed)


def torch_quantized_linear(a_u8: np.ndarray, b_s8: np.ndarray, w_scale: np.ndarray, threads: int = 1):
    """torch's quantized Linear (x86 engine): quint8 activations, per-channel qint8 weights."""
    try:
        import torch
    except ImportError:
        raise PeerUnavailable("torch not installed; pip install '.[bench]'") from None
    import warnings

    torch.set_num_threads(threads)
    if "x86" not in torch.backends.quantized.supported_engines:
        raise PeerUnavailable("torch has no x86 quantized engine")
    torch.backends.quantized.engine = "x86"
    k, n = b_s8.shape
    w = torch.from_numpy(np.ascontiguousarray(b_s8.T).astype(np.float32) * w_scale[:, None])
    with warnings.catch_warnings():
        # torch marks its quantized tensors deprecated; they are what its
        # quantized Linear runs on, which is what we compare against.
        warnings.simplefilter("ignore")
        wq = torch.quantize_per_channel(w, torch.from_numpy(w_scale.astype(np.float64)),
                                        torch.zeros(n, dtype=torch.int64), 0, torch.qint8)
    lin = torch.ao.nn.quantized.Linear(k, n, bias_=False, dtype=torch.qint8)
    lin.set_weight_bias(wq, None)
    lin.scale, lin.zero_point = 0.05, 128
    x = torch._make_per_tensor_quantized_tensor(torch.from_numpy(a_u8), 0.02, 128)

    def run():
        with torch.no_grad():
            return lin(x)

    return run
