"""Optimiser updates against an independent reference: ``torch.optim`` in float64.

The same two-layer model (same initial weights, same batches) trains for several steps
with lucid's optimiser, eagerly and as one ``lucid.compile``d step, and with PyTorch's;
after every step each parameter must agree with PyTorch's. The learning rate changes
half-way (a schedule: the compiled step reads it at every call).
"""
import numpy as np
import pytest

import lucid
import lucid.nn.functional as F

torch = pytest.importorskip("torch")

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.02)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6)),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.1)),
]
STEPS = 6
SIZES = (7, 5, 4)  # in, hidden, classes
BATCH = 9


def initial(seed=0):
    rng = np.random.default_rng(seed)
    d, h, c = SIZES
    return [rng.standard_normal((h, d)) * 0.5, rng.standard_normal(h) * 0.1,
            rng.standard_normal((c, h)) * 0.5, rng.standard_normal(c) * 0.1]


def batches(seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((BATCH, SIZES[0])), rng.integers(0, SIZES[-1], BATCH)) for _ in range(STEPS)]


def lr_at(step, lr):
    return lr if step < STEPS // 2 else lr * 0.3


def torch_trajectory(name, kw):
    """The parameters (float64) after each step, trained by ``torch.optim``."""
    params = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in initial()]
    opt = getattr(torch.optim, name)(params, **kw)
    out = []
    for step, (x, y) in enumerate(batches()):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, kw["lr"])
        opt.zero_grad()
        w1, b1, w2, b2 = params
        h = torch.tanh(torch.nn.functional.linear(torch.tensor(x), w1, b1))
        loss = torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, w2, b2), torch.tensor(y))
        loss.backward()
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


def lucid_trajectory(name, kw, dtype, compiled):
    params = [lucid.Tensor(a.astype(dtype), requires_grad=True) for a in initial()]
    opt = getattr(lucid.optim, name)(params, **kw)

    def step_fn(x, y):
        opt.zero_grad()
        w1, b1, w2, b2 = params
        loss = F.cross_entropy(F.linear(F.tanh(F.linear(x, w1, b1)), w2, b2), y)
        loss.backward()
        opt.step()
        return loss
    run = lucid.compile(step_fn) if compiled else step_fn
    out = []
    for step, (x, y) in enumerate(batches()):
        opt.lr = lr_at(step, kw["lr"])
        run(lucid.Tensor(x.astype(dtype)), y)
        out.append([p.numpy().astype(np.float64) for p in params])
    if compiled:
        assert run.traces == 1  # the schedule did not retrace
    return out


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_updates_match_torch_optim_in_float64(name, kw, compiled):
    want = torch_trajectory(name, kw)
    got = lucid_trajectory(name, kw, "float64", compiled)
    for step, (ps, ws) in enumerate(zip(got, want)):
        for i, (p, w) in enumerate(zip(ps, ws)):
            np.testing.assert_allclose(p, w, rtol=1e-11, atol=1e-12, err_msg=f"step {step} param {i}")
    moved = np.abs(want[-1][0] - initial()[0]).max()
    assert moved > 1e-3  # the steps did move the weights: the comparison means something


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name,kw", [CONFIGS[0], CONFIGS[3], CONFIGS[5], CONFIGS[8]],
                         ids=["SGD", "SGD-momentum", "SGD-nesterov", "Adam"])
def test_float32_updates_stay_near_torch_float64(name, kw, compiled):
    want = torch_trajectory(name, kw)
    got = lucid_trajectory(name, kw, "float32", compiled)
    for step, (ps, ws) in enumerate(zip(got, want)):
        for i, (p, w) in enumerate(zip(ps, ws)):
            np.testing.assert_allclose(p, w, rtol=2e-5, atol=2e-5, err_msg=f"step {step} param {i}")


def test_a_wrong_update_is_caught():
    """The reference is strict enough to see a learning rate 1e-6 off."""
    name, kw = CONFIGS[2]
    want = torch_trajectory(name, kw)
    got = lucid_trajectory(name, dict(kw, lr=kw["lr"] * (1 + 1e-6)), "float64", False)
    assert not all(np.allclose(p, w, rtol=1e-11, atol=1e-12) for p, w in zip(got[-1], want[-1]))
