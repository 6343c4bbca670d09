"""Optimiser trajectories against an independent reference: ``torch.optim`` in float64.

The same two-layer model (same initial weights, same batches) trains for 20 steps with
lucid's optimiser (eagerly, and as one ``lucid.compile``d step) and with PyTorch's, in
two parameter groups with their own options; the learning rate changes half-way (the
compiled step reads it at every call: no retrace). After every step each parameter must
agree with PyTorch's. Half-way, the optimiser's state is saved and loaded into a fresh
optimiser (or PyTorch's own state dict is loaded), and the run goes on from there.
"""
import copy

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F

torch = pytest.importorskip("torch")

CONFIGS = [
    ("SGD", dict(lr=0.1), dict(lr=0.05)),
    ("SGD", dict(lr=0.1, weight_decay=0.05), dict(weight_decay=0.0)),
    ("SGD", dict(lr=0.05, momentum=0.9), dict(momentum=0.5)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01), dict(dampening=0.0)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True), dict(weight_decay=0.02)),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True), dict(lr=0.02)),
    ("Adam", dict(lr=0.01), dict(lr=0.02)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6), dict(betas=(0.3, 0.7))),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.1), dict(weight_decay=0.0)),
    ("Adam", dict(lr=0.01, amsgrad=True), dict(lr=0.03)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True), dict(amsgrad=False)),
    ("AdamW", dict(lr=0.01), dict(weight_decay=0.3)),
    ("AdamW", dict(lr=0.02, amsgrad=True, weight_decay=0.1), dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, maximize=True, betas=(0.7, 0.8)), dict(weight_decay=0.0)),
    ("RMSprop", dict(lr=0.01), dict(lr=0.005)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True), dict(eps=1e-4)),
    ("RMSprop", dict(lr=0.005, momentum=0.9), dict(momentum=0.0)),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True, weight_decay=0.1), dict(alpha=0.8)),
    ("RMSprop", dict(lr=0.002, maximize=True), dict(centered=True)),
    ("Adagrad", dict(lr=0.1), dict(lr=0.05)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05), dict(lr_decay=0.0)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, weight_decay=0.02), dict(eps=1e-3)),
    ("Adagrad", dict(lr=0.05, maximize=True), dict(initial_accumulator_value=0.1)),
]
IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(CONFIGS)]
STEPS = 20
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


def groups(params, second):
    """Two groups: the first layer with the defaults, the second with ``second``."""
    return [{"params": params[:2]}, dict(second, params=params[2:])]


def set_lr(opt, step, kw):
    """The schedule: every group's learning rate drops to 0.3x half-way."""
    for group, base in zip(opt.param_groups, opt.initial_lrs):
        group["lr"] = base if step < STEPS // 2 else base * 0.3


def torch_trajectory(name, kw, second):
    params = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in initial()]
    opt = getattr(torch.optim, name)(groups(params, second), **kw)
    opt.initial_lrs = [g["lr"] for g in opt.param_groups]
    out, saved = [], None
    for step, (x, y) in enumerate(batches()):
        set_lr(opt, step, kw)
        opt.zero_grad()
        w1, b1, w2, b2 = params
        h = torch.tanh(torch.nn.functional.linear(torch.tensor(x), w1, b1))
        loss = torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, w2, b2), torch.tensor(y))
        loss.backward()
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
        if step == STEPS // 2 - 1:
            saved = copy.deepcopy(opt.state_dict())
    return out, saved


def lucid_trajectory(name, kw, second, dtype="float64", compiled=False, reload=None, torch_state=None):
    """``reload``: "lucid" saves lucid's state dict half-way and goes on with a fresh
    optimiser (and fresh parameter tensors) that loads it; "torch" loads PyTorch's."""
    params = [lucid.Tensor(a.astype(dtype), requires_grad=True) for a in initial()]

    def make(params):
        opt = getattr(lucid.optim, name)(groups(params, second), **kw)
        opt.initial_lrs = [g["lr"] for g in opt.param_groups]
        return opt

    def step_fn(x, y):
        opt.zero_grad()
        w1, b1, w2, b2 = params
        loss = F.cross_entropy(F.linear(F.tanh(F.linear(x, w1, b1)), w2, b2), y)
        loss.backward()
        opt.step()
        return loss

    opt = make(params)
    run = lucid.compile(step_fn) if compiled else step_fn
    out = []
    for step, (x, y) in enumerate(batches()):
        if reload and step == STEPS // 2:
            saved = copy.deepcopy(opt.state_dict()) if reload == "lucid" else torch_state
            params = [lucid.Tensor(p.numpy().copy(), requires_grad=True) for p in params]
            opt = make(params)
            opt.load_state_dict(saved)
            run = lucid.compile(step_fn) if compiled else step_fn
        set_lr(opt, step, kw)
        run(lucid.Tensor(x.astype(dtype)), y)
        out.append([p.numpy().astype(np.float64) for p in params])
    if compiled:
        assert run.traces == 1  # the schedule did not retrace
    return out, opt


def assert_same_trajectory(got, want, rtol=1e-10, atol=1e-12):
    for step, (ps, ws) in enumerate(zip(got, want)):
        for i, (p, w) in enumerate(zip(ps, ws)):
            np.testing.assert_allclose(p, w, rtol=rtol, atol=atol, err_msg=f"step {step} param {i}")
    moved = np.abs(want[-1][0] - initial()[0]).max()
    assert moved > 1e-3  # the steps did move the weights: the comparison means something


@pytest.mark.parametrize("name,kw,second", CONFIGS, ids=IDS)
def test_eager_trajectory_matches_torch(name, kw, second):
    want, _ = torch_trajectory(name, kw, second)
    got, _ = lucid_trajectory(name, kw, second)
    assert_same_trajectory(got, want)


@pytest.mark.parametrize("name,kw,second", CONFIGS, ids=IDS)
def test_state_dict_round_trip_mid_run(name, kw, second):
    want, torch_state = torch_trajectory(name, kw, second)
    got, opt = lucid_trajectory(name, kw, second, reload="lucid")
    assert_same_trajectory(got, want)
    got, _ = lucid_trajectory(name, kw, second, reload="torch", torch_state=torch_state)
    assert_same_trajectory(got, want)


@pytest.mark.parametrize("name,kw,second", CONFIGS, ids=IDS)
def test_state_dict_layout_is_torch_layout(name, kw, second):
    t_params = [torch.tensor(a, requires_grad=True) for a in initial()]
    l_params = [lucid.Tensor(a, requires_grad=True) for a in initial()]
    t_opt = getattr(torch.optim, name)(groups(t_params, second), **kw)
    l_opt = getattr(lucid.optim, name)(groups(l_params, second), **kw)
    for ps, t in ((t_params, True), (l_params, False)):
        for p, a in zip(ps, initial(3)):
            p.grad = torch.tensor(a) if t else a
    t_opt.step()
    l_opt.step()
    t_sd, l_sd = t_opt.state_dict(), l_opt.state_dict()
    assert [g["params"] for g in l_sd["param_groups"]] == [g["params"] for g in t_sd["param_groups"]]
    for lg, tg in zip(l_sd["param_groups"], t_sd["param_groups"]):
        assert set(lg) <= set(tg)
        assert {k: lg[k] for k in lg} == {k: tg[k] for k in lg}
    assert l_sd["state"].keys() == t_sd["state"].keys()
    for i, ts in t_sd["state"].items():
        ls = l_sd["state"][i]
        assert list(ls) == [k for k, v in ts.items() if v is not None]
        for key, value in ls.items():
            np.testing.assert_allclose(value.numpy(), ts[key].numpy(), rtol=1e-12, err_msg=key)


COMPILED = [CONFIGS[i] for i in (0, 3, 5, 9, 10, 12, 17, 18, 21)]


@pytest.mark.parametrize("name,kw,second", COMPILED, ids=[f"{c[0]}-{i}" for i, c in enumerate(COMPILED)])
def test_compiled_trajectory_matches_torch(name, kw, second):
    want, _ = torch_trajectory(name, kw, second)
    got, _ = lucid_trajectory(name, kw, second, compiled=True)
    assert_same_trajectory(got, want)
    got, _ = lucid_trajectory(name, kw, second, compiled=True, reload="lucid")
    assert_same_trajectory(got, want)


@pytest.mark.parametrize("name,kw,second", [CONFIGS[i] for i in (3, 10, 17, 21)],
                         ids=["SGD", "Adam", "RMSprop", "Adagrad"])
def test_float32_trajectory_stays_near_torch_float64(name, kw, second):
    want, _ = torch_trajectory(name, kw, second)
    got, _ = lucid_trajectory(name, kw, second, dtype="float32")
    assert_same_trajectory(got, want, rtol=1e-4, atol=1e-4)


def test_a_wrong_update_is_caught():
    """The reference is strict enough to see a learning rate 1e-6 off."""
    name, kw, second = CONFIGS[2]
    want, _ = torch_trajectory(name, kw, second)
    got, _ = lucid_trajectory(name, dict(kw, lr=kw["lr"] * (1 + 1e-6)), second)
    assert not all(np.allclose(p, w, rtol=1e-10, atol=1e-12) for p, w in zip(got[-1], want[-1]))


def test_step_with_closure_returns_the_loss_and_zero_grad_modes():
    w = lucid.Tensor([1.0, 2.0], requires_grad=True)
    opt = lucid.optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss
    loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_allclose(w.numpy(), [0.8, 1.6], rtol=1e-6)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad, [0.0, 0.0])
    opt.zero_grad()
    assert w.grad is None


def test_add_param_group_and_option_errors():
    a, b = lucid.Tensor([1.0], requires_grad=True), lucid.Tensor([2.0], requires_grad=True)
    opt = lucid.optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": [b], "betas": (0.5, 0.6)})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.5, 0.6)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="learning rate"):
        lucid.optim.SGD([a], lr=-1)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        lucid.optim.Adam([a], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        lucid.optim.SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        lucid.optim.RMSprop([])
    with pytest.raises(TypeError, match="iterable of Tensors"):
        lucid.optim.Adagrad(a)
    with pytest.raises(ValueError, match="non-leaf"):
        lucid.optim.SGD([a * 2], lr=0.1)
    opt2 = lucid.optim.Adam([a, b], lr=0.1)
    with pytest.raises(ValueError, match="parameter groups"):
        opt2.load_state_dict(opt.state_dict())


@pytest.mark.parametrize("make", [lambda ps: lucid.optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: lucid.optim.Adam(ps, lr=0.1),
                                  lambda ps: lucid.optim.AdamW(ps, lr=0.1),
                                  lambda ps: lucid.optim.RMSprop(ps, lr=0.1),
                                  lambda ps: lucid.optim.Adagrad(ps, lr=0.1)])
def test_an_empty_parameter_steps_as_in_pytorch(make):
    """A parameter with no elements (numpy gives it zero strides) is updated to itself,
    eagerly and in a compiled step, beside a non-empty one (its update kernels used to
    refuse the zero strides of their empty output; found by tests/fuzz_api.py)."""
    for compiled in (False, True):
        empty = lucid.tensor(np.random.rand(0, 1, 8), requires_grad=True)
        w = lucid.tensor(np.ones(3), requires_grad=True)
        opt = make([empty, w])

        def step():
            opt.zero_grad()
            loss = (empty * 2).sum() + (w * w).sum()
            loss.backward()
            opt.step()
            return loss
        run = lucid.compile(step) if compiled else step
        for _ in range(2):
            run()
        assert empty.shape == (0, 1, 8) and empty.grad.shape == (0, 1, 8)
        assert np.all(w.numpy() < 1.0)


@pytest.mark.parametrize("backend", ["compiled", "interpret"])
@pytest.mark.parametrize("name, kw, second", CONFIGS, ids=IDS)
def test_one_call_for_many_parameters_gives_each_ones_bits(monkeypatch, backend, name, kw, second):
    """Eagerly ``step`` updates a group's parameters of one rule and dtype by one call
    (``InPlaceRule.many``): the same bits as updating each by its own call, over steps,
    with float32 and float64 parameters in one group, a strided one, and one without a
    gradient (left alone)."""
    monkeypatch.setenv("LUCID_BACKEND", backend)
    rng = np.random.default_rng(9)
    shapes = [((5, 7), "float32"), ((7,), "float32"), ((3, 5), "float64"), ((5,), "float64"),
              ((4, 6), "float32"), ((2,), "float32")]
    values = [rng.standard_normal(s).astype(d) for s, d in shapes]
    values[4] = np.asfortranarray(values[4])
    runs, calls = [], []
    kind = getattr(lucid.optim, name)
    real = kind.update
    monkeypatch.setattr(kind, "update", lambda self, *a: calls.append(1) or real(self, *a))
    for together in (True, False):
        params = [lucid.Tensor(v.copy(order="K"), requires_grad=True, dtype=d) for v, (_, d) in zip(values, shapes)]
        opt = kind(params, **kw)
        calls.clear()
        for step in range(4):
            grads = np.random.default_rng(step)
            for p, (s, d) in zip(params, shapes):
                p.grad = None if p is params[5] else grads.standard_normal(s).astype(d)
            if together:
                opt.step()
            else:
                for group in opt.param_groups:
                    for p in group["params"]:
                        if p.grad is not None:
                            opt.update(p, group, p._grad)
        assert not calls if together else calls
        runs.append([p.numpy().copy() for p in params])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0][5], values[5])
