"""Running products and extremes along one dim, as PyTorch: ``cumprod``, ``cummax`` and
``cummin`` (functions here, Tensor methods through ``_install``; ``cumsum`` is with
the reductions).

``cumprod`` is the IR's ``cumprod`` scan; its gradient is exact where the input holds
zeros (PyTorch's: no division by zero). ``cummax``/``cummin`` return ``(values,
indices)``: the IR's ``cumargmax``/``cumargmin`` give the index of the running extreme
(the latest among equal values; a NaN is the extreme, as PyTorch), and the values are
a ``gather`` at those indices, whose gradient scatter-adds back to them.

>>> import lucid
>>> x = lucid.tensor([2.0, 0.0, 3.0, 5.0])
>>> lucid.cumprod(x, 0).tolist(), x.cummax(0).indices.tolist()
([2.0, 0.0, 0.0, 0.0], [0, 0, 2, 3])
"""
from __future__ import annotations

from collections import namedtuple

from . import dispatch
from .reductions import _one_dim, _tensor, _with_dtype
from .sorting import take_along

#: the named tuples ``cummax`` and ``cummin`` return (as ``torch.return_types``)
cummax_result = namedtuple("cummax", ["values", "indices"])
cummin_result = namedtuple("cummin", ["values", "indices"])

__all__ = ["cumprod", "cummax", "cummin"]


def cumprod(input, dim, *, dtype=None):
    """Cumulative product along ``dim``; int and bool give int64 (``dtype=`` casts the
    input first). The gradient is exact with zeros in the input.

    >>> import lucid
    >>> lucid.cumprod(lucid.tensor([[1, 2, 3], [4, 0, 6]]), dim=1).tolist()
    [[1, 2, 6], [4, 0, 0]]
    """
    x = _with_dtype(_tensor(input), dtype)
    return dispatch.apply("cumprod", x, axis=_one_dim("cumprod", dim, x.shape))


def cummax(input, dim):
    """``(values, indices)``: the running maximum along ``dim`` and where it was found.

    >>> import lucid
    >>> v, i = lucid.cummax(lucid.tensor([1, 3, 3, 2]), 0)
    >>> v.tolist(), i.tolist()
    ([1, 3, 3, 3], [0, 1, 2, 2])
    """
    return cummax_result(*_running("cummax", "cumargmax", input, dim))


def cummin(input, dim):
    """``(values, indices)``: the running minimum along ``dim`` and where it was found.

    >>> import lucid
    >>> lucid.cummin(lucid.tensor([4.0, 2.0, 5.0, 1.0]), 0).values.tolist()
    [4.0, 2.0, 2.0, 1.0]
    """
    return cummin_result(*_running("cummin", "cumargmin", input, dim))


def _running(name: str, op: str, input, dim):
    x = _tensor(input)
    axis = _one_dim(name, dim, x.shape)
    indices = dispatch.apply(op, x, axis=axis)
    return take_along(x, indices, axis), indices


def _install(Tensor) -> None:
    """Attach ``cumprod``, ``cummax`` and ``cummin`` as Tensor methods."""
    for name in __all__:
        setattr(Tensor, name, globals()[name])
