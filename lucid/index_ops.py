"""Index ops in PyTorch's vocabulary: ``gather``, ``take``, ``index_select``,
``scatter_add`` (and in place, ``scatter_add_``), ``masked_select`` and ``nonzero``.

The first four are one eager call each of the IR's ``gather``/``scatter_add`` (with
``reshape``/``broadcast_to``/``slice`` around them), so they run eagerly, under the
interpreter and under ``lucid.compile``, with gradients (gather's is a scatter-add and
the other way round). Indices are checked as PyTorch checks them, with its error types,
before any native code runs (in eager mode; a traced index has no values to check, and
the IR reads 0 for an index out of range). ``masked_select`` and ``nonzero`` have
data-dependent shapes: eager only; the positions are read from the mask, the values
still move through a ``gather`` (so ``masked_select`` has its gradient).

>>> import lucid
>>> x = lucid.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
>>> i = lucid.tensor([[2, 0], [1, 1]])
>>> x.gather(1, i).tolist(), x.index_select(1, lucid.tensor([2, 0])).tolist()
([[3.0, 1.0], [5.0, 5.0]], [[3.0, 1.0], [6.0, 4.0]])
>>> lucid.zeros(2, 3).scatter_add(1, i, x).tolist()
[[2.0, 0.0, 1.0], [0.0, 9.0, 0.0]]
>>> x.masked_select(x > 2.5).tolist(), lucid.nonzero(x > 4.5).tolist()
([3.0, 4.0, 5.0, 6.0], [[1, 1], [1, 2]])
"""
from __future__ import annotations

import numpy as np

from . import dispatch, tracing
from .dispatch import as_tensor

__all__ = ["gather", "take", "index_select", "scatter_add", "masked_select", "nonzero"]

_CHAINS: dict = dispatch.ChainCache()


def _chain(key, make):
    chain = _CHAINS.get(key)
    if chain is None:
        if len(_CHAINS) >= 4096:
            _CHAINS.clear()
        chain = _CHAINS[key] = make()
    return chain


def _dim(dim, ndim: int, op: str) -> int:
    from .tensor import _dim as check
    return check(int(dim), ndim, op)


def _check_in_range(op: str, index, axis: int, size: int) -> None:
    data = index._data  # None while tracing: nothing to check then
    if data is not None and data.size and (data.min() < 0 or data.max() >= size):
        bad = int(data[(data < 0) | (data >= size)].flat[0])
        raise RuntimeError(f"{op}: index {bad} is out of bounds for dimension {axis} with size {size}")


def _long_index(op: str, index):
    """``index`` as int64 (int32 is accepted, as PyTorch does); RuntimeError otherwise."""
    if index.dtype not in ("int32", "int64"):
        raise RuntimeError(f"{op}: Expected dtype int64 for index, got {index.dtype!r} "
                           f"(shape {tuple(index.shape)})")
    return dispatch.cast(index, "int64")


# ---------------------------------------------------------------- gather / take / index_select
def gather(input, dim: int, index, *, sparse_grad: bool = False):
    """``out[p] = input[p with p[dim] = index[p]]`` for every position p of ``index``
    (int64, of ``input``'s rank, no larger outside ``dim``).

    >>> import lucid
    >>> lucid.gather(lucid.tensor([[1, 2], [3, 4]]), 1, lucid.tensor([[0, 0], [1, 0]])).tolist()
    [[1, 1], [4, 3]]
    """
    if sparse_grad:
        raise NotImplementedError("gather: lucid has no sparse gradients (sparse_grad=True)")
    x, index = as_tensor(input), _long_index("gather", as_tensor(index))
    if x.ndim == 0 and index.ndim == 0:  # a 0-d input is a 1-element axis
        return gather(x.reshape(1), 0, index.reshape(1)).reshape(())
    axis = _dim(dim, max(x.ndim, 1), "gather")
    if index.ndim != x.ndim:
        raise RuntimeError(f"gather: Index tensor must have the same number of dimensions as input "
                           f"tensor (index {tuple(index.shape)}, input {tuple(x.shape)})")
    for d, (i, s) in enumerate(zip(index.shape, x.shape)):
        if d != axis and i > s:
            raise RuntimeError(f"gather: Size does not match at dimension {d} expected index "
                               f"{list(index.shape)} to be no larger than self {list(x.shape)} "
                               f"apart from dimension {axis}")
    _check_in_range("gather", index, axis, x.shape[axis])
    return dispatch.apply("gather", x, index, axis=axis)


def take(input, index):
    """``input`` read as 1-D at ``index`` (int64, any shape; negative counts from the end);
    the result has ``index``'s shape.

    >>> import lucid
    >>> lucid.tensor([[1, 2], [3, 4]]).take(lucid.tensor([[3, -4]])).tolist()
    [[4, 1]]
    """
    x, index = as_tensor(input), as_tensor(index)
    if index.dtype != "int64":
        raise RuntimeError(f"take(): Expected a long tensor for index, but got {index.dtype!r}")
    n = int(np.prod(x.shape))
    data = index._data  # None while tracing: nothing to check then
    if data is not None and data.size and (data.min() < -n or data.max() >= n):
        bad = int(data[(data < -n) | (data >= n)].flat[0])
        raise IndexError(f"take: out of range: tried to access index {bad} on a tensor of {n} elements.")
    key = ("take", n, tuple(index.shape))

    def make():
        return dispatch.Chain([("reshape", {"shape": (-1,)}, (0,)), ("reshape", {"shape": (-1,)}, (1,)),
                               ("constant", {"value": max(n, 1), "shape": (), "dtype": "int64"}, ()),
                               ("remainder", {}, (-2, -1)),  # negative indices wrap
                               ("gather", {"axis": 0}, (-4, -1)),
                               ("reshape", {"shape": tuple(index.shape)}, (-1,))], name="take", key=key)
    return dispatch.call(_chain(key, make), (x, index))


def index_select(input, dim: int, index):
    """The entries ``index`` (a 1-D int32/int64 tensor) of axis ``dim``, in that order.

    >>> import lucid
    >>> lucid.index_select(lucid.tensor([[1, 2], [3, 4]]), 0, lucid.tensor([1, 1, 0])).tolist()
    [[3, 4], [3, 4], [1, 2]]
    """
    x, index = as_tensor(input), as_tensor(index)
    if index.dtype not in ("int32", "int64"):
        raise RuntimeError(f"index_select(): Expected dtype int32 or int64 for index, got "
                           f"{index.dtype!r}")
    if index.ndim > 1:
        raise IndexError(f"index_select(): Index is supposed to be a vector, got shape "
                         f"{tuple(index.shape)}")
    if x.ndim == 0:
        if int(np.prod(index.shape)) != 1:
            raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got "
                               f"{int(np.prod(index.shape))} value(s)")
        return index_select(x.reshape(1), 0, index.reshape(1)).reshape(())
    axis = _dim(dim, x.ndim, "index_select")
    _check_in_range("index_select", index, axis, x.shape[axis])
    k = int(np.prod(index.shape))
    shape = tuple(x.shape)
    wide = shape[:axis] + (k,) + shape[axis + 1:]
    key = ("index_select", shape, axis, k, str(index.dtype))

    def make():
        column = tuple(k if d == axis else 1 for d in range(len(shape)))
        return dispatch.Chain([("cast", {"dtype": "int64"}, (1,)), ("reshape", {"shape": column}, (-1,)),
                               ("broadcast_to", {"shape": wide}, (-1,)), ("gather", {"axis": axis}, (0, -1))],
                              name="index_select", key=key)
    return dispatch.call(_chain(key, make), (x, index))


# ---------------------------------------------------------------- scatter_add
def _scatter_checked(op: str, x, dim, index, src):
    """The checked operands of ``scatter_add``: (x, axis, index, src), as PyTorch checks."""
    x, index, src = as_tensor(x), _long_index(op, as_tensor(index)), as_tensor(src)
    if src.dtype != x.dtype:
        raise RuntimeError(f"{op}: scatter(): Expected self.dtype to be equal to src.dtype "
                           f"({x.dtype!r} and {src.dtype!r})")
    if x.dtype == "bool":
        raise RuntimeError(f"{op}: not implemented for bool tensors (shape {tuple(x.shape)})")
    axis = _dim(dim, x.ndim, op)
    if x.ndim == 0:  # a 0-d tensor is a 1-element axis
        x, index, src = x.reshape(1), index.reshape(-1), src.reshape(-1)
    if not (index.ndim == x.ndim == src.ndim) and int(np.prod(index.shape)) != 0:
        raise RuntimeError(f"{op}: Index tensor must have the same number of dimensions as self "
                           f"tensor (index {tuple(index.shape)}, self {tuple(x.shape)}, src "
                           f"{tuple(src.shape)})")
    if index.ndim == x.ndim and any(i > s or (d != axis and i > t) for d, (i, s, t) in
                                    enumerate(zip(index.shape, src.shape, x.shape))):
        raise RuntimeError(f"{op}: Expected index {list(index.shape)} to be no larger than self "
                           f"{list(x.shape)} apart from dimension {axis} and to be no larger size "
                           f"than src {list(src.shape)}")
    _check_in_range(op, index, axis, x.shape[axis])
    return x, axis, index, src


def scatter_add(input, dim: int, index, src):
    """``input`` plus ``src``'s values added at the positions ``index`` names along
    ``dim`` (``out[p with p[dim] = index[p]] += src[p]``, duplicates accumulating); only
    ``src``'s leading ``index.shape`` block is read.

    >>> import lucid
    >>> lucid.scatter_add(lucid.zeros(3), 0, lucid.tensor([0, 2, 0]), lucid.tensor([1.0, 2.0, 3.0])).tolist()
    [4.0, 0.0, 2.0]
    """
    x0 = as_tensor(input)
    x, axis, index, src = _scatter_checked("scatter_add", x0, dim, index, src)
    if index.ndim != x.ndim:  # an empty index of another rank adds nothing
        return x0 + 0
    shape, ishape, sshape = tuple(x.shape), tuple(index.shape), tuple(src.shape)
    key = ("scatter_add", shape, axis, ishape, sshape)

    def make():
        n = len(shape)
        return dispatch.Chain([("slice", {"starts": (0,) * n, "stops": ishape, "steps": (1,) * n}, (2,)),
                               ("scatter_add", {"axis": axis, "shape": shape}, (1, -1)),
                               ("add", {}, (0, -1))], name="scatter_add", key=key)
    out = dispatch.call(_chain(key, make), (x, index, src))
    return out.reshape(()) if x0.ndim == 0 else out


def scatter_add_(self, dim: int, index, src):
    """``scatter_add`` in place. On a result autograd recorded (a non-leaf tensor, as
    ``x = w * 1; x.scatter_add_(...)``) the gradient flows through the update, as in
    PyTorch; a leaf that requires grad is refused while grad mode is on.

    >>> import lucid
    >>> w = lucid.zeros(3, requires_grad=True)
    >>> x = w * 2.0
    >>> _ = x.scatter_add_(0, lucid.tensor([1, 1]), lucid.tensor([1.0, 2.0]))
    >>> x.tolist()
    [0.0, 3.0, 0.0]
    >>> x.sum().backward(); w.grad.tolist()
    [2.0, 2.0, 2.0]
    """
    from . import inplace
    tracer = tracing._state.tracer
    if tracer is not None and self._data is None and id(self) not in tracer.arg_index:
        self._value = scatter_add(self, dim, index, src)._value  # computed inside: rebound
        return self
    inplace._check_target(self, "scatter_add_")
    return inplace._write(self, scatter_add(self, dim, index, src), "scatter_add_", reads_self=False)


# ---------------------------------------------------------------- data-dependent shapes
def masked_select(input, mask):
    """The elements of ``input`` where the bool ``mask`` is true (both broadcast), as a
    1-D tensor in row-major order; gradients flow back to ``input``. Eager only (the
    result's length depends on the mask's values).

    >>> import lucid
    >>> lucid.masked_select(lucid.tensor([[1, 2], [3, 4]]), lucid.tensor([True, False])).tolist()
    [1, 3]
    """
    x, mask = as_tensor(input), as_tensor(mask)
    if mask.dtype != "bool":
        raise RuntimeError(f"masked_select: expected BoolTensor for mask, got {mask.dtype!r}")
    try:
        shape = tuple(np.broadcast_shapes(x.shape, mask.shape))
    except ValueError:
        raise RuntimeError(f"masked_select: the shapes of input {tuple(x.shape)} and mask "
                           f"{tuple(mask.shape)} do not broadcast") from None
    if mask._data is None:
        raise tracing.data_dependent("masked_select (its length depends on the mask's values)")
    positions = np.flatnonzero(np.broadcast_to(mask._data, shape)).astype(np.int64)
    flat = x.broadcast_to(shape).reshape(-1)
    return dispatch.apply("gather", flat, dispatch._wrap(positions), axis=0)


def nonzero(input, *, as_tuple: bool = False):
    """The positions of the non-zero elements: an int64 tensor of one row per element
    (``as_tuple=True``: one 1-D tensor per axis). Eager only; no gradient.

    >>> import lucid
    >>> lucid.tensor([[0, 3], [5, 0]]).nonzero().tolist(), lucid.nonzero(lucid.tensor([0, 7]), as_tuple=True)
    ([[0, 1], [1, 0]], (Tensor([1], grad=None),))
    """
    x = as_tensor(input)
    truth = x._data if x.dtype == "bool" else dispatch.binary("ne", x, 0)._data
    if truth is None:
        raise tracing.data_dependent("nonzero (its length depends on the input's values)")
    if as_tuple:
        if truth.ndim == 0:
            return (dispatch._wrap(np.flatnonzero(truth.reshape(1)).astype(np.int64)),)
        return tuple(dispatch._wrap(np.ascontiguousarray(p, dtype=np.int64)) for p in np.nonzero(truth))
    return dispatch._wrap(np.argwhere(truth).astype(np.int64))


def _install(Tensor) -> None:
    """Attach the methods to ``Tensor`` (from ``lucid.tensor``)."""
    for name in __all__ + ["scatter_add_"]:
        setattr(Tensor, name, globals()[name])
