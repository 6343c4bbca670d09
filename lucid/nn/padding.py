"""Padding modules over ``F.pad``: ``ZeroPad1d/2d``, ``ConstantPad1d/2d``,
``ReflectionPad1d/2d``, ``ReplicationPad1d/2d``, ``CircularPad1d/2d``. An int padding
pads every side by it; a tuple lists ``(left, right[, top, bottom])``.

>>> import lucid
>>> import lucid.nn as nn
>>> nn.ZeroPad2d(1), nn.ConstantPad1d((1, 2), 3.5)
(ZeroPad2d((1, 1, 1, 1)), ConstantPad1d(padding=(1, 2), value=3.5))
>>> nn.ReflectionPad1d(2)(lucid.tensor([[[1.0, 2.0, 3.0]]])).tolist()
[[[3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]]]
"""
from __future__ import annotations

from . import functional as F
from .module import Module


def _padding(padding, n: int, name: str) -> tuple:
    if isinstance(padding, int):
        return (padding,) * (2 * n)
    padding = tuple(int(p) for p in padding)
    if len(padding) != 2 * n:
        raise ValueError(f"{name}: padding must be an int or a tuple of {2 * n} ints, got {padding}")
    return padding


class _Pad(Module):
    _mode, _dims = "constant", 1

    def __init__(self, padding):
        super().__init__()
        self.padding = _padding(padding, self._dims, type(self).__name__)

    def forward(self, input):  # noqa: A002
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPad(_Pad):
    def __init__(self, padding, value: float):
        super().__init__(padding)
        self.value = value

    def forward(self, input):  # noqa: A002
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPad):
    _dims = 1


class ConstantPad2d(_ConstantPad):
    _dims = 2


class ZeroPad1d(ConstantPad1d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_Pad):
    _mode, _dims = "reflect", 1


class ReflectionPad2d(_Pad):
    _mode, _dims = "reflect", 2


class ReplicationPad1d(_Pad):
    _mode, _dims = "replicate", 1


class ReplicationPad2d(_Pad):
    _mode, _dims = "replicate", 2


class CircularPad1d(_Pad):
    _mode, _dims = "circular", 1


class CircularPad2d(_Pad):
    _mode, _dims = "circular", 2
