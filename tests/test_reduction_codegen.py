"""Prologue + reduction kernels against the reference interpreter on the same graph."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret
from lucid_codegen.kernels import loops
from lucid_codegen.kernels.reduction import ReductionKernel

TOL = {"float32": 2e-6, "float64": 1e-12}
AXES_3D = [()] + [c for r in (1, 2, 3) for c in itertools.combinations(range(3), r)]


def check(g, arrays, dtype, outs=None):
    with np.errstate(all="ignore"):
        want = interpret(g, arrays)[0]
    got = ReductionKernel.for_graph(g)(arrays, outs)[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    scale = np.abs(want).max() if want.size and np.isfinite(want).all() else 1.0
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype] * scale)
    return got


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", ["sum", "mean", "max"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_every_axis_set_3d(dtype, op, keepdims):
    rng = np.random.default_rng(0)
    shape = (5, 3, 37)
    x = rng.standard_normal(shape).astype(dtype)
    for axes in AXES_3D:
        b = GraphBuilder()
        v = b.input(shape, dtype)
        check(b.build([b.emit(op, v, axes=axes, keepdims=keepdims)]), [x], dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_prologue_with_broadcast_and_strides(dtype):
    rng = np.random.default_rng(1)
    for axes in [(0,), (1,), (0, 1), (0, 2), (2,)]:
        for op in ["sum", "mean", "max"]:
            b = GraphBuilder()
            x, y = b.input((6, 17, 33), dtype), b.input((17, 1), dtype)
            e = b.emit("exp", b.emit("sub", x, y))
            g = b.build([b.emit(op, b.emit("mul", e, b.constant(0.5, (), dtype)), axes=axes)])
            xs = rng.standard_normal((6, 33, 17)).astype(dtype).transpose(0, 2, 1)  # strided
            ys = rng.standard_normal((17, 1)).astype(dtype)
            check(g, [xs, ys], dtype)
            check(g, [np.asfortranarray(xs), ys[::-1]], dtype)


@pytest.mark.parametrize("shape,axes", [((0, 5), (0,)), ((5, 0), (1,)), ((0, 5), (1,)),
                                        ((0,), (0,)), ((3, 1), (1,)), ((1, 1), (0, 1)), ((7,), ())])
def test_empty_and_degenerate(shape, axes):
    for op in ["sum", "mean"]:
        b = GraphBuilder()
        v = b.input(shape, "float32")
        x = np.ones(shape, np.float32)
        check(b.build([b.emit(op, v, axes=axes)]), [x], "float32")


@pytest.mark.parametrize("m,n", [(1, 1), (3, 17), (257, 31), (1000, 256), (64, 4099)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_and_column_sums(m, n, dtype):
    rng = np.random.default_rng(m * n)
    x = rng.standard_normal((m, n)).astype(dtype)
    for axis in (0, 1):
        b = GraphBuilder()
        v = b.input((m, n), dtype)
        check(b.build([b.emit("sum", v, axes=(axis,))]), [x], dtype)


def test_nan_propagation_and_max_semantics():
    x = np.array([[1.0, np.nan, 3.0], [-np.inf, -np.inf, -np.inf], [2.0, 5.0, np.inf]], np.float32)
    for op in ["sum", "mean", "max"]:
        for axes in [(0,), (1,), (0, 1)]:
            b = GraphBuilder()
            v = b.input(x.shape, "float32")
            check(b.build([b.emit(op, v, axes=axes)]), [x], "float32")


def test_float32_long_sum_accuracy():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(1_000_000) + 0.5).astype(np.float32)
    exact = x.astype(np.float64).sum()
    b = GraphBuilder()
    v = b.input(x.shape, "float32")
    got = ReductionKernel.for_graph(b.build([b.emit("sum", v)]))([x])[0]
    assert abs(float(got) - exact) <= 1e-6 * abs(exact)
    col = x.reshape(-1, 1)[:, [0, 0]][:, :1].reshape(1_000_000, 1)  # column case, 1 column
    b = GraphBuilder()
    v = b.input((1_000_000, 2), "float32")
    got = ReductionKernel.for_graph(b.build([b.emit("sum", v, axes=(0,))]))(
        [np.repeat(col, 2, axis=1)])[0]
    assert np.all(np.abs(got.astype(np.float64) - exact) <= 1e-6 * abs(exact))


def test_outs_view_guard():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 19)).astype(np.float32)
    buf = np.full((3, 50), -9.5, np.float32)
    out = buf[1, 3:3 + 38:2]
    b = GraphBuilder()
    v = b.input(x.shape, "float32")
    g = b.build([b.emit("sum", v, axes=(0,))])
    got = check(g, [x], "float32", outs=[out])
    assert got is out
    mask = np.ones(buf.shape, bool)
    mask[1, 3:3 + 38:2] = False
    assert (buf[mask] == np.float32(-9.5)).all()


def test_axes_and_size_are_runtime():
    from lucid_codegen.jit import cache
    def graph(shape):
        b = GraphBuilder()
        v = b.input(shape, "float64")
        return b.build([b.emit("sum", b.emit("exp", v), axes=(1,))])
    k = ReductionKernel.for_graph(graph((4, 8)))
    check(graph((4, 8)), [np.zeros((4, 8))], "float64")
    before = cache.stats()["compiles"] + cache.stats()["hits_disk"]
    assert ReductionKernel.for_graph(graph((9, 99))) is k
    check(graph((9, 99)), [np.zeros((9, 99))], "float64")
    assert cache.stats()["compiles"] + cache.stats()["hits_disk"] == before


@pytest.mark.skipif(loops.thread_pool() is None, reason="no lucid_codegen.runtime.threads")
def test_threads_bit_identical():
    threads = loops.thread_pool()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((700, 4500)).astype(np.float32)
    results = {}
    old = threads.get_num_threads()
    try:
        for nt in (1, 2):
            threads.set_num_threads(nt)
            for axis in (0, 1):
                b = GraphBuilder()
                v = b.input(x.shape, "float32")
                g = b.build([b.emit("sum", b.emit("tanh", v), axes=(axis,))])
                results[nt, axis] = ReductionKernel.for_graph(g)([x])[0]
    finally:
        threads.set_num_threads(old)
    for axis in (0, 1):
        np.testing.assert_array_equal(results[1, axis], results[2, axis])
