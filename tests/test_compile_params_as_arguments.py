"""Regression: a compiled training step that is passed the parameters an optimiser holds
(so the optimiser's state is reached through them) used to fail on its second call with
``gemm: this kernel needs a residual array``: the argument and the optimiser's tensor
had separate ``.grad`` states in the trace, so the old gradient was dropped and then read
as the residual of the gradient GEMM. Both now share one ``.grad`` and one graph input."""
from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F


def _setup(seed=0):
    rng = np.random.default_rng(seed)

    def t(*s, g=False):
        return lucid.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=g)
    return t(8, 5), t(8, 3), [t(6, 5, g=True), t(6, g=True), t(3, 6, g=True)]


@pytest.mark.parametrize("opt_name,kw", [("SGD", {"momentum": 0.9}), ("Adam", {}), ("SGD", {})])
def test_step_taking_the_optimisers_parameters_as_arguments_matches_eager(opt_name, kw):
    results = []
    for compiled in (False, True):
        x, y, params = _setup()
        opt = getattr(lucid.optim, opt_name)(params, lr=0.1, **kw)

        def step(x, y, w1, b1, w2):
            opt.zero_grad()
            h = F.relu(F.linear(x, w1, b1))
            loss = ((F.linear(h, w2) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss
        run = lucid.compile(step) if compiled else step
        losses = [run(x, y, *params).item() for _ in range(4)]
        results.append((losses, [p.numpy().copy() for p in params], [p.grad.numpy().copy() for p in params]))
    (l0, p0, g0), (l1, p1, g1) = results
    np.testing.assert_allclose(l1, l0, rtol=1e-5)
    assert l1[-1] < l1[0]
    for a, b in zip(p1 + g1, p0 + g0):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
