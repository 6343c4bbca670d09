"""The index kernels' plan steps (``runtime/index_steps.py``) called directly, and the
eager calls that reach them through the one-call trampoline with views around them.

The gather kernel moves whole rows in vectors when the index is constant along a row
of unit-stride elements (an embedding, ``x[idx]``): rows of every length around the
vector width, out-of-range indices (a zero row), and a row range split as threads
split it must all give numpy's values.
"""
import ctypes

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid_ir.builder import GraphBuilder
from lucid_codegen.runtime import plan as plan_module
from lucid_codegen.runtime.index_steps import index_step
from lucid_codegen.runtime.pyarray import data_ptr


def _gather_step(x_shape, index_shape, dtype, axis=0):
    b = GraphBuilder()
    x, i = b.input(x_shape, dtype), b.input(index_shape, "int64")
    return index_step(b.build([b.emit("gather", x, i, axis=axis)]).nodes[0])


def _reference(x, index, axis=0):
    """numpy's take_along_axis, with 0 where the index is out of range."""
    n = x.shape[axis]
    valid = (index >= 0) & (index < n)
    out = np.take_along_axis(x, np.where(valid, index, 0), axis=axis)
    return np.where(valid, out, np.zeros((), x.dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "bool"])
@pytest.mark.parametrize("width", [1, 7, 15, 16, 17, 33])
def test_row_gather_matches_numpy_with_out_of_range_rows_zero(dtype, width):
    rng = np.random.default_rng(width)
    x = rng.normal(size=(11, width)).astype(dtype) if dtype != "bool" else rng.random((11, width)) > 0.5
    rows = np.array([3, 0, 10, -1, 11, 5, 10**12, 7], np.int64)
    index = np.broadcast_to(rows[:, None], (len(rows), width))  # stride 0 along the row
    (out,) = _gather_step(x.shape, index.shape, dtype)(x, index)
    np.testing.assert_array_equal(out, _reference(x, index))


@pytest.mark.parametrize("width", [5, 16, 37])
def test_row_gather_split_into_row_and_column_ranges_writes_each_element_once(width):
    """The ranges a native program hands each thread: any row range, any column range."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, width)).astype(np.float32)
    rows = rng.integers(-2, 11, size=6)
    index = np.broadcast_to(rows[:, None], (6, width))
    step = _gather_step(x.shape, index.shape, "float32")
    fn, words, _, in_words = step._prepare([x, index])
    expected = _reference(x, index)
    for lo, hi, lo2, hi2 in [(0, 6, 0, width), (2, 5, 0, width), (0, 6, 3, width - 1), (4, 6, width // 2, width)]:
        out = np.full((6, width), np.nan, np.float32)
        block = (ctypes.c_int64 * len(words))(*words)
        for w, a in zip(in_words, (x, index)):
            block[w] = data_ptr(a)
        block[step.out_word] = data_ptr(out)
        fn(block, lo, hi, lo2, hi2)
        np.testing.assert_array_equal(out[lo:hi, lo2:hi2], expected[lo:hi, lo2:hi2])
        untouched = np.ones((6, width), bool)
        untouched[lo:hi, lo2:hi2] = False
        assert np.isnan(out[untouched]).all()


def test_strided_gather_still_matches_numpy():
    """Not a row gather (the index varies along the row): the element-wise walk."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    index = rng.integers(-1, 7, size=(4, 5))
    (out,) = _gather_step(x.shape, index.shape, "float32", axis=1)(x, index)
    np.testing.assert_array_equal(out, _reference(x, index, axis=1))


def _eager_runner_kind(fn):
    """``"trampoline"`` when the eager call of the latest signature took one trampoline
    call (``eager_call.fast_call``), else ``"plan"``."""
    runs = []
    original = plan_module.eager_runner

    def spy(fused, arrays, scalars=()):
        run = original(fused, arrays, scalars)
        runs.append(run)
        return run
    plan_module.eager_runner = spy
    try:
        result = fn()
    finally:
        plan_module.eager_runner = original
    assert runs, "the signature was already prepared"
    return result, "trampoline" if hasattr(runs[-1], "block") else "plan"


def test_views_around_one_kernel_take_the_trampoline_and_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    w = rng.normal(size=(997, 13)).astype(np.float32)
    idx = rng.integers(0, 997, size=(3, 5))
    got, kind = _eager_runner_kind(lambda: F.embedding(lucid.tensor(idx), lucid.tensor(w)))
    assert kind == "trampoline"  # reshape + broadcast views, gather, reshape of its output
    want = torch.nn.functional.embedding(torch.tensor(idx), torch.tensor(w)).numpy()
    np.testing.assert_array_equal(got.numpy(), want)
    a, b = rng.normal(size=(2, 7, 3)).astype(np.float32)
    got, kind = _eager_runner_kind(lambda: lucid.stack([lucid.tensor(a), lucid.tensor(b)], dim=1))
    assert kind == "trampoline"
    np.testing.assert_array_equal(got.numpy(), np.stack([a, b], 1))


def test_a_view_that_moves_the_data_pointer_takes_the_general_call():
    """x[1:] starts one row in: the trampoline cannot pass x's own pointer for it."""
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    y = lucid.tensor(x)[1:]
    got, _ = _eager_runner_kind(lambda: lucid.stack([y, y * 2.0]))
    np.testing.assert_array_equal(got.numpy(), np.stack([x[1:], x[1:] * 2]))


def test_embedding_checks_indices_of_either_integer_dtype_before_native_code():
    w = lucid.randn(10, 4)
    for dtype in (np.int64, np.int32):
        with pytest.raises(IndexError, match="index out of range"):
            F.embedding(lucid.tensor(np.array([[1, 10]], dtype)), w)
        with pytest.raises(IndexError, match="index out of range"):
            F.embedding(lucid.tensor(np.array([-1], dtype)), w)
        got = F.embedding(lucid.tensor(np.array([[9, 0]], dtype)), w)
        np.testing.assert_array_equal(got.numpy(), w.numpy()[[[9, 0]]])
