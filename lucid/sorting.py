"""Sorting along one dim, as PyTorch: ``sort``, ``argsort``, ``msort`` and ``topk``
(functions here, and Tensor methods through ``_install``).

Each is the IR's ``argsort`` (the sorting order, int64, a numpy reference step) and,
for the values, a ``gather`` at those indices, so it runs eagerly, under the
interpreter and under ``lucid.compile``; the values' gradient is gather's, a
scatter-add into the positions the values came from. ``topk`` slices the first ``k``
indices before gathering.

Order as PyTorch: NaN counts as the largest value (last ascending, first descending);
equal elements keep their original order (lucid's sort is always stable, a valid
result of ``stable=False`` too); ``topk``'s ties, which PyTorch leaves unspecified,
come in index order. Bools sort False first (``topk`` refuses them, as PyTorch on CPU).

>>> import lucid
>>> x = lucid.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
>>> values, indices = lucid.sort(x, dim=1, descending=True)
>>> values.tolist(), indices.tolist()
([[3.0, 2.0, 1.0], [5.0, 4.0, 0.0]], [[0, 2, 1], [1, 2, 0]])
>>> x.topk(2).indices.tolist(), x.argsort(dim=0).tolist()
([[0, 2], [1, 2]], [[1, 0, 0], [0, 1, 1]])
"""
from __future__ import annotations

import builtins
from collections import namedtuple

from . import dispatch
from .reductions import _one_dim, _tensor

#: the named tuples ``sort`` and ``topk`` return (as ``torch.return_types``)
sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])

__all__ = ["sort", "argsort", "msort", "topk"]


def take_along(x, index, axis: int):
    """``x``'s elements at ``index`` along ``axis`` (a gather; a 0-d ``x`` is one
    element, read at index 0)."""
    if not x.ndim:
        return dispatch.apply("gather", x.reshape(1), index.reshape(1), axis=0).reshape(())
    return dispatch.apply("gather", x, index, axis=axis)


def _order(op: str, input, dim, descending):
    """``(x, axis, indices)``: the sorting order of ``input`` along ``dim``."""
    x = _tensor(input)
    axis = _one_dim(op, dim, x.shape)
    return x, axis, dispatch.apply("argsort", x, axis=axis, descending=builtins.bool(descending))


def sort(input, dim=-1, descending=False, *, stable=False):
    """``(values, indices)``: ``input`` sorted along ``dim`` (ascending unless
    ``descending``) and the positions the values came from (int64). Always stable.

    >>> import lucid
    >>> lucid.sort(lucid.tensor([2, 0, 1]))
    sort(values=Tensor([0, 1, 2], grad=None), indices=Tensor([1, 2, 0], grad=None))
    """
    x, axis, indices = _order("sort", input, dim, descending)
    return sort_result(take_along(x, indices, axis), indices)


def argsort(input, dim=-1, descending=False, *, stable=False):
    """The int64 positions that sort ``input`` along ``dim`` (``sort(...).indices``).

    >>> import lucid
    >>> lucid.argsort(lucid.tensor([[2.0, float("nan"), 1.0]]), descending=True).tolist()
    [[1, 0, 2]]
    """
    return _order("argsort", input, dim, descending)[2]


def msort(input):
    """``input`` sorted along its first dim (``sort(input, dim=0).values``).

    >>> import lucid
    >>> lucid.msort(lucid.tensor([[3, 1], [1, 2]])).tolist()
    [[1, 1], [3, 2]]
    """
    return sort(input, dim=0).values


def topk(input, k, dim=-1, largest=True, sorted=True):
    """``(values, indices)`` of the ``k`` largest elements along ``dim`` (the smallest
    if not ``largest``), largest first (smallest first); ``0 <= k <= size`` else
    RuntimeError. The result is always sorted (``sorted=False`` allows any order).

    >>> import lucid
    >>> values, indices = lucid.topk(lucid.tensor([1.0, 7.0, 3.0, 5.0]), 2)
    >>> values.tolist(), indices.tolist()
    ([7.0, 5.0], [1, 3])
    """
    x = _tensor(input)
    if isinstance(k, builtins.bool) or not isinstance(k, int):
        raise TypeError(f"topk(): argument 'k' must be int, not {type(k).__name__}")
    if dim is None:
        raise TypeError("topk(): argument 'dim' must be int, not NoneType")
    if x.dtype == "bool":
        raise RuntimeError(f"topk(): does not support bool dtypes on CPU (shape {tuple(x.shape)})")
    axis = _one_dim("topk", dim, x.shape)
    size = x.shape[axis] if x.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError(f"topk(): selected index k out of range: k={k} for dim {axis} of size "
                           f"{size} (shape {tuple(x.shape)})")
    indices = dispatch.apply("argsort", x, axis=axis, descending=builtins.bool(largest))
    if x.ndim and k != size:  # (a 0-d input gives its element for k = 0 too, as PyTorch)
        n = x.ndim
        indices = dispatch.apply("slice", indices, starts=(0,) * n,
                                 stops=tuple(k if d == axis else x.shape[d] for d in range(n)),
                                 steps=(1,) * n)
    return topk_result(take_along(x, indices, axis), indices)


def _install(Tensor) -> None:
    """Attach ``sort``, ``argsort``, ``msort`` and ``topk`` as Tensor methods."""
    for name in __all__:
        setattr(Tensor, name, globals()[name])
