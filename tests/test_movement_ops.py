"""slice, embed, concat, gather and scatter_add: the reference interpreter against numpy
and torch, compiled plans against the interpreter (views for slices, native kernels
for the rest), gradients against finite differences and torch, bounds mode, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lucid.compiler import compile_graph
from lucid_codegen.runtime.plan import Plan, eager_runner
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret
from lucid_ir.passes import fuse
from lucid_ir.serialize import dumps, loads

from gradcheck import check_graph_gradients

DTYPES = ["float32", "float64", "int32", "int64", "bool"]
rng = np.random.default_rng(14)


def sample(shape, dtype):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith("int"):
        return rng.integers(-50, 50, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def graph_of(build, *arrays):
    b = GraphBuilder()
    ins = [b.input(a.shape, str(a.dtype)) for a in arrays]
    out = build(b, *ins)
    return b.build(out if isinstance(out, list) else [out])


def both(build, *arrays, exact=True):
    """The interpreter's and a compiled plan's outputs (the plan called three times:
    step by step, then its native program), checked equal bit for bit (``exact``;
    else to float32 rounding: vectorised transcendental functions)."""
    g = graph_of(build, *arrays)
    want = interpret(g, list(arrays))
    compiled = compile_graph(g)
    for _ in range(3):
        got = compiled(list(arrays))
        for w, x in zip(want, got):
            assert x.shape == w.shape and x.dtype == w.dtype
            if exact:
                np.testing.assert_array_equal(x, w)
            else:
                np.testing.assert_allclose(x, w, rtol=1e-6)
    return want


def strided(a):
    """The same values as ``a``, through a non-contiguous (flipped, every-other) view."""
    big = np.empty(tuple(2 * d for d in a.shape), a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view = view[tuple(slice(None, None, -1) for _ in a.shape)]
    view[...] = a[tuple(slice(None, None, -1) for _ in a.shape)]
    assert not view.flags.c_contiguous or a.size <= 1
    return view[tuple(slice(None, None, -1) for _ in a.shape)]


# ---------------------------------------------------------------------- slice
SLICES = [((7,), (None,), (None,), (-1,)),                    # flip
          ((7,), (1,), (6,), (2,)),
          ((7,), (-2,), (0,), (-3,)),
          ((5, 13), (1, None), (4, None), (1, -2)),
          ((3, 0, 4), (None, None, 1), (None, None, 3), (1, 1, 1)),   # 0-size
          ((3, 5), (2, 9), (0, 2), (1, 1)),                   # empty: start past stop
          ((1, 1), (None, None), (None, None), (-1, 5)),
          ((2, 3, 11), (-1, None, 10), (None, None, 2), (-1, 2, -4))]


@pytest.mark.parametrize("shape,starts,stops,steps", SLICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_slice_matches_numpy(shape, starts, stops, steps, dtype):
    x = sample(shape, dtype)
    want = x[tuple(slice(a, e, s) for a, e, s in zip(starts, stops, steps))]
    (got,) = both(lambda b, v: b.emit("slice", v, starts=starts, stops=stops, steps=steps), x)
    np.testing.assert_array_equal(got, want)


def test_slice_in_a_plan_is_a_view():
    x = sample((6, 9), "float32")
    b = GraphBuilder()
    v = b.input(x.shape)
    s = b.emit("slice", v, starts=(1, None), stops=(5, None), steps=(1, -2))
    g = b.build([b.emit("exp", s)])
    plan = Plan(fuse.run(g))
    env = plan.execute([x])
    sliced = [env[outs[0]] for (_, _, outs), kind in zip(plan.steps, plan.kinds) if kind == "view"]
    assert len(sliced) == 1 and np.shares_memory(sliced[0], x)
    np.testing.assert_allclose(plan([x])[0], np.exp(x[1:5, ::-2]), rtol=1e-6)
    # eager: a one-slice graph returns a view of its input, as a PyTorch slice does
    one = fuse.run(graph_of(lambda b, v: b.emit("slice", v, starts=(None, 8), stops=(None, 0),
                                                steps=(-1, -3)), x))
    out = eager_runner(one, [x])(x)
    assert np.shares_memory(out, x)
    np.testing.assert_array_equal(out, x[::-1, 8:0:-3])


def test_slice_attrs_are_canonical():
    b = GraphBuilder()
    x = b.input((10,))
    one = b.emit("slice", x, starts=(None,), stops=(None,), steps=(-3,))
    two = b.emit("slice", x, starts=(9,), stops=(-100,), steps=(-3,))
    assert one.shape == (4,)
    assert b.nodes[0].attrs == b.nodes[1].attrs
    assert two.shape == one.shape


# ---------------------------------------------------------------------- embed
@pytest.mark.parametrize("shape,starts,stops,steps", SLICES)
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_embed_is_the_slices_adjoint(shape, starts, stops, steps, dtype):
    index = tuple(slice(a, e, s) for a, e, s in zip(starts, stops, steps))
    inner = np.zeros(shape)[index].shape
    g = sample(inner, dtype)
    want = np.zeros(shape, dtype)
    want[index] = g
    (got,) = both(lambda b, v: b.emit("embed", v, shape=shape, starts=starts, stops=stops,
                                      steps=steps), g)
    np.testing.assert_array_equal(got, want)
    (got,) = both(lambda b, v: b.emit("embed", v, shape=shape, starts=starts, stops=stops,
                                      steps=steps), strided(g))
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------- concat
CONCATS = [([(3,), (5,), (1,)], 0),
           ([(2, 3), (2, 0), (2, 7)], 1),
           ([(2, 3), (2, 7)], -1),
           ([(0, 4), (3, 4), (1, 4)], 0),
           ([(2, 5, 3), (2, 1, 3), (2, 11, 3)], 1),
           ([(4, 2, 13)], 2)]


@pytest.mark.parametrize("shapes,axis", CONCATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_matches_numpy(shapes, axis, dtype):
    arrays = [sample(s, dtype) for s in shapes]
    want = np.concatenate(arrays, axis=axis)
    (got,) = both(lambda b, *vs: b.emit("concat", *vs, axis=axis), *arrays)
    np.testing.assert_array_equal(got, want)
    (got,) = both(lambda b, *vs: b.emit("concat", *vs, axis=axis), *[strided(a) for a in arrays])
    np.testing.assert_array_equal(got, want)


def test_concat_of_transposed_and_flipped_views():
    x, y = sample((6, 4), "float64"), sample((4, 3), "float64")
    (got,) = both(lambda b, u, v: b.emit("concat", b.emit("transpose", u),
                                         b.emit("slice", v, starts=(None, None), stops=(None, None),
                                                steps=(-1, -1)), axis=1), x, y)
    np.testing.assert_array_equal(got, np.concatenate([x.T, y[::-1, ::-1]], axis=1))


# --------------------------------------------------------------------- gather
GATHERS = [((7,), (5,), 0),
           ((4, 6), (4, 9), 1),
           ((4, 6), (2, 3), 0),          # index smaller than x outside the axis
           ((3, 1, 5), (3, 4, 5), 1),
           ((5, 2), (0, 2), 0),          # empty index
           ((2, 3, 13), (1, 3, 4), 2)]


@pytest.mark.parametrize("xshape,ishape,axis", GATHERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_matches_torch(xshape, ishape, axis, dtype):
    x = sample(xshape, dtype)
    index = rng.integers(0, xshape[axis], size=ishape)
    want = torch.gather(torch.from_numpy(x), axis, torch.from_numpy(index)).numpy()
    (got,) = both(lambda b, v, i: b.emit("gather", v, i, axis=axis), x, index)
    np.testing.assert_array_equal(got, want)
    (got,) = both(lambda b, v, i: b.emit("gather", v, i, axis=axis), strided(x), strided(index))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_gather_out_of_range_reads_zero(dtype):
    x = sample((3, 5), dtype)
    index = np.array([[0, -1, 5, 4], [1 << 40, -(1 << 62), 2, 3], [4, 4, 4, 4]])
    (got,) = both(lambda b, v, i: b.emit("gather", v, i, axis=1), x, index)
    valid = (index >= 0) & (index < 5)
    want = np.where(valid, np.take_along_axis(x, np.where(valid, index, 0), 1), np.zeros((), dtype))
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- scatter_add
SCATTERS = [((9,), (4,), 0),
            ((4, 6), (4, 30), 1),         # many duplicates
            ((7, 3), (2, 3), 0),
            ((3, 5, 2), (3, 4, 1), 1),
            ((5, 2), (0, 2), 0),
            ((2, 13), (2, 1), 1)]


@pytest.mark.parametrize("shape,ishape,axis", SCATTERS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_scatter_add_matches_torch(shape, ishape, axis, dtype):
    index = rng.integers(0, shape[axis], size=ishape)
    src = sample(ishape, dtype)
    want = torch.zeros(shape, dtype=getattr(torch, dtype)).scatter_add(
        axis, torch.from_numpy(index), torch.from_numpy(src)).numpy()
    for i, s in ((index, src), (strided(index), strided(src))):
        (got,) = both(lambda b, iv, sv: b.emit("scatter_add", iv, sv, axis=axis, shape=shape), i, s)
        if dtype.startswith("float"):
            np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-14, atol=1e-6)
        else:
            np.testing.assert_array_equal(got, want)


def test_scatter_add_duplicates_accumulate_and_out_of_range_drops():
    index = np.array([2, 0, 2, 2, -1, 3, 1 << 50])
    src = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    (got,) = both(lambda b, i, s: b.emit("scatter_add", i, s, axis=0, shape=(3,)), index, src)
    np.testing.assert_array_equal(got, [2.0, 0.0, 13.0])


# ------------------------------------------------------------------ gradients
def _f64(*shapes):
    return [rng.standard_normal(s) for s in shapes]


GRAD_CASES = {
    "slice": (lambda b, x: b.emit("slice", x, starts=(None, 1), stops=(None, None), steps=(-1, 2)),
              lambda x: torch.flip(x, [0])[:, 1::2], [(3, 6)]),
    "embed": (lambda b, x: b.emit("embed", x, shape=(4, 7), starts=(3, 0), stops=(None, 6), steps=(-2, 3)),
              None, [(2, 2)]),
    "concat": (lambda b, x, y: b.emit("concat", x, y, x, axis=1),
               lambda x, y: torch.cat([x, y, x], 1), [(2, 3), (2, 4)]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients_match_finite_differences_and_torch(name):
    build, reference, shapes = GRAD_CASES[name]
    arrays = _f64(*shapes)
    g = graph_of(build, *arrays)
    check_graph_gradients(g, arrays, rng)
    check_graph_gradients(g, arrays, rng, run=lambda graph, xs: compile_graph(graph)(xs))
    if reference is not None:
        _against_torch(g, reference, arrays, [True] * len(arrays))


def _against_torch(g, reference, arrays, differentiable):
    from lucid_ir.passes import autodiff
    ts = [torch.tensor(a, requires_grad=d) for a, d in zip(arrays, differentiable)]
    out = reference(*ts)
    seed = rng.standard_normal(out.shape)
    out.backward(torch.from_numpy(seed))
    wrt = [k for k, d in enumerate(differentiable) if d]
    bwd = autodiff.run(g, wrt)
    env = dict(zip(g.inputs, arrays))
    got = compile_graph(bwd.graph)([seed] + [env[v] for v in bwd.residuals])
    for k, grad in zip(wrt, got):
        np.testing.assert_allclose(grad, ts[k].grad.numpy(), rtol=1e-12, atol=1e-12)


def test_gather_and_scatter_add_gradients():
    x = rng.standard_normal((4, 5))
    index = rng.integers(0, 4, size=(6, 5))  # duplicates: the gradient accumulates
    g = graph_of(lambda b, v, i: b.emit("gather", v, i, axis=0), x, index)
    check_graph_gradients(g, [x, index], rng)
    _against_torch(g, lambda v, i: torch.gather(v, 0, i), [x, index], [True, False])
    src = rng.standard_normal((6, 5))
    g = graph_of(lambda b, i, s: b.emit("scatter_add", i, s, axis=0, shape=(4, 5)), index, src)
    check_graph_gradients(g, [index, src], rng)
    _against_torch(g, lambda i, s: torch.zeros(4, 5, dtype=torch.float64).scatter_add(0, i, s),
                   [index, src], [False, True])


# ------------------------------------------------------------ plans and fusion
def test_fusion_leaves_indexing_ops_as_their_own_steps():
    x = sample((5, 4), "float32")
    index = rng.integers(0, 5, size=(3, 4))
    g = graph_of(lambda b, v, i: b.emit("tanh", b.emit("gather", b.emit("exp", v), i, axis=0)), x, index)
    fused = fuse.run(g)
    assert [n.op for n in fused.nodes] == ["kernel", "gather", "kernel"]
    assert Plan(fused).kinds == ["elementwise", "index", "elementwise"]
    (got,) = both(lambda b, v, i: b.emit("tanh", b.emit("gather", b.emit("exp", v), i, axis=0)), x, index,
                  exact=False)
    np.testing.assert_allclose(got, np.tanh(np.take_along_axis(np.exp(x), index, 0)), rtol=1e-6)


def test_native_program_runs_indexing_kernels():
    x, y = sample((64, 3), "float32"), sample((64, 5), "float32")
    index = rng.integers(0, 64, size=(100, 8))
    g = graph_of(lambda b, u, v, i: b.emit("gather", b.emit("exp", b.emit("concat", u, v, axis=1)), i, axis=0),
                 x, y, index)
    compiled = compile_graph(g)
    for _ in range(3):
        got = compiled([x, y, index])[0]
    programs = list(compiled.executable._local.programs.values())
    assert programs and all(programs), "the plan should run as one native program"
    np.testing.assert_allclose(got, np.take_along_axis(np.exp(np.concatenate([x, y], 1)), index, 0),
                               rtol=1e-6)


@pytest.mark.parametrize("build,arrays", [
    (lambda b, v, i: b.emit("gather", v, i, axis=1),
     [sample((3, 7), "float64"), np.array([[0, 6, -1, 7, 1 << 40]] * 3)]),
    (lambda b, i, s: b.emit("scatter_add", i, s, axis=1, shape=(3, 7)),
     [np.array([[0, 6, -1, 7, 1 << 40]] * 3), sample((3, 5), "float32")]),
    (lambda b, u, v: b.emit("concat", u, v, axis=0), [sample((1, 3), "int32"), sample((6, 3), "int32")]),
    (lambda b, v: b.emit("embed", v, shape=(5, 3), starts=(4, 2), stops=(None, None), steps=(-4, -1)),
     [sample((2, 3), "bool")]),
])
def test_bounds_mode(monkeypatch, build, arrays):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    g = graph_of(build, *arrays)
    compiled = compile_graph(g)
    from lucid_codegen.runtime.bounds import CheckedPlan
    assert isinstance(compiled.executable, CheckedPlan)
    np.testing.assert_array_equal(compiled(arrays)[0], interpret(g, arrays)[0])


# ----------------------------------------------------------------- the graph
def test_print_and_serialize_round_trip():
    g = graph_of(lambda b, v, i: [b.emit("slice", v, starts=(None, None), stops=(None, None), steps=(-1, 2)),
                                  b.emit("gather", v, i, axis=1),
                                  b.emit("scatter_add", i, b.emit("cast", i, dtype="float32"), axis=0, shape=(4, 2)),
                                  b.emit("concat", v, v, axis=0)],
                 sample((3, 5), "float32"), rng.integers(0, 3, size=(3, 2)))
    text = str(g)
    assert "slice[starts=(2,0),steps=(-1,2),stops=(None,6)]" in text
    assert "scatter_add[axis=0,shape=(4,2)]" in text
    again = loads(dumps(g))
    assert str(again) == text


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize("build,exc,match", [
    (lambda b, x, i: b.emit("slice", x, starts=(0,), stops=(1,), steps=(1,)), ValueError,
     r"slice: needs one start, stop and step per axis of shape \(3, 4\)"),
    (lambda b, x, i: b.emit("slice", x, starts=(0, 0), stops=(1, 1), steps=(1, 0)), ValueError,
     r"slice: step of axis 1 is zero"),
    (lambda b, x, i: b.emit("concat", x, i, axis=0), ValueError, r"concat: shapes .* differ outside axis 0"),
    (lambda b, x, i: b.emit("concat", x, b.emit("cast", x, dtype="float64"), axis=1), TypeError,
     r"concat: operands .* have different dtypes"),
    (lambda b, x, i: b.emit("concat", x, x, axis=2), ValueError, r"concat: axis 2 is out of range"),
    (lambda b, x, i: b.emit("gather", x, b.emit("cast", i, dtype="int32"), axis=0), TypeError,
     r"gather: indices must be int64"),
    (lambda b, x, i: b.emit("gather", x, b.emit("reshape", i, shape=(10,)), axis=0), ValueError,
     r"gather: index i64\[10\] must have the rank of x \(3, 4\)"),
    (lambda b, x, i: b.emit("gather", b.emit("slice", x, starts=(0, 0), stops=(0, 2), steps=(1, 1)), i,
                            axis=1), ValueError, r"gather: index shape \(2, 5\) exceeds x \(0, 2\)"),
    (lambda b, x, i: b.emit("scatter_add", i, x, axis=0, shape=(3, 5)), ValueError,
     r"scatter_add: src f32\[3,4\] must have the shape of index i64\[2,5\]"),
    (lambda b, x, i: b.emit("scatter_add", i, b.emit("gt", i, i), axis=0, shape=(3, 5)), TypeError,
     r"scatter_add: cannot add bool values"),
    (lambda b, x, i: b.emit("embed", x, shape=(3, 4), starts=(0, 0), stops=(2, 4), steps=(1, 1)), ValueError,
     r"embed: the slice of shape \(3, 4\) has shape \(2, 4\)"),
])
def test_errors_name_the_op_and_shapes(build, exc, match):
    b = GraphBuilder()
    x, i = b.input((3, 4)), b.input((2, 5), "int64")
    with pytest.raises(exc, match=match):
        build(b, x, i)


def test_check_index_range():
    from lucid_ir.ops.indexing import check_index_range
    check_index_range("gather", np.array([0, 4]), 5)
    with pytest.raises(IndexError, match="gather: index 5 is out of bounds for an axis of size 5"):
        check_index_range("gather", np.array([0, 5]), 5)
    with pytest.raises(IndexError, match="index -1"):
        check_index_range("index_select", np.array([[-1]]), 5)


def test_whole_slice_simplifies_away_but_a_flip_stays():
    from lucid_ir.passes import simplify
    b = GraphBuilder()
    x = b.input((3, 4))
    whole = b.emit("slice", x, starts=(0, None), stops=(None, 4), steps=(1, 1))
    flipped = b.emit("slice", x, starts=None, stops=None, steps=(1, -1))
    g = simplify.run(b.build([b.emit("add", whole, flipped)]))
    assert [n.op for n in g.nodes] == ["slice", "add"] and g.nodes[1].inputs[0] is x


def test_random_layouts_under_bounds_mode(monkeypatch):
    """Random shapes, axes, layouts and indices (some out of range) for gather,
    scatter_add and concat, with every output guarded: no kernel leaves its buffers,
    and every result equals the interpreter's."""
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    r = np.random.default_rng(99)
    for trial in range(24):
        ndim = int(r.integers(1, 4))
        shape = tuple(int(d) for d in r.integers(0, 6, size=ndim))
        axis = int(r.integers(0, ndim))
        dtype = ["float32", "float64", "int32", "int64"][trial % 4]
        x = sample(shape, dtype)
        ishape = tuple(int(r.integers(0, d + 1)) if k != axis else int(r.integers(0, 7))
                       for k, d in enumerate(shape))
        n = shape[axis]
        if n == 0:
            ishape = tuple(0 if k == axis else d for k, d in enumerate(ishape))
        index = r.integers(-2, n + 2, size=ishape)
        if trial % 2:
            x, index = strided(x), strided(index)
        src = sample(ishape, dtype)
        both(lambda b, v, i: b.emit("gather", v, i, axis=axis), x, index)
        both(lambda b, i, s: b.emit("scatter_add", i, s, axis=axis, shape=shape), index, src)
        other = sample(shape[:axis] + (int(r.integers(0, 4)),) + shape[axis + 1:], dtype)
        both(lambda b, u, v: b.emit("concat", u, v, u, axis=axis), x, other)
