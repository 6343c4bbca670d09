"""Reductions over axes: ``sum``, ``prod``, ``mean``, ``max``, ``min`` with ``axes`` and
``keepdims``; ``argmax``/``argmin`` (one axis, or all of them flattened) and the scan
``cumsum`` (one axis) are in ``lucid_ir.ops.scan``.

Dtypes follow PyTorch: ``sum`` and ``prod`` of int32/int64/bool give int64 (accumulated
in int64, wrapping on overflow), of floats keep the dtype; ``mean`` takes floats only;
``max``/``min`` keep any dtype (for bool they are any/all).

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> m = b.emit("gt", b.input((4, 3)), b.constant(0.0))
>>> str(b.emit("sum", m, axes=(1,)).type), str(b.emit("max", m).type)
('i64[4]', 'bool[]')
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, is_float, normalize_axes
from . import OpDef, get_op, register


def kept_shape(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


class Reduction(OpDef):
    group, row_reduction = "reduction", True
    arity = 1
    attr_names = ("axes", "keepdims")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        axes = normalize_axes(attrs.get("axes"), len(inputs[0].shape), self.name)
        return {"axes": axes, "keepdims": bool(attrs.get("keepdims", False))}

    def out_dtype(self, dtype: str) -> str:
        return dtype

    def forwards(self, node) -> bool:
        """Reducing only axes of size 1 (or none: ``axes=()``, a scalar's ``sum()``) to
        the same type: every value is the input's own.

        >>> from lucid_ir.builder import GraphBuilder
        >>> b = GraphBuilder()
        >>> x = b.input((4, 1))
        >>> g = b.build([b.emit("sum", x, axes=(1,), keepdims=True), b.emit("mean", x, axes=(0,), keepdims=True)])
        >>> [get_op(n.op).forwards(n) for n in g.nodes]
        [True, False]
        """
        x = node.inputs[0]
        return node.out.type == x.type and all(x.shape[a] == 1 for a in node.attr("axes"))

    def infer(self, types, attrs):
        shape, axes = types[0].shape, attrs["axes"]
        if attrs["keepdims"]:
            out = kept_shape(shape, axes)
        else:
            out = tuple(d for i, d in enumerate(shape) if i not in axes)
        return TensorType(out, self.out_dtype(types[0].dtype))

    def expand(self, b, node, v):
        """Broadcast a reduced value ``v`` back to the input's shape."""
        x = node.inputs[0]
        axes = node.attr("axes")
        kept = kept_shape(x.shape, axes)
        if v.shape != kept:
            v = b.emit("reshape", v, shape=kept)
        return b.emit("broadcast_to", v, shape=x.shape) if kept != x.shape else v


class _Accumulating(Reduction):
    """A reduction that accumulates integers and bools in int64 (as PyTorch's sum and
    prod); ``numpy_fn`` is its reference."""

    numpy_fn = None

    def out_dtype(self, dtype):
        return dtype if is_float(dtype) else "int64"

    def evaluate(self, a, attrs):
        x = a[0]
        return type(self).numpy_fn(x, axis=attrs["axes"], keepdims=attrs["keepdims"],
                                   dtype=None if is_float(x.dtype.name) else np.int64)


@register
class Sum(_Accumulating):
    name, numpy_fn = "sum", np.sum

    def grad(self, b, node, g):
        return [self.expand(b, node, g)]


@register
class Prod(_Accumulating):
    """Gradient: the product of the *other* elements, computed without dividing by zero
    (as PyTorch): with no zero in the reduced slice it is ``prod / x``; with exactly one
    zero, the zero's position gets the product of the non-zero elements and the others
    0; with two or more zeros every position gets 0.

    >>> from lucid_ir.builder import GraphBuilder
    >>> from lucid_ir.interpreter import interpret
    >>> import numpy as np
    >>> b = GraphBuilder()
    >>> x = b.input((3,), "float64")
    >>> interpret(b.build([b.emit("prod", x)]), [np.array([2.0, 3.0, 4.0])])[0]
    array(24.)
    """

    name, numpy_fn = "prod", np.prod
    row_reduction = False


    def grad(self, b, node, g):
        x = node.inputs[0]
        axes, keep = node.attr("axes"), node.attr("keepdims")
        zero, one = b.constant(0.0, (), x.dtype), b.constant(1.0, (), x.dtype)
        is_zero = b.emit("eq", x, zero)
        nonzero_x = b.emit("select", is_zero, one, x)
        p = b.emit("prod", nonzero_x, axes=axes, keepdims=keep)   # product of the non-zeros
        zeros = b.emit("sum", b.emit("cast", is_zero, dtype="int64"), axes=axes, keepdims=keep)
        gp = self.expand(b, node, b.emit("mul", g, p))
        n_zero = self.expand(b, node, zeros)
        none = b.emit("eq", n_zero, b.constant(0, (), "int64"))
        single = b.emit("logical_and", b.emit("eq", n_zero, b.constant(1, (), "int64")), is_zero)
        return [b.emit("select", none, b.emit("div", gp, nonzero_x),
                       b.emit("select", single, gp, b.emit("broadcast_to", zero, shape=x.shape)))]


@register
class Mean(Reduction):
    name = "mean"

    def out_dtype(self, dtype):
        if not is_float(dtype):
            raise TypeError(f"mean: takes float32/float64 operands, got {dtype}; cast to a float "
                            f"dtype first (PyTorch's mean of an integer tensor is an error too)")
        return dtype

    def evaluate(self, a, attrs):
        x = a[0]
        count = int(np.prod([x.shape[i] for i in attrs["axes"]]))
        if count == 0:  # numpy warns and gives nan; keep its value without the warning
            return np.full(self.infer((TensorType(x.shape, x.dtype.name),), attrs).shape,
                           np.nan, x.dtype)
        return np.mean(x, axis=attrs["axes"], keepdims=attrs["keepdims"]).astype(x.dtype, copy=False)

    def grad(self, b, node, g):
        x = node.inputs[0]
        count = int(np.prod([x.shape[i] for i in node.attr("axes")]))
        scale = b.constant(1.0 / max(count, 1), (), g.dtype)
        return [self.expand(b, node, b.emit("mul", g, scale))]


class _Extreme(Reduction):
    """Gradient is shared evenly by the elements equal to the result (as jax and
    PyTorch's amax/amin do): with ties, e.g. the max over a broadcast axis, the total
    stays the true derivative instead of being counted once per tied copy. NaN wins."""

    numpy_fn = None

    def normalize_attrs(self, inputs, attrs):
        attrs = super().normalize_attrs(inputs, attrs)
        shape = inputs[0].shape
        if any(shape[i] == 0 for i in attrs["axes"]):
            raise ValueError(f"{self.name}: cannot reduce an empty axis of a tensor of shape {shape}")
        return attrs

    def evaluate(self, a, attrs):
        return type(self).numpy_fn(a[0], axis=attrs["axes"], keepdims=attrs["keepdims"])

    def grad(self, b, node, g):
        x = node.inputs[0]
        hit = b.emit("eq", x, self.expand(b, node, node.out))
        mask = b.emit("cast", hit, dtype=g.dtype)
        count = b.emit("sum", mask, axes=node.attr("axes"), keepdims=node.attr("keepdims"))
        return [b.emit("mul", mask, self.expand(b, node, b.emit("div", g, count)))]


@register
class Max(_Extreme):
    name, numpy_fn = "max", np.max


@register
class Min(_Extreme):
    name, numpy_fn = "min", np.min
