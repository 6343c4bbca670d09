"""``argsort[axis, descending](x)``: the int64 positions that sort ``x`` along ``axis``.

The order is PyTorch's: ascending puts NaN last (NaN counts as the largest value),
descending puts it first; equal elements (``-0.0`` and ``0.0`` among them) keep their
original order in both directions, so the sort is stable, as ``torch.sort(...,
stable=True)``. A 0-d input sorts as one element (index 0); bools sort False first.
No gradient (the result is an index); the user API takes sorted values with a
``gather`` at these indices, whose gradient scatters back to the chosen positions.

Plans run the numpy reference as a step of its own (``lucid_codegen.runtime.scan_steps``).

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> b = GraphBuilder()
>>> x = b.input((5,), "float64")
>>> g = b.build([b.emit("argsort", x, axis=0), b.emit("argsort", x, axis=0, descending=True)])
>>> [a.tolist() for a in interpret(g, [np.array([2.0, np.nan, 1.0, 2.0, 0.5])])]
[[4, 2, 0, 3, 1], [1, 0, 3, 2, 4]]
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType
from . import OpDef, register
from .scan import _axis


def stable_argsort(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """The stable sorting order of ``x`` along ``axis`` (NaN largest), as int64.

    Descending order is the ascending order of the reversed axis, reversed back: equal
    elements then keep their original order, NaN comes first, and no value is negated
    (so no integer overflows).

    >>> stable_argsort(np.array([2, 2, 1, 2]), 0, True).tolist()
    [0, 1, 3, 2]
    """
    if not descending:
        return np.argsort(x, axis=axis, kind="stable").astype(np.int64, copy=False)
    n = x.shape[axis]
    flipped = np.flip(x, axis)
    order = np.flip(np.argsort(flipped, axis=axis, kind="stable"), axis)
    return (n - 1 - order).astype(np.int64, copy=False)


@register
class ArgSort(OpDef):
    name = "argsort"
    group = "scan"
    arity = 1
    attr_names = ("axis", "descending")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        return {"axis": _axis(self.name, attrs.get("axis", -1), inputs[0].shape),
                "descending": bool(attrs.get("descending", False))}

    def infer(self, types, attrs):
        return TensorType(types[0].shape, "int64")

    def evaluate(self, a, attrs):
        x = a[0]
        if x.ndim == 0:
            return np.zeros((), np.int64)
        return stable_argsort(x, attrs["axis"], attrs["descending"])

    def grad(self, b, node, g):
        return [None]
