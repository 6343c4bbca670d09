"""Floor division and remainder with PyTorch's (and Python's) semantics: the quotient
is rounded toward minus infinity, and the remainder takes the divisor's sign, so
``x == floor_divide(x, y) * y + remainder(x, y)``.

>>> import numpy as np
>>> x, y = np.array([7, -7, 7, -7]), np.array([2, 2, -2, -2])
>>> FloorDivide().evaluate([x, y], {}).tolist(), Remainder().evaluate([x, y], {}).tolist()
([3, -4, -4, 3], [1, 1, -1, -1])

Integer division by zero: PyTorch raises; the IR defines ``x // 0 == 0`` and
``x % 0 == 0`` (numpy's values), so native code never traps or reads undefined
results, whatever the data. The integer minimum divided by -1 wraps to itself, with
remainder 0 (numpy's values too). Floats follow PyTorch exactly, signed zeros
included (its fmod-based formula; numpy's floor_divide is the same, its remainder
differs only in the sign of a zero result, which here keeps the sign of x, as in
PyTorch): ``x // 0.0`` is ``x / 0.0`` (inf or NaN), ``x % 0.0`` NaN.
"""
from __future__ import annotations

import numpy as np

from . import register
from .elementwise import NUMERIC, Binary
from .gradient_helpers import sum_to


@register
class FloorDivide(Binary):
    """``floor(x / y)``; ints and floats (not bool, as PyTorch). No gradient (PyTorch's
    is zero almost everywhere)."""

    name, accepts = "floor_divide", NUMERIC

    def evaluate(self, a, attrs):
        return np.floor_divide(a[0], a[1])

    def grad(self, b, node, g):
        return [None, None]


@register
class Remainder(Binary):
    """``x - floor(x / y) * y``, with the divisor's sign. Gradient (floats): ``g`` to x
    and ``-g * floor_divide(x, y)`` to y, as PyTorch."""

    name, accepts = "remainder", NUMERIC

    def evaluate(self, a, attrs):
        x, y = a
        if x.dtype.kind != "f":
            return np.remainder(x, y)
        mod = np.fmod(x, y)
        adjust = (mod != 0) & ((y < 0) != (mod < 0))
        return np.where(adjust, mod + y, mod)

    def grad(self, b, node, g):
        x, y = node.inputs
        gy = b.emit("neg", b.emit("mul", g, b.emit("floor_divide", x, y)))
        return [sum_to(b, g, x.shape), sum_to(b, gy, y.shape)]
