"""Tensor-level functions shared by the Tensor methods and ``lucid.nn.functional``."""
from __future__ import annotations

from . import dispatch
from .dispatch import as_tensor, cast
from lucid_ir.types import promote, result_type
from .products import matmul  # noqa: F401  (re-exported: Tensor.__matmul__)


def where(cond, a, b):
    """``a`` where ``cond`` is non-zero, else ``b`` (numpy's ``where``; broadcasts).

    The way to choose between values inside a compiled function, where a Python ``if``
    on a tensor cannot work:

    >>> import lucid
    >>> x = lucid.tensor([-1.0, 2.0])
    >>> lucid.where(x > 0, x, x * 0.1).tolist()
    [-0.10000000149011612, 2.0]
    """
    cond = as_tensor(cond)
    values = [dispatch._operand(v, "where") for v in (a, b)]
    dtype = result_type(*[v.dtype if hasattr(v, "_data") else v for v in values])
    a, b = (cast(v, dtype) if hasattr(v, "_data") else v for v in values)
    # the IR's select takes a bool condition: cast[bool] is != 0, in the same chain;
    # numbers are immediate arguments of the kernel
    return dispatch.call(_WHERE, (cond, a, b))


_WHERE = dispatch.Chain([("cast", {"dtype": "bool"}, (0,)), ("select", {}, (-1, 1, 2))], name="where")


def maximum(a, b):
    """Elementwise maximum (NaN wins, as in numpy); the gradient goes to the larger."""
    return dispatch.binary("maximum", a, b)


def cat(tensors, dim: int = 0):
    """The tensors joined along ``dim`` (same dtype after promotion, same shape
    elsewhere), as ``torch.cat``; one eager call (a native copy kernel).

    >>> import lucid
    >>> lucid.cat([lucid.tensor([[1, 2]]), lucid.tensor([[3, 4]])]).tolist()
    [[1, 2], [3, 4]]
    """
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expects a non-empty list of tensors")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated")
    if not -ndim <= dim < ndim:
        raise IndexError(f"cat: dimension out of range (expected to be in range of [{-ndim}, "
                         f"{ndim - 1}], but got {dim})")
    # concat takes any number of operands: its chain is keyed by the count too (a chain
    # made for two tensors must not serve three)
    n, axis = len(tensors), dim % ndim
    chain = _CONCAT.get((n, axis))
    if chain is None:
        chain = _CONCAT[n, axis] = dispatch.Chain([("concat", {"axis": axis}, tuple(range(n)))],
                                                  name="concat", key=("concat", n, axis))
    return dispatch.call(chain, _promoted(tensors))


_CONCAT: dict = dispatch.ChainCache()
_STACK: dict = dispatch.ChainCache()


def _promoted(tensors):
    """The tensors cast to the dtype they promote to (as they are when they share one)."""
    first = tensors[0]._data
    if first is not None:
        dtype = first.dtype
        for t in tensors:
            a = t._data
            if a is None or a.dtype != dtype:
                break
        else:
            return tensors
    dtype = promote(*[t.dtype for t in tensors])
    return [cast(t, dtype) for t in tensors]


def stack(tensors, dim: int = 0):
    """The tensors (all of one shape) stacked along a new axis ``dim``, as ``torch.stack``;
    one eager call.

    >>> import lucid
    >>> lucid.stack([lucid.tensor([1, 2]), lucid.tensor([3, 4])], dim=1).tolist()
    [[1, 3], [2, 4]]
    """
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expects a non-empty list of tensors")
    shape = tensors[0].shape
    for t in tensors:
        if t.shape != shape:
            raise ValueError(f"stack: expects each tensor to be equal size, got "
                             f"{[t.shape for t in tensors]}")
    ndim = len(shape) + 1
    if not -ndim <= dim < ndim:
        raise IndexError(f"stack: dimension out of range (expected to be in range of [{-ndim}, "
                         f"{ndim - 1}], but got {dim})")
    n, axis = len(tensors), dim % ndim
    chain = _STACK.get((n, axis, shape))
    if chain is None:   # one call: each tensor viewed with the new axis, then one concat
        new = tuple(shape[:axis]) + (1,) + tuple(shape[axis:])
        chain = _STACK[n, axis, shape] = dispatch.Chain(
            [("reshape", {"shape": new}, (k,)) for k in range(n)]
            + [("concat", {"axis": axis}, tuple(range(-n, 0)))], name="stack")
    return dispatch.call(chain, _promoted(tensors))
