"""The user-API fuzzer's vocabulary: each op once for lucid (public API only: Tensor
operators and methods, ``lucid.where``/``maximum``/``matmul``, ``lucid.nn.functional``)
and once for PyTorch, the reference. A program is a list of ``(op, args, attrs)``;
``args`` index earlier values, ``attrs`` are plain Python or numpy constants, and
``("input", (), {"index": i})`` takes the program's input i. ``run(program, ops,
inputs)`` returns every value.

>>> import torch
>>> prog = [("input", (), {"index": 0}), ("mul", (0, 0), {}), ("sum", (1,), {"axis": None, "keepdims": False})]
>>> run(prog, TorchOps(torch.float64), [torch.tensor([1.0, 2.0], dtype=torch.float64)])[-1].item()
5.0
"""
from __future__ import annotations

import numpy as np


def run(program, ops, inputs):
    values = []
    for op, args, attrs in program:
        if op == "input":
            values.append(inputs[attrs["index"]])
        else:
            values.append(getattr(ops, op)(*[values[i] for i in args], **attrs))
    return values


def _binary(name):
    def method(self, x, y=None, scalar=None, reverse=False):
        other = scalar if y is None else y
        a, b = (other, x) if reverse else (x, other)
        return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b}[name]()
    return method


class _SharedOps:
    """Ops whose spelling is the same in lucid and PyTorch (both tensor methods and
    ``F``): shape ops, indexing, gelu, layer_norm, cumsum, argmax/argmin."""

    def flip(self, x, dims): return x.flip(dims)
    def roll(self, x, shifts, dims): return x.roll(shifts, dims)
    def tril(self, x, diagonal): return x.tril(diagonal)
    def movedim(self, x, src, dst): return x.movedim(src, dst)
    def repeat(self, x, reps): return x.repeat(*reps)
    def gelu(self, x): return self.F.gelu(x)
    def layer_norm(self, x, w, b, n): return self.F.layer_norm(x, tuple(x.shape[-n:]), w, b)
    def cumsum(self, x, dim): return x.cumsum(dim)

    def arg_float(self, x, which, dim, keepdim):
        """argmax/argmin as a value of x's dtype (no gradient), so it joins the loss."""
        return getattr(x, which)(dim=dim, keepdim=keepdim).to(x.dtype)

    def arg_int(self, x, which, dim, threshold):
        """argmax/argmin of an int32 tensor of ties (0/1): the first-index rule."""
        return getattr((x > threshold).int(), which)(dim=dim).to(x.dtype)

    def count_cumsum(self, x, dim, threshold):
        """The running count of ``x > threshold``: cumsum of bool is int64."""
        return (x > threshold).cumsum(dim).to(x.dtype)

    def index_steps(self, x, start, step): return x[start::step]

    def shift_add(self, x, shift, step):
        """Overlapping strided slices added (a 1-D convolution's taps): the gradient of
        x is a sum of embeds, one ``embed_sum``."""
        n = (x.shape[0] - shift + step - 1) // step
        return x[:n * step:step] + 0.5 * x[shift:shift + (n - 1) * step + 1:step]
    def index_int(self, x, i): return x[i]

    def index_take(self, x, idx):
        return x[self._index(np.asarray(idx, np.int64))]

    def mask_fill(self, x, threshold, value):
        """``y[y > threshold] = value`` on a copy of x (a mask read, ``x[mask]``, has a
        value-dependent shape, which lucid.compile refuses by design)."""
        y = x * 1.0
        y[x > threshold] = value
        return y

    def setitem(self, x, v, idx):
        """``y[idx] = v`` on a copy of x (y = x * 1: a non-leaf, so assignment is allowed)."""
        y = x * 1.0
        y[[int(i) for i in idx]] = v  # a list: positions known while lucid.compile traces
        return y


class LucidOps(_SharedOps):
    """The ops through lucid's public API."""

    def __init__(self, dtype: str):
        import lucid
        import lucid.nn.functional as F
        self.lucid, self.F, self.dtype = lucid, F, dtype

    add, sub, mul = _binary("add"), _binary("sub"), _binary("mul")

    def div_pos(self, x, y=None, scalar=None, reverse=False):
        """x / (y² + 0.5), or (reverse) scalar / (x² + 0.5): a positive denominator."""
        if reverse:
            return scalar / (x * x + 0.5)
        return x / (y * y + 0.5) if y is not None else x / scalar

    def neg(self, x): return -x
    def tanh(self, x): return x.tanh()
    def sigmoid(self, x): return x.sigmoid()
    def relu(self, x): return x.relu()
    def exp_tanh(self, x): return x.tanh().exp()
    def log_sq(self, x): return (x * x + 1.0).log()
    def sqrt_sq(self, x): return (x * x + 0.25).sqrt()
    def f_relu(self, x): return self.F.relu(x)
    def f_tanh(self, x): return self.F.tanh(x)
    def f_sigmoid(self, x): return self.F.sigmoid(x)

    def maximum(self, x, y=None, scalar=None): return self.lucid.maximum(x, scalar if y is None else y)

    def where_gt(self, x, a, b, threshold): return self.lucid.where(x > threshold, a, b)

    def where_le(self, x, a, b, threshold): return self.lucid.where(x <= threshold, a, b)

    def sum(self, x, axis, keepdims): return x.sum(axis=axis, keepdims=keepdims)
    def mean(self, x, axis, keepdims): return x.mean(axis=axis, keepdims=keepdims)
    def max(self, x, axis, keepdims): return x.max(axis=axis, keepdims=keepdims)
    def reshape(self, x, shape): return x.reshape(*shape)
    def reverse_axes(self, x): return x.transpose()
    def swap_axes(self, x, a, b): return x.transpose(a, b)
    def permute(self, x, perm): return x.permute(*perm)
    def t2(self, x): return x.T
    def matmul(self, x, w): return x @ w
    def lucid_matmul(self, x, w): return self.lucid.matmul(x, w)
    def linear(self, x, w, b=None): return self.F.linear(x, w, b)
    def softmax(self, x, axis): return self.F.softmax(x, axis=axis)
    def log_softmax(self, x, axis): return self.F.log_softmax(x, axis=axis)
    def mse_loss(self, x, t, reduction): return self.F.mse_loss(x, t, reduction=reduction)
    def cross_entropy(self, z, target, reduction): return self.F.cross_entropy(z, target, reduction=reduction)

    def cross_entropy_probs(self, z, p, reduction):
        return self.F.cross_entropy(z, self.F.softmax(p, axis=1), reduction=reduction)

    def detach(self, x): return x.detach()
    def _index(self, idx): return self.lucid.tensor(idx)

    def weighted_sum(self, x, weights):
        return (x * self.lucid.Tensor(weights.astype(self.dtype))).sum()


class TorchOps(_SharedOps):
    """The same ops in PyTorch (``torch.amax`` for max: ties share the gradient)."""

    def __init__(self, dtype):
        import torch
        self.torch, self.dtype = torch, dtype
        self.F = torch.nn.functional

    add, sub, mul = _binary("add"), _binary("sub"), _binary("mul")
    div_pos = LucidOps.div_pos

    def neg(self, x): return -x
    def tanh(self, x): return self.torch.tanh(x)
    def sigmoid(self, x): return self.torch.sigmoid(x)
    def relu(self, x): return self.torch.relu(x)
    def exp_tanh(self, x): return self.torch.exp(self.torch.tanh(x))
    def log_sq(self, x): return self.torch.log(x * x + 1.0)
    def sqrt_sq(self, x): return self.torch.sqrt(x * x + 0.25)
    f_relu, f_tanh, f_sigmoid = relu, tanh, sigmoid

    def maximum(self, x, y=None, scalar=None):
        if y is None:
            y = self.torch.tensor(scalar, dtype=x.dtype)
        return self.torch.maximum(x, y)

    def where_gt(self, x, a, b, threshold):
        a, b = self.torch.broadcast_tensors(a, b)
        return self.torch.where(x > threshold, a, b)

    def where_le(self, x, a, b, threshold):
        a, b = self.torch.broadcast_tensors(a, b)
        return self.torch.where(x <= threshold, a, b)

    def _dims(self, x, axis):
        if axis is None:
            return tuple(range(x.ndim))
        return axis

    def sum(self, x, axis, keepdims):
        return x.sum(dim=self._dims(x, axis), keepdim=keepdims) if x.ndim else x

    def mean(self, x, axis, keepdims):
        return x.mean(dim=self._dims(x, axis), keepdim=keepdims) if x.ndim else x

    def max(self, x, axis, keepdims):
        return self.torch.amax(x, dim=self._dims(x, axis), keepdim=keepdims) if x.ndim else x

    def reshape(self, x, shape): return x.reshape(*shape)
    def reverse_axes(self, x): return x.permute(*reversed(range(x.ndim)))
    def swap_axes(self, x, a, b): return x.transpose(a, b)
    def permute(self, x, perm): return x.permute(*perm)
    def t2(self, x): return x.T
    def matmul(self, x, w): return x @ w
    lucid_matmul = matmul
    def linear(self, x, w, b=None): return self.F.linear(x, w, None if b is None else b.reshape(-1))
    def softmax(self, x, axis): return self.torch.softmax(x, dim=axis)
    def log_softmax(self, x, axis): return self.torch.log_softmax(x, dim=axis)
    def mse_loss(self, x, t, reduction): return self.F.mse_loss(x, t, reduction=reduction)

    def cross_entropy(self, z, target, reduction):
        return self.F.cross_entropy(z, self.torch.as_tensor(np.asarray(target)), reduction=reduction)

    def cross_entropy_probs(self, z, p, reduction):
        return self.F.cross_entropy(z, self.torch.softmax(p, dim=1), reduction=reduction)

    def detach(self, x): return x.detach()
    def _index(self, idx): return self.lucid.tensor(idx)

    def weighted_sum(self, x, weights):
        return (x * self.torch.as_tensor(weights, dtype=self.dtype)).sum()
    def _index(self, idx): return self.torch.as_tensor(idx)
