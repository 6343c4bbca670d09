"""Rounding to integral values: ``floor``, ``ceil`` and ``round`` (half to even, as
``torch.round`` and ``numpy.round``). Floats keep their dtype (``-0.0``, infinities
and NaN stay themselves); int32/int64 are returned unchanged; bool is refused, as in
PyTorch. No gradient (PyTorch's is zero everywhere).

>>> import numpy as np
>>> x = np.array([-2.5, -0.5, 0.5, 1.5, 2.5, 2.7])
>>> [get_op(op).evaluate([x], {}).tolist() for op in ("floor", "ceil", "round")]
[[-3.0, -1.0, 0.0, 1.0, 2.0, 2.0], [-2.0, -0.0, 1.0, 2.0, 3.0, 3.0], [-2.0, -0.0, 0.0, 2.0, 2.0, 3.0]]
"""
from __future__ import annotations

import numpy as np

from . import get_op, register
from .elementwise import NUMERIC, Unary


class _Rounding(Unary):
    accepts = NUMERIC
    numpy_fn = None

    def evaluate(self, a, attrs):
        x = a[0]
        return type(self).numpy_fn(x) if x.dtype.kind == "f" else x.copy()

    def grad(self, b, node, g):
        return [None]


@register
class Floor(_Rounding):
    name, numpy_fn = "floor", np.floor


@register
class Ceil(_Rounding):
    name, numpy_fn = "ceil", np.ceil


@register
class Round(_Rounding):
    name, numpy_fn = "round", np.round
