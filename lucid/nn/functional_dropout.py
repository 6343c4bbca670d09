"""Dropout functions of ``lucid.nn.functional``: ``dropout``, ``dropout1d``,
``dropout2d``, ``alpha_dropout``.

The keep mask is drawn from lucid's seeded generator (``lucid.manual_seed``, or the
``generator=`` given: a lucid extension), already scaled by ``1 / (1 - p)``; the result
is one eager multiply by it, so the gradient is the incoming gradient times the same
mask. ``training=False`` returns the input itself; ``p = 1`` gives zeros. Masks cannot
be drawn inside ``lucid.compile`` (draw them outside; ``sampling``'s rule).

>>> import lucid
>>> import lucid.nn.functional as F
>>> _ = lucid.manual_seed(0)
>>> y = F.dropout(lucid.ones(1000), p=0.5)
>>> sorted(set(y.tolist())) == [0.0, 2.0], 400 < int((y > 0).sum().item()) < 600
(True, True)
"""
from __future__ import annotations

import numpy as np

from .. import dispatch, inplace
from ..sampling import _rng
from .functional_activation import _float_input

_SELU_ALPHA_PRIME = -1.7580993408473766  # -scale * alpha of SELU: where a dropped unit sits


def _check_p(op: str, p) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    return p


def _keep(op: str, x, p: float, mask_shape, generator) -> np.ndarray:
    """A 0/1 array of ``mask_shape``: 1 with probability ``1 - p``."""
    rng = _rng(op, generator)
    return (rng.random(mask_shape) >= p) if p < 1.0 else np.zeros(mask_shape, bool)


def _apply(op: str, x, multiplier: np.ndarray, inplace_: bool, addend=None):
    """``x * multiplier (+ addend)`` (numpy arrays of x's dtype, broadcast), in place
    into x when asked."""
    if inplace_:
        inplace._check_target(x, op)
    from ..tensor import Tensor
    out = dispatch.binary("mul", x, Tensor._wrap(multiplier.astype(str(x.dtype))))
    if addend is not None:
        out = dispatch.binary("add", out, Tensor._wrap(addend.astype(str(x.dtype))))
    return inplace._write(x, out, op) if inplace_ else out


def _channel_dropout(op: str, input, p, training, inplace_, generator, mask_shape):
    p = _check_p(op, p)
    x = _float_input(input, op)
    if not training or p == 0.0:
        return x
    keep = _keep(op, x, p, mask_shape(x), generator)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return _apply(op, x, keep * scale, inplace_)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,  # noqa: A002
            generator=None):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    >>> import lucid
    >>> g = lucid.Generator().manual_seed(0)
    >>> sorted(set(dropout(lucid.ones(100), 0.75, generator=g).tolist()))
    [0.0, 4.0]
    """
    return _channel_dropout("dropout", input, p, training, inplace, generator, lambda x: x.shape)


def _per_channel(op: str, ranks):
    def shape(x):
        if x.ndim not in ranks:
            raise RuntimeError(f"{op}: expected an input of {' or '.join(map(str, ranks))} dimensions, "
                               f"got shape {tuple(x.shape)}")
        batched = x.ndim == max(ranks)
        lead = x.shape[:2] if batched else x.shape[:1]
        return tuple(lead) + (1,) * (x.ndim - len(lead))
    return shape


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,  # noqa: A002
              generator=None):
    """Zero whole channels of an ``(N, C, L)`` or ``(C, L)`` input with probability ``p``.

    >>> import lucid
    >>> y = dropout1d(lucid.ones(2, 8, 5), 0.5).numpy()
    >>> bool(((y == 0).all(-1) | (y == 2).all(-1)).all())  # whole channels
    True
    """
    return _channel_dropout("dropout1d", input, p, training, inplace, generator,
                            _per_channel("dropout1d", (2, 3)))


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,  # noqa: A002
              generator=None):
    """Zero whole channels of an ``(N, C, H, W)`` input with probability ``p`` (a 3-D
    input is taken as ``(N, C, L)``, as PyTorch does, with a warning there).

    >>> import lucid
    >>> dropout2d(lucid.ones(2, 3, 4, 4), 0.5, training=False).shape
    (2, 3, 4, 4)
    """
    def shape(x):
        if x.ndim not in (3, 4):
            raise RuntimeError(f"dropout2d: expected an input of 3 or 4 dimensions, got shape {tuple(x.shape)}")
        return tuple(x.shape[:2]) + (1,) * (x.ndim - 2)
    return _channel_dropout("dropout2d", input, p, training, inplace, generator, shape)


def alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False, *,  # noqa: A002
                  generator=None):
    """Dropout for SELU networks: a dropped unit takes SELU's negative saturation value,
    then an affine map keeps the mean and variance (PyTorch's ``alpha_dropout``).

    >>> import lucid
    >>> x = lucid.randn(5)
    >>> alpha_dropout(x, 0.5) is x  # training=False by default
    True
    """
    p = _check_p("alpha_dropout", p)
    x = _float_input(input, "alpha_dropout")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _apply("alpha_dropout", x, np.zeros(x.shape), inplace)
    keep = _keep("alpha_dropout", x, p, x.shape, generator).astype(np.float64)
    a = 1.0 / np.sqrt((_SELU_ALPHA_PRIME ** 2 * p + 1.0) * (1.0 - p))
    b = -a * _SELU_ALPHA_PRIME * p
    return _apply("alpha_dropout", x, a * keep, inplace, a * _SELU_ALPHA_PRIME * (1.0 - keep) + b)
