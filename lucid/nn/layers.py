"""Layers: ``Linear``, ``Bilinear``, ``Identity`` (the activations live in ``activation.py``,
the containers in ``container.py``; both re-exported here)."""
from __future__ import annotations

import math

from .. import creation
from . import functional as F
from . import init
from .container import Sequential  # noqa: F401 - its older home
from .functional_bilinear import bilinear
from .module import Module
from .parameter import Parameter
from .activation import ReLU, Sigmoid, Tanh  # noqa: E402,F401  (moved there; still importable from here)


def _empty_parameter(shape, device, dtype) -> Parameter:
    return Parameter(creation.empty(*shape, dtype=dtype, device=device))


class Linear(Module):
    """``y = x · Wᵀ + b`` with W of shape (out_features, in_features).

    Initialised as PyTorch's: W by ``kaiming_uniform_(a=√5)`` and b uniform, both in
    ``[-1/√in_features, 1/√in_features]``, from the default generator.

    >>> import lucid
    >>> layer = Linear(3, 2)
    >>> layer(lucid.zeros(5, 3)).shape
    (5, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: feature counts must be non-negative, got {in_features}, {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = _empty_parameter((out_features, in_features), device, dtype)
        if bias:
            self.bias = _empty_parameter((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the weights again (PyTorch's initialisation)."""
        if self.weight.numel() > 0:
            init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """``y = x1ᵀ · A · x2 + b``: weight ``(out_features, in1_features, in2_features)``,
    initialised (with the bias) uniform in ``±1/√in1_features``, as PyTorch's.

    >>> import lucid
    >>> Bilinear(3, 4, 2)(lucid.zeros(5, 3), lucid.zeros(5, 4)).shape
    (5, 2)
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.in1_features, self.in2_features = int(in1_features), int(in2_features)
        self.out_features = int(out_features)
        self.weight = _empty_parameter((out_features, in1_features, in2_features), device, dtype)
        if bias:
            self.bias = _empty_parameter((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1]) if self.weight.shape[1] > 0 else 0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Identity(Module):
    """Returns its input (any constructor arguments are ignored, as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):  # noqa: A002 - PyTorch's name
        return input
