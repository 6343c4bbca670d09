"""Layers: ``Linear`` and ``Sequential`` (the activations are in ``activation.py``)."""
from __future__ import annotations

import math

import numpy as np

from .. import random
from . import functional as F
from .module import Module
from .parameter import Parameter
from .activation import ReLU, Sigmoid, Tanh  # noqa: E402,F401  (moved there; still importable from here)


class Linear(Module):
    """``y = x · Wᵀ + b`` with W of shape (out_features, in_features).

    Initialised like PyTorch (Kaiming-uniform with a=√5): W and b uniform in
    ``[-1/√in_features, 1/√in_features]``.

    >>> import lucid
    >>> layer = Linear(3, 2)
    >>> layer(lucid.zeros(5, 3)).shape
    (5, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype="float32"):
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: feature counts must be non-negative, got {in_features}, {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        rng = random.generator()
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, (out_features,)).astype(dtype)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ..."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x
