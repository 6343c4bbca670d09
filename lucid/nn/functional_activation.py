"""Activation functions of ``lucid.nn.functional`` (PyTorch's signatures and gradients).

Each is one chain of IR primitives (``chain_steps``), so an eager call is one fused
native kernel and its gradient is derived by the IR's autodiff. Parameters such as
``negative_slope`` are operands of the call (numbers passed to the kernel), so every
value shares one kernel. Branches are written with ``select`` so each side's gradient
is PyTorch's, and exponentials are taken of clipped arguments (``exp(min(x, 0))``) so
that an unselected branch never overflows into a NaN gradient.

>>> import lucid
>>> import lucid.nn.functional as F
>>> x = lucid.tensor([-2.0, 0.5, 3.0])
>>> F.leaky_relu(x, 0.5).tolist()
[-1.0, 0.5, 3.0]
>>> [round(v, 4) for v in F.gelu(x, approximate="tanh").tolist()]
[-0.0454, 0.3457, 2.9964]
"""
from __future__ import annotations

import math

from .. import dispatch
from .. import inplace as inplace_ops
from ..dispatch import as_tensor
from ..tensor import Tensor
from .chain_steps import cached_chain

_FLOATS = ("float32", "float64")
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _float_input(x, op: str):
    t = as_tensor(x)
    if str(t.dtype) not in _FLOATS:
        raise RuntimeError(f"{op}: expected a floating-point input, got dtype {t.dtype} "
                           f"(shape {tuple(t.shape)})")
    return t


def _run(op: str, x, build, numbers=(), params=(), inplace_: bool = False):
    """Apply the chain ``build`` writes (operand 0: x; operands 1..: ``numbers``) to x;
    with ``inplace_`` the result is written into x and x returned (PyTorch's inplace=)."""
    t = _float_input(x, op)
    if inplace_:
        inplace_ops._check_target(t, op)
    chain = cached_chain(op, params, build, str(t.dtype))
    out = dispatch.call(chain, (t, *[float(n) for n in numbers]))
    return inplace_ops._write(t, out, op) if inplace_ else out


def _positive_part(s, x):
    """``x`` where ``x > 0``, else 0 (PyTorch's relu gradient: 0 at 0)."""
    return s("select", s("gt", x, 0.0), x, 0.0)


def _softplus(s, x):
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``."""
    return s("add", _positive_part(s, x), s("log1p", s("exp", s("neg", s("abs", x)))))


def relu(input, inplace: bool = False):  # noqa: A002 - PyTorch's names
    """``max(x, 0)``; its gradient at 0 is 0 (as in PyTorch).

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> relu(x).tolist()
    [0.0, 0.0, 1.5]
    """
    if not inplace and type(input) is Tensor:
        return input.relu()
    t = as_tensor(input)
    if inplace:  # any dtype, as PyTorch's relu_
        inplace_ops._check_target(t, "relu")
        return inplace_ops._write(t, t.relu(), "relu")
    return t.relu()


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):  # noqa: A002
    """``x`` clipped to ``[min_val, max_val]``; the gradient is 0 outside (and at) the bounds.

    >>> import lucid
    >>> hardtanh(lucid.tensor([-3.0, 0.25, 2.0])).tolist()
    [-1.0, 0.25, 1.0]
    """
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return _run("hardtanh", input, lambda s: s("select", s("le", 0, 1), 1,
                                                 s("select", s("ge", 0, 2), 2, 0)),
                (min_val, max_val), inplace_=inplace)


def relu6(input, inplace: bool = False):  # noqa: A002
    """``min(max(x, 0), 6)``.

    >>> import lucid
    >>> relu6(lucid.tensor([-1.0, 3.0, 7.0])).tolist()
    [0.0, 3.0, 6.0]
    """
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):  # noqa: A002
    """``x`` for ``x > 0``, else ``negative_slope * x``.

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> leaky_relu(x, 0.5).tolist()
    [-1.0, 0.0, 1.5]
    """
    return _run("leaky_relu", input, lambda s: s("select", s("gt", 0, 0.0), 0, s("mul", 0, 1)),
                (negative_slope,), inplace_=inplace)


def _elu_steps(s, alpha, scale=None, inv_alpha=None):
    """Steps of ``x`` for ``x > 0``, else ``alpha * (exp(x * inv_alpha) - 1)``, all times
    ``scale`` (``alpha``, ``scale``, ``inv_alpha``: operand indices; the last two optional)."""
    neg = s("minimum", 0, 0.0)
    if inv_alpha is not None:
        neg = s("mul", neg, inv_alpha)
    y = s("select", s("gt", 0, 0.0), 0, s("mul", s("expm1", neg), alpha))
    return y if scale is None else s("mul", y, scale)


def elu(input, alpha: float = 1.0, inplace: bool = False):  # noqa: A002
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``.

    >>> import lucid
    >>> [round(v, 4) for v in elu(lucid.tensor([-1.0, 2.0])).tolist()]
    [-0.6321, 2.0]
    """
    return _run("elu", input, lambda s: _elu_steps(s, 1), (alpha,), inplace_=inplace)


def selu(input, inplace: bool = False):  # noqa: A002
    """``scale * elu(x, alpha)`` with SELU's fixed ``alpha ≈ 1.6733`` and ``scale ≈ 1.0507``.

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> [round(v, 4) for v in selu(x).tolist()]
    [-1.5202, 0.0, 1.5761]
    """
    return _run("selu", input, lambda s: _elu_steps(s, 1, scale=2), (_SELU_ALPHA, _SELU_SCALE),
                inplace_=inplace)


def celu(input, alpha: float = 1.0, inplace: bool = False):  # noqa: A002
    """``x`` for ``x > 0``, else ``alpha * (exp(x / alpha) - 1)``.

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> [round(v, 4) for v in celu(x, alpha=2.0).tolist()]
    [-1.2642, 0.0, 1.5]
    """
    if alpha == 0:
        raise ValueError("celu: ZeroDivisionError, alpha must not be 0")
    return _run("celu", input, lambda s: _elu_steps(s, 1, inv_alpha=2), (alpha, 1.0 / alpha),
                inplace_=inplace)


def gelu(input, approximate: str = "none"):  # noqa: A002
    """``x * Φ(x)`` (``approximate='none'``: with ``erfc``), or its tanh approximation
    ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`` (``approximate='tanh'``).

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> [round(v, 4) for v in gelu(x).tolist()], [round(v, 4) for v in gelu(x, "tanh").tolist()]
    ([-0.0455, 0.0, 1.3998], [-0.0454, 0.0, 1.3996])
    """
    if approximate == "none":  # Φ(x) = erfc(-x/√2) / 2: no cancellation where Φ is small
        return _run("gelu", input, lambda s: s("mul", s("mul", 0, 0.5), s("erfc", s("mul", 0, -math.sqrt(0.5)))))
    if approximate == "tanh":
        def build(s):
            cube = s("mul", s("mul", 0, 0), 0)
            inner = s("mul", s("add", 0, s("mul", cube, 0.044715)), math.sqrt(2.0 / math.pi))
            return s("mul", s("mul", 0, 0.5), s("add", s("tanh", inner), 1.0))
        return _run("gelu_tanh", input, build)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input, inplace: bool = False):  # noqa: A002
    """``x * sigmoid(x)`` (swish).

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> [round(v, 4) for v in silu(x).tolist()]
    [-0.2384, 0.0, 1.2264]
    """
    return _run("silu", input, lambda s: s("mul", 0, s("sigmoid", 0)), inplace_=inplace)


def mish(input, inplace: bool = False):  # noqa: A002
    """``x * tanh(softplus(x))``.

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> [round(v, 4) for v in mish(x).tolist()]
    [-0.2525, 0.0, 1.4034]
    """
    return _run("mish", input, lambda s: s("mul", 0, s("tanh", _softplus(s, 0))), inplace_=inplace)


def softplus(input, beta: float = 1.0, threshold: float = 20.0):  # noqa: A002
    """``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``.

    >>> import lucid
    >>> [round(v, 4) for v in softplus(lucid.tensor([0.0, 30.0])).tolist()]
    [0.6931, 30.0]
    """
    def build(s):
        bx = s("mul", 0, 1)
        soft = s("div", s("log1p", s("exp", s("minimum", bx, 2))), 1)
        return s("select", s("gt", bx, 2), 0, soft)
    return _run("softplus", input, build, (beta, threshold))


def softsign(input):  # noqa: A002
    """``x / (1 + |x|)``.

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> softsign(x).tolist()
    [-0.6666666666666666, 0.0, 0.6]
    """
    return _run("softsign", input, lambda s: s("div", 0, s("add", s("abs", 0), 1.0)))


def hardsigmoid(input, inplace: bool = False):  # noqa: A002
    """``relu6(x + 3) / 6``; the gradient is ``1/6`` strictly inside ``(-3, 3)``.

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> [round(v, 4) for v in hardsigmoid(x).tolist()]
    [0.1667, 0.5, 0.75]
    """
    return _run("hardsigmoid", input, lambda s: s(
        "select", s("le", 0, -3.0), 0.0,
        s("select", s("ge", 0, 3.0), 1.0, s("add", s("mul", 0, 1.0 / 6.0), 0.5))), inplace_=inplace)


def hardswish(input, inplace: bool = False):  # noqa: A002
    """``x * relu6(x + 3) / 6``.

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> [round(v, 4) for v in hardswish(x).tolist()]
    [-0.3333, 0.0, 1.125]
    """
    return _run("hardswish", input, lambda s: s(
        "select", s("lt", 0, -3.0), 0.0,
        s("select", s("le", 0, 3.0), s("mul", s("mul", 0, s("add", 0, 3.0)), 1.0 / 6.0), 0)),
        inplace_=inplace)


def logsigmoid(input):  # noqa: A002
    """``log(sigmoid(x)) = -softplus(-x)``, stable for large ``|x|``.

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> [round(v, 4) for v in logsigmoid(x).tolist()]
    [-2.1269, -0.6931, -0.2014]
    """
    return _run("logsigmoid", input, lambda s: s(
        "sub", s("minimum", 0, 0.0), s("log1p", s("exp", s("neg", s("abs", 0))))))


def tanhshrink(input):  # noqa: A002
    """``x - tanh(x)``.

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> [round(v, 4) for v in tanhshrink(x).tolist()]
    [-1.036, 0.0, 0.5949]
    """
    return _run("tanhshrink", input, lambda s: s("sub", 0, s("tanh", 0)))


def threshold(input, threshold: float, value: float, inplace: bool = False):  # noqa: A002
    """``x`` where ``x > threshold``, else ``value``.

    >>> import lucid
    >>> x = lucid.tensor([-2.0, 0.0, 1.5], dtype=lucid.float64)
    >>> threshold(x, 0.5, -1.0).tolist()
    [-1.0, -1.0, 1.5]
    """
    return _run("threshold", input, lambda s: s("select", s("gt", 0, 1), 0, 2),
                (threshold, value), inplace_=inplace)


def _dim(op: str, dim, ndim: int) -> int:
    if dim is None:
        raise TypeError(f"{op}: dim must be given (an int)")
    d = int(dim)
    if not -max(ndim, 1) <= d < max(ndim, 1):
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of "
                         f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {dim})")
    return d % max(ndim, 1)


def glu(input, dim: int = -1):  # noqa: A002
    """The first half of ``dim`` times the sigmoid of the second half (``dim`` even).

    >>> import lucid
    >>> glu(lucid.tensor([[2.0, 0.0]])).tolist()
    [[1.0]]
    """
    t = _float_input(input, "glu")
    if t.ndim == 0:
        raise RuntimeError("glu: glu does not support scalars because halving size must be even")
    d = _dim("glu", dim, t.ndim)
    n = t.shape[d]
    if n % 2:
        raise RuntimeError(f"glu: Halving dimension must be even, but dimension {d} is size {n} "
                           f"(input shape {tuple(t.shape)})")
    half = n // 2

    def build(s):
        nd = t.ndim
        first = s("slice", 0, starts=tuple(0 for _ in range(nd)),
                  stops=tuple(half if k == d else None for k in range(nd)), steps=(1,) * nd)
        second = s("slice", 0, starts=tuple(half if k == d else 0 for k in range(nd)),
                   stops=(None,) * nd, steps=(1,) * nd)
        return s("mul", first, s("sigmoid", second))
    chain = cached_chain("glu", (t.ndim, d, half), build, str(t.dtype))
    return dispatch.call(chain, (t,))


def softmin(input, dim=None, _stacklevel: int = 3, dtype=None):  # noqa: A002
    """``softmax(-x)`` along ``dim`` (one eager call); ``dtype`` casts the input first.

    >>> import lucid
    >>> [round(v, 4) for v in softmin(lucid.tensor([0.0, 1.0]), dim=0).tolist()]
    [0.7311, 0.2689]
    """
    t = as_tensor(input)
    if dtype is not None:
        from .. import dtypes
        t = dispatch.cast(t, str(dtypes.as_dtype(dtype)))
    t = _float_input(t, "softmin")
    if dim is None:  # PyTorch's implicit choice (it warns)
        dim = 0 if t.ndim in (0, 1, 3) else 1
    d = _dim("softmin", dim, t.ndim)

    def build(s):
        neg = s("neg", 0)
        shifted = s("sub", neg, s("stop_gradient", s("max", neg, axes=d, keepdims=True)))
        e = s("exp", shifted)
        return s("div", e, s("sum", e, axes=d, keepdims=True))
    return dispatch.call(cached_chain("softmin", d, build, str(t.dtype)), (t,))


def _install(Tensor) -> None:
    """``x.softmax(dim)`` and ``x.log_softmax(dim)`` (from ``lucid/__init__.py``)."""
    from .functional import log_softmax, softmax

    def tensor_softmax(self, dim=None, dtype=None):
        """``lucid.nn.functional.softmax(self, dim)``."""
        return softmax(self if dtype is None else self.to(dtype), dim)

    def tensor_log_softmax(self, dim=None, dtype=None):
        """``lucid.nn.functional.log_softmax(self, dim)``."""
        return log_softmax(self if dtype is None else self.to(dtype), dim)
    Tensor.softmax, Tensor.log_softmax = tensor_softmax, tensor_log_softmax


def prelu(input, weight):  # noqa: A002
    """``x`` for ``x > 0``, else ``weight * x``, with one learned slope for all channels
    (``weight`` of 1 element) or one per channel (dim 1 of the input).

    >>> import lucid
    >>> prelu(lucid.tensor([[-2.0, 3.0]]), lucid.tensor([0.25])).tolist()
    [[-0.5, 3.0]]
    """
    from ..dispatch import as_tensor
    from ..functional_core import where
    x, w = as_tensor(input), as_tensor(weight)
    if w.ndim > 1:
        raise RuntimeError(f"prelu: weight must be 1-D (one slope per channel), got shape {w.shape}")
    if x.ndim == 0:
        raise RuntimeError("Not allow zero-dim input tensor.")
    n = w.numel()
    if n != 1:
        channels = x.shape[1] if x.ndim >= 2 else 1
        if n != channels:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter "
                               f"numbers = {n} and channel size = {channels}.")
        w = w.reshape(n, *(1,) * (x.ndim - 2))
    else:
        w = w.reshape(())
    return where(x > 0, x, w * x)
