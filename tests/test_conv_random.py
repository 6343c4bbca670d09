"""Seeded random configurations of conv2d, conv_transpose2d, max_pool2d and avg_pool2d
(stride, padding, dilation, groups, ceil_mode, odd sizes) against PyTorch in float64,
values and gradients, eagerly: edge cases the op table's hand-picked cases may miss."""
import numpy as np
import pytest
import torch

import lucid
import lucid.nn.functional as F

TF = torch.nn.functional


def compare(fn_lucid, fn_torch, arrays, rng):
    lt = [lucid.tensor(a, requires_grad=True) for a in arrays]
    tt = [torch.tensor(a, requires_grad=True) for a in arrays]
    yl, yt = fn_lucid(*lt), fn_torch(*tt)
    g = rng.standard_normal(tuple(yt.shape))
    (yl * lucid.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(yl.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(lt, tt):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-12)


def conv_config(rng):
    groups = int(rng.choice([1, 1, 2, 3]))
    c, oc = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    stride = tuple(int(v) for v in rng.integers(1, 3, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = tuple(int(v) for v in rng.integers(0, 3, 2))
    size = tuple(int(dl * (kk - 1) + 1 + rng.integers(0, 5)) for kk, dl in zip(k, dilation))
    return groups, c, oc, k, stride, dilation, padding, size


@pytest.mark.parametrize("seed", range(12))
def test_random_conv2d(seed):
    rng = np.random.default_rng(seed)
    groups, c, oc, k, stride, dilation, padding, size = conv_config(rng)
    x, w, b = rng.standard_normal((2, c) + size), rng.standard_normal((oc, c // groups) + k), rng.standard_normal(oc)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    compare(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: TF.conv2d(x, w, b, **kw), [x, w, b], rng)


@pytest.mark.parametrize("seed", range(12))
def test_random_conv_transpose2d(seed):
    rng = np.random.default_rng(100 + seed)
    groups, c, oc, k, stride, dilation, padding, size = conv_config(rng)
    output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    x, w = rng.standard_normal((1, c) + size), rng.standard_normal((c, oc // groups) + k)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, output_padding=output_padding)
    try:
        TF.conv_transpose2d(torch.tensor(x), torch.tensor(w), **kw)
    except RuntimeError:  # an empty output: lucid must refuse it too
        with pytest.raises(RuntimeError):
            F.conv_transpose2d(lucid.tensor(x), lucid.tensor(w), **kw)
        return
    compare(lambda x, w: F.conv_transpose2d(x, w, **kw), lambda x, w: TF.conv_transpose2d(x, w, **kw), [x, w], rng)


@pytest.mark.parametrize("seed", range(12))
def test_random_pools(seed):
    rng = np.random.default_rng(200 + seed)
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    ceil_mode = bool(rng.integers(0, 2))
    size = tuple(int(dl * (kk - 1) + 1 + rng.integers(0, 6)) for kk, dl in zip(k, dilation))
    x = np.round(rng.standard_normal((2, 3) + size) * 3)  # ties on purpose
    mkw = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    compare(lambda x: F.max_pool2d(x, k, **mkw), lambda x: TF.max_pool2d(x, k, **mkw), [x], rng)
    yl, il = F.max_pool2d(lucid.tensor(x), k, return_indices=True, **mkw)
    yt, it = TF.max_pool2d(torch.tensor(x), k, return_indices=True, **mkw)
    np.testing.assert_array_equal(il.numpy(), it.numpy())
    akw = dict(stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=bool(rng.integers(0, 2)))
    compare(lambda x: F.avg_pool2d(x, k, **akw), lambda x: TF.avg_pool2d(x, k, **akw), [x], rng)
