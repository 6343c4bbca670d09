"""Regression tests for small correctness fixes (round 2), PyTorch as the reference."""
import numpy as np
import pytest
import torch

import lucid
from lucid import dispatch, index_plan


def test_fast_paths_keep_the_inner_results_a_gradient_reads():
    """call2 on a cached multi-step chain whose gradient reads an inner step result."""
    data = np.arange(12.0).reshape(4, 3)
    x = lucid.tensor(data, requires_grad=True)
    i = lucid.tensor([0, 2])
    plan, _ = index_plan.prepare(x, i)
    for _ in range(2):  # the second call hits the cached entry through the fast path
        y = dispatch.call2(plan.chain, x, i, lambda a, b: dispatch.call(plan.chain, [a, b]))
    (y * y).sum().backward()
    tx = torch.tensor(data, requires_grad=True)
    (tx[torch.tensor([0, 2])] ** 2).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy())
