"""``matmul[trans_a, trans_b]``: C = op(A) · op(B) for 2-D operands, where op transposes
when its flag is set. Transposes are flags, never copies: linear is
``matmul[trans_b=True](x, W)``, and every gradient is a matmul with flags.
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, is_float
from . import OpDef, register, same_dtype


@register
class Matmul(OpDef):
    name = "matmul"
    arity = 2
    attr_names = ("trans_a", "trans_b")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        return {"trans_a": bool(attrs.get("trans_a", False)), "trans_b": bool(attrs.get("trans_b", False))}

    def infer(self, types, attrs):
        a, b = types
        dtype = same_dtype(self.name, types)
        if not is_float(dtype):
            raise TypeError(f"matmul: takes float32/float64 operands, got {a} and {b}; "
                            f"cast to a float dtype first")
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"matmul: operands must be 2-D, got shapes {a.shape} and {b.shape}")
        m, k = a.shape[::-1] if attrs["trans_a"] else a.shape
        k2, n = b.shape[::-1] if attrs["trans_b"] else b.shape
        if k != k2:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit "
                             f"(trans_a={attrs['trans_a']}, trans_b={attrs['trans_b']}): {k} != {k2}")
        return TensorType((m, n), dtype)

    def evaluate(self, arrays, attrs):
        a, b = arrays
        a = a.T if attrs["trans_a"] else a
        b = b.T if attrs["trans_b"] else b
        return np.matmul(a, b)

    def grad(self, b, node, g):
        x, y = node.inputs
        ta, tb = node.attr("trans_a"), node.attr("trans_b")
        # C = op(A)·op(B): dop(A) = g·op(B)ᵀ, dop(B) = op(A)ᵀ·g; untranspose with flags.
        if ta:
            gx = b.emit("matmul", y, g, trans_a=tb, trans_b=True)
        else:
            gx = b.emit("matmul", g, y, trans_a=False, trans_b=not tb)
        if tb:
            gy = b.emit("matmul", g, x, trans_a=True, trans_b=ta)
        else:
            gy = b.emit("matmul", x, g, trans_a=not ta, trans_b=False)
        return [gx, gy]
