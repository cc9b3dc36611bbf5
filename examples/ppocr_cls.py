"""The paper's int8 workflow on a real pretrained CNN: PP-OCR's text-direction classifier.

    python examples/ppocr_cls.py --calibrator entropy

The model is ``ch_ppocr_mobile_v2.0_cls_infer.onnx`` (PaddleOCR, Apache-2.0), a
MobileNetV3-style network (53 convolutions, depthwise ones among them, batch
norms not folded, hard-swish, squeeze-and-excitation, one MatMul) that tells
upright text lines (0 degrees) from upside-down ones (180 degrees), input
3 x 48 x 192. It is read out of the ``rapidocr-onnxruntime`` 1.4.4 wheel, which
``pip download --no-deps`` fetches once into the cache (nothing of rapidocr is
installed). The data are text lines of real sentences rendered with Pillow
(``textlines.py``), upright and rotated, so the label is known by construction.

Steps (Wu et al. 2020, section 6's recipe), all in ``qexec.py``:

1. lower the ONNX graph: fold the batch norms into the convolutions before them,
   biases and relus into their layers;
2. run it in float32 (the baseline; checked against onnxruntime);
3. calibrate: run the float32 graph over the calibration images and gather, for
   the input of every Conv/MatMul, the statistics of ``intquant_kernels.calibration``;
4. quantize: weights per output channel (max), activations per tensor with the
   chosen calibrator's range, and run every Conv through ``qconv2d`` and the
   MatMul through ``qgemm``, chaining requantized uint8/int8 outputs between
   consecutive integer layers;
5. compare int8 with float32: top-1 accuracy and agreement.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import qexec  # noqa: E402
import textlines  # noqa: E402

WHEEL_REQ = "rapidocr-onnxruntime==1.4.4"
WHEEL = "rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
MEMBER = "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
SHA256 = "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"
CALIBRATION_SEED = 0
EVALUATION_SEED = 1
CALIBRATION_LINES = 128  # of the 231 calibration lines: 256 images


def default_cache():
    return Path(os.environ.get("INTQUANT_EXAMPLES_CACHE", Path.home() / ".cache" / "intquant_kernels" / "examples"))


def model_bytes(cache=None):
    """The classifier's ONNX file, read out of the wheel (downloaded into ``cache`` once).

    Raises RuntimeError when the wheel is not cached and pip cannot download it."""
    cache = Path(cache or default_cache())
    whl = cache / WHEEL
    if not whl.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "--disable-pip-version-check", "-q", WHEEL_REQ, "-d", str(cache)],
                           capture_output=True, text=True)
        if r.returncode != 0 or not whl.is_file():
            raise RuntimeError(f"pip download {WHEEL_REQ} failed: {(r.stderr or r.stdout).strip()[-500:]}")
    with zipfile.ZipFile(whl) as z:
        data = z.read(MEMBER)
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise RuntimeError(f"{MEMBER} in {whl} is not the expected file (sha256 differs)")
    return data


def load_graph(data):
    import onnx

    return qexec.lower(onnx.load_from_string(data))


def data(n_calib=None, n_eval=None):
    """(calibration x, evaluation x, evaluation y): ``n_*`` text lines each, or all of them."""
    xc, _, _ = textlines.dataset("calibration", CALIBRATION_SEED, n_calib)
    xe, ye, _ = textlines.dataset("evaluation", EVALUATION_SEED, n_eval)
    return xc, xe, ye


def batches(x, n=32):
    return [x[i:i + n] for i in range(0, len(x), n)]


def predict(ex, x, batch=32):
    """The class probabilities of every image of ``x``."""
    return np.concatenate([ex.run(b) for b in batches(x, batch)])


def onnxruntime_probs(data, x, batch=32):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: b})[0] for b in batches(x, batch)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calibrator", default="entropy", choices=qexec.METHODS,
                   help="activation calibration (weights are always per-channel max)")
    p.add_argument("--cache", default=None, help=f"where the wheel is kept (default {default_cache()})")
    p.add_argument("--calib-lines", type=int, default=CALIBRATION_LINES,
                   help=f"calibration text lines (two images each; default {CALIBRATION_LINES})")
    p.add_argument("--eval-lines", type=int, default=None, help="evaluation text lines (default: all, 713)")
    p.add_argument("--no-onnxruntime", action="store_true", help="skip the float32 check against onnxruntime")
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    onnx_data = model_bytes(a.cache)
    graph = load_graph(onnx_data)
    xc, xe, ye = data(a.calib_lines, a.eval_lines)
    print(f"model: {MEMBER.split('/')[-1]} from {WHEEL}: {len(graph.layers())} integer layers after folding")
    print(f"data: {len(xc)} calibration and {len(xe)} evaluation images (seeds {CALIBRATION_SEED} and "
          f"{EVALUATION_SEED}), half of them rotated by 180 degrees")

    pf = predict(qexec.Executor(graph), xe)
    if not a.no_onnxruntime:
        try:
            po = onnxruntime_probs(onnx_data, xe)
            print(f"float32 executor vs onnxruntime: max abs difference of the probabilities "
                  f"{np.abs(pf - po).max():.2e}, same top-1 on {np.mean(pf.argmax(1) == po.argmax(1)):.2%}")
        except ImportError:
            print("onnxruntime not installed: float32 check skipped")

    stats = qexec.calibrate(graph, batches(xc))
    ex8 = qexec.Executor(graph, qexec.act_quant(stats, a.calibrator))
    p8 = predict(ex8, xe)
    acc_f, acc_8 = np.mean(pf.argmax(1) == ye), np.mean(p8.argmax(1) == ye)
    print(f"float32 accuracy: {acc_f:.2%}")
    print(f"int8 ({a.calibrator}) accuracy: {acc_8:.2%}  (difference {100 * (acc_8 - acc_f):+.2f} points), "
          f"agreement with float32: {np.mean(p8.argmax(1) == pf.argmax(1)):.2%}")
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
