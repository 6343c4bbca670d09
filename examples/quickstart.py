"""Lucid quick start: the seed page's two examples of F.linear, with the true values.

Run with `make demo`. The seed page (shared/seed/linear.md) prints some wrong numbers;
each is marked below with what the page says and why the true value differs.
"""
import numpy as np

import lucid
import lucid.nn.functional as F
from lucid import Tensor

print(f"lucid {lucid.__version__}  (backend: {lucid.backend.backend_name()})\n")

print("== Example 1: linear without bias ==")
input_ = Tensor([[1.0, 2.0, 3.0]], requires_grad=True)  # Shape: (1, 3)
weight = Tensor([[4.0, 5.0, 6.0],
                 [7.0, 8.0, 9.0]], requires_grad=True)  # Shape: (2, 3)
out = F.linear(input_, weight)  # Shape: (1, 2)
print("out          =", out)
out.backward()
print("input_.grad  =", input_.grad.tolist(), " # the page prints the weight; the true value sums its rows")
print("weight.grad  =", weight.grad.tolist())

print("\n== Example 2: linear with bias, a batch of two ==")
input_ = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)  # Shape: (2, 2)
weight = Tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)  # Shape: (2, 2)
bias = Tensor([[9.0, 10.0]], requires_grad=True).reshape(1, -1)  # Shape: (1, 2)
out = F.linear(input_, weight, bias)  # Shape: (2, 2)
print("out          =", out.tolist(), " # the page says 75 for the last entry: 3*7 + 4*8 + 10 = 63")
out.backward()
print("input_.grad  =", input_.grad.tolist(), " # page: the weight itself; true: column sums of W per row")
print("weight.grad  =", weight.grad.tolist(), " # page: the input itself; true: column sums of x per row")
print("bias.grad    =", bias.grad.tolist(), " # page: [1, 1]; each bias element is used by both rows")

x, w, b = (np.array(a._data, np.float64) for a in (input_, weight, bias))
assert np.allclose(out.numpy(), x @ w.T + b), "numpy disagrees"
print("\nnumpy agrees: x @ w.T + b =", (x @ w.T + b).tolist())
