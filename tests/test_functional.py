"""lucid.nn.functional against numpy (values) and finite differences (gradients, float64)."""
import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from gradcheck import numeric_grads
from lucid import Tensor

rng = np.random.default_rng(7)


def np_log_softmax(z, axis=-1):
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def np_ce(z, t):
    return -np_log_softmax(z, 1)[np.arange(len(t)), t].mean()


FUNCTIONS = {
    "linear": (lambda x, w, b: F.linear(x, w, b), lambda x, w, b: x @ w.T + b, [(5, 3), (4, 3), (4,)]),
    "linear_3d": (lambda x, w, b: F.linear(x, w, b), lambda x, w, b: x @ w.T + b, [(2, 3, 3), (4, 3), (1, 4)]),
    "linear_nobias": (lambda x, w: F.linear(x, w), lambda x, w: x @ w.T, [(1, 7), (2, 7)]),
    "relu": (F.relu, lambda x: np.maximum(x, 0), [(4, 5)]),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), [(4, 5)]),
    "tanh": (F.tanh, np.tanh, [(3, 3)]),
    "softmax": (F.softmax, lambda z: np.exp(np_log_softmax(z)), [(3, 6)]),
    "softmax_axis0": (lambda x: F.softmax(x, axis=0), lambda z: np.exp(np_log_softmax(z, 0)), [(3, 6)]),
    "log_softmax": (F.log_softmax, np_log_softmax, [(4, 5)]),
    "mse_loss": (F.mse_loss, lambda x, t: ((x - t) ** 2).mean(), [(3, 4), (3, 4)]),
    "mse_sum": (lambda x, t: F.mse_loss(x, t, reduction="sum"), lambda x, t: ((x - t) ** 2).sum(), [(5,), (5,)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, np.array([2, 0, 1, 2])),
                      lambda z: np_ce(z, np.array([2, 0, 1, 2])), [(4, 3)]),
    "tensor_ops": (lambda a, b: ((a * b - a / (b * b + 1)) + (-a).exp()).mean(axis=0),
                   lambda a, b: ((a * b - a / (b * b + 1)) + np.exp(-a)).mean(axis=0), [(3, 4), (4,)]),
    "matmul_T": (lambda a, b: (a @ b.T).log() if False else a @ b.T, lambda a, b: a @ b.T, [(3, 4), (5, 4)]),
    "transpose_sum": (lambda a: a.transpose(0, 2).sum(axis=(0, 1)), lambda a: a.transpose(2, 1, 0).sum(axis=(0, 1)), [(2, 3, 4)]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_match_numpy(name, dtype):
    fn, ref, shapes = FUNCTIONS[name]
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    out = fn(*[Tensor(a) for a in arrays])
    assert out.dtype == dtype
    want = ref(*[a.astype(np.float64) for a in arrays])
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out.numpy(), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradients_match_finite_differences(name):
    fn, _, shapes = FUNCTIONS[name]
    arrays = [rng.standard_normal(s) for s in shapes]
    weights = None

    def scalar(xs):
        out = fn(*[Tensor(a) for a in xs]).numpy()
        return float(np.sum(out * weights))

    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    weights = rng.standard_normal(out.shape)
    out.backward(weights)
    for t, want in zip(tensors, numeric_grads(scalar, arrays)):
        np.testing.assert_allclose(t.grad, want, rtol=1e-6, atol=1e-7)


def test_cross_entropy_soft_targets_equal_hard_targets():
    z = rng.standard_normal((3, 4))
    t = np.array([1, 3, 0])
    soft = np.eye(4)[t]
    np.testing.assert_allclose(F.cross_entropy(Tensor(z), t).item(),
                               F.cross_entropy(Tensor(z), soft).item(), rtol=1e-12)


def test_softmax_is_stable_for_large_logits():
    z = Tensor([[1000.0, 0.0, -1000.0]])
    np.testing.assert_allclose(F.softmax(z).numpy(), [[1.0, 0.0, 0.0]])
    assert np.isfinite(F.log_softmax(z).numpy()[0, 0])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_over_an_empty_axis_is_empty_as_in_pytorch(name):
    """Nothing to normalise (found by tests/fuzz_api.py): an empty result of the input's
    shape, eager and compiled, with an empty gradient; an axis out of range still raises."""
    fn = getattr(F, name)
    x = lucid.zeros((7, 0), requires_grad=True)
    y = fn(x, dim=1)
    y.sum().backward()
    assert y.shape == (7, 0) and x.grad.shape == (7, 0)
    assert lucid.compile(lambda t: fn(t, dim=-1))(lucid.zeros((3, 0))).shape == (3, 0)
    assert fn(lucid.zeros((0, 4)), dim=1).shape == (0, 4)
    with pytest.raises(ValueError):
        fn(lucid.zeros((7, 0)), dim=5)


def test_linear_of_no_input_features_is_its_bias():
    """in_features = 0 (found by tests/fuzz_api.py): x @ Wᵀ sums nothing, as in PyTorch."""
    import torch
    w, b = np.ones((7, 0), np.float32), np.arange(7, dtype=np.float32)
    for shape in [(0,), (3, 0), (2, 1, 0)]:
        got = F.linear(lucid.zeros(shape), lucid.tensor(w), lucid.tensor(b)).numpy()
        want = torch.nn.functional.linear(torch.zeros(shape), torch.tensor(w), torch.tensor(b)).numpy()
        np.testing.assert_array_equal(got, want)
