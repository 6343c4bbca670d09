"""Ops along one axis that are not plain reductions: ``argmax``/``argmin`` (the index of
the extreme element) and the prefix sum ``cumsum``.

* ``argmax[axis, keepdims](x)`` / ``argmin``: int64 indices; ``axis=None`` takes the
  index into the flattened tensor (``keepdims`` then keeps every axis as size 1, as
  PyTorch). Ties give the first occurrence; a NaN counts as the extreme (the first NaN
  wins), as in both numpy and PyTorch. An empty reduced axis is an error. bool inputs
  compare as 0/1 (``max(x, dim)`` of a bool tensor takes its indices from here;
  the user-level ``argmax`` refuses bool as PyTorch does). No gradient (the result
  is an index).
* ``cumsum[axis](x)``: int32/int64/bool give int64 (as PyTorch), floats keep their
  dtype. Gradient: the reversed cumulative sum of the incoming gradient.

Plans run each of them as a native kernel of its own (``lucid_codegen.scan_steps``).

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> b = GraphBuilder()
>>> x = b.input((2, 3), "float64")
>>> g = b.build([b.emit("argmax", x, axis=1), b.emit("cumsum", x, axis=1)])
>>> [a.tolist() for a in interpret(g, [np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 1.0]])])]
[[1, 0], [[1.0, 6.0, 11.0], [7.0, 7.0, 8.0]]]
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, is_float
from . import OpDef, register


def _axis(op: str, axis, shape) -> int:
    ndim = max(len(shape), 1)
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of shape {tuple(shape)}")
    return axis % ndim


class _ArgExtreme(OpDef):
    arity = 1
    attr_names = ("axis", "keepdims")
    numpy_fn = None

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        x = inputs[0]
        axis = attrs.get("axis")
        if axis is not None:
            axis = _axis(self.name, axis, x.shape)
            if x.shape and x.shape[axis] == 0:
                raise ValueError(f"{self.name}: cannot reduce the empty axis {axis} of shape {x.shape}")
        elif x.type.size == 0:
            raise ValueError(f"{self.name}: cannot reduce a tensor of shape {x.shape} with no elements")
        return {"axis": axis, "keepdims": bool(attrs.get("keepdims", False))}

    def infer(self, types, attrs):
        shape, axis = types[0].shape, attrs["axis"]
        if axis is None or not shape:
            out = (1,) * len(shape) if attrs["keepdims"] else ()
        elif attrs["keepdims"]:
            out = tuple(1 if i == axis else d for i, d in enumerate(shape))
        else:
            out = tuple(d for i, d in enumerate(shape) if i != axis)
        return TensorType(out, "int64")

    def evaluate(self, a, attrs):
        x, axis = a[0], attrs["axis"]
        out_shape = self.infer((TensorType(x.shape, x.dtype.name),), attrs).shape
        if axis is None or x.ndim == 0:
            return np.asarray(type(self).numpy_fn(x.reshape(-1)), np.int64).reshape(out_shape)
        return type(self).numpy_fn(x, axis=axis).astype(np.int64).reshape(out_shape)

    def grad(self, b, node, g):
        return [None]


@register
class ArgMax(_ArgExtreme):
    name, numpy_fn = "argmax", np.argmax


@register
class ArgMin(_ArgExtreme):
    name, numpy_fn = "argmin", np.argmin


@register
class CumSum(OpDef):
    name = "cumsum"
    arity = 1
    attr_names = ("axis",)

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        return {"axis": _axis(self.name, attrs.get("axis", 0), inputs[0].shape)}

    def infer(self, types, attrs):
        dtype = types[0].dtype
        return TensorType(types[0].shape, dtype if is_float(dtype) else "int64")

    def evaluate(self, a, attrs):
        x = a[0]
        if x.ndim == 0:
            return x.astype(self.infer((TensorType((), x.dtype.name),), attrs).dtype)
        return np.cumsum(x, axis=attrs["axis"], dtype=None if is_float(x.dtype.name) else np.int64)

    def grad(self, b, node, g):
        if not g.shape:
            return [g]
        axis, n = node.attr("axis"), len(g.shape)
        flip = {"starts": (None,) * n, "stops": (None,) * n,
                "steps": tuple(-1 if i == axis else 1 for i in range(n))}
        rev = b.emit("slice", g, **flip)
        return [b.emit("slice", b.emit("cumsum", rev, axis=axis), **flip)]
