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
    # PyTorch's message, prefixed by the op and followed by the input's shape
    assert str(got.value).startswith(f"{method}: {ref.value}") and "(2, 3)" in str(got.value)
    with pytest.raises(RuntimeError, match="invalid for input of size"):
        lucid.reshape(lucid.ones(2, 3), (4,))


_NAMED = {
    "bmm": lambda m, F: m.bmm(m.ones(2, 3, 4, requires_grad=True), m.ones(2, 4, 5)),
    "index": lambda m, F: m.ones(4, 3, requires_grad=True)[m.tensor([0, 2])],
    "gather": lambda m, F: m.gather(m.ones(4, 3, requires_grad=True), 1, m.tensor([[0], [1], [2], [0]])),
    "cat": lambda m, F: m.cat([m.ones(2, 3, requires_grad=True), m.ones(2, 3)]),
    "softmax": lambda m, F: F.softmax(m.ones(2, 3, requires_grad=True), dim=1),
    "log_softmax": lambda m, F: F.log_softmax(m.ones(2, 3, requires_grad=True), dim=1),
    "layer_norm": lambda m, F: F.layer_norm(m.ones(2, 3, requires_grad=True), (3,)),
    "conv2d": lambda m, F: F.conv2d(m.ones(1, 1, 4, 4, requires_grad=True), m.ones(1, 1, 3, 3)),
    "embedding": lambda m, F: F.embedding(m.tensor([0, 1]), m.ones(3, 2, requires_grad=True)),
    "mse_loss": lambda m, F: F.mse_loss(m.ones(2, 3, requires_grad=True), m.zeros(2, 3)),
    "cross_entropy": lambda m, F: F.cross_entropy(m.ones(2, 3, requires_grad=True), m.tensor([0, 1])),
    "gelu": lambda m, F: F.gelu(m.ones(2, 3, requires_grad=True)),
    "mm": lambda m, F: m.ones(2, 3, requires_grad=True) @ m.ones(3, 4),
    "linear": lambda m, F: F.linear(m.ones(2, 3, requires_grad=True), m.ones(4, 3), m.ones(4)),
}


@pytest.mark.parametrize("name", sorted(_NAMED))
def test_grad_fn_names_match_torch(name):
    import lucid.nn.functional as LF
    import torch.nn.functional as TF
    make = _NAMED[name]
    expected = make(torch, TF).grad_fn.name()
    for _ in range(2):  # the first call builds the entry, the second takes the fast path
        assert make(lucid, LF).grad_fn.name() == expected


@pytest.mark.parametrize("index", [
    "x[..., 0, ...]", "x[..., ...]", "x[0, ..., ...]", "x[..., None, ...]", "x[..., 1, ..., ...]",
    "x[0, ..., 1, ...]", "x[..., 0, None, ...]", "x[0, 1, ..., 2, ...]", "x[0, ..., 1, 2, ..., None]",
    "x[..., 0, ..., 1]", "x[..., ..., None]", "x[..., 0, ..., None]",
])
def test_several_ellipses_as_torch(index):
    data = np.arange(24).reshape(2, 3, 4)
    try:
        ref = eval(index, {"x": torch.tensor(data)})
    except IndexError:
        with pytest.raises(IndexError):
            eval(index, {"x": lucid.tensor(data)})
        return
    got = eval(index, {"x": lucid.tensor(data)})
    assert tuple(got.shape) == tuple(ref.shape)
    np.testing.assert_array_equal(np.asarray(got.tolist()), ref.numpy())
