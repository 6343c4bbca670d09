"""Sliding-window geometry shared by convolutions and pools: argument tuples, output
sizes, and the static index tables that pools gather through.

Every function here works on plain Python integers (shapes are static): the tables are
computed once per signature and enter the graph as int64 operands.

>>> as_tuple("conv2d", "stride", 2, 2)
(2, 2)
>>> conv_out_size(7, kernel=3, stride=2, pad=1, dilation=1)
4
>>> pool_out_size(5, kernel=2, stride=2, pad=0, dilation=1, ceil_mode=True)
3
"""
from __future__ import annotations

import itertools

import numpy as np


def as_tuple(op: str, name: str, value, n: int) -> tuple[int, ...]:
    """``value`` (an int, or a sequence of ``n`` ints) as an ``n``-tuple of ints.

    >>> as_tuple("max_pool2d", "kernel_size", [3], 2)
    (3, 3)
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    try:
        items = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(items) == 1:
        return items * n
    if len(items) != n:
        raise RuntimeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return items


def conv_out_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of a convolution along one axis (floor mode)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def pool_out_size(size, kernel, stride, pad, dilation, ceil_mode) -> int:
    """Output length of a pool along one axis, as PyTorch (in ceil mode the last window
    must start inside the input or its left padding)."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def window_rows(size, out, kernel, stride, pad, dilation) -> np.ndarray:
    """``(out, kernel)`` input positions of each output's window along one axis; -1
    where a tap falls into the padding (or past the end in ceil mode)."""
    pos = (np.arange(out)[:, None] * stride - pad + np.arange(kernel)[None, :] * dilation)
    return np.where((pos >= 0) & (pos < size), pos, -1).astype(np.int64)


def adaptive_rows(size: int, out: int) -> np.ndarray:
    """``(out, longest window)`` positions of adaptive pooling's windows along one axis
    (``[floor(i*size/out), ceil((i+1)*size/out))``), padded with -1."""
    starts = [(i * size) // out for i in range(out)]
    ends = [-(-((i + 1) * size) // out) for i in range(out)]
    longest = max((e - s for s, e in zip(starts, ends)), default=0)
    rows = np.full((out, max(longest, 1)), -1, np.int64)
    for i, (s, e) in enumerate(zip(starts, ends)):
        rows[i, :e - s] = np.arange(s, e)
    return rows


def flat_table(rows_per_axis, sizes) -> np.ndarray:
    """Combine per-axis window rows into ``(outputs, taps)`` flat indices into the
    row-major input plane (outputs and taps both row-major over the axes); -1 where any
    axis is out of range.

    >>> flat_table([np.array([[0, 1]]), np.array([[1, -1]])], (2, 3))
    array([[ 1, -1,  4, -1]])
    """
    strides = [int(np.prod(sizes[a + 1:])) for a in range(len(sizes))]
    outs = [r.shape[0] for r in rows_per_axis]
    taps = [r.shape[1] for r in rows_per_axis]
    table = np.zeros(tuple(outs) + tuple(taps), np.int64)
    valid = np.ones(table.shape, bool)
    d = len(sizes)
    for a, (rows, stride) in enumerate(zip(rows_per_axis, strides)):
        shape = [1] * (2 * d)
        shape[a], shape[d + a] = rows.shape
        r = rows.reshape(shape)
        table = table + r * stride
        valid = valid & (r >= 0)
    table = np.where(valid, table, -1)
    return table.reshape(int(np.prod(outs)), int(np.prod(taps)))


def tap_offsets(kernel, dilation) -> list[tuple[int, ...]]:
    """The start offset of every kernel tap, row-major over the axes."""
    return [tuple(k * d for k, d in zip(ks, dilation)) for ks in itertools.product(*(range(k) for k in kernel))]
