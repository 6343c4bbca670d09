"""Implicit-GEMM convolutions: the im2col patch matrix is packed by the GEMM straight from
the padded input (``lucid_ir.passes.gather_operand``, ``lucid_codegen.gemm.gather``) and
never written, in eager and compiled mode, forward and weight gradient."""
import numpy as np
import pytest
import torch

import lucid
import lucid.nn.functional as F
from lucid_codegen.gemm.call import get_gemm
from lucid_codegen.gemm.kernel import GemmSpec
from lucid_codegen.runtime import threads
from lucid_ir.builder import GraphBuilder
from lucid_ir.passes import fuse, gather_operand


def _top_level_ops(text_graph):
    return [n.op for n in text_graph.nodes]


def _lowered(fn, *args):
    program = lucid.compile(fn).lower(*args).program
    return program.compiled_forward.fused, program.compiled_backward.fused


def _conv_loss(x, w, b):
    return (F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2)) ** 2).sum()


def _tensors(shapes, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    return [lucid.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


def test_no_patch_matrix_in_the_compiled_step():
    """Forward and backward: every value the plans hold (kernel outputs, views, saved
    residuals) is smaller than the patch matrix; the forward GEMM, the weight gradient's
    and the input gradient's (col2im as a gathered GEMM) pack from a tensor, and the
    input gradient is no embed_sum of the patch gradient's blocks."""
    x, w, b = _tensors([(2, 16, 9, 8), (32, 16, 3, 3), (32,)])
    fwd, bwd = _lowered(lambda x, w, b: (F.conv2d(x, w, b, padding=(1, 2), dilation=(1, 2)) ** 2).sum(), x, w, b)
    patches = 2 * 9 * 8 * 16 * 9  # positions x taps x channels
    for graph in (fwd, bwd):
        assert all(int(np.prod(v.shape)) < patches for n in graph.nodes for v in n.outs)
    assert "embed_sum" not in _top_level_ops(bwd)
    gathering = [k for g in (fwd, bwd) for k in g.nodes
                 if k.op == "kernel" and k.kind == "gemm" and any(n.op == "concat" for n in k.body.nodes)]
    assert len(gathering) == 3


def test_col2im_kept_where_the_spread_gradient_would_be_bigger():
    """One input channel, many output channels (a first layer), or a stride of 2 spreading
    the output gradient: that would outweigh the patch gradient, so the col2im stays as
    it was (and the gradients are right either way: ``test_values_and_gradients...``)."""
    x, w = _tensors([(2, 1, 9, 8), (32, 1, 3, 3)], "float64")
    _, bwd = _lowered(lambda x, w: (F.conv2d(x, w, padding=1) ** 2).sum(), x, w)
    assert "embed_sum" in _top_level_ops(bwd)
    x, w = _tensors([(2, 16, 9, 8), (32, 16, 3, 3)], "float64")
    _, bwd = _lowered(lambda x, w: (F.conv2d(x, w, padding=1, stride=2) ** 2).sum(), x, w)
    assert "embed_sum" in _top_level_ops(bwd)
    _, bwd = _lowered(lambda x, w: (F.conv2d(x, w, padding=1) ** 2).sum(), x, w)
    assert "embed_sum" not in _top_level_ops(bwd)


def test_recognised_from_the_graph_whoever_builds_it():
    """The pattern, not a conv template: slices of one tensor concatenated and reshaped,
    as a user could write them; a concat of two different tensors is not a gather."""
    b = GraphBuilder()
    x, y, w = b.input((2, 5, 4), "float64"), b.input((2, 5, 4), "float64"), b.input((8, 3), "float64")
    taps = [b.emit("slice", x, starts=(0, i, 0), stops=(2, i + 4, 4), steps=(1, 1, 1)) for i in (0, 1)]
    a = b.emit("reshape", b.emit("concat", *taps, axis=2), shape=(8, 8))
    mm = b.emit("matmul", a, w)
    other = b.emit("reshape", b.emit("concat", taps[0], b.emit("slice", y, starts=(0, 0, 0), stops=(2, 4, 4),
                                                                 steps=(1, 1, 1)), axis=2), shape=(8, 8))
    mm2 = b.emit("matmul", other, w)
    graph = b.build([mm, mm2])
    producer = {n.out: n for n in graph.nodes}
    assert gather_operand.find(producer[mm], 0, producer) is not None
    assert gather_operand.find(producer[mm2], 0, producer) is None
    fused = fuse.run(graph)
    assert _top_level_ops(fused).count("concat") == 1  # the second product's patch matrix only
    x_np, w_np, y_np = (np.random.default_rng(1).standard_normal(s) for s in ((2, 5, 4), (8, 3), (2, 5, 4)))
    from lucid.compiler import compile_graph
    got = compile_graph(graph, "g")([x_np, y_np, w_np])
    patches = np.concatenate([x_np[:, 0:4], x_np[:, 1:5]], axis=2).reshape(8, 8)
    np.testing.assert_allclose(got[0], patches @ w_np, rtol=1e-12)


CASES = [  # (x shape, w shape, kwargs): channels of 16 and more take the vector packing
    ((2, 16, 9, 8), (32, 16, 3, 3), dict(padding=1)),
    ((3, 32, 7, 11), (8, 32, 3, 2), dict(stride=2, padding=(1, 0))),
    ((2, 16, 8, 8), (16, 16, 3, 3), dict(dilation=2, padding=2)),
    ((2, 32, 6, 5), (16, 8, 3, 3), dict(groups=4, padding=1)),
    ((1, 17, 13, 5), (7, 17, 2, 2), dict(stride=(1, 2))),
    ((2, 16, 7, 7), (8, 16, 1, 1), dict(stride=2)),   # a strided 1x1: one slice, rows strided
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("compiled", [False, True])
def test_values_and_gradients_match_torch(case, dtype, compiled):
    xs, ws, kw = CASES[case]
    x, w, b = _tensors([xs, ws, (ws[0],)], dtype, seed=case)

    def step(x, w, b):
        loss = (F.conv2d(x, w, b, **kw) * F.conv2d(x, w, b, **kw)).sum()
        loss.backward()
        return loss
    (lucid.compile(step) if compiled else step)(x, w, b)
    tx, tw, tb = (torch.tensor(t.detach().numpy(), dtype=torch.float64, requires_grad=True) for t in (x, w, b))
    y = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    (y * y).sum().backward()
    tol = 2e-4 if dtype == "float32" else 1e-10
    for mine, ref in ((x, tx), (w, tw), (b, tb)):
        r = ref.grad.numpy()
        np.testing.assert_allclose(mine.grad.numpy(), r, rtol=tol, atol=tol * np.abs(r).max())


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_modes_and_non_contiguous_inputs(mode):
    rng = np.random.default_rng(3)
    conv = torch.nn.Conv2d(16, 8, 3, padding=2, padding_mode=mode, dtype=torch.float64)
    mine = lucid.nn.Conv2d(16, 8, 3, padding=2, padding_mode=mode, dtype="float64")
    mine.weight.data = lucid.tensor(conv.weight.detach().numpy())
    mine.bias.data = lucid.tensor(conv.bias.detach().numpy())
    base = rng.standard_normal((2, 7, 16, 9))  # the input is a transposed view: (2, 16, 7, 9)
    x = lucid.tensor(base).permute(0, 2, 1, 3)
    np.testing.assert_allclose(mine(x).detach().numpy(),
                               conv(torch.tensor(base).permute(0, 2, 1, 3)).detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("d", [1, 3])
def test_1d_and_3d_take_the_same_path(d):
    rng = np.random.default_rng(d)
    xs = (2, 16) + (6,) * d
    ws = (8, 16) + (3,) * d
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    fn = {1: F.conv1d, 3: F.conv3d}[d]
    tfn = {1: torch.nn.functional.conv1d, 3: torch.nn.functional.conv3d}[d]
    lx, lw = lucid.tensor(x, requires_grad=True), lucid.tensor(w, requires_grad=True)
    fwd, _ = _lowered(lambda a, b: fn(a, b, padding=1, stride=2).sum(), lx, lw)
    assert "concat" not in _top_level_ops(fwd)
    y = fn(lx, lw, padding=1, stride=2)
    (y * y).sum().backward()
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = tfn(tx, tw, padding=1, stride=2)
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_one_and_two_threads_bit_identical():
    x, w, b = _tensors([(8, 16, 20, 20), (32, 16, 3, 3), (32,)])
    results = []
    old = threads.get_num_threads()
    try:
        for n in (1, 2, 1, 2):
            threads.set_num_threads(n)
            for t in (x, w, b):
                t.grad = None
            _conv_loss(x, w, b).backward()
            results.append([t.grad.numpy().tobytes() for t in (x, w, b)])
            compiled = lucid.compile(lambda x, w, b: F.conv2d(x, w, b, padding=1))
            for _ in range(3):  # step by step, then the plan's native program (its GEMMs split)
                results[-1].append(compiled(x.detach(), w.detach(), b.detach()).numpy().tobytes())
    finally:
        threads.set_num_threads(old)
    assert all(r == results[0] for r in results)


def test_bounds_mode(monkeypatch):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    x, w, b = _tensors([(3, 16, 7, 9), (24, 16, 3, 3), (24,)], "float64", seed=5)
    step = lucid.compile(lambda x, w, b: _conv_loss(x, w, b))
    loss = step(x, w, b)
    tx, tw, tb = (torch.tensor(t.detach().numpy()) for t in (x, w, b))
    ref = (torch.nn.functional.conv2d(tx, tw, tb, stride=(2, 1), padding=(1, 2), dilation=(1, 2)) ** 2).sum()
    assert abs(float(loss.item()) - float(ref)) <= 1e-9 * abs(float(ref))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", ["a", "b"])
def test_gemm_packs_a_gathered_operand_through_its_tables(dtype, which):
    """The kernel alone: rows and K blocks past the blocking's sizes, a narrow and a
    partial column panel, tables with runs of W and shorter ones."""
    spec = GemmSpec(dtype, gather=which)
    gemm = get_gemm(spec)
    rng = np.random.default_rng(7)
    src = rng.standard_normal(5000).astype(dtype)
    for M, N, K in ((1, 1, 1), (13, 17, 33), (150, 40, 700), (37, 3, 1100)):
        rows = rng.integers(0, 2000, M).astype(np.int64) if which == "a" else rng.integers(0, 2000, K).astype(np.int64)
        n_cols = K if which == "a" else N
        cols = (np.arange(n_cols) + 3 * (np.arange(n_cols) // 20)).astype(np.int64)  # runs of 20
        gathered = src[rows[:, None] + cols[None, :]]
        other = rng.standard_normal((K, N) if which == "a" else (M, K)).astype(dtype)
        c = np.full((M, N), np.nan, dtype)
        size = src.itemsize
        tables = (src.ctypes.data, rows.ctypes.data, cols.ctypes.data)
        plain = (other.ctypes.data, other.strides[0] // size, other.strides[1] // size)
        a, bb = (tables, plain) if which == "a" else (plain, tables)
        gemm.run_ptrs(M, N, K, *a, *bb, c.ctypes.data, N)
        want = gathered @ other if which == "a" else other @ gathered
        np.testing.assert_allclose(c, want, rtol=1e-4 if dtype == "float32" else 1e-12,
                                   atol=1e-3 if dtype == "float32" else 1e-10)
