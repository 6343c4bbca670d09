"""Seeded generator of random, well-defined graphs over every kind of op: the fuzzer's
and the pass tests' source of programs. Values stay finite: ``log`` and ``div`` only see
positive operands. Row chains (softmax, log-softmax, layer and RMS norm written out in
primitives, with extra elementwise work) exercise the fusion's rows groups."""
from __future__ import annotations

import numpy as np

from lucid_ir.builder import GraphBuilder

UNARY = ["neg", "exp", "tanh", "sigmoid"]
BINARY = ["add", "sub", "mul", "maximum"]


def random_graph(rng: np.random.Generator, dtype: str = "float64", n_ops: int = 8,
                 max_dim: int = 9, allow_zero: bool = True):
    """Return (graph, input arrays)."""
    dims = [int(d) for d in rng.integers(0 if allow_zero and rng.random() < 0.1 else 1, max_dim, size=3)]
    m, n, k = dims
    b = GraphBuilder()
    arrays = []

    def new_input(shape):
        arrays.append(rng.standard_normal(shape).astype(dtype))
        return b.input(shape, dtype)

    pool = [new_input((m, n))]
    for _ in range(n_ops):
        x = pool[int(rng.integers(len(pool)))]
        r = rng.random()
        if r < 0.25:
            op = UNARY[int(rng.integers(len(UNARY)))]
            if op == "exp":
                x = b.emit("tanh", x)  # keep exp bounded
            y = b.emit(op, x)
        elif r < 0.55:
            op = BINARY[int(rng.integers(len(BINARY)))]
            choice = rng.random()
            if x.shape and choice < 0.3:
                other = new_input(x.shape[-1:])
            elif x.shape and choice < 0.45:
                other = b.constant(float(rng.standard_normal()), (), dtype)
            else:
                same = [v for v in pool if v.shape == x.shape]
                other = same[int(rng.integers(len(same)))]
            y = b.emit(op, x, other) if rng.random() < 0.5 else b.emit(op, other, x)
        elif r < 0.62:
            # a positive denominator / log argument
            pos = b.emit("add", b.emit("mul", x, x), b.constant(1.0, (), dtype))
            y = b.emit("log", pos) if rng.random() < 0.5 else b.emit("div", x, pos)
        elif r < 0.68:
            if rng.random() < 0.5:
                mask = b.emit("gt", x, b.constant(0.0, (), dtype))
                y = b.emit("select", mask, x, b.emit("neg", x))
            else:  # relu's backward: another value of the same shape gates x
                same = [v for v in pool if v.shape == x.shape]
                mask = b.emit("gt", same[int(rng.integers(len(same)))], b.constant(0.0, (), dtype))
                y = b.emit("select", mask, x, b.constant(0.0, (), dtype))
        elif r < 0.74 and len(x.shape) == 2:
            y = row_chain(rng, x, b.emit, lambda v: b.constant(v, (), dtype), new_input)
        elif r < 0.8 and len(x.shape) == 2:
            op = ["sum", "mean", "max"][int(rng.integers(3))]
            axis = int(rng.integers(2))
            if op == "max" and x.shape[axis] == 0:
                op = "sum"
            y = b.emit(op, x, axes=(axis,), keepdims=True)
            y = b.emit("add", x, y)  # broadcast back to keep the working shape
        elif len(x.shape) == 2:
            rows, cols = x.shape
            trans_a, trans_b = bool(rng.random() < 0.3), bool(rng.random() < 0.5)
            a = b.emit("transpose", x) if trans_a else x
            wshape = (cols, cols) if not trans_b else (cols, cols)
            w = new_input(wshape)
            y = b.emit("matmul", a, w, trans_a=trans_a, trans_b=trans_b)
            if rng.random() < 0.6:
                y = gemm_epilogue(rng, y, b.emit, lambda v: b.constant(v, (), dtype), new_input)
        else:
            continue
        pool.append(y)
    outs = pool[-1:] if rng.random() < 0.5 else pool[-2:]
    return b.build(outs), arrays


ROW_CHAINS = ("softmax", "log_softmax", "layer_norm", "rms_norm")
EPILOGUE_STEPS = ("bias", "gelu", "silu", "relu", "tanh", "sigmoid", "scale", "residual", "mask",
                  "tanh_backward", "gelu_backward")


def gemm_epilogue(rng, y, emit, const, new_input, steps=None):
    """1 to 4 random steps of elementwise work on a product ``y`` (of ``EPILOGUE_STEPS``,
    or ``steps`` in order): the ops a GEMM applies in its epilogue. A bias is a row
    (shape (n,) or (1, ..., n)); a residual, relu's mask ``select(r > 0, y, 0)`` and the
    derivatives of tanh (``y·(1 - r²)``) and GELU (written as autodiff writes it, reading
    r's halves, ``erf(r/√2) + 1`` and ``exp(-r²/2)``) read an input r of y's shape.
    ``emit``, ``const`` and ``new_input`` as for ``row_chain``."""
    if steps is None:
        steps = [EPILOGUE_STEPS[int(rng.integers(len(EPILOGUE_STEPS)))] for _ in range(int(rng.integers(1, 5)))]
    n = y.shape[-1]
    for step in steps:
        if step == "bias":
            y = emit("add", y, new_input((1,) * int(rng.integers(len(y.shape))) + (n,)))
        elif step == "gelu":
            y = emit("mul", emit("mul", y, const(0.5)),
                     emit("add", emit("erf", emit("mul", y, const(0.7071067811865476))), const(1.0)))
        elif step == "silu":
            y = emit("mul", y, emit("sigmoid", y))
        elif step == "relu":
            y = emit("maximum", y, const(0.0))
        elif step in ("tanh", "sigmoid"):
            y = emit(step, y)
        elif step == "scale":
            y = emit("mul", y, const(float(rng.uniform(-2, 2))))
        elif step == "residual":
            y = emit("add", new_input(y.shape), y)
        elif step == "mask":
            y = emit("select", emit("gt", new_input(y.shape), const(0.0)), y, const(0.0))
        elif step == "tanh_backward":
            t = emit("tanh", new_input(y.shape))
            y = emit("mul", y, emit("sub", const(1.0), emit("mul", t, t)))
        else:  # gelu_backward: d/dr [r/2 · (erf(r/√2) + 1)] · y, in the forward's pieces
            r = new_input(y.shape)
            u = emit("mul", r, const(0.7071067811865476))
            half, cdf = emit("mul", r, const(0.5)), emit("add", emit("erf", u), const(1.0))
            pdf = emit("mul", emit("exp", emit("neg", emit("mul", u, u))), const(1.1283791670955126))
            y = emit("add", emit("mul", emit("mul", emit("mul", y, half), pdf), const(0.7071067811865476)),
                     emit("mul", emit("mul", y, cdf), const(0.5)))
    return y


def row_chain(rng, x, emit, const, new_input):
    """One of ``ROW_CHAINS`` over the last axis of ``x``, in primitives, sometimes with
    elementwise work before it (a bias row) and after it (a scale by a per-row value, a
    final reduction of the row added back).
    ``emit(op, *inputs, **attrs)``, ``const(value)`` (a scalar of x's dtype) and
    ``new_input(shape)`` build the graph (this generator's, or the fuzzer's ``Gen``)."""
    def last(op, v):
        return emit(op, v, axes=(len(v.shape) - 1,), keepdims=True)
    kind = ROW_CHAINS[int(rng.integers(len(ROW_CHAINS)))]
    empty = x.shape[-1] == 0
    if empty:
        kind = "rms_norm"  # an empty row has no max (and its mean square becomes a sum)
    if rng.random() < 0.3:
        x = emit("add", x, new_input(x.shape[-1:]))
    if kind == "softmax":
        e = emit("exp", emit("sub", x, last("max", x)))
        y = emit("div", e, last("sum", e))
    elif kind == "log_softmax":
        t = emit("sub", x, last("max", x))
        y = emit("sub", t, emit("log", last("sum", emit("exp", t))))
    elif kind == "layer_norm":
        centred = emit("sub", x, last("mean", x))
        var = last("mean", emit("mul", centred, centred))
        y = emit("mul", centred, emit("rsqrt", emit("add", var, const(1e-3))))
        if rng.random() < 0.5:
            y = emit("add", emit("mul", y, new_input(x.shape[-1:])), new_input(x.shape[-1:]))
    else:
        ms = last("sum" if empty else "mean", emit("mul", x, x))
        y = emit("mul", x, emit("rsqrt", emit("add", ms, const(1e-3))))
    if rng.random() < 0.3:
        y = emit("mul", y, emit("tanh", last("sum", y)))
    if rng.random() < 0.3:   # a final reduction (not keeping the row axis: a per-sample loss), added back
        op = ["sum", "mean", "max"][int(rng.integers(1 if empty else 3))]
        final = emit(op, emit("mul", y, y), axes=(len(y.shape) - 1,))
        y = emit("add", y, emit("reshape", final, shape=tuple(y.shape[:-1]) + (1,)))
    return y
