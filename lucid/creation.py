"""Making tensors, as PyTorch does: ``tensor``, ``as_tensor``, ``from_numpy``, ``zeros``,
``ones``, ``full``, ``empty``, ``arange``, ``linspace``, ``eye``, their ``*_like``
forms, and the default floating dtype (``get_default_dtype``/``set_default_dtype``).
The random ones (``rand``, ``randn``, ``randint``, ``normal``, ``bernoulli``) are in ``lucid.sampling``.

Sizes are given as separate ints or one tuple/list; ``dtype=`` defaults to the default
float dtype (float32 unless changed), except where PyTorch infers it from the values
(``full``, ``arange``); ``*_like`` keep their input's shape and dtype unless given one.

>>> import lucid
>>> lucid.zeros(2, 3).shape, lucid.ones((2,)).dtype, lucid.full((2,), 7).dtype
((2, 3), lucid.float32, lucid.int64)
>>> lucid.arange(5).tolist(), lucid.arange(0, 1, 0.25).tolist()
([0, 1, 2, 3, 4], [0.0, 0.25, 0.5, 0.75])
>>> lucid.linspace(0, 1, 5).tolist(), lucid.eye(2, 3).tolist()
([0.0, 0.25, 0.5, 0.75, 1.0], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
"""
from __future__ import annotations

import math
import operator

import numpy as np

from lucid_ir.types import check_dtype, set_default_float

from .dtypes import as_dtype, default_float, int64
from .tensor import Tensor


def get_default_dtype():
    """The default floating dtype (``torch.get_default_dtype``).

    >>> import lucid
    >>> lucid.get_default_dtype()
    lucid.float32
    """
    return default_float()


def set_default_dtype(d) -> None:
    """Make ``d`` (float32 or float64) the dtype Python floats, ``lucid.tensor([1.0])``,
    ``zeros()``, ``rand()`` and the promotion of an int tensor with a float number give.

    Not yet followed: true division of int tensors and float-only math on them (``sin``
    of an int tensor) still give float32, and a function ``lucid.compile`` traced before
    the change keeps the dtypes it was traced with (compile it again).

    >>> import lucid
    >>> lucid.set_default_dtype(lucid.float64); lucid.zeros(1).dtype, lucid.tensor([1.0]).dtype
    (lucid.float64, lucid.float64)
    >>> lucid.set_default_dtype(lucid.float32)
    """
    set_default_float(as_dtype(d))


def is_tensor(obj) -> bool:
    """Whether ``obj`` is a lucid Tensor (``torch.is_tensor``)."""
    return isinstance(obj, Tensor)


def numel(input) -> int:
    """The number of elements of a tensor (``torch.numel``).

    >>> import lucid
    >>> lucid.numel(lucid.zeros(2, 3))
    6
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"numel: expected a Tensor, got {type(input).__name__}")
    return input.numel()


# -- argument checks shared with lucid.sampling ------------------------------------------

def size_of(op: str, size) -> tuple[int, ...]:
    """A size given as ``f(2, 3)`` or ``f((2, 3))``, as a tuple of non-negative ints."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return size_tuple(op, size)


def size_tuple(op: str, size) -> tuple[int, ...]:
    """``size`` (a tuple or list of ints) checked: ints, none negative."""
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"{op}: size must be a tuple of ints, not {type(size).__name__}")
    dims = []
    for d in size:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"{op}: size must be a tuple of ints, got {type(d).__name__} "
                            f"{d!r} in {tuple(size)!r}")
        dims.append(operator.index(d))
    if any(d < 0 for d in dims):
        raise RuntimeError(f"{op}: dimension sizes must be non-negative, got {tuple(dims)}")
    return tuple(dims)


def dtype_of(dtype, default=None):
    """``dtype=`` as a lucid dtype (None: ``default``, else the default float dtype)."""
    if dtype is None:
        return default if default is not None else default_float()
    return as_dtype(dtype)


def check_device(op: str, device) -> None:
    if device is not None and str(device) != "cpu":
        raise RuntimeError(f"{op}: lucid runs on the cpu only, got device={device!r}")


def finish(data: np.ndarray, requires_grad: bool) -> Tensor:
    """A new leaf tensor around ``data`` (``requires_grad`` checked as PyTorch does)."""
    t = Tensor._wrap(data)
    if requires_grad:
        t.requires_grad_()
    return t


def _like(op: str, input) -> Tensor:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor as input, got {type(input).__name__}")
    return input


# -- from data ------------------------------------------------------------------------------

def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``data`` (copied) with its dtype inferred as PyTorch's ``torch.tensor``
    does: Python floats give the default float dtype, ints int64, bools bool; numpy
    arrays keep their dtype.

    >>> import lucid
    >>> lucid.tensor([1, 2]).dtype, lucid.tensor([1.0]).dtype, lucid.tensor([True]).dtype
    (lucid.int64, lucid.float32, lucid.bool)
    """
    from .data import to_array
    check_device("tensor", device)
    arr = to_array(data, dtype, infer=True)
    if isinstance(data, (np.ndarray, Tensor)) and (arr is data or arr is getattr(data, "_data", None)):
        arr = arr.copy()  # torch.tensor always copies
    return finish(arr, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, sharing memory when it can (``torch.as_tensor``): a tensor
    of the right dtype is returned as it is, a numpy array of the right dtype is
    wrapped without a copy; anything else is converted as ``tensor`` converts it.

    >>> import lucid, numpy as np
    >>> a = np.zeros(2, np.float32); t = lucid.as_tensor(a); a[0] = 5.0; t.tolist()
    [5.0, 0.0]
    """
    check_device("as_tensor", device)
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype == as_dtype(dtype) else data.to(as_dtype(dtype))
    if isinstance(data, np.ndarray) and data.dtype.name in ("float32", "float64", "int32", "int64", "bool") \
            and (dtype is None or data.dtype == check_dtype(dtype)):
        return from_numpy(data)
    from .data import to_array
    return Tensor._wrap(to_array(data, dtype, op="as_tensor", infer=True))


def from_numpy(ndarray) -> Tensor:
    """A tensor sharing ``ndarray``'s memory (no copy): writes to either show in both.

    >>> import lucid, numpy as np
    >>> a = np.arange(3); t = lucid.from_numpy(a); t.dtype
    lucid.int64
    >>> a[0] = 9; t.tolist()
    [9, 1, 2]
    """
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(ndarray).__name__})")
    if ndarray.dtype.name not in ("float32", "float64", "int32", "int64", "bool") \
            or not ndarray.dtype.isnative:
        raise TypeError(f"from_numpy: can't convert an array of dtype {ndarray.dtype}; lucid "
                        f"supports float32, float64, int32, int64 and bool (native byte order)")
    if any(s < 0 for s in ndarray.strides):
        raise ValueError(f"from_numpy: at least one stride in the given numpy array "
                         f"{ndarray.strides} is negative, and tensors with negative strides are "
                         f"not supported (copy the array first)")
    return Tensor._wrap(ndarray)


# -- filled -----------------------------------------------------------------------------------

def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of ``size`` (``zeros(2, 3)`` or ``zeros((2, 3))``)."""
    check_device("zeros", device)
    return finish(np.zeros(size_of("zeros", size), dtype_of(dtype)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of ``size``."""
    check_device("ones", device)
    return finish(np.ones(size_of("ones", size), dtype_of(dtype)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of ``size`` (its values are whatever the memory held)."""
    check_device("empty", device)
    return finish(np.empty(size_of("empty", size), dtype_of(dtype)), requires_grad)


def _fill_dtype(fill_value):
    if isinstance(fill_value, (bool, np.bool_)):
        return as_dtype("bool")
    if isinstance(fill_value, (int, np.integer)):
        return int64
    if isinstance(fill_value, (float, np.floating)):
        return default_float()
    raise TypeError(f"full: fill_value must be a number, got {type(fill_value).__name__}")


def _scalar(op: str, value):
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise RuntimeError(f"{op}: fill_value must be a number or a one-element tensor, "
                               f"got a tensor of shape {tuple(value.shape)}")
        return value.item()
    return value


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` (a tuple) filled with ``fill_value``; the dtype follows the
    value as in PyTorch (bool, int64 or the default float dtype) unless given.

    >>> import lucid
    >>> lucid.full((2,), 1.5).tolist(), lucid.full((1,), True).dtype
    ([1.5, 1.5], lucid.bool)
    """
    check_device("full", device)
    shape = size_tuple("full", size)
    fill_value = _scalar("full", fill_value)
    dt = dtype_of(dtype, _fill_dtype(fill_value))
    return finish(np.full(shape, fill_value, dt), requires_grad)


def zeros_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``input``'s shape and dtype (or ``dtype``)."""
    check_device("zeros_like", device)
    x = _like("zeros_like", input)
    return finish(np.zeros(x.shape, dtype_of(dtype, x.dtype)), requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Ones of ``input``'s shape and dtype (or ``dtype``)."""
    check_device("ones_like", device)
    x = _like("ones_like", input)
    return finish(np.ones(x.shape, dtype_of(dtype, x.dtype)), requires_grad)


def empty_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of ``input``'s shape and dtype (or ``dtype``)."""
    check_device("empty_like", device)
    x = _like("empty_like", input)
    return finish(np.empty(x.shape, dtype_of(dtype, x.dtype)), requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` in ``input``'s shape and dtype (or ``dtype``): the value is
    converted to that dtype (``full_like(int_tensor, 2.7)`` holds 2, as in PyTorch)."""
    check_device("full_like", device)
    x = _like("full_like", input)
    fill_value = _scalar("full_like", fill_value)
    if not isinstance(fill_value, (bool, int, float, np.bool_, np.integer, np.floating)):
        raise TypeError(f"full_like: fill_value must be a number, got {type(fill_value).__name__}")
    dt = dtype_of(dtype, x.dtype)
    value = np.array(fill_value).astype(dt) if dt != "bool" else bool(fill_value)
    return finish(np.full(x.shape, value, dt), requires_grad)


# -- ranges -----------------------------------------------------------------------------------

def _number(op: str, name: str, value):
    value = _scalar(op, value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__} {value!r}")
    return value


def _not_bool(op: str, dt):
    if dt == "bool":
        raise NotImplementedError(f"{op}: not implemented for bool (as in PyTorch)")
    return dt


def arange(start=0, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``[start, start + step, ...]`` up to (not including) ``end``: ``arange(end)``,
    ``arange(start, end)`` or ``arange(start, end, step)``. The dtype is int64 when all
    three are ints, else the default float dtype, unless given. Values are computed in
    float64 as ``start + i * step`` and then converted (PyTorch's rule for the length:
    ``ceil((end - start) / step)``; for integer dtypes the bounds are truncated first).

    >>> import lucid
    >>> lucid.arange(1, 4).tolist(), lucid.arange(3.0).dtype, lucid.arange(5, 0, -2).tolist()
    ([1, 2, 3], lucid.float32, [5, 3, 1])
    """
    check_device("arange", device)
    if end is None:
        start, end = 0, start
    start, end, step = (_number("arange", n, v) for n, v in
                        (("start", start), ("end", end), ("step", step)))
    ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    dt = _not_bool("arange", dtype_of(dtype, int64 if ints else None))
    if not dt.is_floating_point:
        start, end, step = int(start), int(end), int(step)
    if not all(math.isfinite(v) for v in (start, end, step)):
        raise RuntimeError(f"arange: unsupported range: {start} -> {end} (step {step})")
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    n = math.ceil((end - start) / step) if ints or not dt.is_floating_point else \
        math.ceil((float(end) - float(start)) / float(step))
    if ints or not dt.is_floating_point:
        data = (start + step * np.arange(n, dtype=np.int64)).astype(dt)
    else:
        data = (float(start) + float(step) * np.arange(n, dtype=np.float64)).astype(dt)
    return finish(data, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included. Computed
    in float64 the way PyTorch does (the first half counted up from ``start``, the second
    down from ``end``, so both ends are exact) and converted to ``dtype`` (default: the
    default float dtype; integer dtypes truncate).

    >>> import lucid
    >>> lucid.linspace(-1, 1, 3).tolist(), lucid.linspace(0, 10, 4, dtype=lucid.int64).tolist()
    ([-1.0, 0.0, 1.0], [0, 3, 6, 10])
    """
    check_device("linspace", device)
    start, end = _number("linspace", "start", start), _number("linspace", "end", end)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"linspace: steps must be an int, got {type(steps).__name__} {steps!r}")
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    dt = _not_bool("linspace", dtype_of(dtype))
    i = np.arange(int(steps), dtype=np.float64)
    if steps == 1:
        data = np.array([float(start)])
    else:
        step = (float(end) - float(start)) / max(int(steps) - 1, 1)
        data = np.where(i < steps // 2, float(start) + step * i, float(end) - step * (steps - 1 - i))
    return finish(data.astype(dt), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The ``n`` x ``m`` (default ``n`` x ``n``) identity matrix.

    >>> import lucid
    >>> lucid.eye(2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    check_device("eye", device)
    for name, v in (("n", n), ("m", m)):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"eye: argument '{name}' must be int, not {type(v).__name__}")
        if v < 0:
            raise RuntimeError(f"eye: {name} must be greater or equal to 0, got {v}")
    return finish(np.eye(int(n), None if m is None else int(m), dtype=dtype_of(dtype)), requires_grad)


# the random creation functions live in lucid.sampling; importable from here too
from .sampling import bernoulli, normal, rand, rand_like, randint, randint_like, randn, randn_like  # noqa: E402,F401
