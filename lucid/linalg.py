"""``lucid.linalg``: norms, as ``torch.linalg``: ``vector_norm``, ``matrix_norm`` and
``norm``; and ``lucid.norm`` / ``Tensor.norm`` (``torch.norm``'s argument rules, here
as ``tensor_norm``).

Each norm is one chain of IR ops (one eager call; traced as is by ``lucid.compile``),
so its gradient comes from the IR's autodiff, with PyTorch's values at the edges: a
zero vector has gradient 0 (not NaN) for every order, as do zero elements for
``0 < ord < 1``; ``inf``/``-inf`` share the gradient evenly between tied extremes;
``ord=0`` (the count of non-zeros) has gradient 0.

* ``vector_norm``: ``ord`` 2 is ``sqrt(Σx²)``, 1 ``Σ|x|``, ``inf``/``-inf`` the
  largest/smallest ``|x|``, 0 the number of non-zeros, any other real
  ``(Σ|x|^ord)^(1/ord)`` (negative orders too: a zero element makes the norm 0).
  ``inf`` and negative orders of an empty reduction are RuntimeErrors (no identity).
* ``matrix_norm``: ``'fro'`` (the 2-norm of the entries), ``1``/``-1`` (largest /
  smallest column sum of ``|A|``), ``inf``/``-inf`` (row sums). ``'nuc'``, ``2`` and
  ``-2`` need singular values, which lucid does not compute: NotImplementedError.
* Inputs are float32/float64 (RuntimeError otherwise, as PyTorch); ``dtype=`` casts
  the input first (a narrowing cast is a RuntimeError).

>>> import lucid
>>> x = lucid.tensor([[3.0, -4.0], [0.0, 12.0]])
>>> lucid.linalg.vector_norm(x, dim=1).tolist(), lucid.linalg.vector_norm(x, ord=float("inf")).item()
([5.0, 12.0], 12.0)
>>> lucid.linalg.matrix_norm(x, ord=1).item(), x.norm(p=1).item(), lucid.norm(x).item()
(16.0, 19.0, 13.0)
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from . import dispatch
from .dtypes import as_dtype
from .nn.chain_steps import cached_chain
from .reductions import _axes

__all__ = ["vector_norm", "matrix_norm", "norm"]

_FLOATS = ("float32", "float64")


# ------------------------------------------------------------------ arguments
def _float_input(op: str, input, dtype):
    """``input`` as a float tensor, cast to ``dtype`` if given (PyTorch's checks)."""
    x = dispatch.as_tensor(input)
    if x.dtype not in _FLOATS:
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. Got {x.dtype} "
                           f"(shape {tuple(x.shape)})")
    if dtype is not None:
        dt = as_dtype(dtype)
        if not dt.is_floating_point:
            raise RuntimeError(f"{op}: dtype should be floating point or complex, but got {dt}")
        if dt.itemsize < np.dtype(str(x.dtype)).itemsize:
            raise RuntimeError(f"{op}: the dtype of the input ({x.dtype}) should be convertible "
                               f"without narrowing to the specified dtype ({dt})")
        x = dispatch.cast(x, str(dt))
    return x


def _number(op: str, ord) -> float:
    if isinstance(ord, (str, type(None))) or not isinstance(ord, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: argument 'ord' must be a number, not {type(ord).__name__}")
    return float(ord)


def _shown(p: float) -> str:
    """An order as PyTorch prints it in messages (``2``, ``inf``, ``0.5``)."""
    return str(int(p)) if p.is_integer() else str(p)


def _check_identity(op: str, x, p: float, axes, dim) -> None:
    """RuntimeError for an ``inf``/negative-order norm of an empty reduction."""
    if p >= 0 and not math.isinf(p):
        return
    if (dim is None or (isinstance(dim, (tuple, list)) and not dim)) and x.numel() == 0:
        raise RuntimeError(f"{op} cannot compute the {_shown(p)} norm on an empty tensor because the "
                           f"operation does not have an identity (shape {tuple(x.shape)})")
    for a in axes:
        if x.shape[a] == 0:
            raise RuntimeError(f"{op} cannot compute the {_shown(p)} norm on the dimension {a} because "
                               f"this dimension is empty and the operation does not have an identity "
                               f"(shape {tuple(x.shape)})")


# ------------------------------------------------------------------ the formulas, as chain steps
def _vector_steps(s, x, p: float, axes, keepdim: bool):
    """Steps computing the ``p``-norm of ``x`` over ``axes`` (see the module text)."""
    def total(v):
        return s("sum", v, axes=axes, keepdims=keepdim)

    if p == 1.0:
        return total(s("abs", x))
    if math.isinf(p):
        return s("max" if p > 0 else "min", s("abs", x), axes=axes, keepdims=keepdim)
    if p == 0.0:
        return total(s("cast", s("ne", x, 0.0), dtype=s.dtype))
    if p == 2.0:
        return _root(s, total(s("mul", x, x)), p)
    # |x|^p with zeros read as 0 (inf for p < 0) and differentiated as constants, so a
    # zero element gets gradient 0, not 0 * inf
    is_zero = s("eq", x, 0.0)
    powered = s("pow", s("select", is_zero, 1.0, s("abs", x)), p)
    summed = total(s("select", is_zero, math.inf if p < 0 else 0.0, powered))
    return s("pow", summed, 1.0 / p) if p < 0 else _root(s, summed, p)


def _root(s, summed, p: float):
    """``summed ** (1/p)``, with a zero ``summed`` giving 0 and gradient 0."""
    flat = s("eq", summed, 0.0)
    safe = s("select", flat, 1.0, summed)
    return s("select", flat, 0.0, s("sqrt", safe) if p == 2.0 else s("pow", safe, 1.0 / p))


# ------------------------------------------------------------------ the public functions
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The ``ord``-norm of ``x``'s elements over ``dim`` (every dim if None), as
    ``torch.linalg.vector_norm``.

    >>> import lucid
    >>> lucid.linalg.vector_norm(lucid.tensor([3.0, -4.0])).item()
    5.0
    >>> lucid.linalg.vector_norm(lucid.tensor([[1.0, 0.0], [-2.0, 2.0]]), ord=0, dim=1).tolist()
    [1.0, 2.0]
    """
    op = "linalg.vector_norm"
    t = _float_input(op, x, dtype)
    p = _number(op, ord)
    axes = _axes(op, dim, t.shape)
    _check_identity(op, t, p, axes, dim)
    keepdim = builtins.bool(keepdim)
    chain = cached_chain("vector_norm", (p, axes, keepdim),
                         lambda s: _vector_steps(s, 0, p, axes, keepdim), str(t.dtype))
    return dispatch.call(chain, (t,))


def _matrix_dims(op: str, dim, ndim: int):
    from .tensor import _dim
    if isinstance(dim, (int, np.integer)) or not isinstance(dim, (tuple, list)):
        raise TypeError(f"{op}: argument 'dim' must be a tuple of two ints, not {type(dim).__name__}")
    if len(dim) != 2:
        raise RuntimeError(f"{op}: dim must be a 2-tuple. Got {' '.join(str(d) for d in dim)}")
    d0, d1 = (_dim(int(d), ndim, op) for d in dim)
    if d0 == d1:
        raise RuntimeError(f"{op}: dims must be different. Got ({dim[0]}, {dim[1]})")
    return d0, d1


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The ``ord``-norm of the matrices ``A`` holds in the dims ``dim``, as
    ``torch.linalg.matrix_norm``: ``'fro'``, or ``1``, ``-1``, ``inf``, ``-inf``.

    >>> import lucid
    >>> A = lucid.tensor([[1.0, -2.0], [3.0, 4.0]])
    >>> lucid.linalg.matrix_norm(A, ord=1).item(), lucid.linalg.matrix_norm(A, ord=float("-inf")).item()
    (6.0, 3.0)
    """
    op = "linalg.matrix_norm"
    t = dispatch.as_tensor(A)
    p = ord if isinstance(ord, str) else _number(op, ord)
    if p not in ("fro", "nuc", 1.0, -1.0, 2.0, -2.0, math.inf, -math.inf):
        raise RuntimeError(f"{op}: Order {p if isinstance(p, str) else _shown(p)} not supported.")
    if t.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions (got shape "
                           f"{tuple(t.shape)}).")
    d0, d1 = _matrix_dims(op, dim, t.ndim)
    if p == "fro":
        return vector_norm(_float_input(op, t, dtype), 2, (d0, d1), keepdim)
    if p in ("nuc", 2.0, -2.0):
        what = "the nuclear norm" if p == "nuc" else f"the {_shown(p)}-norm"
        raise NotImplementedError(f"{op}: {what} needs singular values, which lucid does not "
                                  f"compute (shape {tuple(t.shape)})")
    t = _float_input(op, t, dtype)
    # the 1-norm: the extreme column sum; the inf-norm: the extreme row sum
    first, second = (d0, d1) if abs(p) == 1.0 else (d1, d0)
    if t.shape[second] == 0 and p < 0:
        raise IndexError(f"{op}: amin(): Expected reduction dim {second} to have non-zero size "
                         f"(shape {tuple(t.shape)})")
    keepdim = builtins.bool(keepdim)
    after = second - 1 if not keepdim and first < second else second
    # with no columns (rows) the largest sum is 0: a sum of nothing gives it
    extreme = "sum" if t.shape[second] == 0 else "max" if p > 0 else "min"

    def build(s):
        sums = s("sum", s("abs", 0), axes=(first,), keepdims=keepdim)
        return s(extreme, sums, axes=(after,), keepdims=keepdim)
    chain = cached_chain("matrix_norm", (first, after, extreme, keepdim), build, str(t.dtype))
    return dispatch.call(chain, (t,))


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """``torch.linalg.norm``: a vector norm, or a matrix norm when ``dim`` has two dims
    (or ``A`` is 2-D and ``dim`` is None) and ``ord`` is given; ``ord=None`` is the
    2-norm of the entries.

    >>> import lucid
    >>> A = lucid.tensor([[1.0, -2.0], [3.0, 4.0]])
    >>> lucid.linalg.norm(A, ord=float("inf")).item(), lucid.linalg.norm(A, ord=1, dim=0).tolist()
    (7.0, [4.0, 6.0])
    """
    op = "linalg.norm"
    t = dispatch.as_tensor(A)
    dims = None if dim is None else [dim] if isinstance(dim, (int, np.integer)) else list(dim)
    if dims is not None and len(dims) not in (1, 2):
        raise RuntimeError(f"{op}: If dim is specified, it must be of length 1 or 2. Got {dims}")
    if dims is None and ord is not None and t.ndim not in (1, 2):
        raise RuntimeError(f"{op}: If dim is not specified but ord is, the input must be 1D or 2D. "
                           f"Got {t.ndim}D.")
    if isinstance(ord, str) or (ord is not None and (len(dims) == 2 if dims else t.ndim == 2)):
        return matrix_norm(t, ord, tuple(dims) if dims else (0, 1), keepdim, dtype=dtype)
    return vector_norm(t, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def tensor_norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """``lucid.norm`` and ``Tensor.norm``, as ``torch.norm``: ``p`` a number is the
    vector norm over ``dim`` (every dim if None, any number of dims); ``'fro'`` the
    2-norm over at most two dims; ``'nuc'`` the nuclear norm (NotImplementedError).

    >>> import lucid
    >>> x = lucid.tensor([[3.0, 4.0], [6.0, 8.0]])
    >>> x.norm(dim=1).tolist(), lucid.norm(x, p=1, dim=(0, 1)).item()
    ([5.0, 10.0], 21.0)
    """
    t = dispatch.as_tensor(input)
    dims = None if dim is None else [dim] if isinstance(dim, (int, np.integer)) else list(dim)
    if isinstance(p, str):
        if p == "fro" and (dims is None or len(dims) <= 2):
            return vector_norm(t, 2, dims, keepdim, dtype=dtype)
        return matrix_norm(t, p, tuple(range(t.ndim)) if dims is None else tuple(dims), keepdim,
                           dtype=dtype)
    return vector_norm(t, 2.0 if p is None else p, dims, keepdim, dtype=dtype)


def _install(Tensor) -> None:
    """Attach ``Tensor.norm``."""
    Tensor.norm = tensor_norm
