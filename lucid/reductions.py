"""Reductions with PyTorch's signatures: ``sum``, ``mean``, ``prod``, ``max``, ``min``,
``amax``, ``amin``, ``argmax``, ``argmin``, ``var``, ``std``, ``logsumexp``, ``all``,
``any`` and ``cumsum`` (functions here, and Tensor methods through ``_install``).

``dim`` is an int or a tuple of ints (negative ones count from the end; None, and for
``sum``/``mean``/``amax``/``amin`` also ``()``, mean every axis), ``keepdim`` keeps
reduced axes as size 1. lucid's older spellings ``axis=`` and ``keepdims=`` are
accepted as aliases. Dtypes as PyTorch: ``sum``/``prod``/``cumsum`` of int or bool
give int64 (``dtype=`` casts the input first), ``mean``/``var``/``std`` take floats,
``argmax``/``argmin`` give int64, ``all``/``any`` give bool, ``logsumexp`` of ints
gives float32. ``max(x, dim)`` and ``min(x, dim)`` return ``(values, indices)`` named
tuples whose gradient goes to the chosen (first) index; ``max(x)``/``amax`` share the
gradient evenly between tied elements, as PyTorch.

Compositions of IR ops: ``var`` is the mean of squared deviations (two passes, exact),
``logsumexp`` is shifted by the (gradient-free) maximum, ``all``/``any`` count the
true elements (so empty reductions give True/False). ``prod`` is an IR reduction with
a native kernel; ``argmax``/``argmin``/``cumsum`` are IR scan ops (native kernels of their own).

>>> import lucid
>>> x = lucid.tensor([[1.0, 5.0, 2.0], [4.0, 0.0, 6.0]])
>>> x.sum(dim=1).tolist(), x.prod(0).tolist(), x.argmax(dim=-1).tolist()
([8.0, 10.0], [4.0, 0.0, 12.0], [1, 2])
>>> values, indices = x.max(dim=1)
>>> values.tolist(), indices.tolist()
([5.0, 6.0], [1, 2])
>>> [round(v, 4) for v in x.var(dim=1, correction=0).tolist()], x.cumsum(1).tolist()[0], x.all().item()
([2.8889, 6.2222], [1.0, 6.0, 8.0], False)
"""
from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from . import dispatch, functional_core
from .tensor import Tensor as _Tensor
from .dtypes import as_dtype

_FLOATS = ("float32", "float64")
_NP_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

#: the named tuples ``max(x, dim)``/``min(x, dim)`` return (as ``torch.return_types``)
max_result = namedtuple("max", ["values", "indices"])
min_result = namedtuple("min", ["values", "indices"])


# ------------------------------------------------------------------ arguments
def _spelling(op, dim, keepdim, axis, keepdims):
    """``(dim, keepdim)`` from PyTorch's or lucid's older spelling (not both)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}(): got both dim= and its alias axis=")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def _axes(op: str, dim, shape) -> tuple[int, ...]:
    """``dim`` (None, int, or a tuple/list of ints) as sorted non-negative axes; the
    empty tuple means every axis. IndexError out of range, RuntimeError for repeats."""
    ndim = len(shape)
    if dim is None:
        return tuple(range(ndim))
    if not isinstance(dim, (int, tuple, list)):
        raise TypeError(f"{op}(): dim must be an int or a tuple of ints, got {dim!r}")
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        return tuple(range(ndim))
    out = []
    for d in dims:
        if isinstance(d, builtins.bool) or not isinstance(d, int):
            raise TypeError(f"{op}(): dim must be an int or a tuple of ints, got {dim!r}")
        bound = builtins.max(ndim, 1)
        if not -bound <= d < bound:
            raise IndexError(f"{op}(): dimension out of range (expected to be in range of "
                             f"[{-bound}, {bound - 1}], but got {d}) for a tensor of shape {tuple(shape)}")
        out.append(d % bound if ndim else None)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}(): dim {out[0]} appears multiple times in the list of dims {dims}")
    return tuple(sorted(a for a in out if a is not None))


def _one_dim(op: str, dim, shape) -> int:
    if isinstance(dim, builtins.bool) or not isinstance(dim, int):
        raise TypeError(f"{op}(): dim must be an int, got {dim!r}")
    axes = _axes(op, dim, shape)  # a 0-d tensor takes dim 0 or -1
    return axes[0] if axes else 0


def _count(shape, axes) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _tensor(x):
    return dispatch.as_tensor(x)


def _with_dtype(x, dtype):
    return x if dtype is None else dispatch.cast(x, str(as_dtype(dtype)))


def _nonempty(op: str, x, axes, dim) -> None:
    """PyTorch's errors for max/min-like reductions of no elements."""
    if dim is None and x.numel() == 0:
        raise RuntimeError(f"{op}(): expected a reduction dim to be specified for a tensor with "
                           f"no elements (shape {tuple(x.shape)}); pass dim=")
    for a in axes:
        if x.shape[a] == 0:
            raise IndexError(f"{op}(): expected reduction dim {a} to have non-zero size "
                             f"(shape {tuple(x.shape)})")


def _reduce(op: str, x, axes, keepdim):
    return dispatch.apply1(op, x, (("axes", axes), ("keepdims", keepdim)))


_EVERY_AXIS = (("axes", None), ("keepdims", False))  # a reduction of every element


# ------------------------------------------------------------------ sums and products
def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """Sum over ``dim`` (all axes by default); int and bool give int64.

    >>> import lucid
    >>> lucid.sum(lucid.tensor([[1, 2], [3, 4]]), dim=0).tolist()
    [4, 6]
    """
    if dim is None and not keepdim and dtype is None and axis is None and keepdims is None:
        return dispatch.apply1("sum", input, _EVERY_AXIS)  # x.sum(): the unrolled path
    dim, keepdim = _spelling("sum", dim, keepdim, axis, keepdims)
    x = _with_dtype(_tensor(input), dtype)
    return _reduce("sum", x, _axes("sum", dim, x.shape), keepdim)


def mean(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """Mean over ``dim`` of a float tensor (RuntimeError for ints and bools, as PyTorch;
    pass ``dtype=lucid.float32``).

    >>> import lucid
    >>> lucid.mean(lucid.tensor([[1.0, 2.0], [3.0, 5.0]]), dim=(0, 1)).item()
    2.75
    """
    if (dim is None and not keepdim and dtype is None and axis is None and keepdims is None
            and type(input) is _Tensor and input._data is not None and input._data.dtype in _NP_FLOATS):
        return dispatch.apply1("mean", input, _EVERY_AXIS)  # x.mean(): the unrolled path
    dim, keepdim = _spelling("mean", dim, keepdim, axis, keepdims)
    x = _with_dtype(_tensor(input), dtype)
    if x.dtype not in _FLOATS:
        raise RuntimeError(f"mean(): could not infer output dtype: the input must be float32 or "
                           f"float64, got {x.dtype} (shape {tuple(x.shape)}); pass dtype=")
    return _reduce("mean", x, _axes("mean", dim, x.shape), keepdim)


def prod(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """Product over one ``dim`` (or of every element); int and bool give int64. The
    gradient is the product of the other elements, zeros included.

    >>> import lucid
    >>> lucid.prod(lucid.tensor([[1, 2], [3, 4]]), 1).tolist()
    [2, 12]
    """
    dim, keepdim = _spelling("prod", dim, keepdim, axis, keepdims)
    x = _with_dtype(_tensor(input), dtype)
    axes = tuple(range(x.ndim)) if dim is None else (_one_dim("prod", dim, x.shape),) if x.ndim else ()
    return _reduce("prod", x, axes, keepdim)


def cumsum(input, dim, *, dtype=None):
    """Cumulative sum along ``dim``; int and bool give int64.

    >>> import lucid
    >>> lucid.cumsum(lucid.tensor([[1, 2, 3]]), dim=1).tolist()
    [[1, 3, 6]]
    """
    x = _with_dtype(_tensor(input), dtype)
    return dispatch.apply("cumsum", x, axis=_one_dim("cumsum", dim, x.shape))


# ------------------------------------------------------------------ extremes
def amax(input, dim=(), keepdim=False, *, axis=None, keepdims=None):
    """Maximum over ``dim`` (every axis by default); ties share the gradient evenly.

    >>> import lucid
    >>> lucid.amax(lucid.tensor([[1, 7], [3, 4]]), dim=1).tolist()
    [7, 4]
    """
    return _extreme("amax", "max", input, dim, keepdim, axis, keepdims)


def amin(input, dim=(), keepdim=False, *, axis=None, keepdims=None):
    """Minimum over ``dim`` (every axis by default); ties share the gradient evenly."""
    return _extreme("amin", "min", input, dim, keepdim, axis, keepdims)


def _extreme(name, op, input, dim, keepdim, axis, keepdims):
    dim, keepdim = _spelling(name, dim, keepdim, axis, keepdims)
    x = _tensor(input)
    axes = _axes(name, dim, x.shape)
    _nonempty(name, x, axes, None if dim is None or dim == () else dim)
    return _reduce(op, x, axes, keepdim)


def max(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """``max(x)``: the largest element (ties share the gradient evenly); ``max(x, dim)``:
    ``(values, indices)`` along one dim, the first index of the largest (the gradient
    goes to it); ``max(x, other)``: the elementwise maximum. lucid's older
    ``max(x, axis=...)`` still gives the values alone, as ``amax``.

    >>> import lucid
    >>> lucid.max(lucid.tensor([[1, 7], [3, 4]]), 0)
    max(values=Tensor([3, 7], grad=None), indices=Tensor([1, 0], grad=None))
    """
    return _max_min("max", input, dim, keepdim, axis, keepdims)


def min(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """As ``max``, for the smallest: ``min(x)``, ``min(x, dim)`` or ``min(x, other)``."""
    return _max_min("min", input, dim, keepdim, axis, keepdims)


def _max_min(op, input, dim, keepdim, axis, keepdims):
    if type(dim) is int and axis is None and keepdims is None and type(input) in dispatch._TENSOR_TYPES:
        shape = input.shape  # the common call, max(x, dim): checked in place
        if shape and -len(shape) <= dim < len(shape) and shape[dim]:
            return _max_min_dim(op, input, dim % len(shape), bool(keepdim), shape)
    if type(dim) in dispatch._TENSOR_TYPES:
        return dispatch.binary("maximum" if op == "max" else "minimum", input, dim)
    old_spelling = axis is not None  # lucid's max(axis=...): a tensor, as amax
    dim, keepdim = _spelling(op, dim, keepdim, axis, keepdims)
    x = _tensor(input)
    if dim is None or old_spelling or isinstance(dim, (tuple, list)):
        axes = _axes(op, dim, x.shape)
        _nonempty(op, x, axes, dim)
        return _reduce(op, x, axes, keepdim)
    d = _one_dim(op, dim, x.shape)
    _nonempty(op, x, (d,) if x.ndim else (), dim)
    if not x.ndim:
        index = dispatch.apply1("arg" + op, x, (("axis", d), ("keepdims", True)))
        return (max_result if op == "max" else min_result)(x, index.reshape(()))
    return _max_min_dim(op, x, d, keepdim, x.shape)


def _max_min_dim(op, x, d: int, keepdim: bool, shape):
    """``(values, indices)`` of max/min(x, d) for a checked axis ``d`` of ``shape``
    (x's, not empty along d): the indices, then the values gathered at them."""
    index = dispatch.apply1("arg" + op, x, (("axis", d), ("keepdims", True)))  # (bool: as 0/1)
    got = _GATHERED.get((op, d, keepdim, shape))
    if got is None:   # the values at the indices (the gradient goes there), in one call
        out = shape[:d] + (1,) + shape[d + 1:] if keepdim else shape[:d] + shape[d + 1:]
        got = _GATHERED[op, d, keepdim, shape] = (dispatch.Chain(
            [("gather", {"axis": d}, (0, 1))] + ([] if keepdim else [("reshape", {"shape": out}, (-1,))]),
            name=f"{op}_dim"), out)
    chain, out = got
    values = dispatch.call(chain, (x, index))
    if not keepdim:   # a fresh index tensor (no gradient): a view of its data, when it has data
        index = index.squeeze(d) if index._data is None else type(index)._wrap(index._data.reshape(out))
    return (max_result if op == "max" else min_result)(values, index)


#: (max or min, dim, keepdim, x's shape) -> (the chain of max/min(x, dim)'s values, their shape)
_GATHERED: dict = dispatch.ChainCache()


def argmax(input, dim=None, keepdim=False):
    """Index of the largest element along ``dim`` (of the flattened tensor if None);
    the first one among ties, a NaN counts as largest.

    >>> import lucid
    >>> lucid.argmax(lucid.tensor([[1, 7, 7], [3, 4, 0]]), dim=1).tolist()
    [1, 1]
    """
    return _arg("argmax", input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    """Index of the smallest element along ``dim`` (flattened if None); first of ties."""
    return _arg("argmin", input, dim, keepdim)


def _arg(op, input, dim, keepdim):
    x = _tensor(input)
    if x.dtype == "bool":
        raise RuntimeError(f"{op}(): does not support bool input (shape {tuple(x.shape)})")
    shape = x.shape
    if type(dim) is int and shape and -len(shape) <= dim < len(shape) and shape[dim]:  # the common call
        return dispatch.apply1(op, x, (("axis", dim % len(shape)), ("keepdims", bool(keepdim))))
    axis = None if dim is None else _one_dim(op, dim, x.shape)
    if axis is None and x.numel() == 0:
        raise IndexError(f"{op}(): expected a reduction dim to be specified for a tensor with "
                         f"no elements (shape {tuple(x.shape)}); pass dim=")
    _nonempty(op, x, () if axis is None or not x.ndim else (axis,), dim)
    return dispatch.apply(op, x, axis=axis, keepdims=bool(keepdim))


# ------------------------------------------------------------------ statistics
def var(input, dim=None, *, correction=1, keepdim=False, unbiased=None, axis=None, keepdims=None):
    """Variance over ``dim``: ``sum((x - mean)**2) / max(N - correction, 0)`` (``correction``
    1 by default, Bessel's; ``unbiased=False`` means 0). Floats only.

    >>> import lucid
    >>> round(lucid.var(lucid.tensor([1.0, 2.0, 4.0])).item(), 4)
    2.3333
    """
    dim, keepdim = _spelling("var", dim, keepdim, axis, keepdims)
    if unbiased is not None:
        correction = 1 if unbiased else 0
    x = _tensor(input)
    if x.dtype not in _FLOATS:
        raise RuntimeError(f"var(): std and var only support floating point dtypes, got {x.dtype} "
                           f"(shape {tuple(x.shape)})")
    axes = _axes("var", dim, x.shape)
    dev = x - _reduce("mean", x, axes, True)
    total = _reduce("sum", dev * dev, axes, keepdim)
    return total / builtins.max(_count(x.shape, axes) - correction, 0)


def std(input, dim=None, *, correction=1, keepdim=False, unbiased=None, axis=None, keepdims=None):
    """Standard deviation: ``sqrt(var(...))`` with the same arguments; its gradient is 0
    where the variance is 0.

    >>> import lucid
    >>> lucid.std(lucid.tensor([[1.0, 3.0]]), dim=1, correction=0).tolist()
    [1.0]
    """
    v = var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased, axis=axis,
            keepdims=keepdims)
    # where the variance is 0 the gradient is 0 (as PyTorch), not 0 * inf from sqrt'(0)
    flat = v == 0.0
    where = functional_core.where
    return where(flat, 0.0, dispatch.unary("sqrt", where(flat, 1.0, v)))


def logsumexp(input, dim, keepdim=False):
    """``log(sum(exp(x)))`` over ``dim``, computed shifted by the maximum so it neither
    overflows nor underflows; ints give float32; an empty reduction gives -inf.

    >>> import lucid
    >>> round(lucid.logsumexp(lucid.tensor([1000.0, 1000.0]), 0).item(), 3)
    1000.693
    """
    x = _tensor(input)
    if x.dtype not in _FLOATS:
        x = dispatch.cast(x, "float32")
    axes = _axes("logsumexp", dim, x.shape)
    if _count(x.shape, axes) == 0 or x.numel() == 0:
        return dispatch.unary("log", _reduce("sum", dispatch.unary("exp", x), axes, keepdim))
    shift = dispatch.apply("stop_gradient", _reduce("max", x, axes, True))
    shift = functional_core.where(dispatch.unary("isfinite", shift), shift, 0.0)  # all -inf: 0
    total = _reduce("sum", dispatch.unary("exp", x - shift), axes, keepdim)
    return dispatch.unary("log", total) + (shift if keepdim else shift.reshape(total.shape))


# ------------------------------------------------------------------ logical
def all(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """True where every element along ``dim`` is non-zero (True for no elements).

    >>> import lucid
    >>> lucid.all(lucid.tensor([[1, 0], [2, 3]]), dim=1).tolist()
    [False, True]
    """
    dim, keepdim = _spelling("all", dim, keepdim, axis, keepdims)
    x = _tensor(input)
    falses = dispatch.unary("logical_not", dispatch.cast(x, "bool"))
    return _reduce("sum", falses, _axes("all", dim, x.shape), keepdim) == 0


def any(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """True where some element along ``dim`` is non-zero (False for no elements).

    >>> import lucid
    >>> lucid.any(lucid.tensor([[1, 0], [0, 0]]), dim=1).tolist()
    [True, False]
    """
    dim, keepdim = _spelling("any", dim, keepdim, axis, keepdims)
    x = _tensor(input)
    return _reduce("sum", dispatch.cast(x, "bool"), _axes("any", dim, x.shape), keepdim) > 0


PUBLIC = ("sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "var", "std",
          "logsumexp", "all", "any", "cumsum")


def _install(Tensor) -> None:
    """Attach the reductions as Tensor methods (replacing the older sum/mean/max)."""
    Tensor.sum = sum
    Tensor.mean = mean
    Tensor.prod = prod
    Tensor.max = max
    Tensor.min = min
    Tensor.amax = amax
    Tensor.amin = amin
    Tensor.argmax = argmax
    Tensor.argmin = argmin
    Tensor.var = var
    Tensor.std = std
    Tensor.logsumexp = logsumexp
    Tensor.all = all
    Tensor.any = any
    Tensor.cumsum = cumsum
