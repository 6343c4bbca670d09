"""Passes preserve meaning: simplified and fused graphs compute what the original does,
on seeded random graphs; kernel groupings are the documented ones."""
import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid.autograd import recorded_graph
from lucid_ir.builder import GraphBuilder
from lucid_ir.graph import Graph
from lucid_ir.interpreter import interpret
from lucid_ir.passes import autodiff, factor, fuse, simplify
from lucid_ir.verify import verify
from random_graphs import random_graph


def kernels(graph):
    return [(n.kind, [op for op in n.ops if op != "constant"]) for n in graph.nodes if n.op == "kernel"]


@pytest.mark.parametrize("seed", range(40))
def test_simplify_and_fuse_preserve_values(seed):
    rng = np.random.default_rng(seed)
    graph, arrays = random_graph(rng)
    want = interpret(graph, arrays)
    for transformed in (simplify.run(graph), fuse.run(graph), fuse.run(simplify.run(graph)),
                        fuse.run(graph, enabled=False)):
        verify(transformed)
        for got, w in zip(interpret(transformed, arrays), want):
            np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(15))
def test_fused_backward_graphs_preserve_values(seed):
    rng = np.random.default_rng(100 + seed)
    graph, arrays = random_graph(rng)
    bwd = autodiff.run(graph, range(len(graph.inputs))).graph
    full = Graph(graph.inputs, graph.nodes, tuple(n.out for n in graph.nodes))
    env = dict(zip(graph.inputs, arrays))
    env.update(zip(full.outputs, interpret(full, arrays)))
    feed = [rng.standard_normal(v.shape) for v in graph.outputs]
    feed += [env[v] for v in bwd.inputs[len(graph.outputs):]]
    want = interpret(bwd, feed)
    for got, w in zip(interpret(fuse.run(simplify.run(bwd)), feed), want):
        np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-12)


def graph_of(out):
    return recorded_graph(out)


def test_relu_linear_is_one_gemm_kernel():
    x, w, b = lucid.randn(8, 4), lucid.randn(3, 4, requires_grad=True), lucid.randn(3)
    g = fuse.run(simplify.run(graph_of(F.relu(F.linear(x, w, b)))))
    assert kernels(g) == [("gemm", ["matmul", "add", "maximum"])]


def test_linear_backward_is_three_kernels():
    x, w, b = (lucid.randn(*s, requires_grad=True) for s in [(8, 4), (3, 4), (3,)])
    bwd = autodiff.run(graph_of(F.linear(x, w, b)), [0, 1, 2]).graph
    ks = kernels(fuse.run(simplify.run(bwd)))
    assert sorted(ks) == [("gemm", ["matmul"]), ("gemm", ["matmul"]), ("reduction", ["sum"])]


def test_softmax_pieces_fuse_around_reductions():
    low = lucid.compile(F.softmax).lower(lucid.randn(4, 6, requires_grad=True))
    assert [(k.kind, list(k.ops)) for k in low.kernels] == [
        ("rows", ["max", "sub", "exp", "sum", "div"])]
    # the max only shifts (detached): the backward is one rows kernel too
    assert [k.kind for k in low.backward_kernels] == ["rows"]


def test_fusion_disabled_gives_one_kernel_per_compute_op():
    x, w, b = lucid.randn(8, 4), lucid.randn(3, 4, requires_grad=True), lucid.randn(3)
    g = fuse.run(graph_of(F.relu(F.linear(x, w, b))), enabled=False)
    assert [k[0] for k in kernels(g)] == ["gemm", "elementwise", "elementwise"]


def test_fusion_rejects_a_cycle():
    # y = exp(x); s = sum(y) (a reduction kernel reading y); z = y + s: joining z to y's
    # group is fine only because s's kernel clones exp(x); with a big prologue it cannot.
    # (A sum over columns: over rows, the three would be one rows kernel.)
    b = GraphBuilder()
    x = b.input((4, 5))
    chain = x
    for _ in range(fuse.MAX_CLONED_PROLOGUE + 1):
        chain = b.emit("tanh", chain)
    s = b.emit("sum", chain, axes=(0,), keepdims=True)
    z = b.emit("add", chain, s)
    g = fuse.run(b.build([z]))
    verify(g)
    assert [k[0] for k in kernels(g)] == ["elementwise", "reduction", "elementwise"]


def test_simplify_identities_and_folding():
    b = GraphBuilder()
    x = b.input((2, 3))
    y = b.emit("add", b.emit("mul", x, b.constant(1.0)), b.constant(0.0))
    y = b.emit("reshape", b.emit("reshape", y, shape=(3, 2)), shape=(2, 3))
    c = b.emit("mul", b.constant(2.0, (2, 3)), b.constant(3.0))
    g = simplify.run(b.build([b.emit("neg", b.emit("neg", y)), c]))
    assert str(g) == """\
{ lambda ; %0:f32[2,3]. let
    %1:f32[2,3] = constant[value=6.0]
  in (%0, %1) }"""


def test_a_unary_op_of_reshapes_and_broadcasts_runs_on_their_source_and_joins_its_kernel():
    """simplify moves a unary elementwise op before the reshapes and broadcasts it reads
    through (the same values, on the source's elements), so fusion puts it in the kernel
    that produces the source: the cross-entropy gradient's ``-1/count`` is one scalar
    kernel, not a scalar kernel and a one-element ``neg``."""
    b = GraphBuilder()
    x, y = b.input(()), b.input((4, 3))
    s = b.emit("div", b.constant(1.0), b.emit("exp", x))
    t = b.emit("reshape", b.emit("broadcast_to", b.emit("reshape", s, shape=(1,)), shape=(4,)), shape=(4, 1))
    out = b.emit("mul", b.emit("neg", t), y)
    g = b.build([out])
    simple = simplify.run(g)
    neg = next(n for n in simple.nodes if n.op == "neg")
    assert neg.out.shape == () and neg.inputs[0].shape == ()
    assert [kind for kind, _ in kernels(fuse.run(simple))] == ["elementwise", "elementwise"]
    assert kernels(fuse.run(simple))[0][1] == ["exp", "div", "neg"]
    xv, yv = np.float32(0.3), np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(interpret(fuse.run(simple), [xv, yv])[0], interpret(g, [xv, yv])[0])


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "prod"])
def test_reductions_of_no_axis_or_axes_of_size_one_are_the_input(op):
    """``x.sum()`` of a scalar (a loss summed once more), ``mean(axes of size 1)`` with
    keepdims: no kernel; an int sum (int64 result) or a real reduction stays."""
    b = GraphBuilder()
    s, col, i = b.input(()), b.input((4, 1)), b.input((4, 1), "int32")
    outs = [b.emit(op, s), b.emit(op, col, axes=(1,), keepdims=True), b.emit(op, col, axes=(0,), keepdims=True)]
    if op in ("sum", "prod"):
        outs.append(b.emit(op, i, axes=(1,), keepdims=True))     # int32 -> int64: a cast, not the input
    g = simplify.run(b.build(outs))
    assert list(g.outputs[:2]) == [g.inputs[0], g.inputs[1]] and len(g.nodes) == len(outs) - 2, g
    rng = np.random.default_rng(0)
    arrays = [np.float32(rng.standard_normal()), rng.standard_normal((4, 1)).astype(np.float32),
              rng.integers(-5, 5, (4, 1)).astype(np.int32)]
    for a, w in zip(interpret(g, arrays), interpret(b.build(outs), arrays)):
        assert a.dtype == w.dtype and a.shape == w.shape
        np.testing.assert_array_equal(a, w)


def test_eager_linear_with_bias_launches_one_kernel():
    from lucid_codegen.runtime.plan import kernel_launches
    x, w, b = lucid.randn(5, 4), lucid.randn(3, 4), lucid.randn(3)
    F.linear(x, w, b)  # first call: compile
    before = kernel_launches()
    out = F.linear(x, w, b)
    assert kernel_launches() - before == 1
    # (atol: an entry near 0 is a difference of larger terms, summed in another order)
    np.testing.assert_allclose(out.numpy(), x.numpy() @ w.numpy().T + b.numpy(), rtol=1e-5, atol=1e-6)
    xg = lucid.randn(5, 4, requires_grad=True)
    before = kernel_launches()
    F.linear(xg, w, b)   # recording for autograd does not split the kernel
    assert kernel_launches() - before == 1


def test_compiled_relu_linear_and_linear_backward_kernel_counts():
    w, b = lucid.randn(3, 4, requires_grad=True), lucid.randn(3, requires_grad=True)
    x = lucid.randn(8, 4, requires_grad=True)
    low = lucid.compile(lambda x: F.relu(F.linear(x, w, b))).lower(x)
    assert len(low.kernels) == 1
    low = lucid.compile(lambda x: F.linear(x, w, b)).lower(x)
    assert len(low.backward_kernels) <= 3


def test_fusion_off_by_environment(monkeypatch):
    monkeypatch.setenv("LUCID_FUSION", "0")
    w, b = lucid.randn(3, 4), lucid.randn(3)
    low = lucid.compile(lambda x: F.relu(F.linear(x, w, b))).lower(lucid.randn(8, 4))
    assert [k.kind for k in low.kernels] == ["gemm", "elementwise", "elementwise"]


def _mlp_loss(x, c, w1, b1, w2, b2):
    return (F.relu(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)) * c).sum()


def test_relu_backward_mask_is_applied_by_the_gemm_producing_the_gradient():
    rng = np.random.default_rng(7)
    shapes = [(5, 4), (6, 4), (6,), (3, 6), (3,)]
    arrays = [rng.standard_normal(s) for s in shapes]
    arrays[0][0, :] = 0.0   # rows whose first layer is exactly 0 at some units
    params = [lucid.Tensor(a, requires_grad=True, dtype="float64") for a in arrays[1:]]
    x = lucid.Tensor(arrays[0], dtype="float64")
    c = lucid.Tensor(rng.standard_normal((5, 3)), dtype="float64")
    low = lucid.compile(_mlp_loss).lower(x, c, *params)
    bwd = [(k.kind, [op for op in k.ops if op != "constant"]) for k in low.backward_kernels]
    # the first layer's mask rides on dH1 = g2 · W2; no kernel applies it on its own
    assert ("gemm", ["matmul", "gt", "select"]) in bwd
    # the second layer's mask stays elementwise: its gradient comes from an elementwise op
    assert sum(kind == "elementwise" and "gt" in ops for kind, ops in bwd) == 1
    # and the gradients are right (float64 central differences)
    _mlp_loss_c = lucid.compile(_mlp_loss)
    _mlp_loss_c(x, c, *params).backward()
    from gradcheck import numeric_grads

    def f(ps):
        return float(_mlp_loss(x, c, *[lucid.Tensor(p, dtype="float64") for p in ps]).item())
    for p, want in zip(params, numeric_grads(f, [a.copy() for a in arrays[1:]])):
        np.testing.assert_allclose(p.grad, want, rtol=1e-6, atol=1e-8)


def test_gate_recomputes_a_mask_that_is_used_elsewhere():
    b = GraphBuilder()
    g, w, r = b.input((4, 3)), b.input((5, 3)), b.input((4, 5))
    y = b.emit("matmul", g, w, trans_b=True)
    zero = b.constant(0.0)
    mask = b.emit("gt", r, zero)
    gated = b.emit("select", mask, y, zero)
    graph = b.build([gated, mask])  # the mask itself is an output too: the GEMM recomputes it
    fused = fuse.run(graph)
    assert kernels(fused) == [("gemm", ["matmul", "gt", "select"]), ("elementwise", ["gt"])]
    arrays = [np.random.default_rng(1).standard_normal(v.shape).astype(np.float32) for v in graph.inputs]
    for got, want in zip(interpret(fused, arrays), interpret(graph, arrays)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    # any select is an epilogue, not only relu's mask: its comparison comes in
    b = GraphBuilder()
    g, w, r = b.input((4, 3)), b.input((5, 3)), b.input((4, 5))
    y = b.emit("matmul", g, w, trans_b=True)
    other = b.emit("select", b.emit("gt", r, b.constant(0.0)), y, b.constant(1.0))
    assert kernels(fuse.run(b.build([other]))) == [("gemm", ["matmul", "gt", "select"])]


@pytest.mark.parametrize("seed", range(12))
def test_relu_masks_in_gemms_match_the_interpreter(seed):
    """Stacks of relu(linear) layers, forward and backward compiled (masks applied by the
    GEMMs that produce or consume the gradients) against the reference interpreter, on
    shapes with 0, 1 and primes."""
    from lucid.compiler import compile_graph
    rng = np.random.default_rng(seed)
    dims = [int(rng.choice([1, 2, 3, 7, 13, 37, 64])) for _ in range(int(rng.integers(2, 5)))]
    batch = int(rng.choice([0, 1, 5, 29, 70]))
    dtype = "float64" if seed % 2 else "float32"
    b = GraphBuilder()
    h = x = b.input((batch, dims[0]), dtype)
    for k, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        w, bias = b.input((n_out, n_in), dtype), b.input((n_out,), dtype)
        h = b.emit("add", b.emit("matmul", h, w, trans_b=True), bias)
        if k < len(dims) - 2 or seed % 3:
            h = b.emit("maximum", h, b.constant(0.0, (), dtype))
    forward = b.build([h])
    bwd = autodiff.run(forward, range(len(forward.inputs))).graph
    full = Graph(forward.inputs, forward.nodes, tuple(n.out for n in forward.nodes))
    arrays = [rng.standard_normal(v.shape).astype(dtype) for v in forward.inputs]
    env = dict(zip(forward.inputs, arrays))
    env.update(zip(full.outputs, interpret(full, arrays)))
    feed = [rng.standard_normal(v.shape).astype(dtype) for v in forward.outputs]
    feed += [env[v] for v in bwd.inputs[len(forward.outputs):]]
    for v, a in zip(bwd.inputs, feed):
        if a.size and v not in forward.outputs:
            a.flat[::5] = 0.0 if a.ndim == 2 else a.flat[::5]   # exact zeros at the masks' edge
    want = interpret(bwd, feed)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10)
    for graph, inputs, expect in ((forward, arrays, interpret(forward, arrays)), (bwd, feed, want)):
        run = compile_graph(graph).executable
        for _ in range(3):   # step by step, then the native program
            for got, w_ in zip(run(inputs), expect):
                np.testing.assert_allclose(got, w_, **tol)


def test_relu_linear_backward_is_three_kernels_with_the_mask_in_its_consumers():
    rng = np.random.default_rng(11)
    arrays = [rng.standard_normal(s) for s in [(6, 5), (4, 5), (4,)]]
    x, w, b = (lucid.Tensor(a, requires_grad=True, dtype="float64") for a in arrays)
    f = lucid.compile(lambda x, w, b: F.relu(F.linear(x, w, b)).sum())
    low = f.lower(x, w, b)
    kinds = [(k.kind, tuple(op for op in k.ops if op != "constant")) for k in low.backward_kernels]
    assert len(kinds) == 3, kinds  # dX, dW (masks applied as they pack A) and db
    assert sum(k == "gemm" and ops[:2] == ("gt", "select") for k, ops in kinds) == 2
    f(x, w, b).backward()
    from gradcheck import numeric_grads

    def loss(xs):
        return float(np.maximum(xs[0] @ xs[1].T + xs[2], 0).sum())
    for t, want in zip((x, w, b), numeric_grads(loss, [a.copy() for a in arrays])):
        np.testing.assert_allclose(t.grad, want, rtol=1e-6, atol=1e-8)


def _embed(b, x, width, lo, axis=2):
    shape = list(x.shape)
    shape[axis] = width
    starts = tuple(lo if d == axis else 0 for d in range(len(shape)))
    stops = tuple(lo + x.shape[axis] if d == axis else shape[d] for d in range(len(shape)))
    return b.emit("embed", x, shape=tuple(shape), starts=starts, stops=stops, steps=(1,) * len(shape))


def _summed(b, values):
    """The graph adding ``values`` left to right, and that graph simplified (verified)."""
    y = values[0]
    for v in values[1:]:
        y = b.emit("add", y, v)
    g = b.build([y])
    s = simplify.run(g)
    verify(s)
    return g, s


@pytest.mark.parametrize("order,lengths,width,expect", [
    ((0, 1, 2), (4, 4, 4), 12, ["concat"]),                 # q, k, v's gradients: one concat
    ((1, 0, 2), (3, 5, 1), 9, ["concat"]),                  # either side of an add, unequal parts
    ((1, 0), (4, 3), 10, ["concat", "embed"]),              # not the whole axis: embedded once
    ((0, 1), (2, 2), 9, ["embed_sum"]),                     # a gap between them: one embed_sum
])
def test_sum_of_adjacent_embeds_becomes_one_concat(order, lengths, width, expect):
    b = GraphBuilder()
    parts = [b.input((2, 3, n), "float64") for n in lengths]
    starts = [sum(lengths[:i]) + (1 if expect[-1] == "embed_sum" and i else 0) for i in range(len(lengths))]
    embeds = [_embed(b, parts[i], width, starts[i]) for i in order]
    g, s = _summed(b, embeds)
    assert [n.op for n in s.nodes] == expect
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(p.shape) for p in parts]
    np.testing.assert_array_equal(interpret(s, xs)[0], interpret(g, xs)[0])


def test_sum_of_overlapping_embeds_becomes_one_embed_sum():
    """A convolution's input gradient: the taps' gradients embedded at shifted windows
    (overlapping, strided) and added become one ``embed_sum``, with the same values
    (the parts added in the same order); an add that broadcasts is left alone."""
    b = GraphBuilder()
    x = b.input((2, 3, 3), "float64")
    embeds = [b.emit("embed", x, shape=(2, 6, 7), starts=(0, i, j), stops=(2, i + 5, j + 5),
                     steps=(1, 2, 2)) for i in range(2) for j in range(3)]
    g, s = _summed(b, embeds)
    assert [n.op for n in s.nodes] == ["embed_sum"]
    xs = [np.random.default_rng(2).standard_normal((2, 3, 3))]
    np.testing.assert_array_equal(interpret(s, xs)[0], interpret(g, xs)[0])
    # compiled: the copy_add kernel, as the interpreter
    from lucid import compiler
    np.testing.assert_array_equal(compiler.compile_graph(g, "t")(xs)[0], interpret(g, xs)[0])
    b = GraphBuilder()
    x = b.input((2, 3), "float64")
    row = b.emit("embed", b.input((1, 3), "float64"), shape=(1, 5), starts=(0, 1), stops=(1, 4), steps=(1, 1))
    g = b.build([b.emit("add", b.emit("embed", x, shape=(2, 5), starts=(0, 0), stops=(2, 3), steps=(1, 1)), row)])
    assert "embed_sum" not in [n.op for n in simplify.run(g).nodes]


@pytest.mark.parametrize("axis,index", [(1, [[2], [0], [7], [-1]]), (0, [[1, 0, 2]])])
def test_scatter_of_one_index_per_line_becomes_a_one_hot_select(axis, index):
    """The gradient of a gather along an axis of size 1 in the index (a max pool's
    winner): one elementwise select, the same values as scatter_add, an index out of
    range adding nothing."""
    b = GraphBuilder()
    index = np.array(index)
    shape = (4, 3) if axis == 1 else (3, 3)
    i, src = b.input(index.shape, "int64"), b.input(index.shape, "float64")
    g = b.build([b.emit("scatter_add", i, src, axis=axis, shape=shape)])
    s = simplify.run(g)
    verify(s)
    assert "scatter_add" not in [n.op for n in s.nodes] and "select" in [n.op for n in s.nodes]
    xs = [index, np.random.default_rng(3).standard_normal(index.shape)]
    np.testing.assert_array_equal(interpret(s, xs)[0], interpret(g, xs)[0])
    from lucid import compiler
    np.testing.assert_array_equal(compiler.compile_graph(g, "t")(xs)[0], interpret(g, xs)[0])


def test_conv2d_input_gradient_is_one_embed_sum_in_compiled_mode():
    """conv2d's backward sums its taps' gradients in one pass: one embed_sum, or the
    GEMM's registers when the col2im is a gathered GEMM (passes/col2im.py: 3 channels
    in, 4 out, the spread gradient is the smaller); the gradient as the eager one and
    PyTorch's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x0, w0 = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 3))
    x, w = lucid.tensor(x0, requires_grad=True), lucid.tensor(w0)

    def step():
        loss = (lucid.nn.functional.conv2d(x, w, padding=1, stride=(1, 2)) ** 2).sum()
        loss.backward()
        return loss

    compiled = lucid.compile(step)
    compiled()
    lowered = compiled.lower()
    gathering = [k for k in lowered.program.compiled_forward.fused.nodes if k.op == "kernel"
                 and k.kind == "gemm" and any(n.op == "concat" for n in k.body.nodes)]
    assert "embed_sum" in lowered.as_text() or len(gathering) == 2  # the forward, the input gradient
    xt = torch.tensor(x0, requires_grad=True)
    (torch.nn.functional.conv2d(xt, torch.tensor(w0), padding=1, stride=(1, 2)) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_gradient_of_a_split_is_a_concat_in_compiled_mode():
    """The GPT's ``q, k, v = qkv.split(d, dim=2)``: the backward joins the three
    gradients with one copy; values as the eager gradient."""
    w = lucid.tensor(np.random.default_rng(1).standard_normal((2, 5, 12)), requires_grad=True)

    def step(c):
        q, k, v = w.split(4, dim=2)
        loss = (q * k * c + v.exp()).sum()
        loss.backward()
        return loss

    compiled = lucid.compile(step)
    compiled(lucid.tensor(2.0, dtype="float64"))
    got, w.grad = w.grad.numpy(), None
    step(lucid.tensor(2.0, dtype="float64"))
    np.testing.assert_allclose(got, w.grad.numpy(), rtol=1e-12)
    text = compiled.lower(lucid.tensor(2.0, dtype="float64")).as_text("fused")
    assert "concat" in text and "embed" not in text, text


@pytest.mark.parametrize("attrs,message", [
    ({"shape": (3,), "starts": (0,), "stops": (2,), "steps": (1,)}, "need 2 starts"),
    ({"shape": (3,), "starts": (0, 0), "stops": (2, 3), "steps": (1, 1)}, "slice 1 of shape"),
    ({"shape": (-1,), "starts": (0, 0), "stops": (2, 2), "steps": (1, 1)}, "negative dimension"),
])
def test_embed_sum_rejects_slices_that_do_not_fit(attrs, message):
    b = GraphBuilder()
    x, y = b.input((2,), "float64"), b.input((2,), "float64")
    with pytest.raises(ValueError, match=message):
        b.emit("embed_sum", x, y, **attrs)


def test_factor_takes_a_shared_multiplicand_out_of_a_sum():
    """``(g·x)·y + g·z`` → ``g·(x·y + z)``; an inner product read elsewhere is a factor
    of its own (not opened), a multiplicand of another shape is not taken out, and the
    values are the unfactored ones up to rounding."""
    b = GraphBuilder()
    g, x, y, z = (b.input((4, 5), "float64") for _ in range(4))
    row = b.input((5,), "float64")
    gx = b.emit("mul", g, x)
    shared = b.emit("mul", g, z)
    first = b.emit("add", b.emit("mul", gx, y), b.emit("mul", g, z))
    kept = b.emit("add", b.emit("mul", shared, y), shared)       # shared is read twice: no rewrite
    rowwise = b.emit("add", b.emit("mul", row, x), b.emit("mul", row, y))   # row is (5,), the sum (4, 5)
    graph = b.build([first, kept, rowwise])
    out = factor.run(graph)
    verify(out)
    made = {n.out: n for n in out.nodes}
    top = made[out.outputs[0]]
    assert top.op == "mul" and top.inputs[0] is g and made[top.inputs[1]].op == "add"
    assert made[out.outputs[1]].op == "add" and made[out.outputs[2]].op == "add"
    arrays = [np.random.default_rng(k).standard_normal(v.shape) for k, v in enumerate(graph.inputs)]
    for want, got in zip(interpret(graph, arrays), interpret(out, arrays)):
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)


def test_factor_opens_products_thousands_of_factors_deep():
    """A product of 5000 factors (a gradient through a long chain of multiplications)
    beside another sharing its multiplicand: factored, no recursion limit reached."""
    b = GraphBuilder()
    g, x, y = (b.input((3,), "float64") for _ in range(3))
    deep = b.emit("mul", g, x)
    for _ in range(5000):
        deep = b.emit("mul", deep, x)
    graph = b.build([b.emit("add", deep, b.emit("mul", g, y))])
    out = factor.run(graph)
    made = {n.out: n for n in out.nodes}
    top = made[out.outputs[0]]
    assert top.op == "mul" and top.inputs[0] is g


def test_gelu_gradient_is_the_cotangent_times_one_derivative():
    """Autodiff of GELU gives ``g · D(x)``: one value computed from the forward's values
    alone (``factor``), which a compiled step's forward loop computes beside GELU."""
    out = F.gelu(lucid.tensor(np.zeros((4, 6)), requires_grad=True))
    graph = recorded_graph(out)
    bwd = autodiff.run(graph, wrt=[0])
    made = {n.out: n for n in bwd.graph.nodes}
    top = made[bwd.graph.outputs[0]]
    cotangent = bwd.graph.inputs[0]
    assert top.op == "mul" and cotangent in top.inputs
    derivative = top.inputs[1] if top.inputs[0] is cotangent else top.inputs[0]
    assert cotangent not in autodiff.depends_on(Graph(bwd.graph.inputs, bwd.graph.nodes, (derivative,)),
                                                [cotangent]) - {cotangent}


def test_epilogue_keeps_reading_a_value_whose_recompute_needs_another_operand():
    """``x·W + mask·(g/count)`` (a max's gradient beside a product's): recomputing the
    product in the GEMM's tile would read ``g/count``, of a smaller shape, as a row
    operand made inside the mask's loop (an elementwise kernel cannot hand out a value
    of another shape); the plan reads the product as it did. Found by tests/fuzz.py."""
    from lucid.compiler import compile_graph
    b = GraphBuilder()
    g, a, w, x, m = (b.input(s, "float64") for s in ((1, 2), (3, 2), (2, 2), (3, 2), (1, 2)))
    mask = b.emit("cast", b.emit("eq", x, m), dtype="float64")
    share = b.emit("div", b.emit("add", g, g), b.emit("sum", mask, axes=(0,), keepdims=True))
    graph = b.build([b.emit("add", b.emit("matmul", a, w, trans_b=True), b.emit("mul", mask, share))])
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(v.shape) for v in graph.inputs]
    arrays[3][1] = arrays[4][0]     # some positions equal to the row: a mask with ones
    got = compile_graph(graph, "epilogue_row_operand")(arrays)
    np.testing.assert_allclose(got[0], interpret(graph, arrays)[0], rtol=1e-15, atol=1e-15)


def test_gelu_forward_is_one_elementwise_kernel():
    """``x/2`` and ``erfc(-x/√2)`` both start from the input; the producer that only the
    final product reads moves into its loop: one kernel, the same values."""
    x = lucid.tensor(np.random.default_rng(5).standard_normal((4, 33)))
    compiled = lucid.compile(lambda t: F.gelu(t))
    got = compiled(x).numpy()
    assert compiled.lower(x).as_text().count("kernel[") == 1
    np.testing.assert_allclose(got, F.gelu(x).numpy(), rtol=1e-12)


def _gelu_step(x, w1, b1, w2):
    """A linear, GELU and a linear, differentiated inside the compiled function (the
    backward GEMM's epilogue recomputes ``erfc(-x/√2)`` from its clones)."""
    y = F.linear(F.gelu(F.linear(x, w1, b1)), w2)
    loss = (y * y).sum()
    loss.backward()
    return loss


def test_gelu_in_a_compiled_training_step_is_one_forward_loop():
    """The forward's ``erfc(-x/√2)``, which the backward GEMM reads only through the
    clones in its epilogue, moves into ``x/2 · erfc``'s loop once the walk is done
    (``Partition.absorb_after_walk``): one elementwise kernel with erfc, the same values
    as eager mode."""
    rng = np.random.default_rng(3)
    args = [lucid.tensor(rng.standard_normal(s), requires_grad=r)
            for s, r in (((8, 5), False), ((12, 5), True), ((12,), True), ((3, 12), True))]
    compiled = lucid.compile(_gelu_step)
    text = compiled.lower(*args).as_text()
    heads = [line.strip() for line in text.split("\n") if "= kernel[" in line]
    h = heads[0].split(":")[0].lstrip("(")          # the first GEMM's output, x·W1ᵀ + b1
    readers = [k for k in heads if k.split("kernel[")[1].startswith("elementwise")
               and h in k.split("](")[1].split(")")[0].replace(" ", "").split(",")]
    assert len(readers) == 1, text                   # (was two loops, both reading it)
    got = float(compiled(*args).item())
    grads = [a.grad.numpy().copy() for a in args[1:]]
    for a in args[1:]:
        a.grad = None
    want = float(_gelu_step(*args).item())
    assert abs(got - want) < 1e-10 * abs(want)
    for g, a in zip(grads, args[1:]):
        np.testing.assert_allclose(g, a.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_eager_gelu_saves_its_input_only():
    """GELU's backward reads ``-x/√2``, ``x/2`` and ``erfc(-x/√2)``; all three are made
    from the input by elementwise ops within ``autodiff.RECOMPUTE_COST``, so they are
    recomputed (``autodiff._recompute_cheap``): the one residual is x (held anyway, as
    PyTorch saves it), the forward one kernel writing one array, and the gradient
    PyTorch's. In the eager backward of a GELU MLP, the GEMM meeting that gradient
    applies it in its epilogue (one operand of its shape, x)."""
    import torch
    out = F.gelu(lucid.tensor(np.zeros((4, 6)), requires_grad=True))
    graph = recorded_graph(out)
    bwd = autodiff.run(graph, wrt=[0])
    ops = {n.out: n.op for n in graph.nodes}
    assert graph.inputs[0] in bwd.residuals
    assert [ops.get(v, "input") for v in bwd.residuals] == ["input"]
    xs = np.random.default_rng(8).standard_normal((4, 6))
    lx, tx = lucid.tensor(xs, requires_grad=True), torch.tensor(xs, requires_grad=True)
    fwd = lucid.compile(lambda t: F.gelu(t))
    assert fwd.lower(lx).as_text("fused").split("# backward")[0].count("kernel[") == 1
    F.gelu(lx).sum().backward()
    torch.nn.functional.gelu(tx).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    # a GELU MLP's eager record, whose tensors the backward holds anyway (``free``): its
    # backward's erfc is in a GEMM's epilogue, none in another kernel
    x = lucid.tensor(xs, requires_grad=True)
    w1, w2 = (lucid.tensor(np.random.default_rng(k).standard_normal((5, 6 if k else 5)), requires_grad=True)
              for k in (1, 0))
    graph = recorded_graph(F.linear(F.gelu(F.linear(x, w1)), w2))
    tensors = [n.out for n in graph.nodes if n.op == "matmul"] + [graph.nodes[-1].inputs[0]]   # (gelu's)
    bwd = autodiff.run(graph, wrt=list(range(len(graph.inputs))), free=tensors)
    fused = fuse.run(simplify.run(bwd.graph))
    kernels = [(n.kind, [m.op for m in n.body.nodes]) for n in fused.nodes if n.op == "kernel"]
    assert any("erfc" in ops for kind, ops in kernels if kind == "gemm")
    assert not any("erfc" in ops for kind, ops in kernels if kind != "gemm")


def test_eager_layer_norm_and_softmax_save_row_statistics_not_rows():
    """A value ``SMALL_FRACTION`` times smaller than what it helps recompute is saved in
    its place: layer norm keeps its rows' mean and 1/std (PyTorch's residuals), its
    backward recomputing the centred and normalised input from x; softmax keeps its
    rows' max and sum, not exp(x - max). Gradients are PyTorch's."""
    import torch
    xs = np.random.default_rng(4).standard_normal((6, 40))
    ws, bs = np.random.default_rng(5).standard_normal((2, 40))
    cases = {"layer_norm": (lambda F, x, w, b: F.layer_norm(x, (40,), w, b), ["input", "input", "mean", "rsqrt"]),
             "softmax": (lambda F, x, w, b: F.softmax(x * w, dim=-1), None)}
    for name, (fn, want_ops) in cases.items():
        lt = [lucid.tensor(a, requires_grad=True) for a in (xs, ws, bs)]
        out = fn(F, *lt)
        graph = recorded_graph(out)
        bwd = autodiff.run(graph, wrt=[i for i, v in enumerate(graph.inputs) if v.dtype == "float64"])
        ops = {n.out: n.op for n in graph.nodes}
        full = [v for v in bwd.residuals if v.type.size == xs.size and v not in graph.inputs]
        assert full == ([] if want_ops else [graph.outputs[0]])       # (softmax: its output, held anyway)
        if want_ops:
            assert sorted(ops.get(v, "input") for v in bwd.residuals) == want_ops
        tt = [torch.tensor(a, requires_grad=True) for a in (xs, ws, bs)]
        g = np.random.default_rng(6).standard_normal(out.shape)
        out.backward(lucid.tensor(g))
        fn(torch.nn.functional, *tt).backward(torch.tensor(g))
        for a, t in zip(lt, tt):
            if t.grad is not None:
                np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_eager_embedding_views_its_index_again_instead_of_saving_a_copy():
    """An embedding's backward scatters along the index broadcast over the features: a
    view of the index (an input), so it is viewed again in the backward
    (``_recompute_cheap``: movements cost nothing) rather than saved, which made the
    eager call copy the broadcast out (1 MiB of int64 a step for the GPT's tokens).
    The index written in place after the forward is caught by the version check."""
    import torch
    from lucid_codegen.runtime import native_plan
    w0 = np.random.default_rng(3).standard_normal((11, 7))
    idx0 = np.array([[3, 0, 10], [3, 5, 1]])
    w = lucid.tensor(w0, requires_grad=True)
    idx = lucid.tensor(idx0)
    graph = recorded_graph(F.embedding(idx, w))
    bwd = autodiff.run(graph, wrt=[i for i, v in enumerate(graph.inputs) if v.dtype == "float64"])
    assert all(v in graph.inputs for v in bwd.residuals)       # the index itself, no view
    copies = []
    real = native_plan.NativeProgram._outputs
    native_plan.NativeProgram._outputs = lambda self, arrays, bufs: copies.extend(
        c for *_, c in self.output_sources if c) or real(self, arrays, bufs)
    try:
        for _ in range(3):   # (the third call runs the native program)
            w.grad = None
            out = F.embedding(idx, w)
            (out * out).sum().backward()
    finally:
        native_plan.NativeProgram._outputs = real
    assert not copies
    tw = torch.tensor(w0, requires_grad=True)
    (torch.nn.functional.embedding(torch.tensor(idx0), tw) ** 2).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    out = F.embedding(idx, w)
    idx.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_a_recorded_result_is_never_recomputed_from_an_operand_written_since():
    """``z = h * 2`` is one multiply of h, but z is a tensor: the backward of ``z * z``
    reads z itself, so writing h in place afterwards changes nothing (as in PyTorch)."""
    import torch

    def run(lib):
        w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        h = w * 1.5 + 0.25
        z = h * 2.0
        h.mul_(w.flip(0))
        ((z * z).sum() + h.sum()).backward()
        return w.grad.numpy()
    np.testing.assert_allclose(run(lucid), run(torch), rtol=1e-12)


@pytest.mark.parametrize("name, call", [
    ("clamp", lambda F, x: x.clamp(-0.5, 0.5)), ("clamp max", lambda F, x: x.clamp(max=1)),
    ("leaky_relu", lambda F, x: F.leaky_relu(x, 0.1)), ("hardtanh", lambda F, x: F.hardtanh(x)),
    ("elu", lambda F, x: F.elu(x))])
def test_python_numbers_are_cast_inside_the_kernel_that_reads_them(name, call):
    """A number a loop reads in several places (``clamp`` compares with its bound and
    selects it) is cast to the tensor's dtype inside that loop, not by a kernel of its
    own; the loop keeps the tensor's vector width (the float64 number does not halve it)."""
    import torch
    from lucid_codegen.runtime.plan import kernel_launches
    x = lucid.randn(64, 64)
    call(F, x)
    before = kernel_launches()
    got = call(F, x)
    assert kernel_launches() - before == 1
    want = call(torch.nn.functional, torch.tensor(x.numpy(), dtype=torch.float64))
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("exponent", [2, 3, 0.5, 2.0, 1.5, -1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pow_of_2_3_and_one_half_is_a_multiply_or_a_square_root(exponent, dtype):
    """As PyTorch: ``x ** 2`` is ``x * x`` (exact), ``x ** 0.5`` a square root; other
    exponents keep ``pow``. Values and gradients against torch in float64."""
    import torch
    from lucid.autograd import recorded_graph  # noqa: F401 (the tape below)
    a = np.random.default_rng(0).uniform(0.1, 3, (7, 5)).astype(dtype)
    x = lucid.tensor(a, requires_grad=True)
    y = x ** exponent
    t = torch.tensor(a.astype(np.float64), requires_grad=True)
    (t ** exponent).sum().backward()
    y.sum().backward()
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(y.detach().numpy(), (t.detach() ** exponent).numpy(), rtol=tol)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=10 * tol)
    text = lucid.compile(lambda x: x ** exponent).lower(lucid.tensor(a)).as_text("fused")
    assert ("pow" in text) == (exponent not in (2, 3, 0.5)), text


@pytest.mark.parametrize("spelling", ["lucid.pow", "pow_"])
def test_every_spelling_of_a_power_of_2_is_a_multiply(spelling):
    """``lucid.pow(x, 2)`` and ``x.pow_(2)`` take the same path as ``x ** 2``."""
    a = np.random.default_rng(1).uniform(0.1, 3, (4, 3)).astype(np.float32)
    power = (lambda x: lucid.pow(x, 2)) if spelling == "lucid.pow" else (lambda x: x.clone().pow_(2))
    np.testing.assert_array_equal(power(lucid.tensor(a)).numpy(), a * a)
    text = lucid.compile(power).lower(lucid.tensor(a)).as_text("fused")
    assert "pow" not in text and "mul" in text, text


def test_epilogue_planner_knows_what_is_computed_from_the_product():
    """``fuse_epilogue._Downstream``: the product itself and what later nodes compute
    from it, not the inputs nor what was made before the product."""
    from lucid_ir.passes.fuse_epilogue import _Downstream
    b = GraphBuilder()
    x, w, r = b.input((4, 8)), b.input((3, 8)), b.input((4, 3))
    early = b.emit("exp", r)
    p = b.emit("matmul", x, w, trans_b=True)
    y = b.emit("add", p, early)
    z = b.emit("mul", r, early)
    g = b.build([b.emit("mul", y, z)])
    later = g.nodes[[n.out for n in g.nodes].index(p) + 1:]
    down = _Downstream(p, {n.out: n for n in g.nodes}, {n: i for i, n in enumerate(later)})
    assert p in down and y in down and g.outputs[0] in down
    assert early not in down and z not in down and r not in down and x not in down


def test_concat_of_reshapes_that_merge_heads_becomes_one_concat_then_a_view():
    """q, k and v's gradients, each (B, T, H, D) merged to (B, T, C) and concatenated:
    the (B, T, H, D) sources are concatenated (B, T, 3H, D) and reshaped once (a view),
    with the same values; reshapes that split the axis differently are left alone."""
    b = GraphBuilder()
    heads = [b.input((2, 5, 4, 3), "float64") for _ in range(3)]
    views = [b.emit("transpose", h, perm=(0, 2, 1, 3)) for h in heads]        # (B, H, T, D) -> (B, T, H, D)
    merged = [b.emit("reshape", b.emit("transpose", v, perm=(0, 2, 1, 3)), shape=(2, 5, 12)) for v in views]
    g = b.build([b.emit("concat", *merged, axis=2)])
    s = simplify.run(g)
    verify(s)
    assert [n.op for n in s.nodes] == ["concat", "reshape"]
    assert s.nodes[0].out.shape == (2, 5, 12, 3)
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal(h.shape) for h in heads]
    np.testing.assert_array_equal(interpret(s, xs)[0], interpret(g, xs)[0])
    from lucid import compiler
    np.testing.assert_array_equal(compiler.compile_graph(g, "t")(xs)[0], interpret(g, xs)[0])
    b = GraphBuilder()
    x, y = b.input((2, 4, 3), "float64"), b.input((2, 3, 4), "float64")   # (4, 3) and (3, 4): not alike
    g = b.build([b.emit("concat", b.emit("reshape", x, shape=(2, 12)), b.emit("reshape", y, shape=(2, 12)), axis=1)])
    assert [n.op for n in simplify.run(g).nodes] == ["reshape", "reshape", "concat"]
