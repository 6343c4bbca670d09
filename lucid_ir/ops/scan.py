"""Ops along one axis that are not plain reductions: ``argmax``/``argmin`` (the index of
the extreme element), the prefix sum ``cumsum`` and product ``cumprod``, and
``cumargmax``/``cumargmin`` (the index of the running extreme).

* ``argmax[axis, keepdims](x)`` / ``argmin``: int64 indices; ``axis=None`` takes the
  index into the flattened tensor (``keepdims`` then keeps every axis as size 1, as
  PyTorch). Ties give the first occurrence; a NaN counts as the extreme (the first NaN
  wins), as in both numpy and PyTorch. An empty reduced axis is an error. bool inputs
  compare as 0/1 (``max(x, dim)`` of a bool tensor takes its indices from here;
  the user-level ``argmax`` refuses bool as PyTorch does). No gradient (the result
  is an index).
* ``cumsum[axis](x)``: int32/int64/bool give int64 (as PyTorch), floats keep their
  dtype. Gradient: the reversed cumulative sum of the incoming gradient.
* ``cumprod[axis](x)``: dtypes as ``cumsum``. Gradient: exact with zeros (as PyTorch),
  see ``CumProd``.
* ``cumargmax[axis](x)`` / ``cumargmin``: int64, at each position the index of the
  running maximum (minimum) so far, as ``torch.cummax``'s indices: among equal values
  the latest wins, a NaN is the extreme (the latest NaN). No gradient; the user API
  takes the values with a ``gather`` at these indices.

Plans run each of them as a native kernel of its own (``lucid_codegen.runtime.scan_steps``).

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> b = GraphBuilder()
>>> x = b.input((2, 3), "float64")
>>> g = b.build([b.emit("argmax", x, axis=1), b.emit("cumsum", x, axis=1)])
>>> [a.tolist() for a in interpret(g, [np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 1.0]])])]
[[1, 0], [[1.0, 6.0, 11.0], [7.0, 7.0, 8.0]]]
>>> g = b.build([b.emit("cumprod", x, axis=1), b.emit("cumargmax", x, axis=1)])
>>> [a.tolist() for a in interpret(g, [np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 1.0]])])]
[[[1.0, 5.0, 25.0], [7.0, 0.0, 0.0]], [[0, 1, 2], [0, 0, 0]]]
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, is_float
from . import OpDef, register


def _axis(op: str, axis, shape) -> int:
    ndim = max(len(shape), 1)
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of shape {tuple(shape)}")
    return axis % ndim


class _ArgExtreme(OpDef):
    group = "scan"
    arity = 1
    attr_names = ("axis", "keepdims")
    numpy_fn = None

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        x = inputs[0]
        axis = attrs.get("axis")
        if axis is not None:
            axis = _axis(self.name, axis, x.shape)
            if x.shape and x.shape[axis] == 0:
                raise ValueError(f"{self.name}: cannot reduce the empty axis {axis} of shape {x.shape}")
        elif x.type.size == 0:
            raise ValueError(f"{self.name}: cannot reduce a tensor of shape {x.shape} with no elements")
        return {"axis": axis, "keepdims": bool(attrs.get("keepdims", False))}

    def infer(self, types, attrs):
        shape, axis = types[0].shape, attrs["axis"]
        if axis is None or not shape:
            out = (1,) * len(shape) if attrs["keepdims"] else ()
        elif attrs["keepdims"]:
            out = tuple(1 if i == axis else d for i, d in enumerate(shape))
        else:
            out = tuple(d for i, d in enumerate(shape) if i != axis)
        return TensorType(out, "int64")

    def evaluate(self, a, attrs):
        x, axis = a[0], attrs["axis"]
        out_shape = self.infer((TensorType(x.shape, x.dtype.name),), attrs).shape
        if axis is None or x.ndim == 0:
            return np.asarray(type(self).numpy_fn(x.reshape(-1)), np.int64).reshape(out_shape)
        return type(self).numpy_fn(x, axis=axis).astype(np.int64).reshape(out_shape)

    def grad(self, b, node, g):
        return [None]


@register
class ArgMax(_ArgExtreme):
    name, numpy_fn = "argmax", np.argmax


@register
class ArgMin(_ArgExtreme):
    name, numpy_fn = "argmin", np.argmin


@register
class CumSum(OpDef):
    name = "cumsum"
    group = "scan"
    arity = 1
    attr_names = ("axis",)

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        return {"axis": _axis(self.name, attrs.get("axis", 0), inputs[0].shape)}

    def infer(self, types, attrs):
        dtype = types[0].dtype
        return TensorType(types[0].shape, dtype if is_float(dtype) else "int64")

    def evaluate(self, a, attrs):
        x = a[0]
        if x.ndim == 0:
            return x.astype(self.infer((TensorType((), x.dtype.name),), attrs).dtype)
        return np.cumsum(x, axis=attrs["axis"], dtype=None if is_float(x.dtype.name) else np.int64)

    def grad(self, b, node, g):
        if not g.shape:
            return [g]
        return [reverse_cumsum(b, g, node.attr("axis"))]


def reverse_cumsum(b, v, axis: int):
    """``out[i] = sum(v[j] for j >= i)`` along ``axis`` (the adjoint of ``cumsum``)."""
    n = len(v.shape)
    flip = {"starts": (None,) * n, "stops": (None,) * n,
            "steps": tuple(-1 if i == axis else 1 for i in range(n))}
    rev = b.emit("slice", v, **flip)
    return b.emit("slice", b.emit("cumsum", rev, axis=axis), **flip)


@register
class CumProd(CumSum):
    """Gradient without dividing by zero (PyTorch's result): along each line let z be the
    position of the first zero. Before z, ``x[k]`` is non-zero and the gradient is
    ``reverse_cumsum(g * out)[k] / x[k]`` (the terms from z on are zero on both sides);
    at z it is ``reverse_cumsum(g * cumprod(x with x[z] = 1))[z]``; after z it is 0
    (every product through ``x[k]`` also holds ``x[z]``). With no zero, only the first
    case applies. The rule is built of differentiable ops; its own derivative is exact
    where the input holds no zero (at an exact zero the "after z" zeros are constants)."""

    name = "cumprod"

    def evaluate(self, a, attrs):
        x = a[0]
        if x.ndim == 0:
            return x.astype(self.infer((TensorType((), x.dtype.name),), attrs).dtype)
        return np.cumprod(x, axis=attrs["axis"], dtype=None if is_float(x.dtype.name) else np.int64)

    def grad(self, b, node, g):
        x = node.inputs[0]
        if not g.shape:
            return [g]
        axis = node.attr("axis")
        zero, one = b.constant(0.0, (), x.dtype), b.constant(1.0, (), x.dtype)
        is_zero = b.emit("eq", x, zero)
        zeros_so_far = b.emit("cumsum", is_zero, axis=axis)                     # int64
        before = b.emit("eq", zeros_so_far, b.constant(0, (), "int64"))
        first = b.emit("logical_and", is_zero, b.emit("eq", zeros_so_far, b.constant(1, (), "int64")))
        safe_x = b.emit("select", before, x, one)
        grad_before = b.emit("div", reverse_cumsum(b, b.emit("mul", g, node.out), axis), safe_x)
        skipped = b.emit("cumprod", b.emit("select", first, one, x), axis=axis)  # x[z] read as 1
        grad_first = reverse_cumsum(b, b.emit("mul", g, skipped), axis)
        rest = b.emit("select", first, grad_first, b.emit("broadcast_to", zero, shape=x.shape))
        return [b.emit("select", before, grad_before, rest)]


class _CumArgExtreme(OpDef):
    group = "scan"
    arity = 1
    attr_names = ("axis",)
    accumulate = None  # np.maximum / np.minimum

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        return {"axis": _axis(self.name, attrs.get("axis", 0), inputs[0].shape)}

    def infer(self, types, attrs):
        return TensorType(types[0].shape, "int64")

    def evaluate(self, a, attrs):
        x, axis = a[0], attrs["axis"]
        if x.ndim == 0 or x.size == 0:
            return np.zeros(x.shape, np.int64)
        running = type(self).accumulate.accumulate(x, axis=axis)   # NaN sticks, as PyTorch
        same = x == running
        if is_float(x.dtype.name):
            same |= np.isnan(x) & np.isnan(running)
        where = np.arange(x.shape[axis]).reshape([-1 if d == axis else 1 for d in range(x.ndim)])
        # the latest position holding the running extreme (running values only change
        # at positions that hold them, so the latest such position so far is it)
        return np.maximum.accumulate(np.where(same, where, -1), axis=axis).astype(np.int64)

    def grad(self, b, node, g):
        return [None]


@register
class CumArgMax(_CumArgExtreme):
    name, accumulate = "cumargmax", np.maximum


@register
class CumArgMin(_CumArgExtreme):
    name, accumulate = "cumargmin", np.minimum
