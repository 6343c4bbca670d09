"""The rest of PyTorch's tensor protocol: sizes and devices, copies, ``new_*`` makers,
and compositions (``clamp``, ``lerp``, ``diff``, ``masked_fill``) built from primitive ops
so they run eagerly, under ``lucid.compile`` and with the interpreter, with gradients.

>>> import lucid
>>> x = lucid.tensor([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
>>> x.size(), x.size(1), x.numel(), x.device, x.nbytes
(lucid.Size([2, 3]), 3, 6, device(type='cpu'), 24)
>>> x.clamp(min=-1.0, max=4.0).tolist()
[[1.0, -1.0, 3.0], [4.0, 4.0, -1.0]]
>>> x.masked_fill(x < 0, 0.0).tolist(), x.diff().tolist()
([[1.0, 0.0, 3.0], [4.0, 5.0, 0.0]], [[-3.0, 5.0], [1.0, -11.0]])
"""
from __future__ import annotations

import numpy as np

from lucid_ir.types import result_type

from . import dispatch, dtypes
from .dispatch import as_tensor, cast

__all__ = ["Size", "device", "clamp", "clip", "minimum", "lerp", "diff", "masked_fill", "clone", "numel"]


class Size(tuple):
    """A tensor's shape as PyTorch's ``torch.Size``: a tuple of ints.

    >>> s = Size([2, 3]); s, s == (2, 3), s.numel()
    (lucid.Size([2, 3]), True, 6)
    """

    def __repr__(self) -> str:
        return f"lucid.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n


_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta")


class device:  # noqa: N801 - PyTorch's name
    """Where a tensor lives; lucid's tensors are always on the CPU.

    >>> d = device("cpu"); d, str(d), d.type, d == "cpu"
    (device(type='cpu'), 'cpu', 'cpu', True)
    """

    __slots__ = ("type", "index")

    def __init__(self, type: str = "cpu", index: int | None = None):  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index
        name, _, idx = str(type).partition(":")
        if name not in _DEVICE_TYPES:
            raise RuntimeError(f"device: expected one of {', '.join(_DEVICE_TYPES)} device type "
                               f"at start of device string: {type}")
        self.type = name
        self.index = int(idx) if idx else index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return (f"device(type='{self.type}')" if self.index is None
                else f"device(type='{self.type}', index={self.index})")

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        return (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


def _check_device(where, op: str) -> None:
    """``None`` or the CPU (a name or a device); anything else is refused clearly."""
    if where is not None and device(where).type != "cpu":
        raise ValueError(f"{op}: lucid runs on the CPU only, not on {str(device(where))!r}")


def _dim(dim, ndim: int, op: str) -> int:
    from .tensor import _dim as check
    return check(int(dim), ndim, op)


# ---------------------------------------------------------------- sizes and copies
def size(self, dim=None):
    """The shape as a ``lucid.Size``, or the length of axis ``dim`` (negative: from the end).

    >>> import lucid
    >>> lucid.zeros(2, 3).size(), lucid.zeros(2, 3).size(-1)
    (lucid.Size([2, 3]), 3)
    """
    shape = self.shape
    return Size(shape) if dim is None else shape[_dim(dim, len(shape), "size")]


def numel(self) -> int:
    """The number of elements (``1`` for a 0-d tensor)."""
    return Size(self.shape).numel()


def _nbytes(self) -> int:
    return numel(self) * self.dtype.itemsize


def _device(self) -> device:
    return CPU


def clone(self):
    """A copy with its own memory; gradients flow back to ``self`` (as PyTorch's).

    >>> import lucid
    >>> x = lucid.tensor([1.0, 2.0]); y = x.clone(); _ = y.fill_(0.0); x.tolist()
    [1.0, 2.0]
    """
    return dispatch.apply("cast", as_tensor(self), dtype=str(self.dtype))  # a copy kernel


def contiguous(self):
    """``self`` when its data is laid out row-major already, else a row-major copy."""
    data = self._data
    if data is None or data.flags.c_contiguous:
        return self
    return clone(self)


def view_as(self, other):
    """``self.view(other.shape)``."""
    return self.view(*other.shape)


def type_as(self, other):
    """``self`` in ``other``'s dtype."""
    return cast(self, other.dtype)


def _mT(self):
    if self.ndim < 2:
        raise RuntimeError(f"mT: tensor.mT is only supported on matrices or batches of matrices. "
                           f"Got {self.ndim}-D tensor with shape {tuple(self.shape)}.")
    return self.transpose(-2, -1)


def _iter(self):
    if not self.shape:
        raise TypeError("iteration over a 0-d tensor")
    return (self[k] for k in range(self.shape[0]))


# ---------------------------------------------------------------- new tensors like self
def minimum(a, b):
    """Elementwise minimum (NaN wins, as in PyTorch); the gradient goes to the smaller.

    >>> import lucid
    >>> lucid.minimum(lucid.tensor([1.0, 5.0]), lucid.tensor([3.0, 2.0])).tolist()
    [1.0, 2.0]
    """
    return dispatch.binary("minimum", a, b)


def _is_number(x) -> bool:
    """A Python or numpy number (bools included): a weak operand, as in PyTorch."""
    return isinstance(x, (int, float, np.integer, np.floating, np.bool_))


def _bound(b, dtype, op):
    if b is None or _is_number(b):
        return None if b is None else float(b)
    b = as_tensor(b)
    return cast(b, dtype)


# clamp(x, lo, hi) = min(max(x, lo), hi) written with select, so that the gradient is
# PyTorch's: 1 for lo <= x <= hi (ties pass), and to the bound where it was taken
_CLAMP_MIN = dispatch.Chain([("lt", {}, (0, 1)), ("select", {}, (-1, 1, 0))], name="clamp_min")
_CLAMP_MAX = dispatch.Chain([("gt", {}, (0, 1)), ("select", {}, (-1, 1, 0))], name="clamp_max")
_CLAMP = dispatch.Chain([("lt", {}, (0, 1)), ("select", {}, (-1, 1, 0)),
                         ("gt", {}, (-1, 2)), ("select", {}, (-1, 2, -2))], name="clamp")


#: (kind of a float tensor's dtype, type(min), type(max)) -> chain, for bounds that are
#: Python numbers: the result keeps the tensor's dtype, the numbers reach the kernel as
#: immediate arguments; a repeated call is one lookup and one native call
_NUMBERS = (int, float)
_NUMBER_BOUNDS = {**{("f", lo, hi): _CLAMP for lo in _NUMBERS for hi in _NUMBERS},
                  **{("f", lo, type(None)): _CLAMP_MIN for lo in _NUMBERS},
                  **{("f", type(None), hi): _CLAMP_MAX for hi in _NUMBERS}}


def clamp(input, min=None, max=None):  # noqa: A002 - PyTorch's names
    """Each element limited to ``[min, max]`` (numbers or tensors that broadcast; either
    may be None, not both). Where ``min > max`` the result is ``max``, as in PyTorch.

    >>> import lucid
    >>> lucid.clamp(lucid.tensor([-2.0, 0.5, 3.0]), min=0.0, max=1.0).tolist()
    [0.0, 0.5, 1.0]
    >>> lucid.tensor([1, 5, 9]).clamp(max=lucid.tensor([2, 2, 20])).tolist()
    [1, 2, 9]
    """
    data = getattr(input, "_data", None)
    if type(data) is np.ndarray:
        chain = _NUMBER_BOUNDS.get((data.dtype.kind, type(min), type(max)))
        if chain is not None:
            return dispatch.call(chain, (input, min) if max is None else (input, max) if min is None
                                 else (input, min, max))
    x = as_tensor(input)
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    bounds = [b for b in (min, max) if b is not None]
    dtype = result_type(x.dtype, *[b.item() if isinstance(b, np.generic) else b if _is_number(b)
                                   else as_tensor(b).dtype for b in bounds])
    if dtype == "bool":
        raise NotImplementedError(f"clamp: not implemented for bool tensors (shape {tuple(x.shape)}), "
                                  f"as in PyTorch")
    x = cast(x, dtype)
    lo, hi = _bound(min, dtype, "clamp"), _bound(max, dtype, "clamp")
    _check_broadcast("clamp", x, [b for b in (lo, hi) if b is not None and not isinstance(b, float)])
    if hi is None:
        return dispatch.call(_CLAMP_MIN, (x, lo))
    if lo is None:
        return dispatch.call(_CLAMP_MAX, (x, hi))
    return dispatch.call(_CLAMP, (x, lo, hi))


clip = clamp


def _check_broadcast(op, x, others) -> None:
    """The result keeps ``x``'s shape: the others must broadcast to it (PyTorch's rule for
    ``clamp`` bounds grows the result; lucid's shape rules would too, but say it clearly)."""
    for o in others:
        try:
            np.broadcast_shapes(x.shape, o.shape)
        except ValueError:
            raise ValueError(f"{op}: shapes {tuple(x.shape)} and {tuple(o.shape)} do not "
                             f"broadcast") from None


_LERP = dispatch.Chain([("sub", {}, (1, 0)), ("mul", {}, (2, -1)), ("add", {}, (0, -1))], name="lerp")


def lerp(input, end, weight):
    """``input + weight * (end - input)``; ``input`` and ``end`` are tensors of one floating
    dtype, ``weight`` a number or a tensor of that dtype (all broadcast).

    >>> import lucid
    >>> lucid.lerp(lucid.tensor([0.0, 10.0]), lucid.tensor([1.0, 20.0]), 0.25).tolist()
    [0.25, 12.5]
    """
    start, end = as_tensor(input), as_tensor(end)
    weight = weight if _is_number(weight) else as_tensor(weight)
    operands = [start, end] + ([] if _is_number(weight) else [weight])
    for o in operands:
        if o.dtype != start.dtype or not start.dtype.is_floating_point:
            raise TypeError(f"lerp: expected input, end and weight of one floating dtype, got "
                            f"{', '.join(repr(t.dtype) for t in operands)}")
    _check_broadcast("lerp", start, operands[1:])
    return dispatch.call(_LERP, (start, end, float(weight) if _is_number(weight) else weight))


def diff(input, n: int = 1, dim: int = -1, prepend=None, append=None):
    """The ``n``-th forward difference along ``dim``: ``out[i] = x[i + 1] - x[i]``, after
    joining ``prepend`` and ``append`` on that axis (bool tensors: ``!=``).

    >>> import lucid
    >>> lucid.diff(lucid.tensor([1, 4, 9, 16])).tolist(), lucid.tensor([1, 4, 9, 16]).diff(n=2).tolist()
    ([3, 5, 7], [2, 2])
    """
    from .functional_core import cat
    x = as_tensor(input)
    if x.ndim == 0:
        raise RuntimeError("diff: expects input to be at least one-dimensional")
    if int(n) < 0:
        raise RuntimeError(f"diff: order must be non-negative but got {n}")
    axis = _dim(dim, x.ndim, "diff")
    parts = [as_tensor(p) for p in (prepend, x, append) if p is not None]
    for p in parts:
        if p.ndim != x.ndim:
            raise RuntimeError(f"diff: expects prepend or append to be the same dimension as "
                               f"input, got shapes {tuple(p.shape)} and {tuple(x.shape)}")
    if len(parts) > 1:
        x = cat(parts, axis)
    lead = (slice(None),) * axis
    for _ in range(int(n)):
        length = x.shape[axis]
        if length == 0:
            break
        hi, lo = x[lead + (slice(1, None),)], x[lead + (slice(0, length - 1),)]
        x = dispatch.binary("ne" if x.dtype == "bool" else "sub", hi, lo)
    return x


_MASKED_FILL = dispatch.Chain([("select", {}, (0, 1, 2))], name="masked_fill")


def masked_fill(input, mask, value):
    """``value`` where the bool ``mask`` (broadcast to ``input``'s shape) is true, else
    ``input``; ``value`` is a number or a 0-d tensor, converted to ``input``'s dtype.

    >>> import lucid
    >>> x = lucid.tensor([[1, 2], [3, 4]])
    >>> x.masked_fill(lucid.tensor([True, False]), 0).tolist()
    [[0, 2], [0, 4]]
    """
    x, mask = as_tensor(input), as_tensor(mask)
    if mask.dtype != "bool":
        raise TypeError(f"masked_fill: only supports boolean masks, but got mask with dtype "
                        f"{mask.dtype!r} (shape {tuple(mask.shape)})")
    try:
        shape = np.broadcast_shapes(x.shape, mask.shape)
    except ValueError:
        shape = None
    if shape != tuple(x.shape):
        raise ValueError(f"masked_fill: the mask of shape {tuple(mask.shape)} does not broadcast "
                         f"to the input's shape {tuple(x.shape)}")
    if _is_number(value):
        value = float(value)  # a weak number: it takes x's dtype in the kernel
    else:
        value = as_tensor(value)
        if value.ndim != 0:
            raise ValueError(f"masked_fill: only supports a 0-dimensional value tensor, but got "
                             f"one of shape {tuple(value.shape)}")
        value = cast(value, x.dtype)
    return dispatch.call(_MASKED_FILL, (mask, value, x))


def _install(Tensor) -> None:
    """Attach the protocol to ``Tensor`` (called once, at the end of ``lucid.tensor``)."""
    from . import functional_core, inplace
    Tensor.size = size
    Tensor.numel = numel
    Tensor.nbytes = property(_nbytes)
    Tensor.device = property(_device)
    Tensor.clone = clone
    Tensor.contiguous = contiguous
    Tensor.view_as = view_as
    Tensor.type_as = type_as
    Tensor.mT = property(_mT)
    Tensor.__iter__ = _iter
    Tensor.minimum = minimum
    Tensor.maximum = functional_core.maximum
    Tensor.clamp = clamp
    Tensor.clip = clamp
    Tensor.lerp = lerp
    Tensor.diff = diff
    Tensor.masked_fill = masked_fill
    inplace._install(Tensor)
