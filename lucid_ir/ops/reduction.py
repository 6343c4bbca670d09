"""Reductions over axes: ``sum``, ``mean``, ``max`` with ``axes`` and ``keepdims``."""
from __future__ import annotations

import numpy as np

from ..types import TensorType, normalize_axes
from . import OpDef, register


def kept_shape(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


class Reduction(OpDef):
    arity = 1
    attr_names = ("axes", "keepdims")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        axes = normalize_axes(attrs.get("axes"), len(inputs[0].shape), self.name)
        return {"axes": axes, "keepdims": bool(attrs.get("keepdims", False))}

    def infer(self, types, attrs):
        shape, axes = types[0].shape, attrs["axes"]
        if attrs["keepdims"]:
            out = kept_shape(shape, axes)
        else:
            out = tuple(d for i, d in enumerate(shape) if i not in axes)
        return TensorType(out, types[0].dtype)

    def expand(self, b, node, v):
        """Broadcast a reduced value ``v`` back to the input's shape."""
        x = node.inputs[0]
        axes = node.attr("axes")
        kept = kept_shape(x.shape, axes)
        if v.shape != kept:
            v = b.emit("reshape", v, shape=kept)
        return b.emit("broadcast_to", v, shape=x.shape) if kept != x.shape else v


@register
class Sum(Reduction):
    name = "sum"

    def evaluate(self, a, attrs):
        return np.sum(a[0], axis=attrs["axes"], keepdims=attrs["keepdims"])

    def grad(self, b, node, g):
        return [self.expand(b, node, g)]


@register
class Mean(Reduction):
    name = "mean"

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


@register
class Max(Reduction):
    """Gradient is shared evenly by the elements equal to the maximum (as jax and
    PyTorch's amax do): with ties, e.g. the max over a broadcast axis, the total stays
    the true derivative instead of being counted once per tied copy."""

    name = "max"

    def normalize_attrs(self, inputs, attrs):
        attrs = super().normalize_attrs(inputs, attrs)
        shape = inputs[0].shape
        if any(shape[i] == 0 for i in attrs["axes"]):
            raise ValueError(f"max: cannot reduce an empty axis of a tensor of shape {shape}")
        return attrs

    def evaluate(self, a, attrs):
        return np.max(a[0], axis=attrs["axes"], keepdims=attrs["keepdims"])

    def grad(self, b, node, g):
        x = node.inputs[0]
        mask = b.emit("eq", x, self.expand(b, node, node.out))
        count = b.emit("sum", mask, axes=node.attr("axes"), keepdims=node.attr("keepdims"))
        return [b.emit("mul", mask, self.expand(b, node, b.emit("div", g, count)))]
