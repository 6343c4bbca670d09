"""How a tensor lies in memory, as PyTorch reports it: ``stride()`` (in elements),
``is_contiguous()``, ``storage_offset()``, ``data_ptr()``, ``_version`` (see
``lucid.versions``), and ``unfold``, a strided view of sliding windows.

A tensor's memory is its numpy array's; a view (``x[1:]``, ``x.T``, ``x.unfold(...)``)
is another array over the memory of the array that owns it, so strides and offsets
are numpy's in elements.

>>> import lucid
>>> x = lucid.arange(12.0).reshape(3, 4)
>>> x.stride(), x.T.stride(), x.T.is_contiguous(), x[1:, 2:].storage_offset()
((4, 1), (1, 4), False, 6)
>>> w = x[0].unfold(0, 2, 1)
>>> w.tolist(), w.stride(), w.data_ptr() == x.data_ptr()
([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]], (1, 1), True)
"""
from __future__ import annotations

import numpy as np

from . import dispatch, grad_mode, tracing, versions


def _dim(dim, ndim: int, op: str) -> int:
    from .tensor import _dim as check
    return check(int(dim), ndim, op)


def stride(self, dim=None):
    """The step in elements between neighbours along each axis (a tuple), or along
    ``dim``; a broadcast (expanded) axis has stride 0.

    >>> import lucid
    >>> lucid.zeros(2, 3).stride(), lucid.zeros(2, 3).stride(-2), lucid.zeros(3).expand(2, 3).stride()
    ((3, 1), 3, (0, 1))
    """
    if self._data is None or self._data.size == 0:  # traced, or empty: row-major (PyTorch's)
        strides = _row_major(self.shape)
    else:
        size = self._data.itemsize
        strides = tuple(s // size for s in self._data.strides)
    return strides if dim is None else strides[_dim(dim, len(strides), "stride")]


def _row_major(shape) -> tuple:
    out, step = [], 1
    for n in reversed(tuple(shape)):
        out.append(step)
        step *= max(n, 1)
    return tuple(reversed(out))


def is_contiguous(self, memory_format=None) -> bool:
    """Whether the elements lie row-major without gaps (axes of size 1 and empty
    tensors do not count, as in PyTorch).

    >>> import lucid
    >>> x = lucid.zeros(2, 3)
    >>> x.is_contiguous(), x.T.is_contiguous(), x[:, :2].is_contiguous(), x.T.contiguous().is_contiguous()
    (True, False, False, True)
    """
    if memory_format not in (None, "contiguous_format") and str(memory_format) != "torch.contiguous_format":
        raise ValueError(f"is_contiguous: lucid tensors have one memory format (row-major), not "
                         f"{memory_format!r}")
    return True if self._data is None else bool(self._data.flags.c_contiguous)


def storage_offset(self) -> int:
    """The position, in elements, of the first element in the memory the tensor views.

    >>> import lucid
    >>> lucid.zeros(4)[1:].storage_offset(), lucid.zeros(2, 3)[1].storage_offset()
    (1, 3)
    """
    data = self._concrete("storage_offset()")
    owner = versions._owner(data)
    return (_address(data) - _address(owner)) // data.itemsize


def data_ptr(self) -> int:
    """The address of the first element (0 for a tensor without elements, as PyTorch).

    >>> import lucid
    >>> x = lucid.zeros(4)
    >>> x[1:].data_ptr() - x.data_ptr() == x.element_size()
    True
    """
    data = self._concrete("data_ptr()")
    return 0 if data.size == 0 else _address(data)


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _version(self) -> int:
    return versions.version(self)


# ---------------------------------------------------------------- unfold
_INDEX_CACHE: dict = {}


def unfold(self, dimension: int, size: int, step: int):
    """The windows of ``size`` elements along ``dimension``, ``step`` apart, as a new last
    axis: a view of the same memory (as PyTorch's), with gradients (overlapping windows
    add up). Inside ``lucid.compile`` the windows are a copy.

    >>> import lucid
    >>> x = lucid.arange(7.0, requires_grad=True)
    >>> w = x.unfold(0, 3, 2)
    >>> w.tolist()
    [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0]]
    >>> w.sum().backward(); x.grad.tolist()
    [1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0]
    """
    shape = tuple(self.shape)
    size, step = int(size), int(step)
    if not shape:  # a 0-d tensor unfolds as one element
        _check_unfold(1, _dim(dimension, 0, "unfold"), size, step)
        return unfold(self.reshape(1), 0, size, step).reshape(size)
    d = _dim(dimension, len(shape), "unfold")
    _check_unfold(shape[d], d, size, step)
    windows = (shape[d] - size) // step + 1
    out_shape = shape[:d] + (windows,) + shape[d + 1:] + (size,)
    index = _window_index(shape, d, size, step, windows)
    chain = _unfold_chain(len(shape), d, out_shape)
    if tracing._state.tracer is not None or self._data is None:
        return dispatch.call(chain, (self, index))
    data = self._data
    strides = data.strides
    view = np.lib.stride_tricks.as_strided(
        data, out_shape, strides[:d] + (strides[d] * step,) + strides[d + 1:] + (strides[d],),
        writeable=bool(data.flags.writeable and step >= size))
    if self.requires_grad and grad_mode._state.enabled:
        return dispatch.record_as(chain, (self, index), view)
    return dispatch._wrap(view)


def _check_unfold(n: int, d: int, size: int, step: int):
    if size < 0:
        raise RuntimeError(f"unfold: size is {size} but must be >= 0")
    if size > n:
        raise RuntimeError(f"unfold: maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0")


def _window_index(shape, d: int, size: int, step: int, windows: int):
    """The gather index: position ``i * size + j`` along ``d`` reads ``i * step + j``."""
    key = (shape, d, size, step)
    hit = _INDEX_CACHE.get(key)
    if hit is None:
        along = (np.arange(windows, dtype=np.int64)[:, None] * step
                 + np.arange(size, dtype=np.int64)[None, :]).reshape(-1)
        full = shape[:d] + (windows * size,) + shape[d + 1:]
        reshaped = along.reshape((1,) * d + (-1,) + (1,) * (len(shape) - d - 1))
        array = np.ascontiguousarray(np.broadcast_to(reshaped, full))
        array.setflags(write=False)
        if len(_INDEX_CACHE) > 256:
            _INDEX_CACHE.clear()
        hit = _INDEX_CACHE[key] = dispatch._wrap(array)
    return hit


_CHAINS: dict = dispatch.ChainCache()


def _unfold_chain(ndim: int, d: int, out_shape):
    """gather along ``d``, split that axis into (windows, size), move size last."""
    key = (ndim, d, out_shape)
    chain = _CHAINS.get(key)
    if chain is None:
        split = out_shape[:d] + (out_shape[d], out_shape[-1]) + out_shape[d + 1:-1]
        perm = tuple(range(d + 1)) + tuple(range(d + 2, ndim + 1)) + (d + 1,)
        chain = _CHAINS[key] = dispatch.Chain([("gather", {"axis": d}, (0, 1)),
                                               ("reshape", {"shape": split}, (-1,)),
                                               ("transpose", {"perm": perm}, (-1,))], name="unfold")
    return chain


def _install(Tensor) -> None:
    """Attach the layout methods to ``Tensor`` (called once, at the end of ``lucid.tensor``)."""
    Tensor.stride = stride
    Tensor.is_contiguous = is_contiguous
    Tensor.storage_offset = storage_offset
    Tensor.data_ptr = data_ptr
    Tensor._version = property(_version)
    Tensor.unfold = unfold
