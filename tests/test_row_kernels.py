"""Row kernels (``kind="rows"``: ``fuse_rows``, ``lucid_codegen.kernels.row_kernel``): softmax,
log-softmax, layer norm and RMS norm, forward and gradient, against PyTorch in float64
and against the reference interpreter (unfused), eager and compiled, at 1 and 2 threads."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid_codegen.runtime import threads
from lucid_codegen.kernels.row_kernel import RowKernel
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret
from lucid_ir.passes import fuse

torch = pytest.importorskip("torch")


@dataclass(frozen=True)
class RowOp:
    """``fn(F, x, *params)`` in lucid and PyTorch (same spelling); ``params``: how many
    parameters of shape (R,) it takes (weight, bias)."""
    name: str
    fn: Callable
    params: int = 0


OPS = [
    RowOp("softmax", lambda F, x: F.softmax(x, -1)),
    RowOp("log_softmax", lambda F, x: F.log_softmax(x, -1)),
    RowOp("layer_norm", lambda F, x, w, b: F.layer_norm(x, (x.shape[-1],), w, b), 2),
    RowOp("layer_norm_plain", lambda F, x: F.layer_norm(x, (x.shape[-1],))),
    RowOp("rms_norm", lambda F, x, w: F.rms_norm(x, (x.shape[-1],), w, eps=1e-6), 1),
]
OP_BY_NAME = {op.name: op for op in OPS}
SHAPES = [(3, 2), (4, 7), (1, 17), (5, 64), (2, 3, 31), (3, 1000), (2, 4097), (0, 5), (3, 1), (9, 10), (13, 3)]
LAYOUTS = ["contiguous", "transposed", "strided"]
TOL = 3e-5


def _data(shape, layout, seed):
    """A float32 array of ``shape`` with the given memory layout, and its params."""
    rng = np.random.default_rng(seed)
    if layout == "transposed":
        x = rng.standard_normal(shape[::-1]).astype(np.float32).T  # Fortran order
    elif layout == "strided":
        x = rng.standard_normal(shape[:-1] + (2 * shape[-1],)).astype(np.float32)[..., ::2]
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    assert x.shape == shape
    return 3 * x, rng


def _run(lib, op, x, params, g):
    """Forward of ``op`` in ``lib`` (lucid or torch), and the gradients of sum(y * g)."""
    if lib is torch:
        xs = [torch.tensor(a.astype(np.float64), requires_grad=True) for a in [x, *params]]
        y = op.fn(torch.nn.functional, *xs)
        (y * torch.tensor(g.astype(np.float64))).sum().backward()
        return [y.detach().numpy()] + [t.grad.numpy() for t in xs]
    xs = [lucid.Tensor(a, requires_grad=True) for a in [x, *params]]
    y = op.fn(F, *xs)
    (y * lucid.Tensor(g)).sum().backward()
    return [y.numpy()] + [t.grad.numpy() for t in xs]


def _compiled(op, x, params, g):
    def step(*xs):
        y = op.fn(F, *xs)
        (y * lucid.Tensor(g)).sum().backward()
        return y
    xs = [lucid.Tensor(a, requires_grad=True) for a in [x, *params]]
    y = lucid.compile(step)(*xs)
    return [y.numpy()] + [t.grad.numpy() for t in xs]


def _close(got, want, tol):
    for a, b in zip(got, want):
        assert a.shape == b.shape
        scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("name", [op.name for op in OPS])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_and_grad_vs_torch_and_interpreter(name, shape, monkeypatch):
    op = OP_BY_NAME[name]
    for k, layout in enumerate(LAYOUTS):
        x, rng = _data(shape, layout, k)
        params = [rng.standard_normal(shape[-1]).astype(np.float32) for _ in range(op.params)]
        g = rng.standard_normal(shape).astype(np.float32)
        eager = _run(lucid, op, x, params, g)
        _close(eager, _run(torch, op, x, params, g), TOL)
        _close(_compiled(op, x, params, g), eager, TOL)
        monkeypatch.setenv("LUCID_BACKEND", "interpret")
        _close(eager, _run(lucid, op, x, params, g), TOL)
        monkeypatch.delenv("LUCID_BACKEND")


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_empty_rows_are_empty_as_in_pytorch(name, monkeypatch):
    """Rows of length 0: nothing to normalise, an empty result (PyTorch's; these raised
    ValueError before session 24), native and interpreted alike."""
    op = OP_BY_NAME[name]
    x = lucid.Tensor(np.zeros((3, 0), np.float32))
    assert op.fn(F, x).shape == (3, 0)
    monkeypatch.setenv("LUCID_BACKEND", "interpret")
    assert op.fn(F, x).shape == (3, 0)


@pytest.mark.parametrize("name", ["layer_norm_plain", "rms_norm"])
def test_empty_rows_of_norms(name):
    op = OP_BY_NAME[name]
    x = np.zeros((3, 0), np.float32)
    params = [np.zeros(0, np.float32)] * op.params
    out = _run(lucid, op, x, params, x)
    assert [a.shape for a in out] == [(3, 0)] + [(3, 0)] + [(0,)] * op.params


@pytest.mark.parametrize("name", [op.name for op in OPS])
def test_one_rows_kernel_forward_and_backward(name):
    """The fusion pass makes exactly one rows kernel of each op's forward and of its
    backward (the statistics kept from the forward), in compiled and eager mode."""
    op = OP_BY_NAME[name]
    x, rng = _data((4, 8), "contiguous", 0)
    params = [lucid.Tensor(rng.standard_normal(8).astype(np.float32), requires_grad=True)
              for _ in range(op.params)]

    def loss(x, *params):
        return (op.fn(F, x, *params) * lucid.Tensor(np.arange(32, dtype=np.float32).reshape(4, 8))).sum()
    text = lucid.compile(loss).lower(lucid.Tensor(x, requires_grad=True), *params).as_text("fused")
    forward, backward = text.split("# backward")
    assert forward.count("kernel[rows]") == 1 and backward.count("kernel[rows]") == 1, text
    plain = [lucid.Tensor(p.numpy()) for p in params]
    before = lucid_launches()           # (a signature's first call: one launch too)
    op.fn(F, lucid.Tensor(x), *plain)
    assert lucid_launches() - before == 1


def lucid_launches():
    from lucid_codegen.runtime.plan import kernel_launches
    return kernel_launches()


@pytest.mark.parametrize("name", [op.name for op in OPS])
def test_a_row_gives_the_same_bits_in_a_group_and_alone(name):
    """The kernel runs rows ``ROW_GROUP`` at a time side by side, the rest one by one: a
    row's result does not depend on which way it ran (each row of 11, a group's row
    in the full call, computed again as a call of its own or of the rows from it on)."""
    op = OP_BY_NAME[name]
    x, rng = _data((11, 10), "contiguous", 4)
    params = [lucid.Tensor(rng.standard_normal(10).astype(np.float32)) for _ in range(op.params)]
    whole = op.fn(F, lucid.Tensor(x), *params).numpy()
    for k in range(11):
        alone = op.fn(F, lucid.Tensor(x[k:k + 1]), *params).numpy()
        np.testing.assert_array_equal(alone[0], whole[k])
        rest = op.fn(F, lucid.Tensor(x[k:]), *params).numpy()
        np.testing.assert_array_equal(rest, whole[k:])


@pytest.mark.parametrize("name", [op.name for op in OPS])
def test_bit_identical_at_1_and_2_threads(name):
    op = OP_BY_NAME[name]
    x, rng = _data((600, 1000), "contiguous", 3)
    params = [rng.standard_normal(1000).astype(np.float32) for _ in range(op.params)]
    g = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for n in (1, 2, 1):
        threads.set_num_threads(n)
        results.append((_compiled(op, x, params, g), _compiled(op, x, params, g), _run(lucid, op, x, params, g)))
    threads.set_num_threads(1)
    for a, b in zip(results, results[1:]):
        for xs, ys in zip(a, b):
            for u, v in zip(xs, ys):
                np.testing.assert_array_equal(u, v)


def _softmax_graph(shape, dtype="float32"):
    b = GraphBuilder()
    x = b.input(shape, dtype)
    e = b.emit("exp", b.emit("sub", x, b.emit("max", x, axes=(len(shape) - 1,), keepdims=True)))
    s = b.emit("sum", e, axes=(len(shape) - 1,), keepdims=True)
    return b.build([b.emit("div", e, s), s])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernel_direct_threads_and_outs(dtype):
    """The kernel on its own: split across threads (whole rows, same bits), into given
    outputs (non-contiguous ones too), and against the interpreter."""
    shape = (2700, 1000) if dtype == "float32" else (1400, 1000)
    g = _softmax_graph(shape, dtype)
    (kernel_node,) = [n for n in fuse.run(g).nodes if getattr(n, "kind", None) == "rows"]
    kern = RowKernel.for_graph(kernel_node.body)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    want = interpret(g, [x])
    want = [want[g.outputs.index(v)] for v in kernel_node.outs]
    threads.set_num_threads(1)
    one = kern([x])
    threads.set_num_threads(2)
    two = kern([x])
    threads.set_num_threads(1)
    for a, b, w in zip(one, two, want):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, w, rtol=1e-5 if dtype == "float32" else 1e-12)
    outs = [np.empty(a.shape[::-1], dtype).T for a in one]  # Fortran order: copied into
    assert all(a is b for a, b in zip(kern([x], outs=outs), outs))
    for a, b in zip(outs, one):
        np.testing.assert_array_equal(a, b)


def test_bounds_mode_checks_the_rows_kernel(monkeypatch):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    for shape in [(3, 5), (7, 33), (2, 1000)]:
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        y = F.log_softmax(lucid.Tensor(x), -1).numpy()
        np.testing.assert_allclose(y, torch.log_softmax(torch.tensor(x, dtype=torch.float64), -1).numpy(),
                                   rtol=TOL, atol=TOL)


def test_rows_group_from_the_graph_not_names():
    """A hand-written row chain with no library function behind it (a temperature
    softmax whose output is scaled and shifted) is one rows kernel too."""
    b = GraphBuilder()
    x, t = b.input((6, 10)), b.input((6, 1))
    z = b.emit("div", x, t)
    e = b.emit("exp", b.emit("sub", z, b.emit("max", z, axes=(1,), keepdims=True)))
    y = b.emit("add", b.emit("mul", b.emit("div", e, b.emit("sum", e, axes=(1,), keepdims=True)), x), t)
    fused = fuse.run(b.build([y]))
    assert [getattr(n, "kind", n.op) for n in fused.nodes] == ["rows"]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((6, 10)).astype(np.float32), rng.uniform(0.5, 2, (6, 1)).astype(np.float32)]
    got = RowKernel.for_graph(fused.nodes[0].body)(arrays)[0]
    np.testing.assert_allclose(got, interpret(b.build([y]), arrays)[0], rtol=1e-5, atol=1e-6)


def test_env_untouched():
    assert os.environ.get("LUCID_BACKEND") in (None, "compiled")


def _final_graph(shape, square_trap=False):
    """``logsumexp``-style rows with a final reduction (not keeping the row axis), and
    (``square_trap``) a value that reads that reduction broadcast along the row: it
    must stay outside the group (a final reduction is a column vector for it)."""
    b = GraphBuilder()
    x = b.input(shape)
    m = b.emit("max", x, axes=(len(shape) - 1,), keepdims=True)
    e = b.emit("exp", b.emit("sub", x, m))
    s = b.emit("sum", e, axes=(-1,))                       # final: shape X[:-1]
    outs = [b.emit("log", s)]
    if square_trap:
        outs.append(b.emit("sub", e, s))                   # e - s broadcasts s along the row
    return b.build(outs)


@pytest.mark.parametrize("shape", [(4, 7), (1, 17), (3, 1000), (2, 3, 31), (8, 8), (0, 5), (5,)], ids=str)
@pytest.mark.parametrize("trap", [False, True])
def test_a_final_reduction_ends_a_rows_kernel(shape, trap, monkeypatch):
    """A reduction over the rows' axis that does not keep it (a per-sample loss) is the
    last thing its rows kernel computes: one kernel, its result of shape X[:-1], the
    same values as the interpreter's at 1 and 2 threads and in bounds mode."""
    from lucid_codegen.runtime.plan import Plan
    if trap:
        shape = (shape[-1],) * 2
    g = _final_graph(shape, trap)
    fused = fuse.run(g)
    rows = [n for n in fused.nodes if getattr(n, "kind", None) == "rows"]
    assert len(rows) == 1 and [n.op for n in rows[0].body.nodes][-1] == "sum", fused
    assert shape[:-1] in [v.shape for v in rows[0].outs]
    x = 3 * np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    want = interpret(g, [x])
    results = []
    for n, bounds in ((1, None), (2, None), (1, "1")):
        threads.set_num_threads(n)
        if bounds:
            monkeypatch.setenv("LUCID_CHECK_BOUNDS", bounds)
        results.append(Plan(fused)([x]))
    threads.set_num_threads(1)
    for got in results:
        for a, w in zip(got, want):
            assert a.shape == w.shape
            np.testing.assert_allclose(a, w, rtol=1e-5, atol=1e-5)
    for a, b in zip(results[0], results[1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs", [{}, {"reduction": "none"}, {"label_smoothing": 0.1}])
def test_cross_entropy_is_one_rows_kernel_and_a_mean(kwargs):
    x = lucid.Tensor(np.random.default_rng(0).standard_normal((9, 13)).astype(np.float32), requires_grad=True)
    t = lucid.Tensor(np.arange(9) % 13)
    loss = (lambda x: F.cross_entropy(x, t, **kwargs).sum()) if kwargs.get("reduction") == "none" else \
        (lambda x: F.cross_entropy(x, t, **kwargs))
    text = lucid.compile(loss).lower(x).as_text("fused")
    forward = text.split("# backward")[0]
    assert forward.count("kernel[rows]") == 1 and forward.count("kernel[") <= 2, forward


def test_a_reduction_recomputes_normalised_rows_from_values_handed_out_anyway():
    """A layer norm's normalised rows ``(h - mean) · rstd`` read outside its rows kernel
    only by its weight's gradient (the column sum of ``g · x̂``), while another kernel
    reads ``h - mean`` anyway: the column sum computes ``x̂`` again from ``h - mean``
    and ``rstd``, so the rows kernel does not write it; the values are the reference's."""
    n, d, k = 37, 24, 5
    b = GraphBuilder()
    x, r, w, bias, g, m = (b.input(s) for s in ((n, d), (n, d), (d,), (d,), (n, d), (d, k)))
    h = b.emit("add", x, r)
    c = b.emit("sub", h, b.emit("mean", h, axes=(1,), keepdims=True))
    var = b.emit("mean", b.emit("mul", c, c), axes=(1,), keepdims=True)
    rstd = b.emit("rsqrt", b.emit("add", var, b.constant(1e-5)))
    xh = b.emit("mul", c, rstd)
    y = b.emit("add", b.emit("mul", xh, w), bias)
    dw = b.emit("sum", b.emit("mul", g, xh), axes=(0,))
    z = b.emit("matmul", c, m)       # reads h - mean: its kernel hands it out anyway
    graph = b.build([y, dw, z])
    fused = fuse.run(graph)
    rows = [n for n in fused.nodes if getattr(n, "kind", None) == "rows"]
    reductions = [n for n in fused.nodes if getattr(n, "kind", None) == "reduction"]
    assert len(rows) == 1 and len(reductions) == 1
    written = set(rows[0].outs)
    assert xh not in written and c in written and rstd in written
    assert c in reductions[0].inputs and rstd in reductions[0].inputs and xh not in reductions[0].inputs
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(v.shape).astype(np.float32) for v in graph.inputs]
    from lucid.compiler import compile_graph
    for got, want in zip(compile_graph(graph).executable(arrays), interpret(graph, arrays)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
