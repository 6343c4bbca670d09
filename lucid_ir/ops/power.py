"""``pow(x, y)``: ``x ** y`` elementwise, operands of one dtype (int32, int64, float32,
float64; not bool, as PyTorch), broadcast the numpy way.

Floats follow C's ``pow`` (numpy's and PyTorch's): ``pow(x, 0) == 1`` and
``pow(1, y) == 1`` even for NaN, a negative base takes integer-valued exponents
(``(-2) ** 3 == -8``) and gives NaN for others, ``pow(-1, ±inf) == 1``, and the signed
zeros and infinities of the C standard (``pow(-0.0, -3) == -inf``).

Integers wrap on overflow (repeated squaring modulo 2^32 or 2^64, as numpy and
PyTorch). A negative integer exponent, an error in numpy, has PyTorch's values:
``1 ** -n == 1``, ``(-1) ** -n == ±1``, and 0 for every other base.

>>> import numpy as np
>>> x = np.array([2.0, -2.0, -2.0, 0.0, -0.0, np.nan, 1.0])
>>> y = np.array([0.5, 3.0, 0.5, 0.0, -3.0, 0.0, np.nan])
>>> Pow().evaluate([x, y], {}).tolist()
[1.4142135623730951, -8.0, nan, 1.0, -inf, 1.0, 1.0]
>>> Pow().evaluate([np.array([3, 1, -1, -1, 2, 0], np.int32), np.array([21, -5, -3, -4, -1, 0], np.int32)], {}).tolist()
[1870418611, 1, -1, 1, 0, 1]

Gradients (floats; PyTorch's conventions at zero): ``g y x^(y-1)`` to x, 0 where
``y == 0``; ``g x^y log x`` to y, 0 where ``x == 0`` and ``y >= 0``.
"""
from __future__ import annotations

import numpy as np

from . import register
from .elementwise import NUMERIC, Binary
from .gradient_helpers import scalar, sum_to


def int_pow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x ** y`` for integer arrays, wrapping, with PyTorch's negative exponents."""
    x, y = np.broadcast_arrays(x, y)
    with np.errstate(over="ignore"):
        out = np.power(x, np.where(y < 0, 0, y)).astype(x.dtype, copy=False)
    odd = (y & 1) == 1
    negative = np.where(x == 1, 1, np.where(x == -1, np.where(odd, -1, 1), 0)).astype(x.dtype)
    return np.where(y < 0, negative, out)


@register
class Pow(Binary):
    name, accepts = "pow", NUMERIC
    cost = 290

    def evaluate(self, a, attrs):
        x, y = a
        if x.dtype.kind != "f":
            return int_pow(x, y)
        with np.errstate(all="ignore"):
            return np.power(x, y)

    def grad(self, b, node, g):
        x, y = node.inputs
        if g.dtype not in ("float32", "float64"):
            return [None, None]
        zero, one = scalar(b, 0.0, g.dtype), scalar(b, 1.0, g.dtype)
        dx = b.emit("mul", g, b.emit("mul", y, b.emit("pow", x, b.emit("sub", y, one))))
        dx = b.emit("select", b.emit("eq", y, zero), zero, dx)
        dy = b.emit("mul", g, b.emit("mul", node.out, b.emit("log", x)))
        at_zero = b.emit("logical_and", b.emit("eq", x, zero), b.emit("ge", y, zero))
        dy = b.emit("select", at_zero, zero, dy)
        return [sum_to(b, dx, x.shape), sum_to(b, dy, y.shape)]
