"""ChainMemo: the chains of checked calls kept by signature (softmax, log_softmax,
layer_norm, rms_norm). A repeated call must give what a first call gives, whatever
came before: a different shape, a parameter of another dtype, another dim."""
import numpy as np
import pytest
import torch

import lucid
import lucid.nn.functional as F
from lucid.nn.chain_steps import ChainMemo


def _close(a, b):
    np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_key_parts():
    memo = ChainMemo(limit=2)
    t = lucid.zeros(2, 3)
    assert memo.key(t, 3, None) == (((2, 3), np.dtype("float32")), 3, None)
    assert memo.key([1]) is None and memo.get(None) is None
    assert memo.keep(None, "c") == "c" and memo.get(None) is None
    for k in range(3):  # the limit clears the table
        memo.keep((k,), k)
    assert memo.get((0,)) is None and memo.get((2,)) == 2


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_rows_repeat_dims_and_shapes(fn):
    rng = np.random.default_rng(0)
    for shape, dim in [((3, 5), -1), ((3, 5), 0), ((2, 3, 4), -1), ((2, 3, 4), 1), ((3, 5), None),
                       ((7,), 0), ((3, 5), -1)]:
        a = rng.standard_normal(shape).astype(np.float32)
        got = getattr(F, fn)(lucid.tensor(a), dim)
        ref = getattr(torch.nn.functional, fn)(torch.tensor(a), -1 if dim is None else dim)
        _close(got, ref)
    with pytest.raises(TypeError):
        getattr(F, fn)(lucid.zeros(2, 2), dim=0, axis=1)
    with pytest.raises(TypeError):
        getattr(F, fn)(lucid.zeros(2, 2), dim=0, axis=1)  # an error is never kept


def test_norms_repeat_across_dtypes_and_shapes():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    w64 = rng.standard_normal(6)
    b32 = rng.standard_normal(6).astype(np.float32)
    for _ in range(2):  # the second round runs from the kept chains
        for weight in (w64, w64.astype(np.float32), None):
            got = F.layer_norm(lucid.tensor(x), (6,), None if weight is None else lucid.tensor(weight),
                               lucid.tensor(b32), eps=1e-3)
            ref = torch.nn.functional.layer_norm(
                torch.tensor(x), (6,), None if weight is None else torch.tensor(weight).float(),
                torch.tensor(b32), eps=1e-3)
            assert got.dtype == lucid.float32
            _close(got, ref)
            got = F.rms_norm(lucid.tensor(x), (6,), None if weight is None else lucid.tensor(weight), eps=1e-4)
            ref = torch.nn.functional.rms_norm(torch.tensor(x), (6,), None if weight is None else
                                               torch.tensor(weight).float(), eps=1e-4)
            _close(got, ref)
        with pytest.raises(RuntimeError, match="normalized_shape"):
            F.layer_norm(lucid.tensor(x), (5,))
        with pytest.raises(RuntimeError, match="normalized_shape"):
            F.rms_norm(lucid.tensor(x[:, :5]), (6,))


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_class_losses_repeat_with_new_targets(fn):
    """The second call of a signature takes the kept chain after checking its targets
    with one reduction; targets that are not all classes (ignored, out of range,
    negative) take the checked path again: the same results and errors as a first call."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 5)).astype(np.float32)
    w = np.abs(rng.standard_normal(5)).astype(np.float32)
    lz, tz = lucid.tensor(z), torch.tensor(z)
    for kwargs in ({}, {"reduction": "sum"}, {"label_smoothing": 0.2}, {"weight": "w"}):
        if fn == "nll_loss" and "label_smoothing" in kwargs:
            continue
        for targets in ([0, 1, 2, 3, 4, 0], [4, 4, 4, 4, 4, 4], [0, -100, 2, 3, 4, 1], [1, 2, 3, 4, 0, 1]):
            for weights in (w, w[::-1].copy()):   # the weight's values change; its signature does not
                kw = {k: v for k, v in kwargs.items() if k != "weight"}
                if "weight" in kwargs:
                    kw_l, kw_t = dict(kw, weight=lucid.tensor(weights)), dict(kw, weight=torch.tensor(weights))
                else:
                    kw_l = kw_t = kw
                t = np.array(targets, np.int64)
                got = getattr(F, fn)(lz, lucid.tensor(t), **kw_l)
                want = getattr(torch.nn.functional, fn)(tz, torch.tensor(t), **kw_t)
                _close(got, want)
        for bad in ([0, 1, 5, 3, 4, 0], [0, 1, -1, 3, 4, 0]):
            with pytest.raises(IndexError, match="out of bounds"):
                getattr(F, fn)(lz, lucid.tensor(np.array(bad, np.int64)), **kw_l)
    for dtype in (np.int32, np.uint8):   # other integer targets: keys of their own
        t = np.array([0, 1, 2, 3, 4, 0], dtype)
        _close(F.cross_entropy(lz, lucid.tensor(t)), torch.nn.functional.cross_entropy(tz, torch.tensor(t.astype(np.int64))))
        _close(F.cross_entropy(lz, lucid.tensor(t)), torch.nn.functional.cross_entropy(tz, torch.tensor(t.astype(np.int64))))


def test_class_losses_check_targets_in_python_once_per_signature(monkeypatch):
    from lucid.nn import class_losses
    seen = []
    real = class_losses.class_targets
    monkeypatch.setattr(class_losses, "class_targets", lambda *a: seen.append(1) or real(*a))
    z = lucid.randn(17, 3)
    for k in range(4):
        F.cross_entropy(z, lucid.tensor(np.arange(17) % 3))
    assert len(seen) == 1
    F.cross_entropy(z, lucid.tensor(np.array([-100] + [0] * 16)))   # an ignored target: checked
    assert len(seen) == 2
