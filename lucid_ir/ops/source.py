"""Source ops: values that come from nowhere (constants)."""
from __future__ import annotations

import numpy as np

from ..types import TensorType, check_dtype, fill_value
from . import OpDef, register


@register
class Constant(OpDef):
    """``constant[value, shape, dtype]``: a tensor filled with one number (a float,
    int or bool by the dtype; see ``lucid_ir.types.fill_value``)."""

    name = "constant"
    group = "source"

    arity = 0
    attr_names = ("value", "shape", "dtype")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        dtype = check_dtype(attrs.get("dtype", "float32"))
        return {"value": fill_value(attrs["value"], dtype),
                "shape": tuple(int(d) for d in attrs.get("shape", ())), "dtype": dtype}

    def infer(self, types, attrs):
        return TensorType(attrs["shape"], attrs["dtype"])

    def evaluate(self, arrays, attrs):
        return np.full(attrs["shape"], attrs["value"], dtype=attrs["dtype"])

    def grad(self, b, node, g):
        return []


@register
class Iota(OpDef):
    """``iota[shape, axis, dtype]``: each element is its index along ``axis``
    (``iota[shape=(1,3),axis=1]`` is ``[[0, 1, 2]]``); builds one-hot codes in-graph."""

    name = "iota"
    group = "source"

    arity = 0
    attr_names = ("shape", "axis", "dtype")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        shape = tuple(int(d) for d in attrs["shape"])
        axis = int(attrs.get("axis", 0))
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"iota: axis {axis} is out of range for shape {shape}")
        dtype = check_dtype(attrs.get("dtype", "float32"))
        if dtype == "bool":
            raise TypeError("iota: indices need a numeric dtype, got bool")
        return {"shape": shape, "axis": axis % len(shape), "dtype": dtype}

    def infer(self, types, attrs):
        return TensorType(attrs["shape"], attrs["dtype"])

    def evaluate(self, arrays, attrs):
        shape, axis = attrs["shape"], attrs["axis"]
        index = np.arange(shape[axis], dtype=attrs["dtype"])
        view = [1] * len(shape)
        view[axis] = shape[axis]
        return np.broadcast_to(index.reshape(view), shape).copy()

    def grad(self, b, node, g):
        return []
