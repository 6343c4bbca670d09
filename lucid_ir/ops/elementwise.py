"""Elementwise ops. Binary ops broadcast their operands the numpy way; operands must
share a dtype (the user API inserts ``cast``). Comparisons give 1.0/0.0 in that dtype,
and ``select(c, a, b)`` picks ``a`` where ``c != 0``.
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, broadcast_shapes, check_dtype
from . import OpDef, register, same_dtype
from .gradient_helpers import scalar, sum_to


class Unary(OpDef):
    arity = 1

    def infer(self, types, attrs):
        return types[0]


class Binary(OpDef):
    arity = 2

    def infer(self, types, attrs):
        dtype = same_dtype(self.name, types)
        return TensorType(broadcast_shapes(types[0].shape, types[1].shape, op=self.name), dtype)


@register
class Neg(Unary):
    name = "neg"

    def evaluate(self, a, attrs):
        return np.negative(a[0])

    def grad(self, b, node, g):
        return [b.emit("neg", g)]


@register
class Exp(Unary):
    name = "exp"

    def evaluate(self, a, attrs):
        return np.exp(a[0])

    def grad(self, b, node, g):
        return [b.emit("mul", g, node.out)]


@register
class Log(Unary):
    name = "log"

    def evaluate(self, a, attrs):
        return np.log(a[0])

    def grad(self, b, node, g):
        return [b.emit("div", g, node.inputs[0])]


@register
class Sqrt(Unary):
    name = "sqrt"

    def evaluate(self, a, attrs):
        return np.sqrt(a[0])

    def grad(self, b, node, g):  # g / (2 sqrt(x))
        return [b.emit("div", g, b.emit("mul", node.out, scalar(b, 2.0, g.dtype)))]


@register
class Tanh(Unary):
    name = "tanh"

    def evaluate(self, a, attrs):
        return np.tanh(a[0])

    def grad(self, b, node, g):  # g * (1 - y^2)
        y = node.out
        one = scalar(b, 1.0, y.dtype)
        return [b.emit("mul", g, b.emit("sub", one, b.emit("mul", y, y)))]


@register
class Sigmoid(Unary):
    name = "sigmoid"

    def evaluate(self, a, attrs):
        x = a[0]
        # 1 / (1 + e^-x) without overflow: e^-|x| never exceeds 1.
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def grad(self, b, node, g):  # g * y * (1 - y)
        y = node.out
        one = scalar(b, 1.0, y.dtype)
        return [b.emit("mul", g, b.emit("mul", y, b.emit("sub", one, y)))]


@register
class Cast(Unary):
    name = "cast"
    attr_names = ("dtype",)

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        return {"dtype": check_dtype(attrs["dtype"])}

    def infer(self, types, attrs):
        return TensorType(types[0].shape, attrs["dtype"])

    def evaluate(self, a, attrs):
        return a[0].astype(attrs["dtype"])

    def grad(self, b, node, g):
        return [b.emit("cast", g, dtype=node.inputs[0].dtype)]


@register
class Add(Binary):
    name = "add"

    def evaluate(self, a, attrs):
        return np.add(a[0], a[1])

    def grad(self, b, node, g):
        x, y = node.inputs
        return [sum_to(b, g, x.shape), sum_to(b, g, y.shape)]


@register
class Sub(Binary):
    name = "sub"

    def evaluate(self, a, attrs):
        return np.subtract(a[0], a[1])

    def grad(self, b, node, g):
        x, y = node.inputs
        return [sum_to(b, g, x.shape), sum_to(b, b.emit("neg", g), y.shape)]


@register
class Mul(Binary):
    name = "mul"

    def evaluate(self, a, attrs):
        return np.multiply(a[0], a[1])

    def grad(self, b, node, g):
        x, y = node.inputs
        return [sum_to(b, b.emit("mul", g, y), x.shape), sum_to(b, b.emit("mul", g, x), y.shape)]


@register
class Div(Binary):
    name = "div"

    def evaluate(self, a, attrs):
        return np.divide(a[0], a[1])

    def grad(self, b, node, g):  # d(x/y) = g/y, -g*x/y^2 = -(g/y) * out
        x, y = node.inputs
        gx = b.emit("div", g, y)
        gy = b.emit("neg", b.emit("mul", gx, node.out))
        return [sum_to(b, gx, x.shape), sum_to(b, gy, y.shape)]


@register
class Maximum(Binary):
    """Gradient goes to the first operand where it is strictly larger, else to the second
    (so ``relu = maximum(x, 0)`` has gradient 0 at x == 0, as in PyTorch).

    The mask is computed as ``out > y`` (the same as ``x > y``), so the backward reads the
    op's output rather than its input: for relu after a matmul, the fused GEMM's output
    is all the backward needs."""

    name = "maximum"

    def evaluate(self, a, attrs):
        return np.maximum(a[0], a[1])

    def grad(self, b, node, g):
        x, y = node.inputs
        mask = b.emit("gt", node.out, y)
        zero = scalar(b, 0.0, g.dtype)
        gx = b.emit("select", mask, g, zero)
        gy = b.emit("select", mask, zero, g)
        return [sum_to(b, gx, x.shape), sum_to(b, gy, y.shape)]


class Comparison(Binary):
    numpy_fn = None

    def evaluate(self, a, attrs):
        return type(self).numpy_fn(a[0], a[1]).astype(np.result_type(a[0], a[1]))

    def grad(self, b, node, g):
        return [None, None]


@register
class Gt(Comparison):
    name, numpy_fn = "gt", np.greater


@register
class Ge(Comparison):
    name, numpy_fn = "ge", np.greater_equal


@register
class Lt(Comparison):
    name, numpy_fn = "lt", np.less


@register
class Le(Comparison):
    name, numpy_fn = "le", np.less_equal


@register
class Eq(Comparison):
    name, numpy_fn = "eq", np.equal


@register
class Select(OpDef):
    name = "select"
    arity = 3

    def infer(self, types, attrs):
        dtype = same_dtype(self.name, types)
        return TensorType(broadcast_shapes(*(t.shape for t in types), op=self.name), dtype)

    def evaluate(self, a, attrs):
        return np.where(a[0] != 0, a[1], a[2])

    def grad(self, b, node, g):
        c, x, y = node.inputs
        zero = scalar(b, 0.0, g.dtype)
        gx = b.emit("select", c, g, zero)
        gy = b.emit("select", c, zero, g)
        return [None, sum_to(b, gx, x.shape), sum_to(b, gy, y.shape)]
