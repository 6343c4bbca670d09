"""Matrix products: ``matmul`` (``@``), ``mm``, ``bmm``, ``addmm``, ``baddbmm``, as in PyTorch.

Each is one eager chain around the IR's ``matmul`` primitive, which has
``torch.matmul``'s semantics (dot products, matrix-vector products, broadcast batch
axes) and runs as one native batched GEMM call (transposed views are read in place):

>>> import lucid
>>> a = lucid.ones(2, 3, 4); b = lucid.ones(2, 5, 4)
>>> lucid.bmm(a, b.transpose(1, 2)).shape, (a @ b.transpose(-1, -2)).sum().item()
((2, 3, 5), 120.0)
>>> lucid.addmm(lucid.ones(2), lucid.ones(3, 4), lucid.ones(4, 2), beta=0.5, alpha=2.0).tolist()
[[8.5, 8.5], [8.5, 8.5], [8.5, 8.5]]

Shape errors are ``RuntimeError`` (as PyTorch's) that are also ``ValueError`` (lucid's
shape errors), with PyTorch's wording:

>>> lucid.mm(lucid.ones(3, 2), lucid.ones(3, 5))
Traceback (most recent call last):
...
lucid.products.ShapeError: mm: shapes (3, 2) and (3, 5) do not fit: mat1 and mat2 shapes cannot be multiplied (3x2 and 3x5)
"""
from __future__ import annotations

from lucid_ir.ops.matmul import matrix_shape
from lucid_ir.types import broadcast_shapes, promote

from . import dispatch
from .dispatch import as_tensor, cast

__all__ = ["matmul", "mm", "bmm", "addmm", "baddbmm", "ShapeError"]


class ShapeError(RuntimeError, ValueError):
    """Operands whose shapes a product cannot take (PyTorch raises RuntimeError)."""


def matmul(a, b):
    """``a @ b`` as ``torch.matmul``: 1-D·1-D is a dot product; a 1-D ``a`` is a row and
    a 1-D ``b`` a column (that axis dropped from the result); N-D operands are stacks of
    matrices whose batch axes broadcast.

    >>> import lucid
    >>> (lucid.tensor([[1.0, 2.0]]) @ lucid.tensor([[3.0], [4.0]])).tolist()
    [[11.0]]
    >>> lucid.matmul(lucid.ones(5, 1, 2, 3), lucid.ones(4, 3, 6)).shape
    (5, 4, 2, 6)
    >>> lucid.matmul(lucid.tensor([1.0, 2.0]), lucid.tensor([3.0, 4.0])).item()
    11.0
    """
    return dispatch.call2(_MATMUL, a, b, _matmul)


def _matmul(a, b, op="matmul"):
    """matmul's general path: checks (torch's errors), promotion, the call."""
    a, b = as_tensor(a), as_tensor(b)
    if a.dtype != b.dtype:
        dtype = promote(a.dtype, b.dtype)
        a, b = cast(a, dtype), cast(b, dtype)
    return dispatch.call(_MATMUL, (a, b), check=lambda x, y: _check_fit(x, y, op))


_MATMUL = dispatch.single("matmul", (), 2)


def _check_fit(a, b, op: str) -> None:
    """torch's errors for operands a product cannot take, before any IR is built."""
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"{op}: both arguments to matmul need to be at least 1D, but they are "
                         f"{a.ndim}D and {b.ndim}D")
    ba, m, k = matrix_shape(tuple(a.shape), False, "a")
    bb, k2, n = matrix_shape(tuple(b.shape), False, "b")
    if k != k2:
        if a.ndim == 1 and b.ndim == 1:
            detail = (f"inconsistent tensor size, expected tensor [{k}] and src [{k2}] to have "
                      f"the same number of elements, but got {k} and {k2} elements respectively")
        else:
            detail = f"mat1 and mat2 shapes cannot be multiplied ({m}x{k} and {k2}x{n})"
        raise ShapeError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not fit: {detail}")
    try:
        broadcast_shapes(ba, bb)
    except ValueError:
        raise ShapeError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not fit: the batch "
                         f"dimensions {ba} and {bb} cannot be broadcast") from None


def mm(input, mat2):  # noqa: A002 - PyTorch's name
    """The product of two matrices (2-D only; ``matmul`` broadcasts, ``mm`` does not).

    >>> import lucid
    >>> lucid.mm(lucid.eye(2), lucid.tensor([[1.0, 2.0], [3.0, 4.0]])).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    input, mat2 = as_tensor(input), as_tensor(mat2)
    _need_dims("mm", (("self", input), ("mat2", mat2)), 2, "a matrix")
    return _matmul(input, mat2, "mm")


def bmm(input, mat2):  # noqa: A002
    """Batched matrix product of two 3-D tensors with the same batch size (no broadcast).

    >>> import lucid
    >>> lucid.bmm(lucid.ones(4, 2, 3), lucid.ones(4, 3, 5)).shape
    (4, 2, 5)
    """
    input, mat2 = as_tensor(input), as_tensor(mat2)
    _need_dims("bmm", (("batch1", input), ("batch2", mat2)), 3, "a 3D tensor")
    _check_batch("bmm", input, mat2)
    return _matmul(input, mat2, "bmm")


def addmm(input, mat1, mat2, *, beta=1, alpha=1):  # noqa: A002
    """``beta * input + alpha * (mat1 @ mat2)`` for matrices; ``input`` broadcasts to the
    product (a bias row fuses into the GEMM). With ``beta=0`` input is ignored (its NaNs
    too), as in PyTorch.

    >>> import lucid
    >>> lucid.addmm(lucid.tensor([1.0, 2.0]), lucid.eye(2), lucid.eye(2)).tolist()
    [[2.0, 2.0], [1.0, 3.0]]
    """
    mat1, mat2 = as_tensor(mat1), as_tensor(mat2)
    _need_dims("addmm", (("mat1", mat1), ("mat2", mat2)), 2, "a matrix")
    return _add_product("addmm", input, mat1, mat2, beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):  # noqa: A002
    """``beta * input + alpha * bmm(batch1, batch2)``; ``input`` broadcasts to the product.

    >>> import lucid
    >>> lucid.baddbmm(lucid.zeros(2, 1, 3), lucid.ones(2, 1, 2), lucid.ones(2, 2, 3), alpha=0.5).tolist()
    [[[1.0, 1.0, 1.0]], [[1.0, 1.0, 1.0]]]
    """
    batch1, batch2 = as_tensor(batch1), as_tensor(batch2)
    _need_dims("baddbmm", (("batch1", batch1), ("batch2", batch2)), 3, "a 3D tensor")
    _check_batch("baddbmm", batch1, batch2)
    return _add_product("baddbmm", input, batch1, batch2, beta, alpha)


def _need_dims(op: str, named, ndim: int, what: str) -> None:
    for name, t in named:
        if t.ndim != ndim:
            raise ShapeError(f"{op}: {name} must be {what}, got shape {tuple(t.shape)}")


def _check_batch(op: str, a, b) -> None:
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ShapeError(f"{op}: Expected size for first two dimensions of batch2 tensor to be: "
                         f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}] "
                         f"(batch1 {tuple(a.shape)}, batch2 {tuple(b.shape)})")


def _add_product(op: str, input, a, b, beta, alpha):  # noqa: A002
    """``beta * input + alpha * (a @ b)`` as one chain (beta = alpha = 1: matmul + add,
    which the GEMM's bias or residual epilogue absorbs)."""
    input = as_tensor(input)
    _check_fit(a, b, op)
    out_shape = tuple(a.shape[:-1]) + (b.shape[-1],)
    try:
        if broadcast_shapes(tuple(input.shape), out_shape) != out_shape:
            raise ValueError
    except ValueError:
        raise ShapeError(f"{op}: input of shape {tuple(input.shape)} does not broadcast to the "
                         f"product's shape {out_shape}") from None
    dtype = promote(input.dtype, a.dtype, b.dtype)
    input, a, b = cast(input, dtype), cast(a, dtype), cast(b, dtype)
    if beta == 0:  # input only gives the shape (which the product has already)
        product = _matmul(a, b, op)
        return product if alpha == 1 else product * alpha
    if beta == 1 and alpha == 1:
        return dispatch.call(_ADD_PRODUCT, (a, b, input))
    return dispatch.call(_SCALED_ADD_PRODUCT, (a, b, input, float(alpha), float(beta)))


_ADD_PRODUCT = dispatch.Chain([("matmul", {}, (0, 1)), ("add", {}, (-1, 2))], name="addmm")
_SCALED_ADD_PRODUCT = dispatch.Chain([("matmul", {}, (0, 1)), ("mul", {}, (-1, 3)),
                                      ("mul", {}, (2, 4)), ("add", {}, (-2, -1))], name="addmm")


def _addmm_(self, mat1, mat2, *, beta=1, alpha=1):
    """``self.addmm(mat1, mat2, beta=, alpha=)`` written into ``self``."""
    from .inplace import _check_target, _write
    _check_target(self, "addmm_")
    return _write(self, addmm(self, mat1, mat2, beta=beta, alpha=alpha), "addmm_", reads_self=False)


def _baddbmm_(self, batch1, batch2, *, beta=1, alpha=1):
    """``self.baddbmm(batch1, batch2, beta=, alpha=)`` written into ``self``."""
    from .inplace import _check_target, _write
    _check_target(self, "baddbmm_")
    return _write(self, baddbmm(self, batch1, batch2, beta=beta, alpha=alpha), "baddbmm_",
                  reads_self=False)


def _install(Tensor) -> None:
    """``x.addmm(mat1, mat2)``, ``x.baddbmm(batch1, batch2)`` (``x`` is ``input``) and their
    in-place forms (called once, at the end of ``lucid.tensor``)."""
    Tensor.addmm = addmm
    Tensor.baddbmm = baddbmm
    Tensor.addmm_ = _addmm_
    Tensor.baddbmm_ = _baddbmm_
