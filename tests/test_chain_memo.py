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
