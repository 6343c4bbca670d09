"""Regression tests for small correctness fixes (round 2), PyTorch as the reference."""
import numpy as np
import pytest
import torch

import lucid
from lucid import dispatch, index_plan


def test_fast_paths_keep_the_inner_results_a_gradient_reads():
    """call2 on a cached multi-step chain whose gradient reads an inner step result."""
    data = np.arange(12.0).reshape(4, 3)
    x = lucid.tensor(data, requires_grad=True)
    i = lucid.tensor([0, 2])
    plan, _ = index_plan.prepare(x, i)
    for _ in range(2):  # the second call hits the cached entry through the fast path
        y = dispatch.call2(plan.chain, x, i, lambda a, b: dispatch.call(plan.chain, [a, b]))
    (y * y).sum().backward()
    tx = torch.tensor(data, requires_grad=True)
    (tx[torch.tensor([0, 2])] ** 2).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy())


@pytest.mark.parametrize("expr", [
    lambda m: m.tensor([7, 2]) // m.tensor([1, 0]),
    lambda m: m.tensor([7, 2]) % 0,
    lambda m: 5 // m.tensor([1, 0]),
    lambda m: 5 % m.tensor([0, 1]),
])
def test_integer_floordiv_and_mod_by_zero_raise_as_torch(expr):
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        expr(torch)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        expr(lucid)


@pytest.mark.parametrize("expr", [
    lambda m: m.tensor([7, -7]) // 2,
    lambda m: m.tensor([7, -7]) % m.tensor([3, 2]),
    lambda m: 7 % m.tensor([3, -2]),
    lambda m: m.tensor([1.0, -2.0], dtype=m.float64) // 0,
    lambda m: m.tensor([1.0, -2.0], dtype=m.float64) % m.tensor([0, 3]),
    lambda m: m.tensor([7, 2]) // m.tensor([0.0, 1.0], dtype=m.float64),
])
def test_division_operators_still_match_torch(expr):
    ref = expr(torch)
    got = expr(lucid)
    assert str(got.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_array_equal(np.asarray(got.tolist()), ref.numpy())


@pytest.mark.parametrize("shape", [(4,), (-1, 4), (-1, -1), (-2, 3), (0, -1)])
@pytest.mark.parametrize("method", ["reshape", "view"])
def test_impossible_reshape_raises_torchs_runtime_error(method, shape):
    with pytest.raises(RuntimeError) as ref:
        getattr(torch.ones(2, 3), method)(*shape)
    with pytest.raises(RuntimeError) as got:
        getattr(lucid.ones(2, 3), method)(*shape)
    assert isinstance(got.value, ValueError)  # older callers catch ValueError
    assert str(got.value) == str(ref.value)
    with pytest.raises(RuntimeError, match="invalid for input of size"):
        lucid.reshape(lucid.ones(2, 3), (4,))
