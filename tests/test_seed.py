"""The seed page's two examples, run verbatim, give the true values (the page's printed
outputs contain arithmetic mistakes; see README, "Where the seed page is wrong")."""
import numpy as np

import lucid
import lucid.nn.functional as F
from lucid import Tensor


def test_first_example_without_bias():
    input_ = Tensor([[1.0, 2.0, 3.0]], requires_grad=True)  # Shape: (1, 3)
    weight = Tensor([[4.0, 5.0, 6.0],
                     [7.0, 8.0, 9.0]], requires_grad=True)  # Shape: (2, 3)
    out = F.linear(input_, weight)  # Shape: (1, 2)
    assert repr(out) == "Tensor([[32.0, 50.0]], grad=None)"
    out.backward()
    # The page prints the weight matrix here; the true gradient sums its rows.
    np.testing.assert_array_equal(input_.grad, [[11.0, 13.0, 15.0]])
    np.testing.assert_array_equal(weight.grad, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    assert input_.grad.dtype == lucid.float32


def test_second_example_with_bias():
    input_ = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)  # Shape: (2, 2)
    weight = Tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)  # Shape: (2, 2)
    bias = Tensor([[9.0, 10.0]], requires_grad=True).reshape(1, -1)  # Shape: (1, 2)
    out = F.linear(input_, weight, bias)  # Shape: (2, 2)
    np.testing.assert_array_equal(out.numpy(), [[26.0, 33.0], [48.0, 63.0]])  # page: 75
    out.backward()
    np.testing.assert_array_equal(input_.grad, [[12.0, 14.0], [12.0, 14.0]])
    np.testing.assert_array_equal(weight.grad, [[4.0, 6.0], [4.0, 6.0]])
    np.testing.assert_array_equal(bias.grad, [[2.0, 2.0]])  # page: [1, 1]; a batch of two


def test_linear_matches_numpy_on_batched_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3, 7)).astype(np.float32)
    w = rng.standard_normal((4, 7)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out = F.linear(Tensor(x), Tensor(w), Tensor(b))
    assert out.shape == (2, 5, 3, 4)
    np.testing.assert_allclose(out.numpy(), x @ w.T + b, rtol=1e-5, atol=1e-5)
