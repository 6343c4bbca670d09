"""``index_fill``: the slices ``index`` names along ``dim`` set to one value, as PyTorch's.

It is ``masked_fill`` with a mask that is true at those positions along ``dim``: one
``select``, so the gradient reaches the input outside the filled slices, and a 0-d
value tensor that requires grad collects it from every filled element (a repeated
index fills once). An index with values (eager) is checked as PyTorch checks it and
becomes a constant mask; a traced index (inside ``lucid.compile``) is compared with the
positions in the graph.

>>> import lucid
>>> x = lucid.arange(6.0).reshape(2, 3)
>>> x.index_fill(1, lucid.tensor([0, 2]), -1.0).tolist()
[[-1.0, 1.0, -1.0], [-1.0, 4.0, -1.0]]
>>> lucid.index_fill(x, 0, lucid.tensor(-1), 9.0).tolist()
[[0.0, 1.0, 2.0], [9.0, 9.0, 9.0]]
"""
from __future__ import annotations

import numpy as np

from . import dispatch
from .dispatch import as_tensor


def index_fill(input, dim: int, index, value):  # noqa: A002 - PyTorch's names
    """``input`` with ``input[..., index, ...] = value`` along ``dim`` (``index``: an int64
    tensor of one dimension or none; ``value``: a number or a 0-d tensor, converted to
    ``input``'s dtype)."""
    from .tensor import _dim
    from .tensor_ops import masked_fill
    x, index = as_tensor(input), as_tensor(index)
    ndim = x.ndim
    axis = _dim(int(dim), ndim, "index_fill")
    if index.dtype != "int64":
        raise IndexError(f"index_fill(): Expected dtype int64 for index, got {index.dtype!r} "
                         f"(shape {tuple(index.shape)})")
    if index.ndim > 1:
        raise RuntimeError(f"index_fill(): Index has to be a vector/scalar, got shape "
                           f"{tuple(index.shape)}")
    if not isinstance(value, (int, float, bool, np.number, np.bool_)):
        value = as_tensor(value)
        if value.ndim != 0:
            raise RuntimeError(f"index_fill(): only supports a 0-dimensional value tensor, but got "
                               f"tensor with {value.ndim} dimension(s).")
    n = x.shape[axis] if ndim else 1
    shape = [1] * ndim
    if ndim:
        shape[axis] = n
    if index._data is None:  # traced: compare the positions with the index in the graph
        positions = dispatch._wrap(np.arange(n, dtype=np.int64).reshape(n, 1))
        wrapped = dispatch.binary("remainder", index.reshape(1, -1), n) if n else index.reshape(1, -1)
        hits = dispatch.binary("eq", positions, wrapped).sum(1) > 0
        return masked_fill(x, hits.reshape(*shape), value)
    positions = index._data.reshape(-1)
    bad = positions[(positions < -n) | (positions >= n)]
    if bad.size:
        raise IndexError(f"index_fill(): index {int(bad[0])} is out of bounds for dimension {axis} "
                         f"with size {n}")
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    return masked_fill(x, dispatch._wrap(mask.reshape(shape)), value)


def _install(Tensor) -> None:
    """``x.index_fill(dim, index, value)`` (called once, at the end of ``lucid.tensor``)."""
    Tensor.index_fill = index_fill
