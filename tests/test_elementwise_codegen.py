"""Fused elementwise kernels against the reference interpreter on the same graph."""
from __future__ import annotations

import numpy as np
import pytest

from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret
from lucid_codegen.kernels import loops
from lucid_codegen.kernels.elementwise import ElementwiseKernel

UNARY = ["neg", "exp", "log", "tanh", "sigmoid"]
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge", "lt", "le", "eq", "ne"]
COMPARISON = ("gt", "ge", "lt", "le", "eq", "ne")
TOL = {"float32": 2e-6, "float64": 1e-12}


def assert_close(got, want, dtype):
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    g, w = got[fin].astype(np.float64), want[fin].astype(np.float64)
    # relative error, with an absolute floor for values that cancel to ~0
    np.testing.assert_array_less(np.abs(g - w), TOL[dtype] * (np.abs(w) + 1e-3) + 1e-30)


def run_both(g, arrays, outs=None):
    kern = ElementwiseKernel.for_graph(g)
    with np.errstate(all="ignore"):
        want = interpret(g, arrays)
    got = kern(arrays, outs)
    return got, want


def random_graph(rng, shapes, dtype, n_ops):
    b = GraphBuilder()
    vals = [b.input(s, dtype) for s in shapes]
    for _ in range(n_ops):
        r = rng.random()
        if r < 0.35:
            op = UNARY[rng.integers(len(UNARY))]
            x = vals[rng.integers(len(vals))]
            if op in ("exp", "log"):  # keep values moderate: log(|x|+0.5), exp(tanh x)
                x = b.emit("tanh", x) if op == "exp" else b.emit(
                    "add", b.emit("maximum", x, b.emit("neg", x)), b.constant(0.5, (), dtype))
            vals.append(b.emit(op, x))
        elif r < 0.85:
            op = BINARY[rng.integers(len(BINARY))]
            x, y = (vals[rng.integers(len(vals))] for _ in range(2))
            if op == "div":
                y = b.emit("add", b.emit("sigmoid", y), b.constant(0.5, (), dtype))
            out = b.emit(op, x, y)
            # a comparison's bool, back to 1.0/0.0 in the same loop
            vals.append(b.emit("cast", out, dtype=dtype) if op in COMPARISON else out)
        elif r < 0.95:
            c, x, y = (vals[rng.integers(len(vals))] for _ in range(3))
            vals.append(b.emit("select", b.emit("gt", c, b.constant(0.0, (), dtype)), x, y))
        else:
            other = "float64" if dtype == "float32" else "float32"
            x = vals[rng.integers(len(vals))]
            vals.append(b.emit("cast", b.emit("cast", x, dtype=other), dtype=dtype))
    out_shape = np.broadcast_shapes(*shapes)
    full = [v for v in vals[len(shapes):] if v.shape == out_shape] or [
        b.emit("add", vals[-1], b.constant(0.0, out_shape, dtype))]
    picks = [full[-1]] + ([full[0]] if len(full) > 1 and rng.random() < 0.5 else [])
    return b.build(picks)


SHAPE_SETS = [[(0,)], [(1,)], [(7,)], [(17,), (17,)], [(31, 1), (1, 4)], [(3, 1), (1, 4)],
              [(5, 13), ()], [(2, 3, 37), (37,)], [(4, 0, 3), (3,)], [(129,), (1,)],
              [(6, 5, 4), (6, 1, 4), (5, 1)]]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", range(14))
def test_random_graphs(dtype, seed):
    rng = np.random.default_rng(seed)
    shapes = SHAPE_SETS[seed % len(SHAPE_SETS)]
    g = random_graph(rng, shapes, dtype, int(rng.integers(1, 7)))
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    for got, want in zip(*run_both(g, arrays)):
        assert_close(got, want, dtype)


def _views(base):
    """The same logical 2-D array as several memory layouts."""
    yield base.copy()
    yield np.asfortranarray(base)
    big = np.zeros((base.shape[0] * 2, base.shape[1] * 3), base.dtype)
    big[::2, ::3] = base
    yield big[::2, ::3]
    yield base[::-1, ::-1].copy()[::-1, ::-1]
    yield np.ascontiguousarray(base.T).T


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_strided_inputs(dtype):
    rng = np.random.default_rng(1)
    b = GraphBuilder()
    x, y, z = b.input((13, 19), dtype), b.input((13, 19), dtype), b.input((19,), dtype)
    g = b.build([b.emit("sigmoid", b.emit("add", b.emit("mul", x, y), z))])
    xs = rng.standard_normal((13, 19)).astype(dtype)
    ys = rng.standard_normal((13, 19)).astype(dtype)
    zs = rng.standard_normal(38).astype(dtype)[::-2]
    for xv in _views(xs):
        for yv in _views(ys):
            got, want = run_both(g, [xv, yv, zs])
            assert_close(got[0], want[0], dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_heavy_body_runs_two_vectors_one_vector_and_single_elements(dtype):
    """A body of transcendental functions (elementwise.TWO_VECTORS_COST) loops over two
    vectors a turn, then one, then single elements: every row length from 0 to past
    two vectors and a half, with a row-broadcast and a strided operand, is exact against
    the interpreter, and its bits equal the one-vector loop's (the same operations)."""
    from lucid_codegen.kernels.elementwise import structure_of, vector_widths
    from lucid_codegen.jit.target import host_target
    lanes = host_target().vector_bytes // np.dtype(dtype).itemsize
    rng = np.random.default_rng(3)
    for n in range(0, 5 * lanes // 2 + 2):
        b = GraphBuilder()
        x, y, z = b.input((3, n), dtype), b.input((n,), dtype), b.input((3, n), dtype)
        g = b.build([b.emit("mul", b.emit("erf", b.emit("add", x, y)), b.emit("log", z))])
        assert vector_widths(structure_of(g), lanes) == (2 * lanes, lanes)
        xs = rng.standard_normal((3, n)).astype(dtype)
        ys = rng.standard_normal(n).astype(dtype)
        zs = (rng.uniform(0.5, 2.0, (3, 2 * n)).astype(dtype))[:, ::2]   # strided along the row
        got, want = run_both(g, [xs, ys, zs])
        assert_close(got[0], want[0], dtype)
        kern = ElementwiseKernel.for_graph(g)
        one = np.array([kern([xs[i:i + 1, k:k + 1], ys[k:k + 1], zs[i:i + 1, k:k + 1]])[0][0, 0]
                        for i in range(3) for k in range(n)], dtype).reshape(3, n)
        np.testing.assert_array_equal(got[0], one)   # each element as the single-element loop gives it


def test_broadcast_view_input_and_fortran_output():
    b = GraphBuilder()
    x, y = b.input((64, 33), "float32"), b.input((64, 33), "float32")
    g = b.build([b.emit("sub", x, y)])
    xv = np.broadcast_to(np.arange(33, dtype=np.float32), (64, 33))
    yv = np.arange(64 * 33, dtype=np.float32).reshape(64, 33)
    out = np.empty((64, 33), np.float32, order="F")
    got, want = run_both(g, [xv, yv], [out])
    assert got[0] is out
    np.testing.assert_array_equal(out, want[0])


@pytest.mark.parametrize("n", [1, 15, 16, 17, 100])
def test_outs_guard_sentinel(n):
    """Writes land exactly in the given view; the rest of the buffer is untouched."""
    b = GraphBuilder()
    x = b.input((3, n), "float32")
    e = b.emit("exp", x)
    g = b.build([b.emit("mul", e, e), e])           # two outputs, one feeding the other
    sentinel = np.float32(-7.25)
    buf = np.full((5, 3 * n + 8), sentinel, np.float32)
    outs = [buf[1:4, 4:4 + n], buf[1:4, 4 + n:4 + 3 * n:2]]
    xs = np.linspace(-2, 2, 3 * n, dtype=np.float32).reshape(3, n)
    got, want = run_both(g, [xs], outs)
    for o, w in zip(got, want):
        assert_close(o, w, "float32")
    mask = np.ones(buf.shape, bool)
    mask[1:4, 4:4 + n] = False
    mask[1:4, 4 + n:4 + 3 * n:2] = False
    assert (buf[mask] == sentinel).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values(dtype):
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e-40, 1e-310, 88.8, 89.5,
                     -87.0, -104.0, 709.0, 710.0, -745.0, 3.0, -3.0, 20.0, -20.0, 0.3, -0.3],
                    dtype=np.float64).astype(dtype)
    other = np.roll(vals, 3)
    for op in UNARY:
        b = GraphBuilder()
        x = b.input(vals.shape, dtype)
        g = b.build([b.emit(op, x)])
        got, want = run_both(g, [vals])
        assert_close(got[0], want[0], dtype)
    for op in BINARY + ["select"]:
        b = GraphBuilder()
        x, y = b.input(vals.shape, dtype), b.input(vals.shape, dtype)
        out = (b.emit("select", b.emit("cast", x, dtype="bool"), y, y) if op == "select"
               else b.emit(op, x, y))
        got, want = run_both(b.build([out]), [vals, other])
        assert_close(got[0], want[0], dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_maximum_and_minimum_of_tied_zeros_keep_the_second_sign(dtype):
    """maximum / minimum of -0.0 and 0.0 give the second operand, as numpy and PyTorch
    do (``log(maximum(x, y)) / maximum(x, y)`` is +inf or -inf by that sign)."""
    import torch
    x = np.array([-0.0, 0.0, -0.0, 0.0, np.nan, 1.0] * 3, dtype)  # (18: a vector and a tail)
    y = np.array([0.0, -0.0, -0.0, 0.0, 1.0, np.nan] * 3, dtype)
    for op in ("maximum", "minimum"):
        b = GraphBuilder()
        u, v = b.input(x.shape, dtype), b.input(x.shape, dtype)
        got = ElementwiseKernel.for_graph(b.build([b.emit(op, u, v)]))([x, y])[0]
        for want in (getattr(np, op)(x, y), getattr(torch, op)(torch.from_numpy(x), torch.from_numpy(y)).numpy()):
            zero = want == 0
            np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(want[zero]))
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-6), ("float64", 1e-13)])
def test_transcendental_accuracy(dtype, tol):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(3000) * 5, rng.uniform(-80, 80, 1000),
                        np.exp(rng.uniform(-80, 80, 1000))]).astype(dtype)
    for op, arg in [("exp", x), ("log", np.abs(x)), ("tanh", x), ("sigmoid", x)]:
        b = GraphBuilder()
        v = b.input(arg.shape, dtype)
        got = ElementwiseKernel.for_graph(b.build([b.emit(op, v)]))([arg])[0]
        with np.errstate(all="ignore"):
            ref = {"exp": np.exp, "log": np.log, "tanh": np.tanh,
                   "sigmoid": lambda a: 1 / (1 + np.exp(-a))}[op](arg.astype(np.float64))
        fin = np.isfinite(ref) & (np.abs(ref) > np.finfo(dtype).tiny * 1e3) & (np.abs(ref) < np.finfo(dtype).max)
        rel = np.abs(got[fin] - ref[fin]) / np.abs(ref[fin])
        assert rel.max() < tol, (op, rel.max())


def test_same_structure_one_kernel_no_recompile():
    from lucid_codegen.jit import cache
    def graph(shape):
        b = GraphBuilder()
        x = b.input(shape, "float32")
        return b.build([b.emit("tanh", x)])
    k1 = ElementwiseKernel.for_graph(graph((5, 7)))
    k1([np.ones((5, 7), np.float32)])
    before = cache.stats()["compiles"] + cache.stats()["hits_disk"]
    k2 = ElementwiseKernel.for_graph(graph((123, 71)))
    assert k2 is k1
    np.testing.assert_allclose(k2([np.ones((123, 71), np.float32)])[0], np.tanh(np.float32(1)), rtol=1e-6)
    assert cache.stats()["compiles"] + cache.stats()["hits_disk"] == before


def test_errors():
    b = GraphBuilder()
    x = b.input((3,), "float32")
    k = ElementwiseKernel.for_graph(b.build([b.emit("exp", x)]))
    with pytest.raises(TypeError):
        k([np.ones(3)])
    with pytest.raises(ValueError):
        k([np.ones(3, np.float32)], [np.ones(4, np.float32)])
    b = GraphBuilder()
    x = b.input((3,), "float32")
    with pytest.raises(ValueError):
        ElementwiseKernel.for_graph(b.build([b.emit("sum", x)]))


@pytest.mark.skipif(loops.thread_pool() is None, reason="no lucid_codegen.runtime.threads")
def test_threads_bit_identical():
    threads = loops.thread_pool()
    b = GraphBuilder()
    x, y = b.input((1001, 1003), "float32"), b.input((1003,), "float32")
    g = b.build([b.emit("tanh", b.emit("mul", b.emit("exp", x), y))])
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((1001, 1003)).astype(np.float32),
              rng.standard_normal(1003).astype(np.float32)]
    k = ElementwiseKernel.for_graph(g)
    old = threads.get_num_threads()
    try:
        threads.set_num_threads(1)
        one = k(arrays)[0]
        flat_one = k([arrays[0].reshape(-1)[:1000000].copy().reshape(1000, 1000)[0], arrays[1][:1000]])
        threads.set_num_threads(2)
        two = k(arrays)[0]
    finally:
        threads.set_num_threads(old)
    np.testing.assert_array_equal(one, two)
    assert flat_one[0].shape == (1000,)


@pytest.mark.parametrize("shape", [(), (1,), (1, 1, 1)])
def test_one_element_calls_run_straight_line_code(shape):
    """A call whose every operand is one number (any number of size-1 dimensions) runs the
    straight-line variant (pattern all ``b``: no loops in its module), with the
    interpreter's values, and does nothing for an empty range."""
    import ctypes
    b = GraphBuilder()
    x, y = b.input(shape, "float32"), b.input((), "float64")
    s = b.emit("add", b.emit("cast", b.emit("exp", x), dtype="float64"), y)
    g = b.build([s, b.emit("gt", x, b.emit("cast", y, dtype="float32"))])
    k = ElementwiseKernel.for_graph(g)
    arrays = [np.full(shape, 0.75, np.float32), np.array(-2.0)]
    got = k(arrays)
    for out, want in zip(got, interpret(g, arrays)):
        assert out.shape == want.shape and out.dtype == want.dtype
        np.testing.assert_array_equal(out, want)
    text = str(k.llvm_module("bbbb"))
    assert ".cond" not in text and "outer" not in text   # no loop, no outer walk
    out = np.zeros((), np.float64), np.zeros((), np.bool_)
    ptrs = [a.ctypes.data for a in (*arrays, *out)]
    words = (ctypes.c_int64 * 10)(0, 1, *ptrs, 0, 0, 0, 0)
    k.function("bbbb")(words, 0, 0, 0, 1)   # an empty range: nothing written
    assert out[0] == 0 and not out[1]
    k.function("bbbb")(words, 0, 1, 0, 1)
    assert out[0] == got[0] and out[1] == got[1]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_a_row_ends_in_one_masked_vector(dtype):
    """The elements past a row's whole vectors (all of a row shorter than a vector: a
    convolution's 3x3 taps) run as one vector whose lanes past the row's end are off
    (kernels/tail.py), not as a scalar loop: every row length from 0 to past a vector,
    with contiguous, strided, row-broadcast and bool inputs, an integer division by
    zero in the live lanes, and a strided output inside a sentinel buffer, is exact
    against the interpreter, and nothing outside the outputs is written."""
    from lucid_codegen.jit.target import host_target
    lanes = host_target().vector_bytes // np.dtype(dtype).itemsize
    rng = np.random.default_rng(5)
    for n in list(range(0, lanes + 3)) + [2 * lanes + 1]:
        b = GraphBuilder()
        x, y, z = b.input((3, n), dtype), b.input((3, n), dtype), b.input((n,), dtype)
        m = b.input((3, n), "bool")
        q = b.emit("floor_divide", b.emit("add", x, z), y)
        g = b.build([b.emit("select", m, q, b.emit("mul", x, y)), b.emit("gt", q, z)])
        kern = ElementwiseKernel.for_graph(g)
        assert '"rem.cond"' not in str(kern.llvm_module("csccsc"))   # no scalar loop

        def draw(shape):
            return rng.integers(-3, 4, shape).astype(dtype)
        xs = draw((3, n))
        ys = draw((3, 3 * n))[:, ::3]                       # strided along the row
        zs = draw(n)
        ms = rng.random((3, n)) < 0.5
        sentinel = np.array(-77, dtype)
        buf = np.full((3, 2 * n + 1), sentinel, dtype)
        flags = np.zeros((3, n + 2), bool)
        outs = [buf[:, 1::2][:, :n], flags[:, 1:n + 1]]       # a strided output, a bool one
        got, want = run_both(g, [xs, ys, zs, ms], outs)
        for o, w in zip(got, want):
            np.testing.assert_array_equal(o, w)
        assert (buf[:, 0::2] == sentinel).all() and not flags[:, 0].any() and not flags[:, n + 1:].any()
