"""In-place sampling, as PyTorch's: ``Tensor.uniform_(from, to)``, ``Tensor.normal_(mean,
std)`` and ``Tensor.bernoulli_(p)`` (what ``lucid.nn.init`` builds on), and the method
``Tensor.bernoulli()``.

They draw from ``generator=`` or the default generator (``lucid.manual_seed``) and
refuse a leaf that requires grad while grad mode is on (as every in-place op does).
Inside ``lucid.compile`` they write the traced counter-based random numbers (see
``lucid.sampling``): a tensor from outside the function is refilled in place at every
call.

>>> import lucid
>>> g = lucid.Generator().manual_seed(0)
>>> x = lucid.empty(1000).uniform_(-2.0, 2.0, generator=g)
>>> bool((x >= -2).all() and (x < 2).all())
True
>>> y = lucid.zeros(4, dtype=lucid.float64).normal_(3.0, 0.0); y.tolist()
[3.0, 3.0, 3.0, 3.0]
>>> lucid.zeros(3).bernoulli_(1.0).tolist()
[1.0, 1.0, 1.0]
"""
from __future__ import annotations

import numpy as np

from . import dispatch, tracing
from .inplace import _check_target, _write


def _rng(op: str, generator):
    from .sampling import _rng  # sampling imports creation, which imports this module's Tensor
    return _rng(op, generator)


def _floating(t, op: str) -> None:
    if not t.dtype.is_floating_point:
        raise NotImplementedError(f"{op}: \"{op.rstrip('_')}_kernel_cpu\" is not implemented for "
                                  f"{t.dtype} (shape {tuple(t.shape)}); use a floating dtype")


def _traced(op: str, kind: str, t, generator):
    from .sampling import traced_draw
    return traced_draw(op, kind, t.shape, t.dtype, generator)


def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None):
    """Fill with samples uniform on ``[a, b)``, in place."""
    _check_target(self, "uniform_")
    _floating(self, "uniform_")
    if not a <= b:
        raise RuntimeError(f"uniform_: expects to return a [from, to) range, but found from={a} > to={b}")
    if tracing.current() is not None:
        u = _traced("uniform_", "random_uniform", self, generator)
        value = u * float(b - a) + float(a)
        if b > a:  # rounding can reach b: keep the interval half-open, as eagerly
            high = float(np.nextafter(np.dtype(str(self.dtype)).type(b), np.dtype(str(self.dtype)).type(a)))
            value = dispatch.binary("minimum", value, high)
        return _write(self, value, "uniform_")
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
    if tracing.current() is not None:
        z = _traced("normal_", "random_normal", self, generator)
        return _write(self, z * float(std) + float(mean), "normal_")
    rng = _rng("normal_", generator)
    values = rng.normal(mean, std, self._data.shape) if std > 0 else np.full(self._data.shape, mean)
    return _store(self, values.astype(self._data.dtype))


def _store(t, values: np.ndarray):
    """The samples written into ``t`` (a recorded tensor keeps requiring grad, its old
    history getting a zero gradient, as PyTorch's)."""
    from . import dispatch, rebase
    return rebase.store(t, dispatch._wrap(values), reads_self=False)


def bernoulli_(self, p=0.5, *, generator=None):
    """Fill with 1 with probability ``p`` (a number, or a float tensor of probabilities
    broadcast to this tensor's shape), else 0, in place."""
    from .sampling import bernoulli
    from .tensor import Tensor
    _check_target(self, "bernoulli_")
    if isinstance(p, Tensor):
        from .shape_ops import broadcast_to
        drawn = bernoulli(broadcast_to(p.detach(), tuple(self.shape)), generator=generator)
    else:
        drawn = bernoulli(self.detach(), p, generator=generator)
    return _write(self, drawn, "bernoulli_", casting=True)


def bernoulli(self, p=None, *, generator=None):
    """``lucid.bernoulli(self, p, generator=generator)``."""
    from .sampling import bernoulli as draw
    return draw(self, p, generator=generator)


def _install(Tensor) -> None:
    """Attach the methods to ``Tensor`` (called once, at the end of ``lucid.tensor``)."""
    Tensor.uniform_ = uniform_
    Tensor.normal_ = normal_
    Tensor.bernoulli_ = bernoulli_
    Tensor.bernoulli = bernoulli
