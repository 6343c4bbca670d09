"""Learning-rate schedules against ``torch.optim.lr_scheduler``: the same sequence of
rates (to the last bit, or within 1e-15 where PyTorch's float arithmetic is the same
formula), over 50 steps, for two parameter groups; state_dict round trips mid-run; and a
compiled training step that sees every new rate without retracing."""
import copy
import math
import warnings

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid.optim import lr_scheduler as L

torch = pytest.importorskip("torch")
TL = torch.optim.lr_scheduler
STEPS = 50


def _halve_every_ten(epoch):
    return 0.5 ** (epoch // 10)


def _shrink(epoch):
    return 0.97 if epoch % 3 else 1.01


SINGLE = {
    "LambdaLR": lambda m, o: m.LambdaLR(o, _halve_every_ten),
    "LambdaLR-list": lambda m, o: m.LambdaLR(o, [_halve_every_ten, lambda e: 1 / (1 + e)]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, _shrink),
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.3),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.5),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.4, total_iters=9),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=17),
    "LinearLR-down": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=40),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=12, eta_min=0.001),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=30, power=2.0),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.3], total_steps=60),
    "OneCycleLR-linear-3": lambda m, o: m.OneCycleLR(o, max_lr=0.5, epochs=10, steps_per_epoch=6,
                                                     anneal_strategy="linear", three_phase=True,
                                                     pct_start=0.25, cycle_momentum=True),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5, eta_min=0.01),
    "CosineAnnealingWarmRestarts-mult": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.2, total_iters=8), m.CosineAnnealingLR(o, T_max=20),
            m.StepLR(o, step_size=3)], milestones=[8, 30]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.5, total_iters=6), m.ExponentialLR(o, gamma=0.95)]),
}


def optimizers(lib):
    """A two-group SGD with momentum (OneCycleLR cycles it) in ``lib``."""
    a = (torch.zeros(2, requires_grad=True) if lib is torch else lucid.Tensor([0.0, 0.0], requires_grad=True))
    b = (torch.zeros(3, requires_grad=True) if lib is torch else lucid.Tensor([0.0, 0.0, 0.0], requires_grad=True))
    return lib.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.05}], lr=0.1, momentum=0.9)


def sequence(lib, make, steps=STEPS, reload_at=None):
    """``get_last_lr()`` and the groups' momenta after each of ``steps`` steps; with
    ``reload_at``, a fresh optimiser and scheduler load the state dicts there."""
    module = TL if lib is torch else L
    opt = optimizers(lib)
    sched = make(module, opt)
    out = [(list(sched.get_last_lr()), [g["momentum"] for g in opt.param_groups])]
    for i in range(steps):
        if i == reload_at:
            saved = copy.deepcopy((opt.state_dict(), sched.state_dict()))
            opt = optimizers(lib)
            sched = make(module, opt)  # as in PyTorch: build both, then load both
            opt.load_state_dict(saved[0])
            sched.load_state_dict(saved[1])
        opt.step()
        sched.step()
        out.append((list(sched.get_last_lr()), [g["momentum"] for g in opt.param_groups]))
        assert [g["lr"] for g in opt.param_groups] == out[-1][0] or isinstance(sched, L.ChainedScheduler)
    return out


@pytest.mark.parametrize("name", SINGLE)
def test_sequence_matches_torch(name):
    want = sequence(torch, SINGLE[name])
    got = sequence(lucid, SINGLE[name])
    assert len(got) == STEPS + 1
    for step, ((lr, mom), (tlr, tmom)) in enumerate(zip(got, want)):
        np.testing.assert_allclose(lr, tlr, rtol=1e-15, atol=0, err_msg=f"lr at step {step}")
        np.testing.assert_allclose(mom, tmom, rtol=1e-15, atol=0, err_msg=f"momentum at step {step}")
    assert len({tuple(lr) for lr, _ in want}) > 1  # the schedule changes: the comparison means something


@pytest.mark.parametrize("name", [n for n in SINGLE if "Lambda" not in n or n == "LambdaLR"])
def test_state_dict_round_trip_mid_run(name):
    want = sequence(lucid, SINGLE[name])
    got = sequence(lucid, SINGLE[name], reload_at=21)
    np.testing.assert_allclose([lr for lr, _ in got], [lr for lr, _ in want], rtol=1e-15, atol=0)


@pytest.mark.parametrize("mode,threshold_mode", [("min", "rel"), ("max", "abs"), ("min", "abs"), ("max", "rel")])
def test_reduce_on_plateau_matches_torch(mode, threshold_mode):
    rng = np.random.default_rng(0)
    metrics = np.concatenate([np.linspace(5, 1, 10), 1 + 0.01 * rng.standard_normal(40)])
    if mode == "max":
        metrics = -metrics
    kw = dict(mode=mode, threshold_mode=threshold_mode, factor=0.5, patience=3, cooldown=2,
              min_lr=[0.001, 0.01], threshold=0.01)
    runs = []
    for lib, module in ((torch, TL), (lucid, L)):
        opt = optimizers(lib)
        sched = module.ReduceLROnPlateau(opt, **kw)
        lrs = []
        for i, m in enumerate(metrics):
            if lib is lucid and i == 25:  # round trip mid-run
                saved = copy.deepcopy(sched.state_dict())
                sched = module.ReduceLROnPlateau(opt, **kw)
                sched.load_state_dict(saved)
            sched.step(lucid.tensor(float(m)) if lib is lucid and i % 2 else float(m))
            lrs.append(sched.get_last_lr())
        runs.append(lrs)
    assert runs[0] == runs[1]
    assert len({tuple(x) for x in runs[0]}) > 2


def test_epoch_argument_uses_the_closed_form_as_torch():
    for make in (SINGLE["StepLR"], SINGLE["ExponentialLR"], SINGLE["CosineAnnealingLR"],
                 SINGLE["CosineAnnealingWarmRestarts-mult"]):
        got, want = [], []
        for lib, module, out in ((torch, TL, want), (lucid, L, got)):
            opt = optimizers(lib)
            sched = make(module, opt)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for epoch in (3, 7, 2, 20, 11):
                    sched.step(epoch)
                    out.append(sched.get_last_lr())
        np.testing.assert_allclose(got, want, rtol=1e-15)
    with pytest.warns(UserWarning, match="deprecated"):
        L.StepLR(optimizers(lucid), 3).step(4)


def test_adam_one_cycle_cycles_beta1():
    w = lucid.Tensor([1.0], requires_grad=True)
    opt = lucid.optim.Adam([w], lr=0.1)
    sched = L.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    tw = torch.zeros(1, requires_grad=True)
    topt = torch.optim.Adam([tw], lr=0.1)
    tsched = TL.OneCycleLR(topt, max_lr=1.0, total_steps=10)
    for _ in range(9):
        opt.step()
        topt.step()  # (no gradients: nothing moves) before the schedulers, as PyTorch wants
        sched.step()
        tsched.step()
        assert opt.param_groups[0]["betas"] == topt.param_groups[0]["betas"]
    with pytest.raises(ValueError, match="total steps"):
        sched.step(), sched.step()


def test_bad_arguments():
    opt = optimizers(lucid)
    with pytest.raises(TypeError, match="not an Optimizer"):
        L.StepLR(object(), 3)
    with pytest.raises(ValueError, match="factor"):
        L.ConstantLR(opt, factor=2.0)
    with pytest.raises(ValueError, match="T_0"):
        L.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="2 lr_lambdas"):
        L.LambdaLR(opt, [_shrink])
    with pytest.raises(KeyError, match="initial_lr"):
        L.StepLR(optimizers(lucid), 3, last_epoch=4)
    with pytest.raises(ValueError, match="total_steps"):
        L.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="milestone"):
        L.SequentialLR(opt, [L.StepLR(opt, 2), L.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        L.ChainedScheduler([L.ReduceLROnPlateau(opt)])


def test_compiled_step_follows_the_schedule_without_retracing():
    """A schedule stepped between calls of a compiled training step: the same weights
    as the eager steps, one trace."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    runs = []
    for compiled in (False, True):
        w = lucid.Tensor(rng.standard_normal((3, 4)) * 0 + np.arange(12.0).reshape(3, 4) / 10,
                         requires_grad=True, dtype="float64")
        opt = lucid.optim.Adam([w], lr=0.1)
        sched = L.OneCycleLR(opt, max_lr=0.5, total_steps=12)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(F.linear(x, w), y)
            loss.backward()
            opt.step()
            return loss
        run = lucid.compile(step) if compiled else step
        for _ in range(12):
            run(lucid.Tensor(x, dtype="float64"), y)
            sched.step()
        runs.append(w.numpy().copy())
        if compiled:
            assert run.traces == 1
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-12)
    assert not math.isclose(runs[0][0, 0], 0.0)
