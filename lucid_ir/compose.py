"""PyTorch's shape and indexing functions as compositions of IR primitives, for the user
API and for gradient rules: each takes a ``GraphBuilder`` and values and emits nodes.
None needs an op of its own; their gradients follow from the primitives'.

- ``flip``, ``narrow``: one ``slice`` (a view in plans);
- ``roll``: two slices and a ``concat``; ``stack``: reshapes and a ``concat``;
  ``split``: slices;
- ``index_select``: the index reshaped and broadcast to the output's shape (stride-0,
  no copy), then ``gather``; its gradient is a ``scatter_add`` (repeated indices add);
- ``tril``/``triu``: two ``iota``s compared, then ``select`` (one fused loop);
- ``repeat``: ``reshape`` + ``broadcast_to`` + ``reshape`` (the last one copies);
- boolean masks, ``x[mask]``: the output's size depends on the mask's *values*, which a
  static graph cannot have. So masks are eager-only: the caller computes the positions
  from the concrete mask (``mask_positions``, numpy) and passes them in as an int64
  input value; ``take_flat`` gathers them from the flattened tensor. A compiled graph
  sees a new input shape per mask count (a new signature, not a dynamic shape).

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> b = GraphBuilder()
>>> x = b.input((2, 3), "float64")
>>> y = roll(b, x, 1, axis=1)
>>> interpret(b.build([y]), [np.arange(6.0).reshape(2, 3)])[0]
array([[2., 0., 1.],
       [5., 3., 4.]])
"""
from __future__ import annotations

import numpy as np

from .graph import Value


def _axis(op: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for rank {ndim}")
    return axis % ndim


def _slice_axis(b, x: Value, axis: int, start, stop, step=1) -> Value:
    n = len(x.shape)
    starts = tuple(start if d == axis else None for d in range(n))
    stops = tuple(stop if d == axis else None for d in range(n))
    steps = tuple(step if d == axis else 1 for d in range(n))
    return b.emit("slice", x, starts=starts, stops=stops, steps=steps)


def flip(b, x: Value, axes) -> Value:
    """``torch.flip(x, axes)``: one slice with step -1 on each axis (a view)."""
    axes = {_axis("flip", a, len(x.shape)) for a in axes}
    steps = tuple(-1 if d in axes else 1 for d in range(len(x.shape)))
    return b.emit("slice", x, starts=None, stops=None, steps=steps)


def narrow(b, x: Value, axis: int, start: int, length: int) -> Value:
    """``torch.narrow``: ``length`` entries of ``axis`` from ``start`` (a view)."""
    axis = _axis("narrow", axis, len(x.shape))
    n = x.shape[axis]
    start = start + n if start < 0 else start
    if not (0 <= start <= n and 0 <= length <= n - start):
        raise ValueError(f"narrow: start {start} and length {length} do not fit axis {axis} of {x.shape}")
    return _slice_axis(b, x, axis, start, start + length)


def roll(b, x: Value, shift: int, axis: int) -> Value:
    """``torch.roll(x, shift, axis)``: the last ``shift`` entries move to the front."""
    axis = _axis("roll", axis, len(x.shape))
    n = x.shape[axis]
    s = shift % n if n else 0
    if s == 0:
        return x
    return b.emit("concat", _slice_axis(b, x, axis, n - s, None), _slice_axis(b, x, axis, 0, n - s),
                  axis=axis)


def stack(b, xs, axis: int = 0) -> Value:
    """``torch.stack``: each input given a new axis of size 1, then concatenated."""
    shape = xs[0].shape
    if any(v.shape != shape for v in xs):
        raise ValueError(f"stack: inputs must have one shape, got {[v.shape for v in xs]}")
    axis = _axis("stack", axis, len(shape) + 1)
    new = shape[:axis] + (1,) + shape[axis:]
    return b.emit("concat", *[b.emit("reshape", v, shape=new) for v in xs], axis=axis)


def split(b, x: Value, sizes, axis: int = 0) -> list[Value]:
    """``torch.split`` with a list of sizes: one slice (a view) per part."""
    axis = _axis("split", axis, len(x.shape))
    if sum(sizes) != x.shape[axis] or any(s < 0 for s in sizes):
        raise ValueError(f"split: sizes {list(sizes)} do not add up to axis {axis} of {x.shape}")
    out, at = [], 0
    for s in sizes:
        out.append(_slice_axis(b, x, axis, at, at + s))
        at += s
    return out


def index_select(b, x: Value, axis: int, index: Value) -> Value:
    """``torch.index_select``: entries ``index`` (1-D int64) of ``axis``; the index is
    broadcast (stride 0) to the output's shape and gathered."""
    axis = _axis("index_select", axis, len(x.shape))
    if len(index.shape) != 1:
        raise ValueError(f"index_select: index must be 1-D, got {index.type}")
    out_shape = x.shape[:axis] + index.shape + x.shape[axis + 1:]
    lifted = b.emit("reshape", index, shape=tuple(d if k == axis else 1 for k, d in enumerate(out_shape)))
    return b.emit("gather", x, b.emit("broadcast_to", lifted, shape=out_shape), axis=axis)


def _band(b, x: Value, k: int, lower: bool) -> Value:
    if len(x.shape) < 2:
        raise ValueError(f"{'tril' if lower else 'triu'}: needs rank >= 2, got {x.type}")
    rows, cols = x.shape[-2:]
    r = b.emit("iota", shape=(rows, cols), axis=0, dtype="int64")
    c = b.emit("iota", shape=(rows, cols), axis=1, dtype="int64")
    diagonal = b.emit("sub", c, r)
    keep = b.emit("le" if lower else "ge", diagonal, b.constant(k, (), "int64"))
    return b.emit("select", keep, x, b.constant(0, (), x.dtype))


def tril(b, x: Value, k: int = 0) -> Value:
    """``torch.tril``: entries on and below diagonal ``k`` of the last two axes, else 0."""
    return _band(b, x, k, lower=True)


def triu(b, x: Value, k: int = 0) -> Value:
    """``torch.triu``: entries on and above diagonal ``k`` of the last two axes, else 0."""
    return _band(b, x, k, lower=False)


def repeat(b, x: Value, reps) -> Value:
    """``Tensor.repeat(*reps)``: the tensor tiled ``reps[i]`` times along axis i."""
    reps = tuple(int(r) for r in reps)
    if len(reps) < len(x.shape) or any(r < 0 for r in reps):
        raise ValueError(f"repeat: {reps} must give one count >= 0 per axis of {x.shape} (or more)")
    shape = (1,) * (len(reps) - len(x.shape)) + x.shape
    lifted = b.emit("reshape", x, shape=tuple(w for d in shape for w in (1, d)))
    tiled = b.emit("broadcast_to", lifted, shape=tuple(w for r, d in zip(reps, shape) for w in (r, d)))
    return b.emit("reshape", tiled, shape=tuple(r * d for r, d in zip(reps, shape)))


def mask_positions(mask: np.ndarray) -> np.ndarray:
    """The flat positions (int64, C order) where a concrete boolean ``mask`` is true:
    the eager half of ``x[mask]`` (see the module docstring)."""
    return np.flatnonzero(np.asarray(mask, dtype=bool)).astype(np.int64)


def take_flat(b, x: Value, positions: Value) -> Value:
    """``x.reshape(-1)[positions]`` for a 1-D int64 value (``x[mask]`` with the
    positions of ``mask_positions``); its gradient scatters back into x's shape."""
    flat = b.emit("reshape", x, shape=(-1,))
    return b.emit("gather", flat, positions, axis=0)
