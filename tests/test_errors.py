"""Bad input gets a clear Python exception naming the op and the shapes."""
import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid import Tensor


def test_linear_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"linear: input \(2, 3\) and weight \(2, 4\) do not fit: in_features 3 != 4"):
        F.linear(lucid.zeros(2, 3), lucid.zeros(2, 4))


def test_linear_bad_bias_and_weight():
    with pytest.raises(ValueError, match=r"linear: bias \(3,\) does not fit weight \(2, 4\)"):
        F.linear(lucid.zeros(2, 4), lucid.zeros(2, 4), lucid.zeros(3))
    with pytest.raises(ValueError, match=r"linear: weight must be 2-D"):
        F.linear(lucid.zeros(2, 4), lucid.zeros(4))


@pytest.mark.parametrize("data", ["abc", [["a", "b"]], [1 + 2j], [object()], [[1.0], [1.0, 2.0]]])
def test_non_numeric_data_raises_type_error(data):
    with pytest.raises(TypeError):
        Tensor(data)


def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        lucid.zeros(2, 3) + lucid.zeros(4)


def test_matmul_mismatch():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) do not fit"):
        lucid.zeros(2, 3) @ lucid.zeros(2, 3)


def test_reshape_and_axes_errors():
    with pytest.raises(ValueError, match=r"reshape: shape '\[4, 2\]' is invalid for input of size 6 \(input shape \(2, 3\)\)"):
        lucid.zeros(2, 3).reshape(4, 2)
    with pytest.raises(IndexError, match=r"sum\(\): dimension out of range .* shape \(2, 3\)"):
        lucid.zeros(2, 3).sum(axis=2)  # PyTorch's error type (lucid.reductions)


def test_loss_errors():
    with pytest.raises(ValueError, match=r"mse_loss: input \(2,\) and target \(3,\)"):
        F.mse_loss(lucid.zeros(2), lucid.zeros(3))
    with pytest.raises(IndexError, match=r"cross_entropy: Target 3 is out of bounds: classes lie in \[0, 3\)"):
        F.cross_entropy(lucid.zeros(2, 3), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"cross_entropy: logits \(2, 3\) and target \(3,\)"):
        F.cross_entropy(lucid.zeros(2, 3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(lucid.zeros(2), lucid.zeros(2), reduction="avg")


def test_item_of_many_elements():
    with pytest.raises(ValueError, match=r"item: only a one-element tensor"):
        lucid.zeros(2).item()


def test_backward_gradient_shape_mismatch():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"backward: gradient of shape \(3,\)"):
        (x * 2).backward(np.ones(3))
