"""Ops that move data by position: ``concat``, ``gather`` and ``scatter_add``.

Unlike the views of ``movement.py`` they write new arrays, so plans run them as native
kernels of their own (``lucid_codegen.runtime.index_steps``); fusion leaves them alone.

Index semantics (the IR's, so that the reference and the kernels agree on every input):
indices are int64 and name positions ``0 .. n-1`` of the indexed axis. An index out of
that range (negative ones included) reads 0 in ``gather`` and is dropped by
``scatter_add``: the two ops stay exact adjoints, and no kernel ever touches memory
outside its buffers. The user API checks indices and raises ``IndexError`` before
building the op (``check_index_range``), and wraps negative indices itself.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> b = GraphBuilder()
>>> x, i = b.input((2, 3), "float64"), b.input((2, 2), "int64")
>>> y = b.emit("gather", x, i, axis=1)
>>> interpret(b.build([y]), [np.arange(6.0).reshape(2, 3), np.array([[2, 0], [1, 1]])])[0]
array([[2., 0.],
       [4., 4.]])
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType
from . import OpDef, register, same_dtype

INDEX_DTYPE = "int64"


def _axis(op: str, axis, ndim: int, shape) -> int:
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for shape {tuple(shape)}")
    return axis % ndim


def check_index_range(op: str, index: np.ndarray, size: int) -> None:
    """IndexError unless every index is in ``[0, size)`` (for the user API, before it
    builds a ``gather`` or ``scatter_add``)."""
    index = np.asarray(index)
    if index.size and (index.min() < 0 or index.max() >= size):
        bad = index[(index < 0) | (index >= size)].flat[0]
        raise IndexError(f"{op}: index {int(bad)} is out of bounds for an axis of size {size}")


@register
class Concat(OpDef):
    """``concat[axis](x0, x1, ...)``: the inputs joined along ``axis`` (same dtype, same
    shape elsewhere), as ``np.concatenate``."""

    name = "concat"
    group = "indexing"

    arity = None
    attr_names = ("axis",)

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        if not inputs:
            raise ValueError("concat: needs at least one input")
        shapes = [v.shape for v in inputs]
        ndim = len(shapes[0])
        if ndim == 0 or any(len(s) != ndim for s in shapes):
            raise ValueError(f"concat: inputs must have the same rank >= 1, got shapes {shapes}")
        axis = _axis("concat", attrs.get("axis", 0), ndim, shapes[0])
        rest = {s[:axis] + s[axis + 1:] for s in shapes}
        if len(rest) > 1:
            raise ValueError(f"concat: shapes {shapes} differ outside axis {axis}")
        same_dtype("concat", [v.type for v in inputs])
        return {"axis": axis}

    def infer(self, types, attrs):
        axis, shape = attrs["axis"], list(types[0].shape)
        shape[axis] = sum(t.shape[axis] for t in types)
        return TensorType(tuple(shape), types[0].dtype)

    def evaluate(self, arrays, attrs):
        return np.concatenate(arrays, axis=attrs["axis"])

    def grad(self, b, node, g):
        axis, at, out = node.attr("axis"), 0, []
        for v in node.inputs:
            n = v.shape[axis]
            starts = tuple(at if d == axis else 0 for d in range(len(g.shape)))
            stops = tuple(at + n if d == axis else g.shape[d] for d in range(len(g.shape)))
            out.append(b.emit("slice", g, starts=starts, stops=stops, steps=(1,) * len(g.shape)))
            at += n
        return out


def _check_index(op: str, index, other, other_name: str, axis: int) -> None:
    if index.dtype != INDEX_DTYPE:
        raise TypeError(f"{op}: indices must be {INDEX_DTYPE}, got {index.type}")
    if len(index.shape) != len(other):
        raise ValueError(f"{op}: index {index.type} must have the rank of {other_name} {tuple(other)}")
    if any(i > o for d, (i, o) in enumerate(zip(index.shape, other)) if d != axis):
        raise ValueError(f"{op}: index shape {index.shape} exceeds {other_name} {tuple(other)} "
                         f"outside axis {axis}")


@register
class Gather(OpDef):
    """``gather[axis](x, index)``: ``out[p] = x[p with p[axis] = index[p]]`` for every
    position p of ``index`` (the output has index's shape; outside ``axis`` it may be
    smaller than x), as ``torch.gather``; an out-of-range index reads 0."""

    name = "gather"
    group = "indexing"

    arity = 2
    attr_names = ("axis",)

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        x, index = inputs
        if not x.shape:
            raise ValueError("gather: x must have rank >= 1, got a scalar")
        axis = _axis("gather", attrs.get("axis", 0), len(x.shape), x.shape)
        _check_index("gather", index, x.shape, "x", axis)
        if x.shape[axis] == 0 and index.type.size:
            raise ValueError(f"gather: cannot take indices {index.shape} from the empty axis {axis} "
                             f"of {x.shape}")
        return {"axis": axis}

    def infer(self, types, attrs):
        return TensorType(types[1].shape, types[0].dtype)

    def evaluate(self, arrays, attrs):
        x, index = arrays
        axis, n = attrs["axis"], x.shape[attrs["axis"]]
        part = x[tuple(slice(None) if d == axis else slice(0, k) for d, k in enumerate(index.shape))]
        if index.size == 0:
            return np.zeros(index.shape, x.dtype)
        valid = (index >= 0) & (index < n)
        out = np.take_along_axis(part, np.where(valid, index, 0), axis)
        return np.where(valid, out, np.zeros((), x.dtype))

    def grad(self, b, node, g):
        x, index = node.inputs
        return [b.emit("scatter_add", index, g, axis=node.attr("axis"), shape=x.shape), None]


@register
class ScatterAdd(OpDef):
    """``scatter_add[axis, shape](index, src)``: zeros of ``shape`` (src's dtype), then
    ``out[p with p[axis] = index[p]] += src[p]`` for every position p of ``index`` in C
    order (duplicates accumulate); an out-of-range index is dropped. ``torch.scatter_add``
    of a zero tensor; add a base tensor yourself.

    >>> import numpy as np
    >>> from lucid_ir.builder import GraphBuilder
    >>> from lucid_ir.interpreter import interpret
    >>> b = GraphBuilder()
    >>> i, s = b.input((4,), "int64"), b.input((4,), "float64")
    >>> y = b.emit("scatter_add", i, s, axis=0, shape=(3,))
    >>> interpret(b.build([y]), [np.array([2, 0, 2, 7]), np.array([1.0, 2.0, 3.0, 4.0])])[0]
    array([2., 0., 4.])
    """

    name = "scatter_add"
    group = "indexing"

    arity = 2
    attr_names = ("axis", "shape")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        index, src = inputs
        shape = tuple(int(d) for d in attrs["shape"])
        if not shape or any(d < 0 for d in shape):
            raise ValueError(f"scatter_add: output shape {shape} must have rank >= 1 and no "
                             f"negative dimension")
        axis = _axis("scatter_add", attrs.get("axis", 0), len(shape), shape)
        _check_index("scatter_add", index, shape, "output shape", axis)
        if src.shape != index.shape:
            raise ValueError(f"scatter_add: src {src.type} must have the shape of index {index.type}")
        if src.dtype == "bool":
            raise TypeError(f"scatter_add: cannot add bool values ({src.type}); cast them first")
        return {"axis": axis, "shape": shape}

    def infer(self, types, attrs):
        return TensorType(attrs["shape"], types[1].dtype)

    def evaluate(self, arrays, attrs):
        index, src = arrays
        axis, shape = attrs["axis"], attrs["shape"]
        out = np.zeros(shape, src.dtype)
        valid = (index >= 0) & (index < shape[axis])
        coords = list(np.indices(index.shape, sparse=False)) if index.ndim else []
        coords[axis] = index
        np.add.at(out, tuple(c[valid] for c in coords), src[valid])
        return out

    def grad(self, b, node, g):
        index = node.inputs[0]
        return [None, b.emit("gather", g, index, axis=node.attr("axis"))]
