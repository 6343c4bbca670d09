"""The tensor vocabulary reached from the user API so far, against PyTorch in float64:
math methods, powers, basic indexing (a view, with gradients), shape ops, cat/stack."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid

rng = np.random.default_rng(11)
DATA = rng.uniform(0.2, 2.0, (3, 4))


def pair(data=DATA, grad=True):
    return (lucid.tensor(data, dtype=lucid.float64, requires_grad=grad),
            torch.tensor(data, dtype=torch.float64, requires_grad=grad))


def check(fn, tfn=None, data=DATA, rtol=1e-10):
    """fn on lucid and (tfn or fn) on torch: values, then gradients of a weighted sum."""
    x, tx = pair(data)
    out, ref = fn(x), (tfn or fn)(tx)
    assert tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=rtol, atol=1e-12)
    if ref.dtype.is_floating_point and ref.requires_grad:
        w = rng.standard_normal(tuple(ref.shape))
        (out * lucid.tensor(w)).sum().backward()
        (ref * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "log2", "log1p", "expm1",
                                  "rsqrt", "sin", "cos", "erf", "erfc", "abs", "neg", "floor", "ceil", "round",
                                  "sign"])
def test_math_methods(name):
    check(lambda t: getattr(t, name)(), rtol=1e-9)


def test_math_of_integers_is_float32_as_in_torch():
    i = lucid.tensor([1, 2, 3])
    for name in ("sin", "exp", "sqrt", "erf"):
        got, want = getattr(i, name)(), getattr(torch.tensor([1, 2, 3]), name)()
        assert got.dtype == "float32" and want.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    assert i.isnan().dtype == "bool" and not i.isnan().numpy().any()
    assert i.round().dtype == "int64" and (i.abs() == i).numpy().all()


@pytest.mark.parametrize("expr", [lambda t: t ** 2, lambda t: t ** 0.5, lambda t: 2.0 ** t,
                                  lambda t: t ** t, lambda t: t.pow(3)])
def test_powers(expr):
    check(expr, rtol=1e-9)


@pytest.mark.parametrize("index", [0, -1, (1, 2), (slice(None), 1), (slice(1, None), slice(None, None, 2)),
                                   (None, Ellipsis, 0), (Ellipsis, None), (slice(-2, None), None, slice(3)),
                                   slice(None, None, 2), (2, slice(1, 3)), (slice(5, 9),), (-3, slice(-1, -4))])
def test_basic_indexing_values_and_gradients(index):
    check(lambda t: t[index] * 1.0)


def test_indexing_returns_a_view_and_refuses_what_it_does_not_take():
    data = np.arange(12.0).reshape(3, 4)
    x = lucid.Tensor(data)
    assert np.shares_memory(x[1:, ::2].numpy(), data)
    with pytest.raises(IndexError, match="out of bounds for dimension 1 with size 4"):
        x[0, 4]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="must be long, int, byte or bool"):
        x[[0.5, 1.0]]
    assert x[..., ...].shape == x.shape  # PyTorch 2.13 takes several '...'
    with pytest.raises(IndexError, match="past the last dimension"):
        x[..., ..., 0]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::-1]


@pytest.mark.parametrize("name,args", [("flatten", ()), ("flatten", (1,)), ("unsqueeze", (0,)),
                                       ("unsqueeze", (-1,)), ("view", (4, 3)), ("view", (-1,)),
                                       ("reshape", (2, -1, 3)), ("expand", (2, 3, 4)),
                                       ("permute", (1, 0)), ("transpose", (0, 1))])
def test_shape_ops(name, args):
    check(lambda t: getattr(t, name)(*args) * 1.0)


def test_squeeze_and_sizes():
    x = lucid.zeros(1, 3, 1, 2)
    assert x.squeeze().shape == (3, 2) and x.squeeze(0).shape == (3, 1, 2)
    assert x.squeeze((0, 2)).shape == (3, 2) and x.squeeze(1).shape == (1, 3, 1, 2)
    assert x.numel() == 6 and x.dim() == 4
    with pytest.raises(IndexError, match="dimension out of range"):
        x.unsqueeze(6)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_and_stack(dim):
    a, ta = pair(DATA)
    b, tb = pair(DATA[:, :] * 2)
    out, ref = lucid.cat([a, b], dim), torch.cat([ta, tb], dim)
    np.testing.assert_array_equal(out.numpy(), ref.detach().numpy())
    w = rng.standard_normal(tuple(ref.shape))
    (out * lucid.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(a.grad, ta.grad.numpy())
    np.testing.assert_allclose(b.grad, tb.grad.numpy())
    s, ts = lucid.stack([a, b], dim), torch.stack([ta, tb], dim)
    np.testing.assert_array_equal(s.numpy(), ts.detach().numpy())


def test_cat_promotes_and_checks():
    assert lucid.cat([lucid.tensor([1, 2]), lucid.tensor([0.5])]).dtype == "float32"
    with pytest.raises(ValueError, match="concat"):
        lucid.cat([lucid.zeros(2, 3), lucid.zeros(2, 4)])
    with pytest.raises(ValueError, match="stack: expects each tensor to be equal size"):
        lucid.stack([lucid.zeros(2), lucid.zeros(3)])


def test_the_vocabulary_compiles():
    def f(x):
        return (x[:, 1:].sin() ** 2).sum() + lucid.cat([x, x], 1)[:, ::2].erf().flatten().sum()
    x = lucid.randn(3, 4)
    np.testing.assert_allclose(lucid.compile(f)(x).item(), f(x).item(), rtol=1e-5)
