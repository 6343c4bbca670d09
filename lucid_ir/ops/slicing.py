"""Slicing ops: ``slice`` (numpy basic slicing, one ``start:stop:step`` per axis, steps
may be negative) and its adjoint ``embed`` (a slice's values placed into zeros).

``slice`` covers ``narrow``, ``x[a:b:c]`` and ``flip`` (step -1); plans run it as a numpy
view, no copy. ``embed`` is its gradient: the sliced-out positions get zeros.
``embed_sum`` is the sum of several embeds into one shape (the gradient of a tensor
read through overlapping slices: a convolution's taps), which ``simplify`` makes of
their ``add`` s: one pass over the output instead of a zero fill and an add per slice.

Attributes are canonical after ``normalize_attrs``: ``start`` in range, ``stop`` the
exact end ``start + length * step``, or None for a negative step that runs past the
front; normalising again changes nothing, so equal slices compare (and CSE) equal
whatever spelling made them.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> b = GraphBuilder()
>>> x = b.input((2, 5), "float64")
>>> y = b.emit("slice", x, starts=(0, None), stops=(2, None), steps=(1, -2))
>>> y.shape
(2, 3)
>>> interpret(b.build([y]), [np.arange(10.0).reshape(2, 5)])[0]
array([[4., 2., 0.],
       [9., 7., 5.]])
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType
from . import OpDef, register, same_dtype

SLICE_ATTRS = ("starts", "stops", "steps")


def canonical_slices(op: str, shape, starts, stops, steps):
    """``(starts, stops, steps)`` by Python's ``slice(...).indices`` rules, with each
    stop moved to the exact end (None when that is before index 0); ``None`` given
    means the default of the step's direction. ValueError for a wrong count or a zero
    step.

    >>> canonical_slices("slice", (10, 5), (None, 1), (-100, 5), (-3, 2))
    ((9, 1), (None, 5), (-3, 2))
    """
    n = len(shape)
    starts = (None,) * n if starts is None else tuple(starts)
    stops = (None,) * n if stops is None else tuple(stops)
    steps = (None,) * n if steps is None else tuple(steps)
    if not len(starts) == len(stops) == len(steps) == n:
        raise ValueError(f"{op}: needs one start, stop and step per axis of shape {tuple(shape)}, "
                         f"got {len(starts)}, {len(stops)} and {len(steps)}")
    out = ([], [], [])
    for axis, (size, a, e, s) in enumerate(zip(shape, starts, stops, steps)):
        s = 1 if s is None else int(s)
        if s == 0:
            raise ValueError(f"{op}: step of axis {axis} is zero (shape {tuple(shape)})")
        a, e, s = slice(None if a is None else int(a), None if e is None else int(e), s).indices(size)
        length = len(range(a, e, s))
        if length == 0:
            a = 0
        out[0].append(a)
        end = a + length * s
        out[1].append(end if end >= 0 else None)
        out[2].append(s)
    return tuple(out[0]), tuple(out[1]), tuple(out[2])


def slice_shape(starts, stops, steps) -> tuple[int, ...]:
    return tuple(len(range(a, -1 if e is None else e, s)) for a, e, s in zip(starts, stops, steps))


def numpy_index(starts, stops, steps) -> tuple[slice, ...]:
    """The numpy basic index of canonical slices."""
    return tuple(slice(a, e, s) for a, e, s in zip(starts, stops, steps))


@register
class Slice(OpDef):
    """``slice[starts, stops, steps]``: ``x[starts[0]:stops[0]:steps[0], ...]``."""

    name = "slice"
    group = "movement"
    arity = 1
    attr_names = SLICE_ATTRS

    def forwards(self, node):
        return node.inputs[0].shape == node.out.shape and set(node.attr("steps")) <= {1}

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        starts, stops, steps = canonical_slices("slice", inputs[0].shape, attrs.get("starts"),
                                                attrs.get("stops"), attrs.get("steps"))
        return {"starts": starts, "stops": stops, "steps": steps}

    def infer(self, types, attrs):
        return TensorType(slice_shape(attrs["starts"], attrs["stops"], attrs["steps"]), types[0].dtype)

    def evaluate(self, a, attrs):
        return a[0][numpy_index(attrs["starts"], attrs["stops"], attrs["steps"])]

    def grad(self, b, node, g):
        return [b.emit("embed", g, shape=node.inputs[0].shape, **node.attr_dict)]


@register
class Embed(OpDef):
    """``embed[shape, starts, stops, steps]``: zeros of ``shape`` with the slice
    ``[starts:stops:steps]`` set to the input (the adjoint of ``slice``).

    >>> import numpy as np
    >>> from lucid_ir.builder import GraphBuilder
    >>> from lucid_ir.interpreter import interpret
    >>> b = GraphBuilder()
    >>> g = b.input((2,), "float64")
    >>> y = b.emit("embed", g, shape=(5,), starts=(3,), stops=(None,), steps=(-2,))
    >>> interpret(b.build([y]), [np.array([1.0, 2.0])])[0]
    array([0., 2., 0., 1., 0.])
    """

    name = "embed"
    group, kind = "indexing", "embed"

    arity = 1
    attr_names = ("shape",) + SLICE_ATTRS

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        shape = tuple(int(d) for d in attrs["shape"])
        if any(d < 0 for d in shape):
            raise ValueError(f"embed: negative dimension in shape {shape}")
        starts, stops, steps = canonical_slices("embed", shape, attrs.get("starts"),
                                                attrs.get("stops"), attrs.get("steps"))
        got = slice_shape(starts, stops, steps)
        if got != inputs[0].shape:
            raise ValueError(f"embed: the slice of shape {shape} has shape {got}, "
                             f"but the input has shape {inputs[0].shape}")
        return {"shape": shape, "starts": starts, "stops": stops, "steps": steps}

    def infer(self, types, attrs):
        return TensorType(attrs["shape"], types[0].dtype)

    def evaluate(self, a, attrs):
        out = np.zeros(attrs["shape"], a[0].dtype)
        out[numpy_index(attrs["starts"], attrs["stops"], attrs["steps"])] = a[0]
        return out

    def grad(self, b, node, g):
        attrs = {k: node.attr(k) for k in SLICE_ATTRS}
        return [b.emit("slice", g, **attrs)]


@register
class EmbedSum(OpDef):
    """``embed_sum[shape, starts, stops, steps](x0, x1, ...)``: zeros of ``shape`` plus
    each input placed at its slice, overlaps added: ``embed(x0) + embed(x1) + ...`` in
    one op. The slices' attributes are the parts' ``embed`` attributes laid end to end
    (``len(shape)`` entries per input).

    >>> import numpy as np
    >>> from lucid_ir.builder import GraphBuilder
    >>> from lucid_ir.interpreter import interpret
    >>> b = GraphBuilder()
    >>> x, y = b.input((2,), "float64"), b.input((2,), "float64")
    >>> z = b.emit("embed_sum", x, y, shape=(3,), starts=(0, 1), stops=(2, 3), steps=(1, 1))
    >>> interpret(b.build([z]), [np.array([1.0, 2.0]), np.array([10.0, 20.0])])[0]
    array([ 1., 12., 20.])
    """

    name = "embed_sum"
    group, kind = "indexing", "embed"

    arity = None
    attr_names = ("shape",) + SLICE_ATTRS

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        if not inputs:
            raise ValueError("embed_sum: needs at least one input")
        same_dtype("embed_sum", [v.type for v in inputs])
        shape = tuple(int(d) for d in attrs["shape"])
        n = len(shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"embed_sum: negative dimension in shape {shape}")
        flat = {k: tuple(attrs.get(k) or (None,) * (n * len(inputs))) for k in SLICE_ATTRS}
        if any(len(v) != n * len(inputs) for v in flat.values()):
            raise ValueError(f"embed_sum: {len(inputs)} inputs into shape {shape} need "
                             f"{n * len(inputs)} starts, stops and steps")
        out = {k: () for k in SLICE_ATTRS}
        for i, v in enumerate(inputs):
            part = canonical_slices("embed_sum", shape, *(flat[k][i * n:(i + 1) * n] for k in SLICE_ATTRS))
            got = slice_shape(*part)
            if got != v.shape:
                raise ValueError(f"embed_sum: slice {i} of shape {shape} has shape {got}, "
                                 f"but input {i} has shape {v.shape}")
            for k, p in zip(SLICE_ATTRS, part):
                out[k] += p
        return {"shape": shape, **out}

    def infer(self, types, attrs):
        return TensorType(attrs["shape"], types[0].dtype)

    @staticmethod
    def parts(attrs: dict, count: int):
        """Each input's ``(starts, stops, steps)``."""
        n = len(attrs["shape"])
        return [tuple(attrs[k][i * n:(i + 1) * n] for k in SLICE_ATTRS) for i in range(count)]

    def evaluate(self, arrays, attrs):
        out = np.zeros(attrs["shape"], arrays[0].dtype)
        for a, part in zip(arrays, self.parts(attrs, len(arrays))):
            out[numpy_index(*part)] += a
        return out

    def grad(self, b, node, g):
        return [b.emit("slice", g, starts=starts, stops=stops, steps=steps)
                for starts, stops, steps in self.parts(node.attr_dict, len(node.inputs))]
