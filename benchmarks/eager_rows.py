"""The eager calls that ``bench_eager.py`` times, defined once: the benchmark times them
and ``tests/test_bench_eager.py`` checks that lucid, PyTorch and numpy compute the same
values with them, so the benchmark provably times the same computation in each library.

A ``Row`` is one call: its inputs (float32 arrays drawn from a seeded generator, integer
class targets, or tensors that require grad) and the call written once for lucid and
PyTorch (their APIs agree; ``torch_fn`` only where a keyword differs, ``axis`` vs
``dim``) and once for numpy (None when numpy has no equivalent worth timing). Each
library's call is a zero-argument callable, as a user would write it in a loop:

>>> row = ROW_BY_NAME["x + y"]
>>> arrays = row.arrays()
>>> out = to_numpy(lucid_call(row, arrays)())
>>> bool(np.allclose(out, arrays[0] + arrays[1]))
True

``MLP`` builds the eager training step (784-256-256-10, batch 64, softmax cross-entropy,
SGD lr 0.01) in the three libraries from the same initial parameters.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Input:
    """One argument of a row: a float32 array of ``shape`` (standard normal), or integer
    class targets in ``[0, classes)`` when ``classes`` > 0."""
    shape: tuple
    requires_grad: bool = False
    classes: int = 0


@dataclass(frozen=True)
class Row:
    """One eager call. ``fn(F, *tensors)`` is the call in lucid and in PyTorch (``F`` their
    ``nn.functional``), ``torch_fn`` the PyTorch spelling where it differs, ``numpy_fn(*arrays)``
    the numpy equivalent. ``issue``: one of issue 13's nine calls (their geometric mean is a
    target); ``vs_numpy``: lucid must also take no longer than numpy, at every thread count."""
    name: str
    inputs: tuple
    fn: Callable
    numpy_fn: Callable | None
    torch_fn: Callable | None = None
    issue: bool = False
    vs_numpy: bool = False
    seed: int = 0

    def arrays(self) -> list:
        rng = np.random.default_rng(self.seed)
        return [rng.integers(0, i.classes, i.shape) if i.classes
                else rng.standard_normal(i.shape).astype(np.float32) for i in self.inputs]


def _f(*shapes, grad=False):
    return tuple(Input(s, requires_grad=grad) for s in shapes)


def _backward(F, x, y):
    """``(x * y).sum().backward()`` with the gradients cleared first (``zero_grad``'s
    ``set_to_none``), so that every call computes the same gradients."""
    x.grad = None
    y.grad = None
    (x * y).sum().backward()
    return x.grad, y.grad


def _numpy_backward(x, y):
    """The same by hand: forward, then the chain rule (d sum = 1, d(x*y) = (g*y, g*x))."""
    p = x * y
    p.sum()
    g = np.ones_like(p)
    return g * y, g * x


def _numpy_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _numpy_log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _numpy_layer_norm(x, w, b, eps=1e-5):
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps) * w + b


def _numpy_rms_norm(x, w, eps=1e-6):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w


def _numpy_cross_entropy(z, t):
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(t)), t].mean()


def _numpy_erf(x):
    """erf in numpy (which has none): Abramowitz and Stegun 7.1.26, absolute error
    under 1.5e-7, enough for the rows' tolerance."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def _numpy_gelu(x):
    return 0.5 * x * (1.0 + _numpy_erf(x * 0.7071067811865476))


def _gelu_backward(F, x):
    """GELU forward and backward with the gradient cleared first; x.grad is the result."""
    x.grad = None
    F.gelu(x).sum().backward()
    return x.grad


def _numpy_gelu_backward(x):
    """d gelu = Φ(x) + x φ(x)."""
    _numpy_gelu(x)
    return 0.5 * (1.0 + _numpy_erf(x * 0.7071067811865476)) + x * np.exp(-0.5 * x * x) * 0.3989422804014327


def _library(t):
    """The module of tensor ``t``'s library (``lucid`` or ``torch``): for calls spelled at
    the top level (``stack``) the same way in both."""
    import sys
    return sys.modules[type(t).__module__.split(".")[0]]


def _numpy_max_dim(x):
    return x.max(axis=1), x.argmax(axis=1)


SQ = (64, 64)

ROWS = [
    # issue 13's table: 1 thread, 64x64 float32 unless noted
    Row("x + y", _f(SQ, SQ), lambda F, x, y: x + y, lambda x, y: x + y, issue=True),
    Row("x * 2.0", _f(SQ), lambda F, x: x * 2.0, lambda x: x * 2.0, issue=True),
    Row("F.relu(x)", _f(SQ), lambda F, x: F.relu(x), lambda x: np.maximum(x, 0), issue=True),
    Row("x.exp()", _f(SQ), lambda F, x: x.exp(), np.exp, issue=True),
    Row("x.sum()", _f(SQ), lambda F, x: x.sum(), lambda x: x.sum(), issue=True),
    Row("x @ y", _f(SQ, SQ), lambda F, x, y: x @ y, lambda x, y: x @ y, issue=True),
    Row("F.linear 8x8", _f((8, 8), (8, 8), (8,)), lambda F, x, w, b: F.linear(x, w, b),
        lambda x, w, b: x @ w.T + b, issue=True),
    Row("F.relu(F.linear) 8x8", _f((8, 8), (8, 8), (8,)), lambda F, x, w, b: F.relu(F.linear(x, w, b)),
        lambda x, w, b: np.maximum(x @ w.T + b, 0), issue=True),
    Row("(x * y).sum().backward()", _f(SQ, SQ, grad=True), _backward, _numpy_backward, issue=True),
    # more calls a PyTorch user makes all the time
    Row("x + b (64,64)+(64,)", _f(SQ, (64,)), lambda F, x, b: x + b, lambda x, b: x + b),
    Row("x - 1.0", _f(SQ), lambda F, x: x - 1.0, lambda x: x - 1.0),
    Row("2.0 * x", _f(SQ), lambda F, x: 2.0 * x, lambda x: 2.0 * x),
    Row("x.tanh()", _f(SQ), lambda F, x: x.tanh(), np.tanh),
    Row("x.sigmoid()", _f(SQ), lambda F, x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    Row("x.mean()", _f(SQ), lambda F, x: x.mean(), lambda x: x.mean()),
    Row("x.mean(axis=1)", _f(SQ), lambda F, x: x.mean(axis=1), lambda x: x.mean(axis=1),
        torch_fn=lambda F, x: x.mean(dim=1)),
    Row("F.softmax(x, axis=-1)", _f(SQ), lambda F, x: F.softmax(x, axis=-1), _numpy_softmax,
        torch_fn=lambda F, x: F.softmax(x, dim=-1)),
    # row kernels (issue 16): one native kernel per call
    Row("F.softmax 64x1000", _f((64, 1000)), lambda F, x: F.softmax(x, -1), _numpy_softmax),
    Row("F.log_softmax 64x1000", _f((64, 1000)), lambda F, x: F.log_softmax(x, -1), _numpy_log_softmax),
    Row("F.layer_norm 64x256", _f((64, 256), (256,), (256,)),
        lambda F, x, w, b: F.layer_norm(x, (256,), w, b), _numpy_layer_norm),
    Row("F.rms_norm 64x256", _f((64, 256), (256,)), lambda F, x, w: F.rms_norm(x, (256,), w, eps=1e-6),
        _numpy_rms_norm),
    Row("F.gelu 512x1024", _f((512, 1024)), lambda F, x: F.gelu(x), _numpy_gelu),
    Row("F.gelu fwd+bwd 512x1024", _f((512, 1024), grad=True), _gelu_backward, _numpy_gelu_backward),
    Row("F.cross_entropy 64x10", (Input((64, 10)), Input((64,), classes=10)),
        lambda F, z, t: F.cross_entropy(z, t), _numpy_cross_entropy),
    Row("x.T @ y", _f(SQ, SQ), lambda F, x, y: x.T @ y, lambda x, y: x.T @ y),
    Row("x + y 512x512", _f((512, 512), (512, 512)), lambda F, x, y: x + y, lambda x, y: x + y),
    Row("x @ y 256x256", _f((256, 256), (256, 256)), lambda F, x, y: x @ y, lambda x, y: x @ y),
    Row("F.linear 1x784->256", _f((1, 784), (256, 784), (256,)), lambda F, x, w, b: F.linear(x, w, b),
        lambda x, w, b: x @ w.T + b, vs_numpy=True),
    # calls that earlier sessions gave one-call paths (a number bound, a power, a list
    # of tensors, values with indices, an index gather)
    Row("x.clamp(-0.5, 0.5)", _f(SQ), lambda F, x: x.clamp(-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
    Row("x ** 2", _f(SQ), lambda F, x: x ** 2, lambda x: x * x),
    Row("stack([x, y])", _f(SQ, SQ), lambda F, x, y: _library(x).stack([x, y]),
        lambda x, y: np.stack([x, y])),
    Row("x.max(1)", _f(SQ), lambda F, x: tuple(x.max(1)), _numpy_max_dim),
    Row("F.embedding 64 of 1000x64", (Input((64,), classes=1000), Input((1000, 64))),
        lambda F, i, w: F.embedding(i, w), lambda i, w: w[i]),
]
ROW_BY_NAME = {row.name: row for row in ROWS}


def lucid_call(row: Row, arrays) -> Callable:
    """The row's call in lucid on ``arrays`` (class targets as int64 tensors, as in the
    PyTorch call)."""
    import lucid
    import lucid.nn.functional as F
    args = [lucid.tensor(a) if i.classes else lucid.Tensor(a, requires_grad=i.requires_grad)
            for i, a in zip(row.inputs, arrays)]
    return functools.partial(row.fn, F, *args)


def torch_call(row: Row, arrays) -> Callable:
    """The row's call in PyTorch on the same values (class targets as int64 tensors)."""
    import torch
    import torch.nn.functional as F
    args = [torch.from_numpy(a.copy()).requires_grad_(i.requires_grad) for i, a in zip(row.inputs, arrays)]
    return functools.partial(row.torch_fn or row.fn, F, *args)


def numpy_call(row: Row, arrays) -> Callable | None:
    if row.numpy_fn is None:
        return None
    return functools.partial(row.numpy_fn, *[a.copy() for a in arrays])


def to_numpy(result):
    """A call's result as numpy arrays (a tuple stays a tuple): lucid tensors, PyTorch
    tensors, numpy arrays and numpy scalars alike, copied."""
    if isinstance(result, tuple):
        return tuple(to_numpy(r) for r in result)
    if hasattr(result, "detach"):  # torch.Tensor
        return result.detach().numpy().copy()
    if hasattr(result, "numpy"):  # lucid.Tensor
        return np.array(result.numpy())
    return np.array(result)


@dataclass
class Step:
    """One library's eager training step: ``call()`` runs a step and returns the loss
    (before the update); ``params()`` gives the parameters as numpy arrays, in the order
    W1, b1, W2, b2, W3, b3."""
    call: Callable
    params: Callable


class MLP:
    """The eager training step of issue 13 in lucid, PyTorch and numpy, from the same
    initial parameters (lucid's ``nn.Linear`` initialisation, seed 0) and the same batch."""

    def __init__(self, seed: int = 0):
        import lucid
        import lucid.nn as nn
        from bench_train import BATCH, LR, SIZES
        self.sizes, self.lr = SIZES, LR
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
        self.y = rng.integers(0, SIZES[-1], BATCH)
        lucid.random.seed(seed)
        # numpy copies, by name: "0.weight", "0.bias", "2.weight", ...
        self.state = {k: v.numpy().copy() for k, v in self.model(nn).state_dict().items()}

    def model(self, nn):
        """The MLP built with ``nn`` (``lucid.nn`` or ``torch.nn``: the same code)."""
        layers = []
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(self.sizes) - 2 else [])
        return nn.Sequential(*layers)

    def lucid(self) -> Step:
        import lucid
        import lucid.nn.functional as F
        model = self.model(lucid.nn)
        model.load_state_dict(self.state)
        opt = lucid.optim.SGD(model.parameters(), lr=self.lr)
        return self._step(F, model, opt, lucid.Tensor(self.x), self.y,
                          lambda: [p.numpy().copy() for p in model.parameters()])

    def torch(self) -> Step:
        import torch
        import torch.nn.functional as F
        model = self.model(torch.nn)
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.state.items()})
        opt = torch.optim.SGD(model.parameters(), lr=self.lr)
        return self._step(F, model, opt, torch.from_numpy(self.x), torch.from_numpy(self.y),
                          lambda: [p.detach().numpy().copy() for p in model.parameters()])

    @staticmethod
    def _step(F, model, opt, x, y, params) -> Step:
        """The step as issue 13 writes it, the same code for lucid and PyTorch."""
        def step():
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return Step(step, params)

    def numpy(self) -> Step:
        """``numpy_step`` of bench_train.py (forward, backward and update by hand)."""
        from bench_train import numpy_step
        arrays = list(self.state.values())
        params = [(w.copy(), b.copy()) for w, b in zip(arrays[::2], arrays[1::2])]
        return Step(lambda: numpy_step(params, self.x, self.y),
                    lambda: [a.copy() for pair in params for a in pair])
