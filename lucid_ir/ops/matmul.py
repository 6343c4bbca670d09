"""``matmul[trans_a, trans_b]``: C = op(A) · op(B) with PyTorch's ``matmul`` semantics,
where op swaps the last two axes when its flag is set. Transposes are flags, never
copies: linear is ``matmul[trans_b=True](x, W)``, and every gradient is a matmul with
flags.

Shapes (``torch.matmul``): 1-D · 1-D is a dot product (shape ``()``); a 1-D A is a row
``(1, K)`` and a 1-D B a column ``(K, 1)``, the added axis dropped from the result; N-D
operands are stacks of matrices over their leading (batch) axes, which broadcast:
``(2, 1, M, K) · (3, K, N) -> (2, 3, M, N)``. Flags apply only to operands of 2 or more
axes.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x, y = b.input((5, 1, 2, 3)), b.input((4, 2, 3))
>>> b.emit("matmul", x, y, trans_b=True).shape
(5, 4, 2, 2)
>>> b.emit("matmul", b.input((3,)), y, trans_b=True).shape
(4, 2)
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, broadcast_shapes, is_float
from . import OpDef, register, same_dtype
from .gradient_helpers import sum_to


def matrix_shape(shape, trans: bool, side: str):
    """``(batch shape, rows, cols)`` of an operand as the product sees it: a 1-D A is one
    row, a 1-D B one column; ``trans`` swaps the last two axes."""
    if len(shape) == 1:
        return (), *((1, shape[0]) if side == "a" else (shape[0], 1))
    rows, cols = shape[-2:]
    return tuple(shape[:-2]), *((cols, rows) if trans else (rows, cols))


def matmul_shape(a_shape, b_shape, trans_a=False, trans_b=False, op="matmul"):
    """The result shape of ``matmul`` (ValueError naming ``op`` and the shapes if they do
    not fit).

    >>> matmul_shape((7, 1, 3, 4), (5, 4, 2))
    (7, 5, 3, 2)
    >>> matmul_shape((4,), (4,))
    ()
    """
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"{op}: both arguments need at least 1 dimension, got shapes "
                         f"{tuple(a_shape)} and {tuple(b_shape)}")
    ba, m, k = matrix_shape(a_shape, trans_a, "a")
    bb, k2, n = matrix_shape(b_shape, trans_b, "b")
    if k != k2:
        raise ValueError(f"{op}: shapes {tuple(a_shape)} and {tuple(b_shape)} cannot be multiplied "
                         f"({m}x{k} and {k2}x{n}; trans_a={trans_a}, trans_b={trans_b})")
    batch = broadcast_shapes(ba, bb, op=op)
    return batch + ((m,) if len(a_shape) > 1 else ()) + ((n,) if len(b_shape) > 1 else ())


@register
class Matmul(OpDef):
    name = "matmul"
    group = "matmul"
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
        for t, flag in ((a, "trans_a"), (b, "trans_b")):
            if attrs[flag] and t.ndim < 2:
                raise ValueError(f"matmul: {flag} needs an operand of 2 or more dimensions, got {t.shape}")
        return TensorType(matmul_shape(a.shape, b.shape, attrs["trans_a"], attrs["trans_b"]), dtype)

    def evaluate(self, arrays, attrs):
        a, b = arrays
        a = np.swapaxes(a, -1, -2) if attrs["trans_a"] else a
        b = np.swapaxes(b, -1, -2) if attrs["trans_b"] else b
        return np.asarray(np.matmul(a, b))

    def grad(self, b, node, g):
        x, y = node.inputs
        ta, tb = node.attr("trans_a"), node.attr("trans_b")
        # 1-D operands as a row (A) / a column (B), g with the dropped axes back
        x2 = x if x.ndim > 1 else b.emit("reshape", x, shape=(1,) + x.shape)
        y2 = y if y.ndim > 1 else b.emit("reshape", y, shape=y.shape + (1,))
        g_shape = matmul_shape(x2.shape, y2.shape, ta, tb)
        g2 = g if g.shape == g_shape else b.emit("reshape", g, shape=g_shape)
        # C = op(A)·op(B): dop(A) = g·op(B)ᵀ, dop(B) = op(A)ᵀ·g; untranspose with flags,
        # then sum the broadcast batch axes away
        if ta:
            gx = b.emit("matmul", y2, g2, trans_a=tb, trans_b=True)
        else:
            gx = b.emit("matmul", g2, y2, trans_a=False, trans_b=not tb)
        if y2.ndim == 2 and x2.ndim > 2 and not ta:
            # a matrix shared by a stack (x @ W): one GEMM over all the stack's rows
            # instead of a product per matrix summed afterwards
            rows = int(np.prod(x2.shape[:-1]))
            xf = b.emit("reshape", x2, shape=(rows, x2.shape[-1]))
            gf = b.emit("reshape", g2, shape=(rows, g2.shape[-1]))
            gy = b.emit("matmul", gf, xf, trans_a=True) if tb else b.emit("matmul", xf, gf, trans_a=True)
        elif tb:
            gy = b.emit("matmul", g2, x2, trans_a=True, trans_b=ta)
        else:
            gy = b.emit("matmul", x2, g2, trans_a=not ta, trans_b=False)
        return [_back_to(b, gx, x, x2.shape), _back_to(b, gy, y, y2.shape)]


def _back_to(b, grad, v, matrix_shape_of_v):
    """``grad`` of ``v``'s matrix form summed over the broadcast batch axes, in ``v``'s shape."""
    grad = sum_to(b, grad, matrix_shape_of_v)
    return b.emit("reshape", grad, shape=v.shape) if grad.shape != v.shape else grad
