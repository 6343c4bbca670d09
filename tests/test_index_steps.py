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


def _concat_step(shapes, axis):
    b = GraphBuilder()
    xs = [b.input(shape) for shape in shapes]
    return index_step(b.build([b.emit("concat", *xs, axis=axis)]).nodes[0])


@pytest.mark.parametrize("shapes, axis, views", [
    ([(5, 7, 3), (5, 2, 3)], 1, False),            # rows walked: the nested loop
    ([(4, 6, 9), (4, 6, 9), (4, 6, 9)], 2, True),  # transposed sources (a head split's gradients)
    ([(13,), (4,)], 0, False),                     # one dimension: the flat walk
    ([(1, 17), (1, 17)], 0, True)])                # one row per part
def test_concat_shares_copy_each_row_once(shapes, axis, views):
    """A concat's call copies the share lo/den .. hi/den of each part's rows: adjacent
    shares, in any order, give the whole concat once; a share leaves other rows alone."""
    rng = np.random.default_rng(len(shapes))
    xs = [rng.normal(size=s).astype(np.float32) for s in shapes]
    if views:
        xs = [np.ascontiguousarray(x.T).T for x in xs]
    step = _concat_step(shapes, axis)
    fn, words, args, in_words = step._prepare(xs)
    den = args[3]
    assert args == (0, den, 0, den) and den > 1 and step.lanes
    expected = np.concatenate(xs, axis=axis)

    def run(shares):
        out = np.full(expected.shape, np.nan, np.float32)
        block = (ctypes.c_int64 * len(words))(*words)
        for w, a in zip(in_words, xs):
            block[w] = data_ptr(a)
        block[step.out_word] = data_ptr(out)
        for lo, hi in shares:
            fn(block, lo, hi, 0, den)
        return out
    np.testing.assert_array_equal(run([(0, den)]), expected)
    for cuts in ([den // 2], [1, den // 3, den - 1], list(range(1, den))):
        bounds = [0] + cuts + [den]
        shares = list(zip(bounds, bounds[1:]))
        np.testing.assert_array_equal(run(shares[::-1]), expected)
    part = run([(0, den // 2)])
    assert np.isnan(part).any() and np.isnan(run([])).all()
    np.testing.assert_array_equal(np.where(np.isnan(part), expected, part), expected)


def test_concats_and_copying_reshapes_split_in_native_programs():
    """A compiled concat of transposed views and a reshape that must copy split their
    rows across threads: the same bits at 1, 2 and 3 threads, numpy's values."""
    from lucid_codegen.runtime import native_plan, threads
    rng = np.random.default_rng(3)
    q, k, v = (lucid.tensor(rng.normal(size=(16, 4, 64, 32)).astype(np.float32)) for _ in range(3))

    def f(q, k, v):
        return (lucid.cat([q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)], dim=-1),
                (q * 2).transpose(1, 2).reshape(16, 64, 128))
    fn = lucid.compile(f)
    want = [np.concatenate([a.numpy().transpose(0, 2, 1, 3) for a in (q, k, v)], axis=-1),
            (q.numpy() * 2).transpose(0, 2, 1, 3).reshape(16, 64, 128)]
    from lucid_codegen.kernels import index as index_kernels
    copy = index_kernels.kernel("copy", 4)
    seen = []
    real = native_plan._ranges
    old = threads.get_num_threads()
    try:
        native_plan._ranges = lambda job, nt: seen.append((job.fn is copy, real(job, nt))) or seen[-1][1]
        outs = {}
        for n in (1, 2, 3, 2):
            threads.set_num_threads(n)
            for _ in range(3):
                outs[n] = [o.numpy().copy() for o in fn(q, k, v)]
    finally:
        native_plan._ranges = real
        threads.set_num_threads(old)
    for a, w in zip(outs[1], want):
        np.testing.assert_array_equal(a, w)
    for n in (2, 3):
        for a, c in zip(outs[1], outs[n]):
            assert np.array_equal(a, c)
    assert sum(is_copy and p is not None and len(p) > 1 for is_copy, p in seen) >= 2  # the concat, the reshape


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
