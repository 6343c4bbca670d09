"""The index kernels walk their rows as an odometer (``lucid_codegen.kernels.loops.RowWalk``):
the first row's offsets decoded once, the next rows' by carries. These tests walk many
short rows of many dimensions, from row 0 and from the middle (a thread's part), and
compare with numpy."""
import itertools

import numpy as np
import pytest

import lucid
from lucid_codegen.runtime import threads
from lucid_codegen.runtime import work_split

PERMS = [(0, 1, 3, 5, 2, 4), (5, 4, 3, 2, 1, 0), (2, 0, 4, 1, 5, 3)]


@pytest.mark.parametrize("perm", PERMS)
@pytest.mark.parametrize("nt", [1, 2])
def test_compiled_transposed_copies_match_numpy(perm, nt, monkeypatch):
    """A 6-D transpose then a reshape (a copy of short strided rows), compiled, with
    the copy's rows split across threads when nt = 2."""
    monkeypatch.setattr(work_split, "LOOP_SPLIT_BYTES", 64)
    old = threads.get_num_threads()
    threads.set_num_threads(nt)
    try:
        x = np.random.default_rng(3).standard_normal((3, 2, 5, 2, 7, 3))
        fn = lucid.compile(lambda t: (t.permute(*perm).reshape(-1) * 2.0))
        for _ in range(3):  # step by step, then the native program
            out = fn(lucid.tensor(x)).numpy()
            np.testing.assert_array_equal(out, x.transpose(perm).reshape(-1) * 2.0)
    finally:
        threads.set_num_threads(old)


@pytest.mark.parametrize("nt", [1, 2])
def test_gather_and_its_gradient_over_many_short_rows(nt, monkeypatch):
    """gather along a middle axis of a 5-D tensor (rows of 3 over 4 outer dimensions,
    rows split across threads when nt = 2) and its scatter-add gradient."""
    monkeypatch.setattr(work_split, "LOOP_SPLIT_BYTES", 64)
    old = threads.get_num_threads()
    threads.set_num_threads(nt)
    try:
        rng = np.random.default_rng(5)
        x = rng.standard_normal((2, 3, 5, 4, 3))
        index = rng.integers(0, 5, (2, 3, 7, 4, 3))
        weights = rng.standard_normal(index.shape)
        for _ in range(3):
            t = lucid.tensor(x, requires_grad=True)
            y = lucid.gather(t, 2, lucid.tensor(index))
            (y * lucid.tensor(weights)).sum().backward()
            np.testing.assert_array_equal(y.detach().numpy(), np.take_along_axis(x, index, 2))
            expected = np.zeros_like(x)
            for pos in itertools.product(*(range(n) for n in index.shape)):
                at = pos[:2] + (index[pos],) + pos[3:]
                expected[at] += weights[pos]
            np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-12, atol=1e-12)
    finally:
        threads.set_num_threads(old)


@pytest.mark.parametrize("width", [1, 5, 16, 17, 33])
def test_unit_stride_rows_copy_and_add_with_a_masked_tail(width, monkeypatch):
    """Index copies move unit-stride rows in 64-byte vectors and a masked last one: a
    concat of strided slices (rows of ``width``) and the embed_sum of its gradient, with
    bounds checking (a masked lane that touched memory would show in the guards)."""
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    x0 = np.random.default_rng(6).standard_normal((3, 6, width + 2))
    x = lucid.tensor(x0, requires_grad=True)

    def taps(t):
        return lucid.cat([t[:, i:i + 4, j:j + width] for i in range(3) for j in range(3)], dim=2)

    fn = lucid.compile(lambda t: (taps(t) ** 2).sum())
    for _ in range(2):
        x.grad = None
        loss = fn(x)
        loss.backward()
    want = np.concatenate([x0[:, i:i + 4, j:j + width] for i in range(3) for j in range(3)], axis=2)
    np.testing.assert_allclose(loss.item(), (want ** 2).sum(), rtol=1e-12)
    grad = np.zeros_like(x0)
    for i in range(3):
        for j in range(3):
            grad[:, i:i + 4, j:j + width] += 2 * x0[:, i:i + 4, j:j + width]
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-12, atol=1e-12)
