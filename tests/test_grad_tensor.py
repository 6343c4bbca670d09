"""``Tensor.grad`` is a Tensor sharing memory with the stored gradient (PyTorch's patterns)."""
import numpy as np
import pytest

import lucid


def _param():
    w = lucid.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (w * w).sum().backward()
    return w


def test_grad_is_a_tensor_with_the_gradient():
    w = _param()
    assert isinstance(w.grad, lucid.Tensor) and not w.grad.requires_grad
    assert w.grad.shape == (3,) and w.grad.tolist() == [2.0, -4.0, 6.0]
    np.testing.assert_allclose(w.grad.numpy(), [2.0, -4.0, 6.0])
    assert float((w.grad * w.grad).sum()) == 56.0


def test_in_place_ops_change_the_gradient():
    w = _param()
    w.grad.zero_()
    assert (w.grad == 0).all() and not w._grad.any()
    g = w.grad
    g.add_(lucid.ones(3))
    assert w._grad.tolist() == [1.0, 1.0, 1.0]
    w.grad += lucid.ones(3)
    assert w.grad.tolist() == [2.0, 2.0, 2.0]


def test_reading_grad_is_cached_and_clone_is_a_copy():
    w = _param()
    assert w.grad is w.grad
    c = w.grad.clone()
    c.zero_()
    assert w.grad.tolist() == [2.0, -4.0, 6.0]


def test_setter_accepts_tensor_array_none():
    w = _param()
    w.grad = lucid.zeros_like(w)
    assert w.grad.tolist() == [0.0, 0.0, 0.0]
    w.grad = np.ones(3, np.float32)
    assert w.grad.tolist() == [1.0, 1.0, 1.0]
    w.grad = None
    assert w.grad is None


def test_setter_errors_match_torch():
    w = _param()
    with pytest.raises(RuntimeError, match="different size"):
        w.grad = lucid.ones(4)
    with pytest.raises(RuntimeError, match="different type"):
        w.grad = np.ones(3, np.float64)
    with pytest.raises(TypeError):
        w.grad = [1.0, 2.0, 3.0]


def test_retain_grad_and_hooks_give_tensors():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    seen = []
    x.register_hook(lambda g: seen.append(g))
    y.sum().backward()
    assert isinstance(y.grad, lucid.Tensor) and y.grad.tolist() == [1.0, 1.0]
    assert x.grad.tolist() == [3.0, 3.0] and len(seen) == 1


def test_compiled_step_reads_and_writes_grad():
    w = lucid.tensor([1.0, 2.0], requires_grad=True)

    @lucid.compile
    def step():
        w.grad = None
        (w * w).sum().backward()
        w.grad = w.grad * 0.5
        return w.grad.sum()

    for _ in range(2):
        out = step()
        assert isinstance(w.grad, lucid.Tensor) and w.grad.tolist() == [1.0, 2.0]
        assert float(out) == 3.0
