"""Movement ops: ``reshape``, ``transpose`` (a permutation), ``broadcast_to``."""
from __future__ import annotations

import numpy as np

from ..types import TensorType, broadcast_shapes
from . import OpDef, register
from .gradient_helpers import sum_to


@register
class Reshape(OpDef):
    """``reshape[shape]``; one dimension may be -1 (inferred), as in numpy."""

    name = "reshape"
    group = "movement"
    arity = 1
    attr_names = ("shape",)

    def forwards(self, node):
        return node.inputs[0].shape == node.out.shape

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        src = inputs[0].shape
        shape = [int(d) for d in attrs["shape"]]
        size = int(np.prod(src))
        if shape.count(-1) > 1 or any(d < -1 for d in shape):
            raise ValueError(f"reshape: invalid target shape {tuple(shape)}")
        if -1 in shape:
            known = int(np.prod([d for d in shape if d != -1]))
            if known == 0 or size % known:
                raise ValueError(f"reshape: cannot reshape {src} into {tuple(shape)}")
            shape[shape.index(-1)] = size // known
        if int(np.prod(shape)) != size:
            raise ValueError(f"reshape: cannot reshape {src} ({size} elements) into {tuple(shape)}")
        return {"shape": tuple(shape)}

    def infer(self, types, attrs):
        return TensorType(attrs["shape"], types[0].dtype)

    def evaluate(self, a, attrs):
        return np.reshape(a[0], attrs["shape"])

    def grad(self, b, node, g):
        return [b.emit("reshape", g, shape=node.inputs[0].shape)]


@register
class Transpose(OpDef):
    """``transpose[perm]``: output axis i is input axis perm[i]."""

    name = "transpose"
    group = "movement"
    arity = 1
    attr_names = ("perm",)

    def forwards(self, node):
        return node.attr("perm") == tuple(range(node.out.ndim))

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        ndim = len(inputs[0].shape)
        perm = attrs.get("perm")
        perm = tuple(reversed(range(ndim))) if perm is None else tuple(int(p) % max(ndim, 1) for p in perm)
        if sorted(perm) != list(range(ndim)):
            raise ValueError(f"transpose: {tuple(attrs.get('perm'))} is not a permutation of "
                             f"the axes of shape {inputs[0].shape}")
        return {"perm": perm}

    def infer(self, types, attrs):
        return TensorType(tuple(types[0].shape[p] for p in attrs["perm"]), types[0].dtype)

    def evaluate(self, a, attrs):
        return np.transpose(a[0], attrs["perm"])

    def grad(self, b, node, g):
        inverse = tuple(int(i) for i in np.argsort(node.attr("perm")))
        return [b.emit("transpose", g, perm=inverse)]


@register
class BroadcastTo(OpDef):
    name = "broadcast_to"
    group = "movement"
    arity = 1
    attr_names = ("shape",)

    def forwards(self, node):
        return node.inputs[0].shape == node.out.shape

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        shape = tuple(int(d) for d in attrs["shape"])
        src = inputs[0].shape
        if len(src) > len(shape) or broadcast_shapes(src, shape, op="broadcast_to") != shape:
            raise ValueError(f"broadcast_to: cannot broadcast {src} to {shape}")
        return {"shape": shape}

    def infer(self, types, attrs):
        return TensorType(attrs["shape"], types[0].dtype)

    def evaluate(self, a, attrs):
        return np.broadcast_to(a[0], attrs["shape"])

    def grad(self, b, node, g):
        return [sum_to(b, g, node.inputs[0].shape)]


@register
class StopGradient(OpDef):
    """The identity, through which no gradient flows (``Tensor.detach`` while tracing).
    Simplify removes it after autodiff."""

    name = "stop_gradient"
    group = "movement"
    arity = 1

    def forwards(self, node):  # its work is done once autodiff has run
        return True

    def infer(self, types, attrs):
        return types[0]

    def evaluate(self, a, attrs):
        return a[0]

    def grad(self, b, node, g):
        return [None]
