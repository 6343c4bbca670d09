"""More float functions of one operand: ``log2 log1p expm1 rsqrt sin cos erf erfc``. Each
takes float32/float64 only (a TypeError names the op and the operand otherwise, as
for ``exp``); the numpy reference defines the values, PyTorch's are the same:

>>> import numpy as np
>>> x = np.array([0.0, -0.0, 1e-20, 8.0, -1.0, np.inf])
>>> with np.errstate(all="ignore"):
...     [get_op(op).evaluate([x], {}).tolist() for op in ("log2", "log1p", "expm1")]
[[-inf, -inf, -66.43856189774725, 3.0, nan, inf], [0.0, -0.0, 1e-20, 2.1972245773362196, -inf, inf], [0.0, -0.0, 1e-20, 2979.9579870417283, -0.6321205588285577, inf]]
>>> get_op("erf").evaluate([np.array([-np.inf, -0.0, 0.5, np.nan], np.float32)], {}).tolist()
[-1.0, -0.0, 0.5204998850822449, nan]
>>> get_op("erfc").evaluate([np.array([-np.inf, 0.0, 10.0, np.nan])], {}).tolist()
[2.0, 1.0, 2.088487583762545e-45, nan]

``rsqrt(x)`` is ``1 / sqrt(x)``: ``rsqrt(-0.0)`` is ``-inf``, as in PyTorch. The
gradients are PyTorch's formulas: ``g / (x ln 2)``, ``g / (1 + x)``, ``g (y + 1)``,
``-g y^3 / 2``, ``g cos x``, ``-g sin x``, ``g 2/sqrt(pi) e^{-x^2}`` (erfc: its negation).
"""
from __future__ import annotations

import math

import numpy as np

from . import get_op, register
from .elementwise import Unary
from .gradient_helpers import scalar


@register
class Log2(Unary):
    name = "log2"
    cost = 150

    def evaluate(self, a, attrs):
        return np.log2(a[0])

    def grad(self, b, node, g):
        x = node.inputs[0]
        return [b.emit("div", g, b.emit("mul", x, scalar(b, math.log(2.0), x.dtype)))]


@register
class Log1p(Unary):
    """``log(1 + x)``, accurate for tiny x (``log1p(-0.0)`` is ``-0.0``)."""

    name = "log1p"
    cost = 210


    def evaluate(self, a, attrs):
        return np.log1p(a[0])

    def grad(self, b, node, g):
        x = node.inputs[0]
        return [b.emit("div", g, b.emit("add", x, scalar(b, 1.0, x.dtype)))]


@register
class Expm1(Unary):
    """``e^x - 1``, accurate for tiny x."""

    name = "expm1"
    cost = 21


    def evaluate(self, a, attrs):
        return np.expm1(a[0])

    def grad(self, b, node, g):
        y = node.out
        return [b.emit("mul", g, b.emit("add", y, scalar(b, 1.0, y.dtype)))]


@register
class Rsqrt(Unary):
    name = "rsqrt"
    cost = 12

    def evaluate(self, a, attrs):
        x = a[0]
        return np.divide(np.ones((), x.dtype), np.sqrt(x))

    def grad(self, b, node, g):  # -g/2 * y^3
        y = node.out
        y3 = b.emit("mul", y, b.emit("mul", y, y))
        return [b.emit("mul", b.emit("mul", g, scalar(b, -0.5, y.dtype)), y3)]


@register
class Sin(Unary):
    name = "sin"
    cost = 68

    def evaluate(self, a, attrs):
        return np.sin(a[0])

    def grad(self, b, node, g):
        return [b.emit("mul", g, b.emit("cos", node.inputs[0]))]


@register
class Cos(Unary):
    name = "cos"
    cost = 66

    def evaluate(self, a, attrs):
        return np.cos(a[0])

    def grad(self, b, node, g):
        return [b.emit("neg", b.emit("mul", g, b.emit("sin", node.inputs[0])))]


_ERF = np.frompyfunc(math.erf, 1, 1)


@register
class Erf(Unary):
    """The error function. numpy has none: the reference is the C library's ``erf``
    (Python's ``math.erf``) element by element, in float64, rounded to the dtype."""

    name = "erf"
    cost = 46


    def evaluate(self, a, attrs):
        x = a[0]
        return np.asarray(_ERF(x.astype(np.float64)), np.float64).astype(x.dtype)

    def grad(self, b, node, g):  # g * 2/sqrt(pi) * e^{-x^2}
        x = node.inputs[0]
        e = b.emit("exp", b.emit("neg", b.emit("mul", x, x)))
        return [b.emit("mul", g, b.emit("mul", e, scalar(b, 2.0 / math.sqrt(math.pi), x.dtype)))]


_ERFC = np.frompyfunc(math.erfc, 1, 1)


@register
class Erfc(Unary):
    """The complementary error function ``1 - erf(x)``, accurate where erf is close to 1
    (``erfc(5) = 1.5e-12``). The reference is the C library's ``erfc`` (Python's
    ``math.erfc``) element by element, in float64, rounded to the dtype."""

    name = "erfc"
    cost = 30

    def evaluate(self, a, attrs):
        x = a[0]
        return np.asarray(_ERFC(x.astype(np.float64)), np.float64).astype(x.dtype)

    def grad(self, b, node, g):  # -g * 2/sqrt(pi) * e^{-x^2}
        x = node.inputs[0]
        e = b.emit("exp", b.emit("neg", b.emit("mul", x, x)))
        return [b.emit("mul", g, b.emit("mul", e, scalar(b, -2.0 / math.sqrt(math.pi), x.dtype)))]
