"""Dropout functions of ``lucid.nn.functional``: ``dropout``, ``dropout1d``,
``dropout2d``, ``dropout3d``, ``alpha_dropout``.

The keep mask is drawn from lucid's seeded generator (``lucid.manual_seed``, or the
``generator=`` given: a lucid extension), already scaled by ``1 / (1 - p)``; the result
is one eager multiply by it, so the gradient is the incoming gradient times the same
mask. ``training=False`` returns the input itself; ``p = 1`` gives zeros.

Inside ``lucid.compile`` the mask is part of the graph: ``x * where(u >= p, 1/(1-p), 0)``
with ``u`` the counter-based ``random_uniform`` of a key each call draws from the
generator (see ``lucid.sampling``), so every call drops other elements, and
``lucid.manual_seed`` reproduces a run. The mask fuses into the loop of the multiply;
the backward multiplies by the same mask, saved by the forward (a residual), never
redrawn.

>>> import lucid
>>> import lucid.nn.functional as F
>>> _ = lucid.manual_seed(0)
>>> y = F.dropout(lucid.ones(1000), p=0.5)
>>> sorted(set(y.tolist())) == [0.0, 2.0], 400 < int((y > 0).sum().item()) < 600
(True, True)
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import dispatch, inplace, tracing
from ..sampling import _rng, traced_draw
from .functional_activation import _float_input

_SELU_ALPHA_PRIME = -1.7580993408473766  # -scale * alpha of SELU: where a dropped unit sits


def _check_p(op: str, p) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    return p


def _keep(op: str, x, p: float, mask_shape, generator):
    """1 with probability ``1 - p``, else 0, of ``mask_shape``: a bool numpy array, or
    inside ``lucid.compile`` a traced bool tensor (``p = 1``: no draw, all zeros)."""
    if tracing.current() is not None:
        if p == 1.0:
            return None
        u = traced_draw(op, "random_uniform", mask_shape, x.dtype, generator)
        return dispatch.binary("ge", u, p)
    rng = _rng(op, generator)
    return (rng.random(mask_shape) >= p) if p < 1.0 else np.zeros(mask_shape, bool)


def _scaled(keep, x, scale: float):
    """``keep * scale`` in ``x``'s dtype: a numpy array, or a traced tensor."""
    if isinstance(keep, np.ndarray):
        return (keep * scale).astype(str(x.dtype))
    return keep.to(x.dtype) * scale


def _apply(op: str, x, multiplier, inplace_: bool, addend=None):
    """``x * multiplier (+ addend)`` (numpy arrays of x's dtype, traced tensors or
    numbers, broadcast), in place into x when asked."""
    if inplace_:
        inplace._check_target(x, op)
    from ..tensor import Tensor
    wrap = (lambda v: Tensor._wrap(v) if isinstance(v, np.ndarray) else v)
    out = dispatch.binary("mul", x, wrap(multiplier))
    if addend is not None:
        out = dispatch.binary("add", out, wrap(addend))
    return inplace._write(x, out, op) if inplace_ else out


def _channel_dropout(op: str, input, p, training, inplace_, generator, mask_shape):
    p = _check_p(op, p)
    x = _float_input(input, op)
    if not training or p == 0.0:
        return x
    keep = _keep(op, x, p, mask_shape(x), generator)
    if keep is None:  # p = 1 inside a compiled function: x * 0 (NaN stays NaN, as eagerly)
        return _apply(op, x, 0.0, inplace_)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return _apply(op, x, _scaled(keep, x, scale), inplace_)


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


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,  # noqa: A002
              generator=None):
    """Zero whole channels of an ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input with
    probability ``p``. Other ranks warn, as PyTorch does, and drop along the first axis.

    >>> import lucid
    >>> y = dropout3d(lucid.ones(2, 6, 2, 2, 2), 0.5).numpy().reshape(2, 6, 8)
    >>> bool(((y == 0).all(-1) | (y == 2).all(-1)).all())  # whole channels
    True
    """
    def shape(x):
        if x.ndim not in (4, 5):
            warnings.warn(f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is deprecated "
                          "and will result in an error in a future release. To retain the behavior "
                          "and silence this warning, please use dropout instead. Note that dropout3d "
                          "exists to provide channel-wise dropout on inputs with 3 spatial dimensions, "
                          "a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
                          stacklevel=4)
        lead = tuple(x.shape[:2]) if x.ndim == 5 else tuple(x.shape[:1])
        return lead + (1,) * (x.ndim - len(lead))
    return _channel_dropout("dropout3d", input, p, training, inplace, generator, shape)


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
        zeros = 0.0 if tracing.current() is not None else np.zeros(x.shape, str(x.dtype))
        return _apply("alpha_dropout", x, zeros, inplace)
    keep = _keep("alpha_dropout", x, p, x.shape, generator)
    a = float(1.0 / np.sqrt((_SELU_ALPHA_PRIME ** 2 * p + 1.0) * (1.0 - p)))
    b = -a * _SELU_ALPHA_PRIME * p
    # x * (a keep) + (a alpha' (1 - keep) + b): the dropped units sit at a alpha' + b
    if isinstance(keep, np.ndarray):
        keep = keep.astype(np.float64)
        addend = (a * _SELU_ALPHA_PRIME * (1.0 - keep) + b).astype(str(x.dtype))
    else:
        addend = (1.0 - keep.to(x.dtype)) * (a * _SELU_ALPHA_PRIME) + b
    return _apply("alpha_dropout", x, _scaled(keep, x, a), inplace, addend)
