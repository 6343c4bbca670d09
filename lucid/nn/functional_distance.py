"""Distances of ``lucid.nn.functional``: ``cosine_similarity`` and ``pairwise_distance``,
each one chain (one eager call), gradients by the IR's autodiff.

>>> import lucid
>>> import lucid.nn.functional as F
>>> a = lucid.tensor([[1.0, 0.0], [3.0, 4.0]], dtype=lucid.float64)
>>> b = lucid.tensor([[0.0, 2.0], [6.0, 8.0]], dtype=lucid.float64)
>>> F.cosine_similarity(a, b).tolist()
[0.0, 1.0]
>>> [round(v, 4) for v in F.pairwise_distance(a, b).tolist()]
[2.2361, 5.0]
"""
from __future__ import annotations

import numpy as np

from .. import dispatch
from ..dispatch import as_tensor
from lucid_ir.types import promote

from .chain_steps import cached_chain
from .functional_activation import _dim
from .functional_norm import _p_norm


def _pair(op: str, x1, x2):
    """Both operands in their common float dtype; their shapes must broadcast."""
    a, b = as_tensor(x1), as_tensor(x2)
    dtype = promote(a.dtype, b.dtype)
    if dtype not in ("float32", "float64"):
        raise RuntimeError(f"{op}: expected floating-point inputs, got {a.dtype} and {b.dtype}")
    try:
        shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        raise RuntimeError(f"{op}: the shapes of x1 {tuple(a.shape)} and x2 {tuple(b.shape)} do not "
                           f"broadcast") from None
    return dispatch.cast(a, dtype), dispatch.cast(b, dtype), shape


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """``Σ (x1 / max(‖x1‖, eps)) (x2 / max(‖x2‖, eps))`` along ``dim`` (inputs broadcast).

    >>> import lucid
    >>> round(cosine_similarity(lucid.tensor([1.0, 1.0]), lucid.tensor([-2.0, -2.0]), dim=0).item(), 6)
    -1.0
    """
    a, b, shape = _pair("cosine_similarity", x1, x2)
    d = _dim("cosine_similarity", dim, len(shape))

    shapes = (tuple(a.shape), tuple(b.shape))

    def build(s):
        x, y = (k if shapes[k] == shape else s("broadcast_to", k, shape=shape) for k in (0, 1))
        u = s("div", x, _p_norm(s, x, 2.0, d, 2, keepdims=True))
        v = s("div", y, _p_norm(s, y, 2.0, d, 2, keepdims=True))
        return s("sum", s("mul", u, v), axes=d)
    chain = cached_chain("cosine_similarity", (shapes, d), build, str(a.dtype))
    return dispatch.call(chain, (a, b, float(eps)))


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """``‖x1 - x2 + eps‖_p`` along the last dimension (inputs broadcast).

    >>> import lucid
    >>> a, b = lucid.tensor([[0.0, 3.0]]), lucid.tensor([[4.0, 0.0]])
    >>> [round(v, 4) for v in pairwise_distance(a, b, p=1.0, eps=0.0).tolist()]
    [7.0]
    """
    a, b, shape = _pair("pairwise_distance", x1, x2)
    p = float(p)
    if p < 0:
        raise RuntimeError(f"pairwise_distance: p must be non-negative, got {p}")
    if not shape:
        raise RuntimeError("pairwise_distance: expected inputs of at least 1 dimension, got scalars")
    d = len(shape) - 1

    def build(s):
        diff = s("add", s("sub", 0, 1), 2)
        if p == 0.0:
            return s("sum", s("cast", s("ne", diff, 0.0), dtype=s.dtype), axes=d, keepdims=keepdim)
        return _p_norm(s, diff, p, d, None, keepdims=keepdim)
    chain = cached_chain("pairwise_distance", (p, d, bool(keepdim)), build, str(a.dtype))
    return dispatch.call(chain, (a, b, float(eps)))
