"""lucid.nn modules and lucid.optim optimisers."""
import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.optim import SGD, Adam


def mlp():
    lucid.random.seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3), nn.Sigmoid())


def test_linear_init_bounds_and_shapes():
    lucid.random.seed(1)
    layer = nn.Linear(100, 7)
    assert layer.weight.shape == (7, 100) and layer.bias.shape == (7,)
    assert np.abs(layer.weight.numpy()).max() <= 0.1 and np.abs(layer.weight.numpy()).max() > 0.09
    assert layer.weight.dtype == "float32" and layer.weight.requires_grad
    assert nn.Linear(3, 2, bias=False).bias is None


def test_parameters_state_dict_round_trip():
    a, b = mlp(), mlp()
    for p in b.parameters():
        p._data[...] = 0
    b.load_state_dict(a.state_dict())
    x = lucid.randn(5, 4)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    assert list(a.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    with pytest.raises(RuntimeError, match="Missing key"):
        b.load_state_dict({"0.weight": a.state_dict()["0.weight"]})
    bad = a.state_dict()
    bad["0.bias"] = np.zeros(3)
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.bias: copying a param with shape "
                                           r"lucid.Size\(\[3\]\) from checkpoint, the shape in "
                                           r"current model is lucid.Size\(\[8\]\)"):
        b.load_state_dict(bad)


def test_train_eval_and_zero_grad():
    model = mlp()
    assert model.eval().training is False and all(not m.training for _, m in model.named_modules())
    model.train()
    F.mse_loss(model(lucid.randn(2, 4)), lucid.zeros(2, 3)).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_custom_module_registration_and_repr():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.scale = nn.Parameter([1.0])

        def forward(self, x):
            return self.fc(x) * self.scale

    net = Net()
    # own parameters first, then submodules', as in PyTorch
    assert [n for n, _ in net.named_parameters()] == ["scale", "fc.weight", "fc.bias"]
    assert repr(net) == "Net(\n  (fc): Linear(in_features=2, out_features=2, bias=True)\n)"


def test_sgd_momentum_and_weight_decay_follow_pytorch_rule():
    w = lucid.Tensor([1.0, -2.0], requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01)
    expected, buf = np.array([1.0, -2.0]), None
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()
        d = 2 * expected + 0.01 * expected
        buf = d if buf is None else 0.9 * buf + d
        expected = expected - 0.1 * buf
        opt.step()
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)


def test_adam_first_step_moves_by_lr():
    w = lucid.Tensor([1.0, -3.0], requires_grad=True)
    opt = Adam([w], lr=0.01)
    (w * w).sum().backward()
    opt.step()  # the first bias-corrected step is lr * sign(grad)
    np.testing.assert_allclose(w.numpy(), [0.99, -2.99], rtol=1e-6)


def test_training_reduces_the_loss():
    lucid.random.seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    opt = Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = F.cross_entropy(model(lucid.Tensor(x)), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_optimizer_rejects_bad_parameters():
    with pytest.raises(TypeError, match="parameter 0 is list"):
        SGD([[1.0]], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf Tensor \\(parameter 1\\)"):
        SGD([lucid.Tensor([1.0], requires_grad=True), lucid.Tensor([1.0], requires_grad=True) * 2], lr=0.1)
    SGD([lucid.Tensor([1.0])], lr=0.1).step()  # a leaf without requires_grad: allowed (never has a grad)
    with pytest.raises(ValueError, match="empty"):
        Adam([])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_matches_the_paper_over_several_steps(dtype):
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((5, 7)).astype(dtype)
    w = lucid.Tensor(w0.copy(), requires_grad=True)
    opt = Adam([w], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    ref, m, v = w0.astype(np.float64), 0.0, 0.0
    for t in range(1, 5):
        opt.zero_grad()
        (w * w * w).sum().backward()
        g = 3 * ref ** 2 + 0.1 * ref
        m = 0.8 * m + 0.2 * g
        v = 0.99 * v + 0.01 * g * g
        ref = ref - 0.05 * (m / (1 - 0.8 ** t)) / (np.sqrt(v / (1 - 0.99 ** t)) + 1e-6)
        opt.step()
        np.testing.assert_allclose(w.numpy(), ref, rtol=1e-4 if dtype == "float32" else 1e-10)
    assert w.dtype == dtype


def test_sgd_nesterov_and_dampening():
    w = lucid.Tensor([2.0, -1.0], requires_grad=True, dtype="float64")
    opt = SGD([w], lr=0.1, momentum=0.5, nesterov=True)
    ref, buf = np.array([2.0, -1.0]), None
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()
        d = 2 * ref
        buf = d if buf is None else 0.5 * buf + d
        ref = ref - 0.1 * (d + 0.5 * buf)
        opt.step()
        np.testing.assert_allclose(w.numpy(), ref, rtol=1e-12)
    w2 = lucid.Tensor([1.0], requires_grad=True, dtype="float64")
    opt2 = SGD([w2], lr=1.0, momentum=0.9, dampening=0.5)
    for expected in ([1.0 - 2.0], None):
        opt2.zero_grad()
        (w2 * 2.0).sum().backward()
        opt2.step()
        if expected:
            np.testing.assert_allclose(w2.numpy(), expected)  # first step: undamped
    np.testing.assert_allclose(w2.numpy(), [1.0 - 2.0 - (0.9 * 2.0 + 0.5 * 2.0)])
