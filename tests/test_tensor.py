"""The Tensor API: construction, dtypes, attributes, operators, autograd behaviour."""
import numpy as np
import pytest

import lucid
from lucid import Tensor


def test_lists_and_scalars_become_float32_and_float_arrays_keep_dtype():
    assert Tensor([1, 2, 3]).dtype == "float32"
    assert Tensor(2.5).dtype == "float32"
    assert Tensor(np.zeros(3, np.float64)).dtype == "float64"
    assert Tensor(np.zeros(3, np.float32)).dtype == "float32"
    assert Tensor(np.arange(3)).dtype == "float32"          # integers: float32
    assert Tensor([1.0], dtype="float64").dtype == "float64"


def test_attributes():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert t.shape == (2, 2) and t.ndim == 2 and t.requires_grad and t.is_leaf and t.grad is None
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert isinstance(t.numpy(), np.ndarray)
    assert Tensor([[3.0]]).item() == 3.0
    d = t.detach()
    assert not d.requires_grad and d.is_leaf
    y = t * 2
    assert not y.is_leaf and y.requires_grad


def test_repr_matches_the_seed_form():
    assert repr(Tensor([[32.0, 50.0]])) == "Tensor([[32.0, 50.0]], grad=None)"
    t = Tensor([1.5], requires_grad=True)
    (t * t).sum().backward()
    assert repr(t) == "Tensor([1.5], grad=[3.0])"


def test_operators_match_numpy():
    a = np.array([[1.0, -2.0], [3.0, 4.0]], np.float32)
    b = np.array([0.5, 2.0], np.float32)
    A, B = Tensor(a), Tensor(b)
    for got, want in [(A + B, a + b), (A - B, a - b), (A * B, a * b), (A / B, a / b), (-A, -a),
                      (2 - A, 2 - a), (1 / B, 1 / b), (A @ A, a @ a), (A.T, a.T), (A.exp(), np.exp(a)),
                      (B.log(), np.log(b)), (A.sum(), a.sum()), (A.mean(axis=0), a.mean(0)),
                      (A.reshape(4), a.reshape(4)), (A.transpose(), a.T), (A @ B, a @ b)]:
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
        assert got.dtype == "float32"


def test_mixed_dtypes_promote_to_float64():
    out = Tensor([1.0], dtype="float32") + Tensor([1.0], dtype="float64")
    assert out.dtype == "float64"


def test_backward_seeds_non_scalar_outputs_with_ones_and_accumulates():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3).backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, [5.0, 7.0])  # accumulated
    x.zero_grad()
    assert x.grad is None


def test_backward_twice_without_retain_graph_raises():
    x = Tensor([1.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [4.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).backward()


def test_no_grad_records_nothing():
    w = Tensor([1.0], requires_grad=True)
    with lucid.no_grad():
        y = w * 2
    assert not y.requires_grad
    assert lucid.is_grad_enabled()


def test_retain_grad_on_intermediate():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = (x * 2).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_array_equal(h.grad, [4.0, 8.0])
    np.testing.assert_array_equal(x.grad, [8.0, 16.0])


def test_creation_functions_and_seed():
    assert lucid.zeros(2, 3).numpy().sum() == 0 and lucid.ones((2,)).numpy().sum() == 2
    assert lucid.zeros(2, dtype="float64").dtype == "float64"
    lucid.random.seed(3)
    a = lucid.randn(4).numpy()
    lucid.random.seed(3)
    np.testing.assert_array_equal(a, lucid.randn(4).numpy())
    assert lucid.tensor([1.0], requires_grad=True).requires_grad


def test_zero_size_tensors():
    x = Tensor(np.zeros((0, 3), np.float32), requires_grad=True)
    w = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    out = lucid.nn.functional.linear(x, w)
    assert out.shape == (0, 2)
    out.sum().backward()
    np.testing.assert_array_equal(w.grad, np.zeros((2, 3)))


def test_gradients_are_owned_arrays():
    # add's gradient is the same array for both inputs: each must get its own
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor([3.0, 4.0], requires_grad=True)
    (x + y).backward()
    x.grad *= 10
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])
    # a gradient passed straight through a reshape must not alias the caller's seed
    z = Tensor([[1.0, 2.0]], requires_grad=True)
    seed = np.array([5.0, 6.0], np.float32)
    z.reshape(2).backward(seed)
    seed[:] = 0
    np.testing.assert_array_equal(z.grad, [[5.0, 6.0]])
