"""Tensor-level functions shared by the Tensor methods and ``lucid.nn.functional``."""
from __future__ import annotations

from . import dispatch
from .dispatch import as_tensor, cast
from lucid_ir.types import promote


def matmul(a, b):
    """``a @ b`` for 1-D and 2-D tensors (1-D operands are treated as a row / a column)."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim not in (1, 2) or b.ndim not in (1, 2):
        raise ValueError(f"matmul: operands must be 1-D or 2-D, got shapes {a.shape} and {b.shape}")
    dtype = promote(a.dtype, b.dtype)
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    if a2.shape[1] != b2.shape[0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit: "
                         f"{a2.shape[1]} != {b2.shape[0]}")
    out = dispatch.apply("matmul", cast(a2, dtype), cast(b2, dtype))
    if a.ndim == 1 and b.ndim == 1:
        return out.reshape(())
    if a.ndim == 1:
        return out.reshape(out.shape[1])
    if b.ndim == 1:
        return out.reshape(out.shape[0])
    return out


def where(cond, a, b):
    """``a`` where ``cond`` is non-zero, else ``b`` (numpy's ``where``; broadcasts).

    The way to choose between values inside a compiled function, where a Python ``if``
    on a tensor cannot work:

    >>> import lucid
    >>> x = lucid.tensor([-1.0, 2.0])
    >>> lucid.where(x > 0, x, x * 0.1).tolist()
    [-0.10000000149011612, 2.0]
    """
    like = next((v for v in (a, b, cond) if hasattr(v, "_data")), None)
    cond, a, b = (as_tensor(v, like=like) for v in (cond, a, b))
    dtype = promote(a.dtype, b.dtype)
    # the IR's select takes a bool condition: cast[bool] is != 0, in the same chain
    return dispatch.apply_chain((("cast", (cond,), {"dtype": "bool"}),
                                 ("select", (None, cast(a, dtype), cast(b, dtype)), {})))


def maximum(a, b):
    """Elementwise maximum (NaN wins, as in numpy); the gradient goes to the larger."""
    return dispatch.binary("maximum", a, b)
