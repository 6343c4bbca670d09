"""In-place sampling, as PyTorch's: ``Tensor.uniform_(from, to)`` and
``Tensor.normal_(mean, std)`` (what ``lucid.nn.init`` builds on).

They draw from ``generator=`` or the default generator (``lucid.manual_seed``), refuse
a leaf that requires grad while grad mode is on (as every in-place op does), and raise
``TracingError`` inside ``lucid.compile`` (a graph would replay one draw forever).

>>> import lucid
>>> g = lucid.Generator().manual_seed(0)
>>> x = lucid.empty(1000).uniform_(-2.0, 2.0, generator=g)
>>> bool((x >= -2).all() and (x < 2).all())
True
>>> y = lucid.zeros(4, dtype=lucid.float64).normal_(3.0, 0.0); y.tolist()
[3.0, 3.0, 3.0, 3.0]
"""
from __future__ import annotations

import numpy as np

from .inplace import _check_target


def _rng(op: str, generator):
    from .sampling import _rng  # sampling imports creation, which imports this module's Tensor
    return _rng(op, generator)


def _floating(t, op: str) -> None:
    if t._data is not None and t._data.dtype.kind != "f":
        raise NotImplementedError(f"{op}: \"{op.rstrip('_')}_kernel_cpu\" is not implemented for "
                                  f"{t.dtype} (shape {tuple(t.shape)}); use a floating dtype")


def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None):
    """Fill with samples uniform on ``[a, b)``, in place."""
    _check_target(self, "uniform_")
    _floating(self, "uniform_")
    if not a <= b:
        raise RuntimeError(f"uniform_: expects to return a [from, to) range, but found from={a} > to={b}")
    rng = _rng("uniform_", generator)
    values = rng.uniform(a, b, self._data.shape).astype(self._data.dtype)
    if b > a:  # rounding to float32 can reach b: keep the interval half-open
        np.minimum(values, np.nextafter(values.dtype.type(b), values.dtype.type(a)), out=values)
    return _store(self, values)


def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None):
    """Fill with samples of ``mean + std * N(0, 1)``, in place."""
    _check_target(self, "normal_")
    _floating(self, "normal_")
    if std < 0:
        raise RuntimeError(f"normal_: expects std >= 0.0, but found std {std}")
    rng = _rng("normal_", generator)
    values = rng.normal(mean, std, self._data.shape) if std > 0 else np.full(self._data.shape, mean)
    return _store(self, values.astype(self._data.dtype))


def _store(t, values: np.ndarray):
    """The samples written into ``t`` (a recorded tensor keeps requiring grad, its old
    history getting a zero gradient, as PyTorch's)."""
    from . import dispatch, rebase
    return rebase.store(t, dispatch._wrap(values), reads_self=False)


def _install(Tensor) -> None:
    """Attach the methods to ``Tensor`` (called once, at the end of ``lucid.tensor``)."""
    Tensor.uniform_ = uniform_
    Tensor.normal_ = normal_
