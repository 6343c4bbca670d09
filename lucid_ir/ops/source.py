"""Source ops: values that come from nowhere (constants)."""
from __future__ import annotations

import numpy as np

from ..types import TensorType, check_dtype
from . import OpDef, register


@register
class Constant(OpDef):
    """``constant[value, shape, dtype]``: a tensor filled with one number."""

    name = "constant"
    arity = 0
    attr_names = ("value", "shape", "dtype")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        return {"value": float(attrs["value"]), "shape": tuple(int(d) for d in attrs.get("shape", ())),
                "dtype": check_dtype(attrs.get("dtype", "float32"))}

    def infer(self, types, attrs):
        return TensorType(attrs["shape"], attrs["dtype"])

    def evaluate(self, arrays, attrs):
        return np.full(attrs["shape"], attrs["value"], dtype=attrs["dtype"])

    def grad(self, b, node, g):
        return []
