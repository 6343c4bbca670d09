"""Small graph-building helpers shared by gradient rules."""
from __future__ import annotations


def sum_to(b, g, shape: tuple[int, ...]):
    """Sum ``g`` down to ``shape``: undo numpy broadcasting (gradient of a broadcast)."""
    if g.shape == tuple(shape):
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    out = b.emit("sum", g, axes=axes, keepdims=True) if axes else g
    if out.shape != tuple(shape):
        out = b.emit("reshape", out, shape=tuple(shape))
    return out


def zeros_like(b, v):
    return b.constant(0.0, v.shape, v.dtype)


def scalar(b, value: float, dtype: str):
    return b.constant(value, (), dtype)
