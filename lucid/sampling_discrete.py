"""Random indices: ``multinomial`` (``Tensor.multinomial`` too) and ``randperm``, as
PyTorch's, drawing from ``generator=`` or the default generator (``lucid.manual_seed``
reproduces them; the streams are numpy's PCG64, not PyTorch's numbers, see
``lucid.random``). Eager only: inside ``lucid.compile`` they raise ``TracingError``.

* ``multinomial(input, n)``: ``n`` category indices per row of the non-negative
  weights ``input`` (1-D, or 2-D: one draw per row), with probabilities proportional to
  the weights. With replacement every draw is independent (inverse CDF of a uniform);
  without, the draws are a weighted sample without replacement (each next index drawn
  in proportion to the weights left), computed at once as the ``n`` largest keys
  ``w / E`` with ``E`` exponential (the exponential-race form); once the non-zero
  weights are used up, zero-weight categories follow in random order, as PyTorch does.
* ``randperm(n)``: a uniformly random permutation of ``0 .. n-1`` (int64 by default).

>>> import lucid
>>> _ = lucid.manual_seed(0)
>>> lucid.multinomial(lucid.tensor([0.0, 1.0, 0.0]), 2, replacement=True).tolist()
[1, 1]
>>> sorted(lucid.randperm(5).tolist()), lucid.randperm(3, dtype=lucid.float32).dtype
([0, 1, 2, 3, 4], lucid.float32)
"""
from __future__ import annotations

import operator

import numpy as np

from .creation import check_device, dtype_of, finish
from .dtypes import int64
from .sampling import _rng
from .tensor import Tensor

__all__ = ["multinomial", "randperm"]


def _count(op: str, name: str, value) -> int:
    """An int argument (a 0-d integer tensor too, as PyTorch reads it)."""
    if isinstance(value, Tensor) and value.ndim == 0 and value.dtype in ("int32", "int64"):
        return int(value.item())
    if not isinstance(value, bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise TypeError(f"{op}(): argument '{name}' must be int, not {type(value).__name__}")


def _weights(input, num_samples: int, replacement: bool) -> np.ndarray:
    """The weights as float64 rows, checked as PyTorch checks them."""
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial(): expected a Tensor as input, got {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{input.dtype}")
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape {tuple(input.shape)}")
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples (n_sample={num_samples})")
    categories = input.shape[-1]
    if not replacement and num_samples > categories:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without "
                           f"replacement (n_sample={num_samples}, {categories} categories)")
    w = np.asarray(input.numpy(), dtype=np.float64).reshape(-1, categories)
    if w.size and (not np.isfinite(w).all() or (w < 0).any()):
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    if w.shape[0] and (categories == 0 or (w.sum(axis=1) <= 0).any()):
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    return w


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """int64 indices of categories drawn from the weights of each row of ``input``;
    ``num_samples`` per row (at most the number of categories without replacement).

    >>> import lucid
    >>> g = lucid.Generator().manual_seed(1)
    >>> lucid.multinomial(lucid.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 5.0]]), 1, generator=g).tolist()
    [[0], [2]]
    >>> sorted(lucid.tensor([1.0, 2.0, 3.0]).multinomial(3, generator=g).tolist())
    [0, 1, 2]
    """
    num_samples = _count("multinomial", "num_samples", num_samples)
    rng = _rng("multinomial", generator)
    w = _weights(input, num_samples, bool(replacement))
    rows = w.shape[0]
    if replacement:
        cdf = np.cumsum(w, axis=1)
        cdf /= cdf[:, -1:]                   # the last entry exactly 1: a draw below 1 fits
        u = rng.random((rows, num_samples))
        out = np.stack([np.searchsorted(cdf[r], u[r], side="right") for r in range(rows)]) \
            if rows else np.zeros((0, num_samples), np.int64)
    else:
        race = rng.standard_exponential(w.shape)
        with np.errstate(divide="ignore"):
            keys = np.where(w > 0, w / race, -race)   # zero weights last, in random order
        out = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(np.int64, copy=False)
    return Tensor._wrap(out.reshape(num_samples) if input.ndim == 1 else out)


def randperm(n, *, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
             pin_memory=False):
    """A random permutation of the integers ``0 .. n-1`` (int64 unless ``dtype``).

    >>> import lucid
    >>> p = lucid.randperm(6, generator=lucid.Generator().manual_seed(3))
    >>> p.dtype, sorted(p.tolist()) == list(range(6))
    (lucid.int64, True)
    """
    check_device("randperm", device)
    n = _count("randperm", "n", n)
    dt = dtype_of(dtype, int64)
    if n < 0:
        raise RuntimeError(f"randperm: Trying to create tensor with negative dimension {n}: [{n}]")
    if dt == "bool":
        raise NotImplementedError("randperm: \"randperm\" not implemented for 'bool'")
    limit = {"float32": 2 ** 24 + 1, "int32": 2 ** 31}.get(str(dt))
    if limit is not None and n > limit:
        raise RuntimeError(f"randperm: n must be at most {limit} for {dt}, got {n}")
    order = _rng("randperm", generator).permutation(n)
    return finish(order.astype(str(dt), copy=False), requires_grad)


def _install(Tensor) -> None:
    """Attach ``Tensor.multinomial``."""
    Tensor.multinomial = multinomial
