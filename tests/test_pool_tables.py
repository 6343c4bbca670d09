"""Pools: window tables made once per signature, and windows that tile the input taken
by a reshape and a transpose (no gather through the table, no scatter-add back)."""
import numpy as np

import lucid
import lucid.nn.functional as F
from lucid.nn import functional_pool


def test_window_tables_are_made_once_per_signature(monkeypatch):
    made = []
    real = functional_pool.window_rows
    monkeypatch.setattr(functional_pool, "window_rows", lambda *a: made.append(a) or real(*a))
    x = lucid.tensor(np.random.default_rng(1).standard_normal((2, 3, 7, 5)))
    for _ in range(3):
        F.max_pool2d(x, 3, stride=2, padding=1)
        F.avg_pool2d(x, 2, ceil_mode=True)
    assert len(made) == 4          # two axes, two signatures: on the first calls only
    F.max_pool2d(x, 3, stride=1)   # a new signature makes its own
    assert len(made) == 6


def _ops(fn, x):
    compiled = lucid.compile(fn)
    compiled(x)
    return compiled.lower(x).as_text("simplified")


def test_tiling_windows_take_no_gather_through_the_table():
    """max_pool2d(x, 2) on even sizes gathers only its winners (one gather forward, its
    one-hot gradient backward); an overlapping pool gathers its windows too."""
    x = lucid.tensor(np.random.default_rng(2).standard_normal((2, 3, 8, 6)), requires_grad=True)

    def loss(pool):
        def f(t):
            t.grad = None
            y = pool(t).sum()
            y.backward()
            return y
        return f

    tiled = _ops(loss(lambda t: F.max_pool2d(t, 2)), x)
    overlapping = _ops(loss(lambda t: F.max_pool2d(t, 3, stride=1)), x)
    assert tiled.count("gather") == 1 and "scatter_add" not in tiled
    assert overlapping.count("gather") == 2
