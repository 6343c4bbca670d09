"""Applying one primitive op to tensors, eagerly.

The op is type-checked by its shape rule (a clear error before any native code runs),
executed by the backend, and, when gradients are enabled and an input requires them,
recorded as a graph node linking the output to its input tensors.
"""
from __future__ import annotations

from lucid_ir.builder import make_node
from lucid_ir.types import promote

from . import backend, tracing
from .grad_mode import is_grad_enabled


def apply(op: str, *inputs, **attrs):
    from .tensor import Tensor
    tracer = tracing.current()
    if tracer is not None:
        return tracer.apply(op, inputs, attrs)
    node = make_node(op, [t.value for t in inputs], attrs)
    out = backend.run_node(node, [t._data for t in inputs])
    requires = is_grad_enabled() and any(t.requires_grad for t in inputs)
    return Tensor._from_node(out, node, inputs if requires else None)


def as_tensor(x, like=None):
    """A tensor from ``x``. A Python number next to a tensor ``like`` becomes a
    ``constant`` node of ``like``'s dtype (so ``x * 2`` stays float32 and the graph
    shows the number)."""
    from .tensor import Tensor
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float)) and not isinstance(x, bool):
        return apply("constant", value=float(x), shape=(), dtype=like.dtype)
    return Tensor(x)


def cast(t, dtype: str):
    return t if t.dtype == dtype else apply("cast", t, dtype=dtype)


def binary(op: str, a, b, name: str | None = None):
    """Apply a binary op, promoting mixed float32/float64 operands to float64."""
    from .tensor import Tensor
    if not isinstance(a, Tensor):
        a = as_tensor(a, like=b)
    if not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    dtype = promote(a.dtype, b.dtype)
    return apply(op, cast(a, dtype), cast(b, dtype))
