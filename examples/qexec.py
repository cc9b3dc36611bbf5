"""A small NumPy executor for ONNX CNNs, in float32 or with its convolutions and
matrix products in int8 through intquant_kernels: the recipe of Wu et al. 2020.

It reads the graph once and rewrites it the way an inference engine would before
quantizing (:func:`lower`):

1. constants are folded (``Reshape`` of a constant bias, ...);
2. every ``BatchNormalization`` that follows a ``Conv`` is folded into the
   convolution's weights and bias (``w * gamma / sqrt(var + eps)``), *before*
   any weight is quantized (the paper, section 4.3 / appendix: BN folding);
3. a constant ``Add`` after a ``Conv`` (the squeeze-and-excitation biases) or
   after a ``MatMul`` becomes its bias, and a ``Relu`` after a ``Conv`` its
   fused relu;
4. hard-swish (``x * clip(x + 3, 0, 6) / 6``) is recognised as one op.

:class:`Executor` then runs the lowered graph:

- float32 (``Executor(graph)``): convolutions as im2col + ``numpy.matmul``
  (1x1 convolutions as one matmul, depthwise ones as a sum over the taps of
  shifted views times per-channel weights), so the float32 baseline is an
  honest one;
- int8 (``Executor(graph, quant=...)``): every ``Conv`` runs
  ``intquant_kernels.qconv2d`` and every ``MatMul`` ``intquant_kernels.qgemm``
  on weights quantized once per output channel (symmetric, narrow range
  [-127, 127], scale max|w| / 127) and packed once; activations are quantized
  per tensor with the scale a calibrator chose (uint8 for tensors that were
  never negative during calibration, int8 otherwise, zero point 0). Where
  every consumer of a layer's output is itself an integer layer, the layer
  requantizes straight to the int8/uint8 its consumers read (QLinearConv
  chaining); otherwise it dequantizes to float32 in its epilogue and the float
  ops (hard-swish, the SE multiply, pooling, residual adds, softmax) run in
  float32. ``float_layers`` keeps chosen layers in float32 (partial
  quantization).

Nothing here is specific to the PP-OCR classifier except the ops it needs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

import intquant_kernels as iq

# --- the lowered graph ---------------------------------------------------------


@dataclass
class Node:
    op: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)
    name: str = ""


@dataclass
class Graph:
    nodes: list
    input: str
    output: str

    def layers(self):
        """The integer-capable layers (Conv, Gemm), in execution order."""
        return [n for n in self.nodes if n.op in ("Conv", "Gemm")]

    def consumers(self, tensor):
        return [n for n in self.nodes if tensor in n.inputs]


def _attrs(node):
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def lower(model) -> Graph:
    """The ONNX ``model`` (a ModelProto) as a lowered :class:`Graph` (see the module docstring)."""
    from onnx import numpy_helper

    g = model.graph
    const = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes = []
    for n in g.node:
        if n.op_type == "Constant":
            const[n.output[0]] = numpy_helper.to_array(_attrs(n)["value"])
            continue
        nodes.append(Node(n.op_type, list(n.input), list(n.output), _attrs(n), n.name or n.output[0]))

    # 1. constant folding: a node whose inputs are all constants (Shape never: it reads a runtime shape).
    kept = []
    for n in nodes:
        if n.op != "Shape" and n.inputs and all(i in const for i in n.inputs):
            vals = _run_float_op(n, [const[i] for i in n.inputs])
            const.update(zip(n.outputs, vals))
        else:
            kept.append(n)
    nodes = kept

    def uses(t):
        return [m for m in nodes if t in m.inputs] + ([None] if t == g.output[0].name else [])

    def only_use(t, op):
        u = uses(t)
        return u[0] if len(u) == 1 and u[0] is not None and u[0].op == op else None

    # Conv / MatMul with their weights as attributes.
    for n in nodes:
        if n.op == "Conv":
            w = const[n.inputs[1]].astype(np.float32)
            b = const[n.inputs[2]].astype(np.float32) if len(n.inputs) > 2 and n.inputs[2] else None
            a = n.attrs
            kh, kw = w.shape[2:]
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise NotImplementedError("auto_pad")
            name = n.inputs[1][:-len("_weights")] if n.inputs[1].endswith("_weights") else n.inputs[1]
            n.attrs = dict(w=w, b=b, stride=tuple(a.get("strides", [1, 1])), pads=tuple(pads),
                           dilation=tuple(a.get("dilations", [1, 1])), groups=int(a.get("group", 1)), relu=False)
            n.inputs = [n.inputs[0]]
            n.name = name
        elif n.op == "MatMul" and n.inputs[1] in const:
            n.op = "Gemm"
            n.attrs = dict(w=const[n.inputs[1]].astype(np.float32), b=None, relu=False)
            n.name = n.inputs[1]
            n.inputs = [n.inputs[0]]

    # 2. fold batch norms, 3. constant biases and relus, into the layer before them.
    def absorb(n):
        """Folds into layer n the node after it, if it is one a layer takes in (a batch norm,
        a constant add, a relu); returns that node, or None."""
        nxt = only_use(n.outputs[0], "BatchNormalization") if n.op == "Conv" else None
        if nxt is not None and all(i in const for i in nxt.inputs[1:]):
            gamma, beta, mean, var = (const[i].astype(np.float64) for i in nxt.inputs[1:5])
            f = gamma / np.sqrt(var + float(nxt.attrs.get("epsilon", 1e-5)))
            w, b = n.attrs["w"], n.attrs["b"]
            n.attrs["w"] = (w.astype(np.float64) * f[:, None, None, None]).astype(np.float32)
            b0 = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
            n.attrs["b"] = ((b0 - mean) * f + beta).astype(np.float32)
            return nxt
        nxt = only_use(n.outputs[0], "Add")
        if nxt is not None:
            other = [i for i in nxt.inputs if i != n.outputs[0]]
            oc = n.attrs["w"].shape[0] if n.op == "Conv" else n.attrs["w"].shape[1]
            if len(other) == 1 and other[0] in const and const[other[0]].size == oc:
                add = const[other[0]].astype(np.float32).reshape(oc)
                b = n.attrs["b"]
                n.attrs["b"] = add if b is None else (b + add).astype(np.float32)
                return nxt
        nxt = only_use(n.outputs[0], "Relu")
        if nxt is not None:
            n.attrs["relu"] = True
        return nxt

    changed = True
    while changed:
        changed = False
        for n in nodes:
            nxt = absorb(n) if n.op in ("Conv", "Gemm") and not n.attrs["relu"] else None
            if nxt is not None:
                n.outputs = nxt.outputs
                nodes.remove(nxt)
                changed = True
                break

    # 4. hard-swish: Add(x, 3) -> Clip(0, 6) -> Mul(x, .) -> Div(6).
    def scalar(t, v):
        return t in const and const[t].size == 1 and float(const[t].ravel()[0]) == v

    for add in [m for m in nodes if m.op == "Add"]:
        x = next((i for i in add.inputs if not scalar(i, 3.0)), None)
        if x is None or len(add.inputs) != 2 or not any(scalar(i, 3.0) for i in add.inputs):
            continue
        clip = only_use(add.outputs[0], "Clip")
        if clip is None or not (scalar(clip.inputs[1], 0.0) and scalar(clip.inputs[2], 6.0)):
            continue
        mul = only_use(clip.outputs[0], "Mul")
        if mul is None or x not in mul.inputs:
            continue
        div = only_use(mul.outputs[0], "Div")
        if div is None or not scalar(div.inputs[1], 6.0):
            continue
        i = nodes.index(add)
        for m in (add, clip, mul, div):
            nodes.remove(m)
        nodes.insert(i, Node("HardSwish", [x], div.outputs, {}, div.outputs[0]))

    # The remaining constant inputs travel as attributes.
    for n in nodes:
        n.attrs["const"] = {i: const[i] for i in n.inputs if i in const}
    return Graph(nodes, g.input[0].name, g.output[0].name)


# --- float32 ops ---------------------------------------------------------------


def _run_float_op(n, xs):
    """Every op but Conv and Gemm, in float32 NumPy (ONNX semantics, opset 11)."""
    op, a = n.op, n.attrs
    if op == "Add":
        return [xs[0] + xs[1]]
    if op == "Mul":
        return [xs[0] * xs[1]]
    if op == "Div":
        return [xs[0] / xs[1]]
    if op == "Relu":
        return [np.maximum(xs[0], np.float32(0))]
    if op == "Clip":
        lo = xs[1] if len(xs) > 1 else a.get("min", -np.inf)
        hi = xs[2] if len(xs) > 2 else a.get("max", np.inf)
        return [np.clip(xs[0], lo, hi).astype(xs[0].dtype)]
    if op == "HardSwish":
        x = xs[0]
        y = x + np.float32(3)
        np.clip(y, np.float32(0), np.float32(6), out=y)
        y *= x
        y /= np.float32(6)
        return [y]
    if op == "HardSigmoid":
        y = xs[0] * np.float32(a.get("alpha", 0.2))
        y += np.float32(a.get("beta", 0.5))
        return [np.clip(y, np.float32(0), np.float32(1), out=y)]
    if op == "GlobalAveragePool":
        return [xs[0].mean(axis=(2, 3), keepdims=True, dtype=np.float32)]
    if op == "MaxPool":
        (kh, kw), (sh, sw) = a["kernel_shape"], a.get("strides", [1, 1])
        if any(a.get("pads", [0, 0, 0, 0])) or a.get("ceil_mode", 0) or a.get("dilations", [1, 1]) != [1, 1]:
            raise NotImplementedError("MaxPool with padding, ceil_mode or dilation")
        x = xs[0]
        oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
        y = None
        for i in range(kh):
            for j in range(kw):
                v = x[:, :, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw]
                y = v.copy() if y is None else np.maximum(y, v, out=y)
        return [y]
    if op == "Softmax":
        axis = a.get("axis", 1)
        x = xs[0]
        shape = x.shape
        x2 = x.reshape(int(np.prod(shape[:axis])), -1)  # opset < 13: coerced to 2-D at axis
        e = np.exp(x2 - x2.max(axis=1, keepdims=True))
        return [(e / e.sum(axis=1, keepdims=True)).reshape(shape).astype(np.float32)]
    if op == "Identity":
        return [xs[0]]
    if op == "Shape":
        return [np.array(xs[0].shape, dtype=np.int64)]
    if op == "Cast":
        import onnx

        return [xs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"]))]
    if op == "Slice":
        x, starts, ends = xs[0], xs[1], xs[2]
        axes = xs[3] if len(xs) > 3 else np.arange(len(starts))
        steps = xs[4] if len(xs) > 4 else np.ones(len(starts), np.int64)
        sl = [slice(None)] * x.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            sl[int(ax)] = slice(int(s), int(e), int(st))
        return [x[tuple(sl)]]
    if op == "Concat":
        return [np.concatenate(xs, axis=a["axis"])]
    if op == "Reshape":
        shape = [int(d) for d in xs[1]]
        shape = [xs[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return [xs[0].reshape(shape)]
    if op == "Flatten":
        ax = a.get("axis", 1)
        return [xs[0].reshape(int(np.prod(xs[0].shape[:ax])), -1)]
    raise NotImplementedError(f"op {op}")


def conv_f32(x, w, b, stride, pads, dilation, groups, relu):
    """The float32 convolution of the executor: NCHW ``x``, (OC, C/groups, KH, KW) ``w``.

    1x1 stride-1 convolutions are one matmul; depthwise ones a sum over the taps
    of strided views times the per-channel weight; the others im2col + matmul.
    """
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    pt, pl, pb, pr = pads
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if kh == kw == 1 and sh == sw == 1 and not any(pads) and groups == 1:
        y = np.matmul(w.reshape(oc, c), x.reshape(n, c, h * wd)).reshape(n, oc, oh, ow)
    else:
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))) if any(pads) else x

        def tap(i, j):
            return xp[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]

        if groups == c == oc:  # depthwise: y += w[:, i, j] * tap(i, j), over blocks of images that stay in cache
            y = np.empty((n, c, oh, ow), np.float32)
            step = max(1, (128 << 10) // (4 * c * oh * ow))
            t = np.empty((min(n, step), c, oh, ow), np.float32)
            wt = [[w[:, 0, i, j].reshape(1, c, 1, 1) for j in range(kw)] for i in range(kh)]
            for b0 in range(0, n, step):
                yb, tb = y[b0:b0 + step], t[:min(step, n - b0)]
                for i in range(kh):
                    for j in range(kw):
                        v = tap(i, j)[b0:b0 + step]
                        if i == 0 and j == 0:
                            np.multiply(v, wt[i][j], out=yb)
                        else:
                            np.multiply(v, wt[i][j], out=tb)
                            yb += tb
        else:
            ocg = oc // groups
            cols = np.empty((n, groups, cg, kh, kw, oh, ow), np.float32)
            xg = xp.reshape(n, groups, cg, *xp.shape[2:])
            for i in range(kh):
                for j in range(kw):
                    cols[:, :, :, i, j] = xg[:, :, :, i * dh:i * dh + (oh - 1) * sh + 1:sh,
                                             j * dw:j * dw + (ow - 1) * sw + 1:sw]
            cols = cols.reshape(n, groups, cg * kh * kw, oh * ow)
            y = np.matmul(w.reshape(groups, ocg, cg * kh * kw), cols).reshape(n, oc, oh, ow)
    if b is not None:
        y += b.reshape(1, oc, 1, 1)
    if relu:
        np.maximum(y, np.float32(0), out=y)
    return y


# --- quantization --------------------------------------------------------------


@dataclass(frozen=True)
class ActQuant:
    """Per-tensor activation quantization: ``q = round(x / scale)``, zero point 0."""

    scale: float
    dtype: type  # np.int8 or np.uint8


class QTensor:
    """An int8/uint8 tensor with its per-tensor scale (zero point 0)."""

    __slots__ = ("q", "scale")

    def __init__(self, q, scale):
        self.q, self.scale = q, scale


def weight_scales(w, per_channel=True):
    """Symmetric max scales of float32 weights (OC, ...): per output channel (axis 0) or one
    for the tensor, as an (OC,) float32 array.

    ``intquant_kernels.calibration``: MaxCalibrator's amax, then ``scale_zero_point``
    (amax / 127, the paper's max calibration for weights; an all-zero channel gets 1.0).
    """
    from intquant_kernels.calibration import MaxCalibrator, scale_zero_point

    cal = MaxCalibrator(axis=0 if per_channel else None)
    cal.collect(w)
    scale, _ = scale_zero_point(cal.compute_amax(), dtype=np.int8)
    return np.broadcast_to(np.asarray(scale, np.float32), (w.shape[0],)).copy()


class _IntLayer:
    """One Conv or Gemm in int8: quantized and packed once."""

    def __init__(self, node, act: ActQuant | None, out: ActQuant | None, per_channel: bool):
        a = node.attrs
        self.node, self.act, self.out = node, act, out  # act None: per-row dynamic (Gemm only)
        self.relu, self.bias = a["relu"], a["b"]
        if node.op == "Conv":
            w = a["w"]
            self.w_scale = weight_scales(w, per_channel)
            wq = iq.quantize(w, self.w_scale, axis=0, narrow_range=True)
            self.packed = iq.pack_conv_weights(wq, groups=a["groups"])
            self.kw = dict(stride=a["stride"], padding=a["pads"], dilation=a["dilation"], groups=a["groups"])
        else:  # Gemm: w is (K, N); its output channels are the columns
            w = a["w"]
            self.w_scale = weight_scales(np.ascontiguousarray(w.T), per_channel)
            wq = iq.quantize(w, self.w_scale, axis=1, narrow_range=True)
            self.packed = iq.pack_weights(wq)

    def __call__(self, x):
        if isinstance(x, QTensor):
            q, s = x.q, x.scale
        elif self.act is None:  # per row: each row's own max, int8, at run time
            q, s = iq.dynamic_quantize(x, axis=-1, dtype=np.int8)
        else:
            q, s = iq.quantize(x, self.act.scale, dtype=self.act.dtype), self.act.scale
        ep = dict(bias=self.bias, relu=self.relu)
        if self.out is not None:
            ep.update(out_scale=self.out.scale, out_dtype=self.out.dtype)
        if self.node.op == "Conv":
            y = iq.qconv2d(q, self.packed, s, self.w_scale, **self.kw, **ep)
        else:
            y = iq.qgemm(q, self.packed, s, self.w_scale, **ep)
        return y if self.out is None else QTensor(y, self.out.scale)


class Executor:
    """Runs a lowered :class:`Graph` in float32, or in int8 where ``quant`` says.

    ``quant``: a mapping from each integer layer's *input* tensor name to its
    :class:`ActQuant` (from calibration, see :func:`act_quant`). Layers whose
    name is in ``float_layers``, or whose input has no entry, stay float32.
    ``per_channel_weights``: per output channel (the paper's choice) or per tensor.
    ``per_row_activations``: Gemm layers quantize their input per row at run time
    (``intquant_kernels.dynamic_quantize``) instead of per tensor, and so always
    dequantize their output.
    """

    def __init__(self, graph: Graph, quant=None, float_layers=(), per_channel_weights=True,
                 per_row_activations=False):
        self.graph = graph
        self.int_layers = {}
        if quant is None:
            return
        ints = {n.name for n in graph.layers() if n.name not in float_layers and n.inputs[0] in quant}
        for n in graph.layers():
            if n.name not in ints:
                continue
            # Requantize straight into the next layers' input when every consumer is an int layer
            # that reads this tensor with the same quantization (they all do: one scale per tensor).
            t = n.outputs[0]
            cons = graph.consumers(t)
            dyn = per_row_activations and n.op == "Gemm"
            chain = (t != graph.output and cons and all(c.name in ints for c in cons) and t in quant
                     and not (per_row_activations and any(c.op == "Gemm" for c in cons)))
            self.int_layers[n.name] = _IntLayer(n, None if dyn else quant[n.inputs[0]], quant[t] if chain else None,
                                                per_channel_weights)

    def chained(self):
        """The names of the integer layers that requantize their output for the next integer layers."""
        return [k for k, v in self.int_layers.items() if v.out is not None]

    def run(self, x, taps=None, profile=None):
        """The graph's output for the float32 input ``x``.

        ``taps(name, value)``, if given, sees every float32 tensor that an integer
        layer reads (for calibration). ``profile``, a dict, if given, accumulates
        the seconds spent per kind of op (:func:`op_kind`)."""
        env = {self.graph.input: x}
        layer_inputs = {n.inputs[0] for n in self.graph.layers()} if taps else ()
        if taps and self.graph.input in layer_inputs:
            taps(self.graph.input, x)
        clock = time.perf_counter
        for n in self.graph.nodes:
            t0 = clock() if profile is not None else 0.0
            if n.op in ("Conv", "Gemm"):
                xin = env[n.inputs[0]]
                lay = self.int_layers.get(n.name)
                a = n.attrs
                if lay is not None:
                    y = lay(xin)
                elif n.op == "Conv":
                    y = conv_f32(xin, a["w"], a["b"], a["stride"], a["pads"], a["dilation"], a["groups"], a["relu"])
                else:
                    y = xin @ a["w"]
                    if a["b"] is not None:
                        y += a["b"]
                    if a["relu"]:
                        np.maximum(y, np.float32(0), out=y)
                outs = [y]
            else:
                c = n.attrs["const"]
                outs = _run_float_op(n, [c[i] if i in c else env[i] for i in n.inputs])
            if profile is not None:
                k = op_kind(n)
                profile[k] = profile.get(k, 0.0) + clock() - t0
            env.update(zip(n.outputs, outs))
            if taps:
                for t, v in zip(n.outputs, outs):
                    if t in layer_inputs and not isinstance(v, QTensor):
                        taps(t, v)
        return env[self.graph.output]


def op_kind(n):
    """The class of a lowered node for timing: depthwise conv, other conv, gemm, float32 op."""
    if n.op == "Conv":
        return "depthwise conv" if n.attrs["groups"] > 1 else "dense conv"
    return "gemm" if n.op == "Gemm" else "float32 ops"


# --- calibration ---------------------------------------------------------------

PERCENTILES = (99.9, 99.99, 99.999, 99.9999)
METHODS = ("max", "entropy") + tuple(f"percentile-{p}" for p in PERCENTILES) + ("mse",)


class TensorStats:
    """What calibration gathers for one tensor, with ``intquant_kernels.calibration``: a
    MaxCalibrator, HistogramCalibrators of |x| (shared by the entropy, percentile and MSE
    methods; an ``unsigned`` one too, whose entropy and MSE count 256 levels, for tensors
    quantized to uint8) and the minimum, which decides uint8 (never negative) or int8."""

    def __init__(self, num_bins=2048):
        from intquant_kernels.calibration import HistogramCalibrator, MaxCalibrator

        self.max = MaxCalibrator(axis=None)
        self.hist = {u: HistogramCalibrator(num_bins=num_bins, unsigned=u) for u in (False, True)}
        self.min = np.inf

    def collect(self, x):
        self.max.collect(x)
        for h in self.hist.values():
            h.collect(x)
        self.min = min(self.min, float(x.min()))

    @property
    def unsigned(self):
        return self.min >= 0

    def amax(self, method):
        if method == "max":
            return float(self.max.compute_amax())
        h = self.hist[self.unsigned]
        if method.startswith("percentile-"):
            return float(h.compute_amax("percentile", percentile=float(method.split("-", 1)[1])))
        return float(h.compute_amax(method))


def calibrate(graph: Graph, batches, num_bins=2048):
    """Run the float32 graph over ``batches`` and gather :class:`TensorStats` for the
    input of every integer layer."""
    stats = {}

    def tap(name, v):
        stats.setdefault(name, TensorStats(num_bins)).collect(v)

    ex = Executor(graph)
    for x in batches:
        ex.run(x, taps=tap)
    return stats


def act_quant(stats, method):
    """The per-tensor :class:`ActQuant` of every calibrated tensor for one calibration ``method``
    (``max``, ``entropy``, ``percentile-99.99``, ``mse``): uint8 (scale amax/255) for a tensor
    never negative during calibration, int8 (amax/127) otherwise."""
    from intquant_kernels.calibration import scale_zero_point

    out = {}
    for t, s in stats.items():
        dt = np.uint8 if s.unsigned else np.int8
        scale, _ = scale_zero_point(s.amax(method), dtype=dt)
        out[t] = ActQuant(float(scale), dt)
    return out
