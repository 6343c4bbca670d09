"""Random tensors: ``rand``, ``randn``, ``randint``, ``normal`` and ``rand_like``,
``randn_like``, ``randint_like``, with PyTorch's signatures.

Each draws from ``generator=`` (a ``lucid.Generator``) or the default generator that
``lucid.manual_seed`` seeds. The streams are numpy's PCG64, so seeded values differ
from PyTorch's, while the distributions are the same: ``rand`` uniform on [0, 1)
(drawn in the requested dtype, so float32 never rounds up to 1.0), ``randn`` standard
normal, ``randint`` uniform on the integers of [low, high), ``normal`` mean + std * N(0, 1).

Inside ``lucid.compile`` they raise ``TracingError``: a compiled graph would replay one
draw forever. Draw outside and pass the tensor in.

>>> import lucid
>>> _ = lucid.manual_seed(0)
>>> lucid.rand(2, 3).shape, lucid.randint(0, 10, (4,)).dtype, lucid.randn(2, dtype=lucid.float64).dtype
((2, 3), lucid.int64, lucid.float64)
>>> x = lucid.randint(3, 5, (1000,)).numpy(); bool(((x >= 3) & (x < 5)).all())
True
"""
from __future__ import annotations

import numpy as np

from . import random, tracing
from .creation import check_device, dtype_of, finish, size_of, size_tuple
from .dtypes import int64
from .tensor import Tensor


def _rng(op: str, generator) -> np.random.Generator:
    if tracing.current() is not None:
        raise tracing.TracingError(
            f"{op}: random numbers cannot be drawn inside a compiled function (the graph would "
            f"replay one draw at every call, at {tracing.user_location()}); draw them outside "
            f"and pass the tensor as an argument")
    return random.resolve(generator, op)


def _float_dtype(op: str, dtype, kernel: str):
    dt = dtype_of(dtype)
    if not dt.is_floating_point:
        raise NotImplementedError(f"{op}: \"{kernel}\" is not implemented for {dt} (use a "
                                  f"floating dtype: float32 or float64)")
    return dt


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1) of ``size`` (``rand(2, 3)`` or ``rand((2, 3))``)."""
    check_device("rand", device)
    shape, dt = size_of("rand", size), _float_dtype("rand", dtype, "uniform")
    return finish(_rng("rand", generator).random(shape, dtype=dt), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples (mean 0, variance 1) of ``size``."""
    check_device("randn", device)
    shape, dt = size_of("randn", size), _float_dtype("randn", dtype, "normal")
    return finish(_rng("randn", generator).standard_normal(shape, dtype=dt), requires_grad)


_INT_RANGE = {"bool": (0, 1), "int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


def randint(low=0, high=None, size=None, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Integers drawn uniformly from [``low``, ``high``): ``randint(high, size)`` or
    ``randint(low, high, size)``; ``size`` is a tuple; dtype int64 unless given.

    >>> import lucid
    >>> lucid.randint(5, (3,)).shape, lucid.randint(0, 2, (2,), dtype=lucid.float32).dtype
    ((3,), lucid.float32)
    """
    check_device("randint", device)
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high          # randint(high, size)
    if high is None or size is None:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size), "
                        f"got low={low!r}, high={high!r}, size={size!r}")
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"randint: {name} must be an int, got {type(v).__name__} {v!r}")
    shape, dt = size_tuple("randint", size), dtype_of(dtype, int64)
    low, high = int(low), int(high)
    if low >= high:
        raise RuntimeError(f"randint: random_ expects 'from' to be less than 'to', but got "
                           f"from={low} >= to={high}")
    lo, hi = _INT_RANGE.get(str(dt), _INT_RANGE["int64"])
    if low < lo or high - 1 > hi:
        raise RuntimeError(f"randint: the range [{low}, {high}) is out of bounds for {dt}")
    data = _rng("randint", generator).integers(low, high, shape, dtype=np.int64)
    return finish(data.astype(dt, copy=False), requires_grad)


def normal(mean, std=1.0, size=None, generator=None, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Normal samples with ``mean`` and standard deviation ``std``: tensors (broadcast
    together; the result has their float dtype) or numbers with a ``size`` tuple.
    As in PyTorch the samples are not differentiable: gradients flowing back to a
    ``mean`` or ``std`` that requires them are zero.

    >>> import lucid
    >>> lucid.normal(lucid.zeros(2, 1), lucid.ones(3)).shape, lucid.normal(2.0, 0.5, (4,)).shape
    ((2, 3), (4,))
    """
    check_device("normal", device)
    tensors = [v for v in (mean, std) if isinstance(v, Tensor)]
    if not tensors:
        if size is None:
            raise TypeError("normal: with a number mean and std, size= (a tuple) is required")
        m, s = _number(mean, "mean"), _number(std, "std")
        shape, dt = size_tuple("normal", size), _float_dtype("normal", dtype, "normal_kernel_cpu")
    else:
        if size is not None:
            raise TypeError("normal: size= is only for a number mean and std; the shape "
                            f"comes from the tensors (got size={size!r})")
        for t in tensors:
            if not t.dtype.is_floating_point:
                raise NotImplementedError(f"normal: \"normal_kernel_cpu\" is not implemented "
                                          f"for {t.dtype} (mean and std must be floating)")
        dt = dtype_of(dtype, max((t.dtype for t in tensors), key=lambda d: d.itemsize))
        m = mean.numpy() if isinstance(mean, Tensor) else _number(mean, "mean")
        s = std.numpy() if isinstance(std, Tensor) else _number(std, "std")
        try:
            shape = np.broadcast_shapes(np.shape(m), np.shape(s))
        except ValueError:
            raise RuntimeError(f"normal: the shapes of mean {np.shape(m)} and std "
                               f"{np.shape(s)} do not broadcast") from None
    if np.any(np.asarray(s) < 0):
        bad = np.asarray(s)[np.asarray(s) < 0].reshape(-1)[0]
        raise RuntimeError(f"normal: expects std >= 0.0, but found std {bad}")
    z = _rng("normal", generator).standard_normal(shape, dtype=dt)
    out = finish((m + s * z).astype(dt, copy=False), requires_grad and not tensors)
    from .grad_mode import is_grad_enabled
    if is_grad_enabled() and any(t.requires_grad for t in tensors):
        out = _zero_gradient_to(out, tensors)
    return out


def _zero_gradient_to(out: Tensor, tensors) -> Tensor:
    """``out`` unchanged, connected to ``tensors`` with zero gradients (PyTorch's
    ``normal`` records that its samples do not depend on mean and std)."""
    from .functional_core import where
    never = Tensor._wrap(np.zeros((), bool))
    for t in tensors:
        out = where(never, t, out)
    return out


def _number(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"normal: {name} must be a number or a Tensor, got {type(value).__name__}")
    return float(value)


def _input(op: str, input) -> Tensor:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor as input, got {type(input).__name__}")
    return input


def rand_like(input, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``rand`` in ``input``'s shape and dtype (or ``dtype``)."""
    x = _input("rand_like", input)
    return rand(x.shape, generator=generator, dtype=dtype_of(dtype, x.dtype), device=device,
                requires_grad=requires_grad)


def randn_like(input, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``randn`` in ``input``'s shape and dtype (or ``dtype``)."""
    x = _input("randn_like", input)
    return randn(x.shape, generator=generator, dtype=dtype_of(dtype, x.dtype), device=device,
                 requires_grad=requires_grad)


def randint_like(input, low=0, high=None, generator=None, dtype=None, device=None,
                 requires_grad: bool = False) -> Tensor:
    """``randint`` in ``input``'s shape and dtype (or ``dtype``): ``randint_like(x, high)``
    or ``randint_like(x, low, high)``."""
    x = _input("randint_like", input)
    if high is None:
        low, high = 0, low
    return randint(low, high, x.shape, generator=generator, dtype=dtype_of(dtype, x.dtype),
                   device=device, requires_grad=requires_grad)
