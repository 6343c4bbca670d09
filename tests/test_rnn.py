"""``nn.RNN/LSTM/GRU`` and their cells against PyTorch in float64: outputs, final states
and the gradients of the input, the initial state and every parameter, with PyTorch's
weights copied in (same names and shapes), in eager mode and under ``lucid.compile``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid
import lucid.nn as nn

CONFIGS = [
    dict(),
    dict(num_layers=2, bidirectional=True),
    dict(batch_first=True, bias=False),
    dict(num_layers=2, batch_first=True, bidirectional=True),
]


def copy_weights(ours, theirs):
    names = [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters()] == names
    for (n, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert tuple(p.shape) == tuple(q.shape), n
        p._data = q.detach().numpy().copy()


def flat(result):
    if isinstance(result, tuple):
        return [t for r in result for t in flat(r)]
    return [result]


def compare(ours, theirs, x, hx=None, mode="eager"):
    rng = np.random.default_rng(3)
    tx = torch.tensor(x, requires_grad=True)
    thx = None if hx is None else (tuple(torch.tensor(h, requires_grad=True) for h in hx)
                                   if isinstance(hx, tuple) else torch.tensor(hx, requires_grad=True))
    touts = flat(theirs(tx, thx) if thx is not None else theirs(tx))
    weights = [rng.standard_normal(tuple(t.shape)) for t in touts]
    sum(((t * torch.tensor(w)).sum() for t, w in zip(touts, weights))).backward()

    lx = lucid.tensor(x, requires_grad=True)
    lhx = None if hx is None else (tuple(lucid.tensor(h, requires_grad=True) for h in hx)
                                   if isinstance(hx, tuple) else lucid.tensor(hx, requires_grad=True))

    def loss_fn(x_, h_):
        outs = flat(ours(x_, h_) if h_ is not None else ours(x_))
        total = sum((o * lucid.tensor(w)).sum() for o, w in zip(outs, weights))
        return total, outs

    if mode == "compile":
        def step(x_, h_):
            total, outs = loss_fn(x_, h_)
            total.backward()
            return outs
        louts = lucid.compile(step)(lx, lhx)
    else:
        total, louts = loss_fn(lx, lhx)
        total.backward()
    for a, b in zip(louts, touts):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(lx.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    for (n, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(np.asarray(p.grad), q.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=n)
    if thx is not None:
        for lh, th in zip(lhx if isinstance(lhx, tuple) else (lhx,), thx if isinstance(thx, tuple) else (thx,)):
            np.testing.assert_allclose(np.asarray(lh.grad), th.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("config", range(len(CONFIGS)))
@pytest.mark.parametrize("mode", ["eager", "compile"])
def test_recurrent_layers_match_torch(kind, config, mode):
    kw = CONFIGS[config]
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(3, 5, dtype=torch.float64, **kw)
    ours = getattr(nn, kind)(3, 5, dtype=lucid.float64, **kw)
    copy_weights(ours, theirs)
    x = np.random.default_rng(0).standard_normal((4, 7, 3) if kw.get("batch_first") else (7, 4, 3))
    compare(ours, theirs, x, mode=mode)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_initial_state_and_unbatched_input(kind):
    torch.manual_seed(1)
    kw = dict(num_layers=2, bidirectional=True)
    theirs = getattr(torch.nn, kind)(3, 4, dtype=torch.float64, **kw)
    ours = getattr(nn, kind)(3, 4, dtype=lucid.float64, **kw)
    copy_weights(ours, theirs)
    rng = np.random.default_rng(2)
    h = rng.standard_normal((4, 2, 4))
    hx = (h, rng.standard_normal((4, 2, 4))) if kind == "LSTM" else h
    compare(ours, theirs, rng.standard_normal((5, 2, 3)), hx)
    compare(ours, theirs, rng.standard_normal((5, 3)))                  # unbatched (L, H_in)


def test_lstm_projection_and_relu_rnn():
    torch.manual_seed(2)
    theirs = torch.nn.LSTM(3, 6, num_layers=2, proj_size=2, dtype=torch.float64)
    ours = nn.LSTM(3, 6, num_layers=2, proj_size=2, dtype=lucid.float64)
    copy_weights(ours, theirs)
    compare(ours, theirs, np.random.default_rng(4).standard_normal((4, 2, 3)))
    theirs = torch.nn.RNN(3, 4, nonlinearity="relu", dtype=torch.float64)
    ours = nn.RNN(3, 4, nonlinearity="relu", dtype=lucid.float64)
    copy_weights(ours, theirs)
    compare(ours, theirs, np.random.default_rng(5).standard_normal((6, 2, 3)))


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch(kind, batched):
    torch.manual_seed(3)
    theirs = getattr(torch.nn, kind)(3, 4, dtype=torch.float64)
    ours = getattr(nn, kind)(3, 4, dtype=lucid.float64)
    copy_weights(ours, theirs)
    rng = np.random.default_rng(6)
    shape = (5, 3) if batched else (3,)
    hshape = (5, 4) if batched else (4,)
    hx = rng.standard_normal(hshape)
    if kind == "LSTMCell":
        hx = (hx, rng.standard_normal(hshape))
    compare(ours, theirs, rng.standard_normal(shape), hx)
    compare(ours, theirs, rng.standard_normal(shape))


def test_defaults_repr_and_init_match_torch():
    for kind, kw, text in [("LSTM", dict(num_layers=2, batch_first=True), "LSTM(10, 20, num_layers=2, batch_first=True)"),
                           ("GRU", dict(bidirectional=True, bias=False), "GRU(10, 20, bias=False, bidirectional=True)"),
                           ("RNN", dict(nonlinearity="relu"), "RNN(10, 20)")]:
        ours, theirs = getattr(nn, kind)(10, 20, **kw), getattr(torch.nn, kind)(10, 20, **kw)
        assert repr(ours) == repr(theirs) == text
        assert list(ours.state_dict()) == list(theirs.state_dict())
        bound = 1 / np.sqrt(20)
        w = np.asarray(ours.weight_ih_l0._data)
        assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert repr(nn.GRUCell(3, 4, bias=False)) == repr(torch.nn.GRUCell(3, 4, bias=False))
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == repr(torch.nn.RNNCell(3, 4, nonlinearity="relu"))


def test_errors_match_torch():
    lstm = nn.LSTM(3, 4)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 2"):
        lstm(lucid.zeros(5, 2, 2))
    with pytest.raises(RuntimeError, match="Expected hidden size \\(1, 2, 4\\), got \\[1, 3, 4\\]"):
        lstm(lucid.zeros(5, 2, 3), (lucid.zeros(1, 3, 4), lucid.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D"):
        lstm(lucid.zeros(3))
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.GRU(3, 4, dropout=0.5)
