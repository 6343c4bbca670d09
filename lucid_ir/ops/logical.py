"""Comparisons, ``select`` and the logical and bitwise ops: the ops that make or read
bool values.

- comparisons ``gt ge lt le eq ne`` take two operands of one dtype (any) and give bool;
  a comparison with NaN is false, except ``ne``, which is true;
- ``select(c, a, b)`` is ``a`` where the bool ``c`` is true, else ``b``;
- ``logical_and/or/xor/not``: bool in, bool out (the user API casts other dtypes
  with ``cast[dtype=bool]``, i.e. ``!= 0``);
- ``bitwise_and/or/xor/not``: int32, int64 or bool (where they are the logical ops);
- ``isnan``/``isfinite``: any dtype in, bool out (an int or bool is never NaN and
  always finite).

None of them passes a gradient to a bool operand (``select`` passes one to its values).

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x, y = b.input((3,)), b.input((4, 1))
>>> m = b.emit("logical_and", b.emit("gt", x, y), b.emit("lt", y, b.constant(1.0)))
>>> str(m.type), str(b.emit("select", m, x, y).type)
('bool[4,3]', 'f32[4,3]')
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, broadcast_shapes
from . import OpDef, register, same_dtype
from .elementwise import ALL, INT_BOOL, Binary, Unary
from .gradient_helpers import scalar, sum_to

BOOL = ("bool",)


class Comparison(Binary):
    kind = "comparison"
    accepts, result = ALL, "bool"
    numpy_fn = None

    def evaluate(self, a, attrs):
        return type(self).numpy_fn(a[0], a[1])

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
class Ne(Comparison):
    name, numpy_fn = "ne", np.not_equal


@register
class Select(OpDef):
    name = "select"
    group, kind = "elementwise", "select"
    arity = 3

    def infer(self, types, attrs):
        c, x, y = types
        if c.dtype != "bool":
            raise TypeError(f"select: the condition must be bool, got {c} (compare it, or cast "
                            f"it with cast[dtype=bool], which is != 0)")
        dtype = same_dtype(self.name, (x, y))
        return TensorType(broadcast_shapes(*(t.shape for t in types), op=self.name), dtype)

    def evaluate(self, a, attrs):
        return np.where(a[0], a[1], a[2])

    def grad(self, b, node, g):
        c, x, y = node.inputs
        zero = scalar(b, 0.0, g.dtype)
        gx = b.emit("select", c, g, zero)
        gy = b.emit("select", c, zero, g)
        return [None, sum_to(b, gx, x.shape), sum_to(b, gy, y.shape)]


class _NoGradBinary(Binary):
    numpy_fn = None

    def evaluate(self, a, attrs):
        return type(self).numpy_fn(a[0], a[1])

    def grad(self, b, node, g):
        return [None, None]


class _NoGradUnary(Unary):
    numpy_fn = None

    def evaluate(self, a, attrs):
        return type(self).numpy_fn(a[0])

    def grad(self, b, node, g):
        return [None]


@register
class LogicalAnd(_NoGradBinary):
    name, accepts, numpy_fn = "logical_and", BOOL, np.logical_and


@register
class LogicalOr(_NoGradBinary):
    name, accepts, numpy_fn = "logical_or", BOOL, np.logical_or


@register
class LogicalXor(_NoGradBinary):
    name, accepts, numpy_fn = "logical_xor", BOOL, np.logical_xor


@register
class LogicalNot(_NoGradUnary):
    name, accepts, numpy_fn = "logical_not", BOOL, np.logical_not
    involution = True


@register
class BitwiseAnd(_NoGradBinary):
    name, accepts, numpy_fn = "bitwise_and", INT_BOOL, np.bitwise_and


@register
class BitwiseOr(_NoGradBinary):
    name, accepts, numpy_fn = "bitwise_or", INT_BOOL, np.bitwise_or


@register
class BitwiseXor(_NoGradBinary):
    name, accepts, numpy_fn = "bitwise_xor", INT_BOOL, np.bitwise_xor


@register
class BitwiseNot(_NoGradUnary):
    name, accepts, numpy_fn = "bitwise_not", INT_BOOL, np.invert
    involution = True


class _Classify(Unary):
    accepts = ALL
    numpy_fn = None
    int_value = False  # the answer for int and bool operands

    def infer(self, types, attrs):
        return TensorType(super().infer(types, attrs).shape, "bool")

    def evaluate(self, a, attrs):
        x = a[0]
        if x.dtype.kind != "f":
            return np.full(x.shape, self.int_value)
        return type(self).numpy_fn(x)

    def grad(self, b, node, g):
        return [None]


@register
class IsNan(_Classify):
    name, numpy_fn, int_value = "isnan", np.isnan, False


@register
class IsFinite(_Classify):
    name, numpy_fn, int_value = "isfinite", np.isfinite, True
