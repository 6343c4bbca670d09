"""Shape and movement ops in PyTorch's vocabulary: ``unflatten``, ``broadcast_to``,
``repeat``, ``split``, ``chunk``, ``unbind``, ``tril``/``triu``, ``flip``, ``roll``,
``narrow``, ``movedim``, ``swapaxes``/``swapdims``, and ``view`` with PyTorch's rule
(a view of a layout it cannot view is a RuntimeError: use ``reshape``).

Each is one eager call of IR primitives (``reshape``, ``transpose``, ``broadcast_to``,
``slice``, ``concat``, ``iota``/``select`` for the triangles), so it runs eagerly, under
the interpreter and under ``lucid.compile``, with gradients; ``split``/``chunk``/
``unbind`` give one call per piece, each a view of the input.

>>> import lucid
>>> x = lucid.arange(6).reshape(2, 3)
>>> x.flip(1).tolist(), x.roll(1, 1).tolist(), x.repeat(1, 2).tolist()
([[2, 1, 0], [5, 4, 3]], [[2, 0, 1], [5, 3, 4]], [[0, 1, 2, 0, 1, 2], [3, 4, 5, 3, 4, 5]])
>>> [t.tolist() for t in x.split([1, 2], dim=1)], x.triu(1).tolist()
([[[0], [3]], [[1, 2], [4, 5]]], [[0, 1, 2], [0, 0, 5]])
"""
from __future__ import annotations

import math

import numpy as np

from . import dispatch
from .dispatch import as_tensor
from .products import ShapeError

__all__ = ["reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "permute", "transpose",
           "broadcast_to", "split", "chunk", "unbind", "tril", "triu", "flip", "roll", "narrow",
           "movedim", "moveaxis", "swapaxes", "swapdims", "t"]

_CHAINS: dict = dispatch.ChainCache()


def _chain(key, make):
    """The chain cached under ``key`` (built by ``make()`` on first use)."""
    chain = _CHAINS.get(key)
    if chain is None:
        if len(_CHAINS) >= 4096:
            _CHAINS.clear()
        chain = _CHAINS[key] = make()
    return chain


def _dim(dim, ndim: int, op: str) -> int:
    from .tensor import _dim as check
    return check(int(dim), ndim, op)


def _dims(dims, ndim: int, op: str) -> tuple:
    """Distinct dimensions (an int or a sequence), counted from the front."""
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    out = tuple(_dim(d, ndim, op) for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: dim {next(d for d in out if out.count(d) > 1)} appears multiple "
                           f"times in the list of dims")
    return out


def _sizes(sizes) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` alike."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = sizes[0]
    return tuple(int(s) for s in sizes)


def _slice(x, axis: int, start: int, stop: int, step: int = 1):
    """``x`` sliced on one axis (a view; one call)."""
    n = x.ndim
    starts = tuple(start if d == axis else 0 for d in range(n))
    stops = tuple(stop if d == axis else x.shape[d] for d in range(n))
    steps = tuple(step if d == axis else 1 for d in range(n))
    return dispatch.apply("slice", x, starts=starts, stops=stops, steps=steps)


# ---------------------------------------------------------------- reshapes
def reshape(input, *shape):
    """``input.reshape(shape)`` (``torch.reshape``)."""
    return as_tensor(input).reshape(_sizes(shape))


def flatten(input, start_dim: int = 0, end_dim: int = -1):
    """``input.flatten(start_dim, end_dim)`` (``torch.flatten``)."""
    return as_tensor(input).flatten(start_dim, end_dim)


def squeeze(input, dim=None):
    """``input.squeeze(dim)``: size-1 axes removed (all, one, or a tuple of them)."""
    return as_tensor(input).squeeze(dim)


def unsqueeze(input, dim: int):
    """``input.unsqueeze(dim)``: a new axis of size 1 (negative ``dim`` counts from the end)."""
    return as_tensor(input).unsqueeze(dim)


def permute(input, dims):
    """``input.permute(dims)``."""
    return as_tensor(input).permute(*dims)


def transpose(input, dim0: int, dim1: int):
    """``input.transpose(dim0, dim1)``: two axes swapped."""
    return as_tensor(input).transpose(dim0, dim1)


def check_shape(shape, size: int, op: str = "reshape", source=None) -> None:
    """``ShapeError`` (a RuntimeError and a ValueError) with PyTorch's message, prefixed
    by the op and followed by the input's shape, unless ``size`` elements fit ``shape``
    (one ``-1`` stands for the rest).

    >>> check_shape((4,), 6, "view", (2, 3))
    Traceback (most recent call last):
    ...
    lucid.products.ShapeError: view: shape '[4]' is invalid for input of size 6 (input shape (2, 3))
    """
    where = f" (input shape {tuple(source)})" if source is not None else ""
    if shape.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be inferred{where}")
    for i, d in enumerate(shape):
        if d < -1:
            raise ShapeError(f"{op}: invalid shape dimension {d} at index {i} of shape "
                             f"{list(shape)}{where}")
    known = math.prod([d for d in shape if d != -1])
    if known != size if -1 not in shape else (known == 0 or size % known):
        raise ShapeError(f"{op}: shape '{list(shape)}' is invalid for input of size {size}{where}")


def _viewable(data: np.ndarray, shape) -> bool:
    """Whether ``data`` can be reshaped to ``shape`` without a copy (numpy's and
    PyTorch's rule agree: no merged axes across a stride gap)."""
    try:
        np.reshape(data, shape, copy=False)
        return True
    except ValueError:
        return False


def view(self, *shape):
    """The same data seen with another ``shape`` (one ``-1`` is inferred). As PyTorch, a
    layout that cannot be seen so (a transposed tensor flattened) is a RuntimeError:
    ``reshape`` copies there.

    >>> import lucid
    >>> x = lucid.arange(6).view(2, -1); x.tolist()
    [[0, 1, 2], [3, 4, 5]]
    >>> x.T.view(-1)
    Traceback (most recent call last):
    ...
    RuntimeError: view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead (view of shape (3, 2) as (-1,))
    """
    shape = _sizes(shape)
    size = math.prod(self.shape)
    check_shape(shape, size, "view", self.shape)
    known = math.prod([d for d in shape if d != -1])
    data = self._data
    if data is not None and not data.flags.c_contiguous and not _viewable(
            data, tuple(size // known if d == -1 else d for d in shape)):
        raise RuntimeError(f"view size is not compatible with input tensor's size and stride (at "
                           f"least one dimension spans across two contiguous subspaces). Use "
                           f".reshape(...) instead (view of shape {tuple(self.shape)} as {shape})")
    return self.reshape(shape)


def unflatten(input, dim: int, sizes):
    """Axis ``dim`` split into ``sizes`` (one may be -1).

    >>> import lucid
    >>> lucid.arange(6).unflatten(0, (2, -1)).shape
    (2, 3)
    """
    x = as_tensor(input)
    axis = _dim(dim, x.ndim, "unflatten")
    sizes = tuple(int(s) for s in sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    n = x.shape[axis]
    known = int(np.prod([s for s in sizes if s != -1]))
    if sizes.count(-1) > 1:
        raise RuntimeError("unflatten: only one dimension can be inferred")
    if -1 in sizes:
        if known == 0 or n % known:
            raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the "
                               f"size of dim {dim} ({n}) in the input tensor")
        sizes = tuple(n // known if s == -1 else s for s in sizes)
    elif known != n:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size "
                           f"of dim {dim} ({n}) in the input tensor")
    return x.reshape(x.shape[:axis] + sizes + x.shape[axis + 1:])


def broadcast_to(input, size):
    """``input`` broadcast to ``size`` as a view (``-1`` keeps an axis), ``expand``'s twin.

    >>> import lucid
    >>> lucid.broadcast_to(lucid.tensor([1, 2]), (2, 2)).tolist()
    [[1, 2], [1, 2]]
    """
    x = as_tensor(input)
    size = _sizes((size,))
    lead = len(size) - x.ndim
    if lead < 0:
        raise RuntimeError(f"broadcast_to: the number of sizes provided ({len(size)}) must be greater "
                           f"or equal to the number of dimensions in the tensor ({x.ndim})")
    for k, s in enumerate(size):
        have = x.shape[k - lead] if k >= lead else None
        if (s == -1 and have is None) or (have is not None and s not in (-1, have) and have != 1):
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing size "
                               f"({have}) at non-singleton dimension {k}.  Target sizes: {list(size)}.  "
                               f"Tensor sizes: {list(x.shape)}")
    return x.expand(*size)


def repeat(self, *sizes):
    """The tensor tiled ``sizes[k]`` times along axis k (leading sizes add axes), as
    ``Tensor.repeat``; one call (reshape, broadcast, reshape).

    >>> import lucid
    >>> lucid.tensor([1, 2]).repeat(2, 2).tolist()
    [[1, 2, 1, 2], [1, 2, 1, 2]]
    """
    sizes = _sizes(sizes)
    if len(sizes) < self.ndim:
        raise RuntimeError(f"Number of dimensions of repeat dims ({len(sizes)}) can not be smaller "
                           f"than number of dimensions of tensor ({self.ndim})")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"repeat: repeats can not be negative, got {list(sizes)}")
    shape = (1,) * (len(sizes) - self.ndim) + tuple(self.shape)
    key = ("repeat", shape, sizes)

    def make():
        inter = tuple(d for s in shape for d in (1, s))
        wide = tuple(d for r, s in zip(sizes, shape) for d in (r, s))
        return dispatch.Chain([("reshape", {"shape": inter}, (0,)),
                               ("broadcast_to", {"shape": wide}, (-1,)),
                               ("reshape", {"shape": tuple(r * s for r, s in zip(sizes, shape))}, (-1,))],
                              name="repeat", key=key)
    return dispatch.call1(_chain(key, make), self)


# ---------------------------------------------------------------- pieces
def split(tensor, split_size_or_sections, dim: int = 0):
    """Pieces of ``split_size_or_sections`` along ``dim`` (an int: that size each, the
    last smaller; a list: those sizes, which must add up), as views.

    >>> import lucid
    >>> [t.tolist() for t in lucid.split(lucid.arange(5), 2)]
    [[0, 1], [2, 3], [4]]
    """
    x = as_tensor(tensor)
    if x.ndim == 0:
        raise RuntimeError("split: expected at least a 1-dimensional tensor")
    axis = _dim(dim, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size < 0 or (size == 0 and n != 0):
            raise RuntimeError(f"split: split_size can only be 0 if dimension size is 0, but got "
                               f"dimension size of {n}" if size == 0 else
                               f"split expects split_size be non-negative, but got split_size={size}")
        sizes = [min(size, n - a) for a in range(0, n, size)] if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input "
                               f"tensor's size at dimension {dim}), but got split_sizes={sizes}")
    pieces, at = [], 0
    for s in sizes:
        pieces.append(_slice(x, axis, at, at + s))
        at += s
    return tuple(pieces)


def chunk(input, chunks: int, dim: int = 0):
    """``chunks`` pieces along ``dim`` of ``ceil(size / chunks)`` each (fewer when they
    run out), as ``torch.chunk``.

    >>> import lucid
    >>> [t.tolist() for t in lucid.arange(5).chunk(3)]
    [[0, 1], [2, 3], [4]]
    """
    x = as_tensor(input)
    chunks = int(chunks)
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if x.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    n = x.shape[_dim(dim, x.ndim, "chunk")]
    return split(x, -(-n // chunks), dim) if n else split(x, [0] * chunks, dim)


def unbind(input, dim: int = 0):
    """The slices along ``dim``, each without that axis.

    >>> import lucid
    >>> [t.tolist() for t in lucid.tensor([[1, 2], [3, 4]]).unbind(1)]
    [[1, 3], [2, 4]]
    """
    x = as_tensor(input)
    axis = _dim(dim, x.ndim, "unbind")
    lead = (slice(None),) * axis
    return tuple(x[lead + (k,)] for k in range(x.shape[axis]))


# ---------------------------------------------------------------- triangles
def _triangle(op: str, x, diagonal: int):
    x = as_tensor(x)
    if x.ndim < 2:
        raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions")
    rows, cols = x.shape[-2:]
    key = (op, rows, cols, int(diagonal))

    def make():
        # keep where col - row <= diagonal (tril) or >= diagonal (triu); zeros elsewhere
        keep = "le" if op == "tril" else "ge"
        grid = {"shape": (rows, cols), "dtype": "int64"}
        return dispatch.Chain([("iota", dict(grid, axis=1), ()), ("iota", dict(grid, axis=0), ()),
                               ("sub", {}, (-2, -1)),
                               ("constant", {"value": int(diagonal), "shape": (), "dtype": "int64"}, ()),
                               (keep, {}, (-2, -1)), ("select", {}, (-1, 0, 1))], name=op, key=key)
    return dispatch.call(_chain(key, make), (x, 0))


def tril(input, diagonal: int = 0):
    """The lower triangle of the last two axes (``col - row <= diagonal``), zeros above.

    >>> import lucid
    >>> lucid.tril(lucid.ones(2, 3), diagonal=1).tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    """
    return _triangle("tril", input, diagonal)


def triu(input, diagonal: int = 0):
    """The upper triangle of the last two axes (``col - row >= diagonal``), zeros below.

    >>> import lucid
    >>> lucid.triu(lucid.ones(3, 2)).tolist()
    [[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    """
    return _triangle("triu", input, diagonal)


# ---------------------------------------------------------------- reordering
def flip(input, *args, dims=None):
    """The order of the elements reversed along ``dims`` (``flip(x, (0, 1))``,
    ``x.flip(0, 1)`` and ``x.flip(dims=[0])`` alike).

    >>> import lucid
    >>> lucid.flip(lucid.tensor([[1, 2], [3, 4]]), (0, 1)).tolist()
    [[4, 3], [2, 1]]
    """
    x = as_tensor(input)
    if dims is None:
        dims = args[0] if len(args) == 1 else args
    elif args:
        raise TypeError("flip: dims given twice")
    axes = _dims(dims, x.ndim, "flip")
    n = x.ndim
    return dispatch.apply("slice", x, starts=(None,) * n, stops=(None,) * n,
                          steps=tuple(-1 if d in axes else 1 for d in range(n)))


def roll(input, shifts, dims=None):
    """Elements shifted by ``shifts`` along ``dims`` (wrapping round); no ``dims``: along
    the flattened tensor, shape kept. One call (slices and a concat per axis).

    >>> import lucid
    >>> x = lucid.arange(6).reshape(2, 3)
    >>> lucid.roll(x, 1).tolist(), x.roll((1, -1), (0, 1)).tolist()
    ([[5, 0, 1], [2, 3, 4]], [[4, 5, 3], [1, 2, 0]])
    """
    x = as_tensor(input)
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return roll(x.flatten(), shifts, 0).view(x.shape)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, "
                           f"dims:{len(dims)}")
    axes = [_dim(d, x.ndim, "roll") for d in dims]
    shape = tuple(x.shape)
    key = ("roll", shape, tuple(axes), tuple(int(s) for s in shifts))

    def make():
        steps, n = [], len(shape)
        for axis, shift in zip(axes, shifts):
            size = shape[axis]
            cut = size - int(shift) % size if size else 0
            if cut in (0, size):
                continue
            wire = -1 if steps else 0
            full = tuple(shape)
            tail = {"starts": tuple(cut if d == axis else 0 for d in range(n)), "stops": full,
                    "steps": (1,) * n}
            head = {"starts": (0,) * n, "stops": tuple(cut if d == axis else s for d, s in enumerate(full)),
                    "steps": (1,) * n}
            steps += [("slice", tail, (wire,)), ("slice", head, (wire - 1 if steps else 0,)),
                      ("concat", {"axis": axis}, (-2, -1))]
        if not steps:
            steps = [("reshape", {"shape": shape}, (0,))]
        return dispatch.Chain(steps, name="roll", key=key)
    return dispatch.call1(_chain(key, make), x)


def narrow(input, dim: int, start: int, length: int):
    """``length`` elements of axis ``dim`` from ``start`` (negative: from the end), a view.

    >>> import lucid
    >>> lucid.arange(5).narrow(0, -3, 2).tolist()
    [2, 3]
    """
    x = as_tensor(input)
    if x.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    axis = _dim(dim, x.ndim, "narrow")
    n, start, length = x.shape[axis], int(start), int(length)
    if not -n <= start <= n:
        raise IndexError(f"start out of range (expected to be in range of [{-n}, {n}], but got {start})")
    start = start + n if start < 0 else start
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if start + length > n:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    return _slice(x, axis, start, start + length)


def movedim(input, source, destination):
    """Axes ``source`` moved to positions ``destination`` (ints or sequences); the others
    keep their order.

    >>> import lucid
    >>> lucid.zeros(2, 3, 4).movedim(0, -1).shape
    (3, 4, 2)
    """
    x = as_tensor(input)
    n = x.ndim
    src, dst = _dims(source, n, "movedim"), _dims(destination, n, "movedim")
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(src)} dims) "
                           f"should contain the same number of dims as destination ({list(dst)} dims)")
    perm = [None] * n
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(a for a in range(n) if a not in src)
    perm = tuple(p if p is not None else next(rest) for p in perm)
    return x.permute(*perm)


moveaxis = movedim


def swapaxes(input, axis0: int, axis1: int):
    """Two axes swapped (``transpose(axis0, axis1)``).

    >>> import lucid
    >>> lucid.zeros(2, 3, 4).swapaxes(0, 2).shape
    (4, 3, 2)
    """
    x = as_tensor(input)
    a, b = _dim(axis0, x.ndim, "swapaxes"), _dim(axis1, x.ndim, "swapaxes")
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return x.permute(*perm)




def swapdims(input, dim0: int, dim1: int):
    """``swapaxes`` under PyTorch's other name (arguments ``dim0``, ``dim1``)."""
    return swapaxes(input, dim0, dim1)


def t(input):
    """A matrix transposed (a view); 0-D and 1-D tensors are returned as they are, more
    dimensions raise (PyTorch's ``torch.t``; ``transpose(-2, -1)`` or ``mT`` swap the last
    two of a batch).

    >>> import lucid
    >>> lucid.zeros(2, 3).t().shape, lucid.zeros(3).t().shape
    ((3, 2), (3,))
    """
    x = as_tensor(input)
    if x.ndim > 2:
        raise RuntimeError(f"t: t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D "
                           f"(shape {tuple(x.shape)})")
    return x.transpose(0, 1) if x.ndim == 2 else x


def _split_method(self, split_size, dim: int = 0):
    """``Tensor.split(split_size, dim)``: see ``split``."""
    return split(self, split_size, dim)


def _install(Tensor) -> None:
    """Attach the methods to ``Tensor`` (from ``lucid.tensor``)."""
    for name in ("unflatten", "broadcast_to", "repeat", "chunk", "unbind", "tril", "triu",
                 "flip", "roll", "narrow", "movedim", "moveaxis", "swapaxes", "swapdims", "view", "t"):
        setattr(Tensor, name, globals()[name])
    Tensor.split = _split_method
