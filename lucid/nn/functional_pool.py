"""Pooling: ``max_pool1d/2d/3d``, ``avg_pool1d/2d/3d`` and the adaptive pools.

Every pool is one eager call built on a static *window table*: for each output position
the flat input positions of its window's taps (-1 for a tap in the padding), computed
once per signature (``lucid.nn.window``). The chain gathers the windows out of the input
plane in one ``gather`` (a -1 tap reads 0: zero padding for free), then

* max pools mask the padding with -inf, take ``argmax`` over the taps and ``gather`` the
  winners: the gradient of that gather is a ``scatter_add`` to the winning element only,
  PyTorch's rule (the *first* maximum of a window gets the whole gradient);
* average pools ``sum`` the taps and divide by a per-output divisor table (PyTorch's
  ``count_include_pad``, ``ceil_mode`` and ``divisor_override`` rules).

>>> import lucid
>>> x = lucid.tensor([[[1.0, 5.0, 2.0, 2.0, 7.0]]])
>>> max_pool1d(x, 2).tolist(), avg_pool1d(x, 2, padding=1).tolist()
([[[5.0, 2.0]]], [[[0.5, 3.5, 4.5]]])
"""
from __future__ import annotations

import numpy as np

from .. import dispatch
from ..dispatch import as_tensor
from ..tensor import Tensor
from .steps import ChainCache, Steps
from .window import adaptive_rows, as_tuple, flat_table, pool_out_size, window_rows

_CHAINS = ChainCache()


def _spatial(op: str, d: int, x: Tensor):
    if x.ndim not in (d + 1, d + 2):
        raise RuntimeError(f"{op}: Expected {d + 1}D or {d + 2}D input (unbatched or batched), "
                           f"but got input of size: {list(x.shape)}")
    if x.dtype not in ("float32", "float64"):
        raise RuntimeError(f"{op}: expected a float32 or float64 input, got {x.dtype}")
    shape = x.shape if x.ndim == d + 2 else (1,) + x.shape
    if any(m == 0 for m in shape[2:]) or shape[1] == 0:
        raise RuntimeError(f"{op}: Expected input's non-batch dimensions to have positive length, "
                           f"but got input of size: {list(x.shape)}")
    return shape


def _table_tensor(table: np.ndarray) -> Tensor:
    return Tensor._wrap(np.ascontiguousarray(table))


def _pool_call(op, x, args, tables, reduce, want="values"):
    """Apply a pool's window tables to ``x``: ``tables()`` gives ``(rows, divisor)``, the
    per-axis ``(out, taps)`` window arrays and the ``(outputs,)`` divisors of the sums
    (or None), computed once per signature ``(op, want, x's shape and dtype, args)``.

    reduce: "max" or "sum"; ``want`` is "values" or "indices" (max only: the flat
    position of each winner in its plane).
    """
    key = (op, want, x.shape, x.dtype, args)
    hit = _CHAINS.get(key)
    if hit is None:
        rows, divisor = tables()
        d = len(rows)
        shape = x.shape if x.ndim == d + 2 else (1,) + x.shape
        _CHAINS[key] = hit = _pool_chain(op, x, shape, rows, reduce, divisor, want)
    chain, extra = hit
    return dispatch.call(chain, (x, *extra))


def _pool_chain(op, x, shape, rows, reduce, divisor, want):
    d = len(rows)
    n, c, sizes = shape[0], shape[1], shape[2:]
    table = flat_table(rows, sizes)
    m, t = table.shape
    out = tuple(r.shape[0] for r in rows)
    # taps-major (tap j of every window, then tap j + 1): the reductions over the taps
    # then run across windows, a vector of adjacent windows at a time
    extra = [_table_tensor(table.T.reshape(1, 1, t * m))]
    masked = reduce == "max" and bool((table < 0).any())
    if masked:
        extra.append(_table_tensor(table.T >= 0))
    if divisor is not None:
        extra.append(_table_tensor(divisor.astype(x.dtype)))
    s = Steps(1 + len(extra), [x.shape] + [e.shape for e in extra])
    if _tiles(rows, sizes):
        taps = _tiled_taps(s, s.operand(0), n, c, rows)
    else:
        plane = s.reshape(s.operand(0), (n, c, int(np.prod(sizes))))
        index = s.emit("broadcast_to", {"shape": (n, c, t * m)}, s.operand(1), shape=(n, c, t * m))
        taps = s.emit("gather", {"axis": 2}, plane, index, shape=(n, c, t * m))
        taps = s.reshape(taps, (n, c, t, m))
    if reduce == "max":
        if masked:
            low = s.emit("constant", {"value": float("-inf"), "shape": (), "dtype": x.dtype}, shape=())
            taps = s.emit("select", {}, s.operand(2), taps, low, shape=(n, c, t, m))
        best = s.emit("argmax", {"axis": 2, "keepdims": True}, taps, shape=(n, c, 1, m))
        if want == "indices":
            table4 = s.reshape(s.operand(1), (1, 1, t, m))
            table4 = s.emit("broadcast_to", {"shape": (n, c, t, m)}, table4, shape=(n, c, t, m))
            y = s.emit("gather", {"axis": 2}, table4, best, shape=(n, c, 1, m))
        else:
            y = s.emit("gather", {"axis": 2}, taps, best, shape=(n, c, 1, m))
    else:
        y = s.emit("sum", {"axes": (2,)}, taps, shape=(n, c, m))
        if divisor is not None:
            y = s.emit("div", {}, y, s.operand(len(extra)), shape=(n, c, m))
    y = s.reshape(y, x.shape[:-d] + out)
    return s.chain(op), tuple(extra)


def _tiles(rows, sizes) -> bool:
    """Whether the windows tile the input exactly: along every axis, window ``i`` holds
    positions ``[i·k, (i+1)·k)`` and the windows cover the axis (``max_pool2d(x, 2)`` on
    even sizes, an adaptive pool to a divisor of the size, ``adaptive_avg_pool2d(x, 1)``).

    >>> _tiles([np.arange(8).reshape(4, 2)], (8,)), _tiles([np.arange(8).reshape(4, 2)], (9,))
    (True, False)
    """
    return all(r.size == m and np.array_equal(r.reshape(-1), np.arange(m)) for r, m in zip(rows, sizes))


def _tiled_taps(s: Steps, x, n: int, c: int, rows):
    """``(n, c, taps, windows)`` of windows that tile the input (``_tiles``): a reshape
    and a transpose instead of a gather through the table, so the gradient is the inverse
    transpose, not a scatter-add. Axis ``a`` of size ``o·k`` splits into (windows ``o``,
    taps ``k``); the taps' axes move in front of the windows'.

    >>> s = Steps(1, [(1, 1, 4, 4)])
    >>> _tiled_taps(s, s.operand(0), 1, 1, [np.arange(4).reshape(2, 2)] * 2).shape
    (1, 1, 4, 4)
    """
    d = len(rows)
    split = (n, c) + tuple(v for r in rows for v in r.shape)
    y = s.reshape(x, split)
    perm = (0, 1) + tuple(2 + 2 * a + 1 for a in range(d)) + tuple(2 + 2 * a for a in range(d))
    y = s.transpose(y, perm)
    taps = int(np.prod([r.shape[1] for r in rows]))
    windows = int(np.prod([r.shape[0] for r in rows]))
    return s.reshape(y, (n, c, taps, windows))


def _window_args(op, d, kernel_size, stride, padding, dilation):
    kernel = as_tuple(op, "kernel_size", kernel_size, d)
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else \
        as_tuple(op, "stride", stride, d)
    padding, dilation = as_tuple(op, "padding", padding, d), as_tuple(op, "dilation", dilation, d)
    if any(v <= 0 for v in kernel):
        raise RuntimeError(f"{op}: kernel_size must be greater than zero, but got {kernel}")
    if any(v <= 0 for v in stride):
        raise RuntimeError(f"{op}: stride must be greater than zero, but got {stride}")
    if any(v <= 0 for v in dilation):
        raise RuntimeError(f"{op}: dilation must be greater than zero, but got {dilation}")
    if any(p < 0 for p in padding):
        raise RuntimeError(f"{op}: pad must be non-negative, but got {padding}")
    return kernel, stride, padding, dilation


def _out_sizes(op, shape, kernel, stride, padding, dilation, ceil_mode):
    sizes = shape[2:]
    out = tuple(pool_out_size(m, k, s, p, dl, ceil_mode)
                for m, k, s, p, dl in zip(sizes, kernel, stride, padding, dilation))
    if any(o <= 0 for o in out):
        raise RuntimeError(f"{op}: Given input size: ({'x'.join(map(str, shape[1:]))}). Calculated output "
                           f"size: ({'x'.join(map(str, (shape[1],) + out))}). Output size is too small")
    return out


def _max_pool(op, d, input_, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x = as_tensor(input_)
    shape = _spatial(op, d, x)
    kernel, stride, padding, dilation = _window_args(op, d, kernel_size, stride, padding, dilation)
    if any(2 * p > dl * (k - 1) + 1 for p, k, dl in zip(padding, kernel, dilation)):
        raise RuntimeError(f"{op}: pad should be at most half of effective kernel size, but got "
                           f"pad={padding}, kernel_size={kernel} and dilation={dilation}")
    args = (kernel, stride, padding, dilation, ceil_mode)

    def tables():
        out = _out_sizes(op, shape, kernel, stride, padding, dilation, ceil_mode)
        return [window_rows(m, o, k, s, p, dl)
                for m, o, k, s, p, dl in zip(shape[2:], out, kernel, stride, padding, dilation)], None
    y = _pool_call(op, x, args, tables, "max")
    if return_indices:
        return y, _pool_call(op, x, args, tables, "max", want="indices")
    return y


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """Max over sliding windows of ``(N, C, L)`` (or ``(C, L)``); see ``max_pool2d``."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """Max over sliding windows of ``(N, C, H, W)`` (or ``(C, H, W)``), as PyTorch:
    ``stride`` defaults to ``kernel_size``, padding counts as -inf, ``return_indices``
    adds the flat position (in each ``H·W`` plane) of every maximum.

    >>> import lucid
    >>> x = lucid.arange(16.0).reshape(1, 1, 4, 4)
    >>> y, i = max_pool2d(x, 2, return_indices=True)
    >>> y.tolist(), i.tolist()
    ([[[[5.0, 7.0], [13.0, 15.0]]]], [[[[5, 7], [13, 15]]]])
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """Max over sliding windows of ``(N, C, D, H, W)``; see ``max_pool2d``."""
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def _avg_divisors(sizes, out, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """``(outputs,)`` divisors of an average pool, by PyTorch's rule."""
    if divisor_override is not None:
        return np.full(int(np.prod(out)), float(divisor_override))
    per_axis = []
    for m, o, k, s, p in zip(sizes, out, kernel, stride, padding):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, m + p)
        size_with_pad = end - start
        size_inside = np.minimum(end, m) - np.maximum(start, 0)
        per_axis.append(size_with_pad if count_include_pad else size_inside)
    grid = per_axis[0].astype(np.float64)
    for a in per_axis[1:]:
        grid = np.multiply.outer(grid, a.astype(np.float64))
    return grid.reshape(-1)


def _avg_pool(op, d, input_, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x = as_tensor(input_)
    shape = _spatial(op, d, x)
    kernel, stride, padding, _ = _window_args(op, d, kernel_size, stride, padding, 1)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise RuntimeError(f"{op}: pad should be at most half of effective kernel size, but got "
                           f"pad={padding}, kernel_size={kernel}")
    if divisor_override is not None and int(divisor_override) == 0:
        raise RuntimeError(f"{op}: divisor must be not zero")
    args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)

    def tables():
        out = _out_sizes(op, shape, kernel, stride, padding, (1,) * d, ceil_mode)
        rows = [window_rows(m, o, k, s, p, 1) for m, o, k, s, p in zip(shape[2:], out, kernel, stride, padding)]
        return rows, _avg_divisors(shape[2:], out, kernel, stride, padding, ceil_mode, count_include_pad,
                                   divisor_override)
    return _pool_call(op, x, args, tables, "sum")


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True):
    """Mean over sliding windows of ``(N, C, L)``; see ``avg_pool2d``."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True, divisor_override=None):
    """Mean over sliding windows of ``(N, C, H, W)``, as PyTorch: zero padding counts
    in the divisor unless ``count_include_pad=False``; ``divisor_override`` replaces it.

    >>> import lucid
    >>> avg_pool2d(lucid.ones(1, 1, 2, 2), 2, padding=1).tolist()
    [[[[0.25, 0.25], [0.25, 0.25]]]]
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True, divisor_override=None):
    """Mean over sliding windows of ``(N, C, D, H, W)``; see ``avg_pool2d``."""
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


# ---------------------------------------------------------------- adaptive
def _adaptive_size(op, d, x, output_size):
    """The output size of an adaptive pool as a tuple of ``d`` ints (None: the input's)."""
    shape = _spatial(op, d, x)
    sizes = shape[2:]
    if isinstance(output_size, (int, np.integer)):
        output_size = (int(output_size),) * d
    output_size = tuple(output_size)
    if len(output_size) == 1 and d > 1:
        output_size = output_size * d
    if len(output_size) != d:
        raise RuntimeError(f"{op}: output_size must have {d} elements, got {output_size}")
    out = tuple(m if o is None else int(o) for m, o in zip(sizes, output_size))
    if any(o < 0 for o in out):
        raise RuntimeError(f"{op}: output_size {out} must be non-negative")
    if any(o == 0 for o in out):
        raise RuntimeError(f"{op}: output_size {out} must be positive")
    return out


def _adaptive_rows(x, d, out):
    sizes = x.shape[-d:]
    return [adaptive_rows(m, o) for m, o in zip(sizes, out)]


def _adaptive_avg(op, d, input_, output_size):
    x = as_tensor(input_)
    out = _adaptive_size(op, d, x, output_size)

    def tables():
        rows = _adaptive_rows(x, d, out)
        counts = [np.sum(r >= 0, axis=1).astype(np.float64) for r in rows]
        grid = counts[0]
        for cnt in counts[1:]:
            grid = np.multiply.outer(grid, cnt)
        return rows, grid.reshape(-1)
    return _pool_call(op, x, out, tables, "sum")


def _adaptive_max(op, d, input_, output_size, return_indices):
    x = as_tensor(input_)
    out = _adaptive_size(op, d, x, output_size)

    def tables():
        return _adaptive_rows(x, d, out), None
    y = _pool_call(op, x, out, tables, "max")
    return (y, _pool_call(op, x, out, tables, "max", want="indices")) if return_indices else y


def adaptive_avg_pool1d(input, output_size):  # noqa: A002
    """Average pooling to a fixed output length; see ``adaptive_avg_pool2d``."""
    return _adaptive_avg("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):  # noqa: A002
    """Average pooling of ``(N, C, H, W)`` to ``output_size`` (an int, a pair, or None
    for "keep this size"): output ``i`` averages ``[floor(i·H/OH), ceil((i+1)·H/OH))``.

    >>> import lucid
    >>> adaptive_avg_pool2d(lucid.arange(6.0).reshape(1, 1, 2, 3), 1).tolist()
    [[[[2.5]]]]
    """
    return _adaptive_avg("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input, output_size):  # noqa: A002
    return _adaptive_avg("adaptive_avg_pool3d", 3, input, output_size)


def adaptive_max_pool1d(input, output_size, return_indices=False):  # noqa: A002
    """Max pooling to a fixed output length; see ``adaptive_max_pool2d``."""
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):  # noqa: A002
    """Max pooling of ``(N, C, H, W)`` to ``output_size`` (windows as
    ``adaptive_avg_pool2d``'s); ``return_indices`` as ``max_pool2d``.

    >>> import lucid
    >>> adaptive_max_pool2d(lucid.arange(6.0).reshape(1, 1, 2, 3), (1, 2)).tolist()
    [[[[4.0, 5.0]]]]
    """
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):  # noqa: A002
    return _adaptive_max("adaptive_max_pool3d", 3, input, output_size, return_indices)


# ---------------------------------------------------------------- unpooling
def _unpool_size(op, d, shape, kernel, stride, padding, output_size):
    default = tuple((m - 1) * s - 2 * p + k for m, s, p, k in zip(shape[-d:], stride, padding, kernel))
    if output_size is None:
        return default
    size = tuple(int(v) for v in output_size)
    if len(size) == d + 2:
        size = size[2:]
    elif len(size) == d + 1 and len(shape) == d + 1:
        size = size[1:]
    if len(size) != d:
        raise ValueError(f"{op}: output_size should be a sequence containing {d} or {d + 2} elements, "
                         f"but it has a length of '{len(output_size)}'")
    for i, (o, base, s) in enumerate(zip(size, default, stride)):
        if not base - s < o < base + s:
            raise ValueError(f'invalid output_size "{size}" (dim {i} must be between {base - s} and {base + s})')
    return size


def _max_unpool(op, d, input_, indices, kernel_size, stride, padding, output_size):
    x = as_tensor(input_)
    idx = as_tensor(indices)
    if x.ndim not in (d + 1, d + 2):
        raise RuntimeError(f"Input to max_unpooling{d}d should be a {d + 1}d or {d + 2}d Tensor, but got a "
                           f"tensor with {x.ndim} dimensions.")
    if idx.shape != x.shape or idx.dtype != "int64":
        raise RuntimeError(f"{op}: indices {idx.shape} ({idx.dtype}) must be int64 with the shape of the "
                           f"input {x.shape}")
    kernel = as_tuple(op, "kernel_size", kernel_size, d)
    stride = kernel if stride is None else as_tuple(op, "stride", stride, d)
    padding = as_tuple(op, "padding", padding, d)
    size = _unpool_size(op, d, x.shape, kernel, stride, padding, output_size)
    plane = int(np.prod(size))
    if idx._data is not None:  # concrete indices: checked here (traced ones cannot be)
        bad = idx._data[(idx._data < 0) | (idx._data >= plane)]
        if bad.size:
            raise RuntimeError(f"Found an invalid max index: {int(bad.flat[0])} (output volumes are of size "
                               f"{'x'.join(map(str, size))})")
    lead = x.shape[:-d]
    flat = lead + (int(np.prod(x.shape[-d:])),)
    key = (op, x.shape, x.dtype, size)
    chain = _CHAINS.get(key)
    if chain is None:
        st = Steps(2, [x.shape, idx.shape])
        i2 = st.reshape(st.operand(1), flat)
        v2 = st.reshape(st.operand(0), flat)
        out = lead + (plane,)
        total = st.emit("scatter_add", {"axis": len(flat) - 1, "shape": out}, i2, v2, shape=out)
        # overlapping windows put one element at a position several times: the value is
        # written once (total / count) and, as in PyTorch, each copy's gradient is the
        # output gradient there: total - stop_gradient(total) is 0 but carries the rest
        one = st.emit("constant", {"value": 1.0, "shape": flat, "dtype": x.dtype}, shape=flat)
        count = st.emit("scatter_add", {"axis": len(flat) - 1, "shape": out}, i2, one, shape=out)
        count = st.emit("maximum", {}, count, st.emit("constant", {"value": 1.0, "shape": (), "dtype": x.dtype},
                                                      shape=()), shape=out)
        value = st.emit("div", {}, total, count, shape=out)
        rest = st.emit("sub", {}, total, st.emit("stop_gradient", {}, total, shape=out), shape=out)
        share = st.emit("sub", {}, st.emit("constant", {"value": 1.0, "shape": (), "dtype": x.dtype}, shape=()),
                        st.emit("div", {}, st.emit("constant", {"value": 1.0, "shape": (), "dtype": x.dtype},
                                                   shape=()), count, shape=out), shape=out)
        y = st.emit("add", {}, value, st.emit("mul", {}, rest, share, shape=out), shape=out)
        st.emit("reshape", {"shape": lead + size}, y, shape=lead + size)
        chain = _CHAINS[key] = st.chain(op)
    return dispatch.call(chain, (x, idx))


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):  # noqa: A002
    """The partial inverse of ``max_pool1d``; see ``max_unpool2d``."""
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):  # noqa: A002
    """Put each value of ``input`` at its position ``indices`` (``max_pool2d``'s
    ``return_indices``) in a zero plane, as ``torch.nn.functional.max_unpool2d``.

    >>> import lucid
    >>> y, i = max_pool2d(lucid.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
    >>> max_unpool2d(y, i, 2).tolist()[0][0][1]
    [0.0, 5.0, 0.0, 7.0]
    """
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):  # noqa: A002
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)


__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "max_unpool1d", "max_unpool2d",
           "max_unpool3d"]
