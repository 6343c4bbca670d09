"""Random tensors: ``rand``, ``randn``, ``randint``, ``normal``, ``bernoulli`` and
``rand_like``, ``randn_like``, ``randint_like``, with PyTorch's signatures.

Each draws from ``generator=`` (a ``lucid.Generator``) or the default generator that
``lucid.manual_seed`` seeds. The streams are numpy's PCG64, so seeded values differ
from PyTorch's, while the distributions are the same: ``rand`` uniform on [0, 1)
(drawn in the requested dtype, so float32 never rounds up to 1.0), ``randn`` standard
normal, ``randint`` uniform on the integers of [low, high), ``normal`` mean + std * N(0, 1),
``bernoulli`` 1 with the given probability, else 0.

Inside ``lucid.compile`` they become counter-based random ops of the graph
(``random_uniform``/``random_normal``, see ``lucid_ir.ops.random``) fed with a key that
every call draws from the generator (``Tracer.random_key``): fresh numbers at every call,
reproducible under ``lucid.manual_seed``, though not the eager stream's values.
(``randint`` inside a compiled function takes ranges up to 2**32 wide.)

>>> import lucid
>>> _ = lucid.manual_seed(0)
>>> lucid.rand(2, 3).shape, lucid.randint(0, 10, (4,)).dtype, lucid.randn(2, dtype=lucid.float64).dtype
((2, 3), lucid.int64, lucid.float64)
>>> x = lucid.randint(3, 5, (1000,)).numpy(); bool(((x >= 3) & (x < 5)).all())
True
"""
from __future__ import annotations

import numpy as np

from . import dispatch, random, tracing
from .creation import check_device, dtype_of, finish, size_of, size_tuple
from .dtypes import int64
from .tensor import Tensor


def _rng(op: str, generator) -> np.random.Generator:
    """The numpy generator to draw from eagerly (``TracingError`` while tracing: a
    caller without a traced form of its own would bake one draw into the graph)."""
    if tracing.current() is not None:
        raise tracing.TracingError(
            f"{op}: random numbers cannot be drawn this way inside a compiled function (the "
            f"graph would replay one draw at every call, at {tracing.user_location()}); draw "
            f"them outside and pass the tensor as an argument")
    return random.resolve(generator, op)


def traced_draw(op: str, kind: str, shape, dtype, generator=None, requires_grad: bool = False):
    """Inside ``lucid.compile``: a ``kind`` (``"random_uniform"`` or ``"random_normal"``)
    tensor of ``shape`` and float ``dtype`` in the traced graph, from a key drawn from
    ``generator`` (the default one for None) at every call."""
    tracer = tracing.current()
    if requires_grad:
        raise tracing.TracingError(
            f"{op}: a tensor that requires grad cannot be created inside a compiled function "
            f"(at {tracing.user_location()}); create it outside and pass it in")
    key = tracer.random_key(random.generator_of(generator, op))
    return tracer.apply(kind, [key], {"shape": tuple(shape), "dtype": str(dtype)})


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
    if tracing.current() is not None:
        return traced_draw("rand", "random_uniform", shape, dt, generator, requires_grad)
    return finish(_rng("rand", generator).random(shape, dtype=dt), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples (mean 0, variance 1) of ``size``."""
    check_device("randn", device)
    shape, dt = size_of("randn", size), _float_dtype("randn", dtype, "normal")
    if tracing.current() is not None:
        return traced_draw("randn", "random_normal", shape, dt, generator, requires_grad)
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
    if tracing.current() is not None:
        return _traced_randint(low, high, shape, dt, generator, requires_grad)
    data = _rng("randint", generator).integers(low, high, shape, dtype=np.int64)
    return finish(data.astype(dt, copy=False), requires_grad)


_TRACED_RANGE = 1 << 32  # widest randint range a compiled function draws (53-bit uniforms)


def _traced_randint(low: int, high: int, shape, dt, generator, requires_grad: bool):
    """``low + floor(u * (high - low))`` from float64 uniforms, the offset added in
    int64: exact for ranges up to 2**32 wide (the bias, under 2**-21, is far below
    sampling noise)."""
    if high - low > _TRACED_RANGE:
        raise tracing.TracingError(
            f"randint: inside a compiled function the range [{low}, {high}) may be at most "
            f"2**32 wide (at {tracing.user_location()}); draw it outside and pass it in")
    u = traced_draw("randint", "random_uniform", shape, "float64", generator, requires_grad)
    k = (u * float(high - low)).floor()
    k = dispatch.binary("minimum", k, float(high - low - 1)).to(int64)  # rounding never reaches high
    if low:
        offset = tracing.current().apply("constant", [], {"value": low, "shape": (), "dtype": "int64"})
        k = dispatch.binary("add", k, offset)
    return k.to(dt)


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
        m = mean if isinstance(mean, Tensor) else _number(mean, "mean")
        s = std if isinstance(std, Tensor) else _number(std, "std")
        try:
            shape = np.broadcast_shapes(np.shape(m), np.shape(s))
        except ValueError:
            raise RuntimeError(f"normal: the shapes of mean {np.shape(m)} and std "
                               f"{np.shape(s)} do not broadcast") from None
    if tracing.current() is not None:  # (a traced std's sign is not known: not checked)
        if not isinstance(s, Tensor) and s < 0:
            raise RuntimeError(f"normal: expects std >= 0.0, but found std {s}")
        z = traced_draw("normal", "random_normal", shape, dt, generator, requires_grad and not tensors)
        m, s = (v.detach() if isinstance(v, Tensor) else v for v in (m, s))
        out = (z * s + m).to(dt)
    else:
        m, s = (v.numpy() if isinstance(v, Tensor) else v for v in (m, s))
        if np.any(np.asarray(s) < 0):
            bad = np.asarray(s)[np.asarray(s) < 0].reshape(-1)[0]
            raise RuntimeError(f"normal: expects std >= 0.0, but found std {bad}")
        z = _rng("normal", generator).standard_normal(shape, dtype=dt)
        out = finish((m + s * z).astype(dt, copy=False), requires_grad and not tensors)
    from .grad_mode import is_grad_enabled
    if is_grad_enabled() and any(t.requires_grad for t in tensors):
        out = _zero_gradient_to(out, tensors)
    return out


def bernoulli(input, p=None, *, generator=None) -> Tensor:  # noqa: A002
    """1 with probability ``input`` (elementwise, a float tensor of probabilities in
    [0, 1]), else 0, in ``input``'s dtype; with a number ``p``, 1 with probability
    ``p`` in ``input``'s shape and dtype (any dtype). As in PyTorch, gradients flowing
    back to probabilities that require them are zero.

    >>> import lucid
    >>> g = lucid.Generator().manual_seed(0)
    >>> lucid.bernoulli(lucid.tensor([0.0, 1.0, 1.0]), generator=g).tolist()
    [0.0, 1.0, 1.0]
    >>> lucid.bernoulli(lucid.zeros(2, dtype=lucid.int64), 1.0).tolist()
    [1, 1]
    """
    x = _input("bernoulli", input)
    if p is None:
        if not x.dtype.is_floating_point:
            raise NotImplementedError(f"bernoulli: \"bernoulli_tensor_cpu_p_\" is not implemented for "
                                      f"{x.dtype} (the probabilities must be a float tensor)")
        prob, u_dtype = x.detach(), x.dtype
    else:
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"bernoulli: p must be a number, got {type(p).__name__}")
        prob = float(p)
        if not 0.0 <= prob <= 1.0:
            raise RuntimeError(f"bernoulli: bernoulli_ expects p to be in [0, 1], but got p={prob}")
        u_dtype = x.dtype if x.dtype.is_floating_point else "float64"
    if tracing.current() is not None:  # (traced probabilities are not range-checked)
        u = traced_draw("bernoulli", "random_uniform", x.shape, u_dtype, generator)
        out = dispatch.binary("lt", u, prob).to(x.dtype)
    else:
        probs = prob.numpy() if isinstance(prob, Tensor) else prob
        if isinstance(prob, Tensor) and not ((probs >= 0) & (probs <= 1)).all():
            raise RuntimeError(f"bernoulli: every probability must be in [0, 1] (Expected p_in >= 0 "
                               f"&& p_in <= 1 to be true, but got false for the input of shape "
                               f"{tuple(x.shape)})")
        u = _rng("bernoulli", generator).random(tuple(x.shape))
        out = Tensor._wrap(np.asarray(u < probs).astype(str(x.dtype)))
    from .grad_mode import is_grad_enabled
    if p is None and x.requires_grad and is_grad_enabled():
        out = _zero_gradient_to(out, [x])
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
