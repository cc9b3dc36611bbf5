"""The paper's int8 workflow on a real trained MLP: scikit-learn's MLPClassifier on its digits.

    python examples/digits_mlp.py --calibrator entropy

The network is trained here, in a few seconds, on half of scikit-learn's bundled
digits (8 x 8 images of handwritten digits, 1797 in all; pixel values / 16), with a
fixed seed, and evaluated on the other half. Its layers become ``Gemm`` nodes of
``qexec``'s graph (weights (in, out), bias, fused relu), so the int8 path is the
CNN's: weights per output channel (max), activations per tensor from the chosen
calibrator, hidden layers requantized straight to the uint8 the next layer reads
(``qgemm`` with ``out_scale``), the last one dequantized to float32 logits.
``--per-row`` quantizes the activations per row instead (dynamically, each
sample's own max: ``intquant_kernels.dynamic_quantize``), the paper's finer
activation granularity.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import qexec  # noqa: E402

SEED = 0
HIDDEN = (256, 128)


def data():
    """(x_train, x_test, y_train, y_test): the digits, pixels / 16 as float32, split in half (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return train_test_split(x, d.target, test_size=0.5, random_state=SEED, stratify=d.target)


def train(x, y, max_iter=200):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", alpha=1e-4, max_iter=max_iter,
                        random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    return clf


def graph_of(clf) -> qexec.Graph:
    """The trained MLP as a qexec Graph: one Gemm per layer (relu on the hidden ones), then Softmax."""
    nodes, t = [], "x"
    n = len(clf.coefs_)
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        out = f"h{i + 1}" if i < n - 1 else "logits"
        nodes.append(qexec.Node("Gemm", [t], [out], dict(w=w.astype(np.float32), b=b.astype(np.float32),
                                                         relu=i < n - 1, const={}), f"fc{i + 1}"))
        t = out
    nodes.append(qexec.Node("Softmax", [t], ["probs"], dict(axis=1, const={}), "softmax"))
    return qexec.Graph(nodes, "x", "probs")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calibrator", default="entropy", choices=qexec.METHODS)
    p.add_argument("--per-row", action="store_true", help="activations per row (dynamic) instead of per tensor")
    p.add_argument("--calib-samples", type=int, default=256, help="training samples used to calibrate")
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    xtr, xte, ytr, yte = data()
    clf = train(xtr, ytr)
    g = graph_of(clf)
    print(f"MLP {xtr.shape[1]}-{'-'.join(map(str, HIDDEN))}-10 trained on {len(xtr)} digits "
          f"(seed {SEED}, {clf.n_iter_} epochs), evaluated on {len(xte)}")
    pf = qexec.Executor(g).run(xte)
    print(f"float32 executor vs scikit-learn predict_proba: max abs difference "
          f"{np.abs(pf - clf.predict_proba(xte)).max():.2e}")
    stats = qexec.calibrate(g, [xtr[:a.calib_samples]])
    ex8 = qexec.Executor(g, qexec.act_quant(stats, a.calibrator), per_row_activations=a.per_row)
    p8 = ex8.run(xte)
    acc_f, acc_8 = np.mean(pf.argmax(1) == yte), np.mean(p8.argmax(1) == yte)
    what = "per-row dynamic activations" if a.per_row else a.calibrator
    print(f"float32 accuracy: {acc_f:.2%}")
    print(f"int8 ({what}) accuracy: {acc_8:.2%}  (difference {100 * (acc_8 - acc_f):+.2f} points), "
          f"agreement with float32: {np.mean(p8.argmax(1) == pf.argmax(1)):.2%}")
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
