"""The ``lucid.<fn>`` forms of the elementwise ops (``torch.add``, ``torch.exp``,
``torch.eq`` ...) and the Tensor methods PyTorch has for them (``x.add(y, alpha=2)``,
``x.div(y, rounding_mode="floor")``, ``x.square()``). Each is one eager call: one
primitive op, or one ``dispatch.Chain`` composing primitives where no single op does it
(``fmod``, ``trunc``, ``isinf``, ``add`` with ``alpha``), so it runs eagerly, under the
interpreter and under ``lucid.compile``, with PyTorch's gradients.

>>> import lucid
>>> x, y = lucid.tensor([7.0, -7.0, 2.5]), lucid.tensor([2.0, 2.0, -1.0])
>>> lucid.add(x, y, alpha=2).tolist(), lucid.div(x, y, rounding_mode="trunc").tolist()
([11.0, -3.0, 0.5], [3.0, -3.0, -2.0])
>>> lucid.fmod(x, y).tolist(), lucid.remainder(x, y).tolist()
([1.0, -1.0, 0.5], [1.0, 1.0, -0.5])
>>> x.square().tolist(), lucid.isinf(x / 0.0).tolist()
([49.0, 49.0, 6.25], [True, True, True])
"""
from __future__ import annotations

import numpy as np

from . import dispatch
from .dispatch import as_tensor, cast
from .tensor_ops import _is_number

__all__ = ["add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow",
           "neg", "abs", "sign", "exp", "log", "log2", "log1p", "expm1", "sqrt", "rsqrt", "sin",
           "cos", "tanh", "sigmoid", "erf", "erfc", "floor", "ceil", "round", "trunc", "eq", "ne", "lt",
           "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not", "isnan",
           "isfinite", "isinf", "square", "reciprocal"]


def _tensor_first(x, other=None):
    """The first operand of a ``torch.<fn>``: a tensor (numbers and lists become one),
    or a number kept weak next to a tensor ``other`` (``torch.pow(2, x)``)."""
    if type(x) in dispatch._TENSOR_TYPES or (_is_number(x) and hasattr(other, "_data")):
        return x
    return as_tensor(x)


def _promoted(op: str, a, b):
    """``a`` and ``b`` as the binary op ``op`` takes them (tensors cast to PyTorch's
    result dtype, numbers kept weak), and that dtype."""
    a, b = dispatch._operand(_tensor_first(a, b), op), dispatch._operand(b, op)
    dtype = dispatch.operand_dtype(op, [o.dtype if hasattr(o, "_data") else o for o in (a, b)])
    return [cast(o, dtype) if hasattr(o, "_data") else o for o in (a, b)], dtype


def _check_int_divisor(op: str, divisor, dtype: str) -> None:
    """RuntimeError for an integer division by zero, as PyTorch (the IR defines ``x // 0``
    as 0 so that native code never traps; the user API refuses it, when the divisor's
    values are known)."""
    if dtype not in ("int32", "int64", "bool"):
        return
    data = divisor._data if hasattr(divisor, "_data") else np.asarray(divisor)
    if data is not None and data.size and not data.all():
        raise RuntimeError(f"{op}: ZeroDivisionError (an integer divisor is zero; divisor shape "
                           f"{tuple(np.shape(data))})")


def _division_operators(op: str):
    """``x.__op__(y)`` and ``x.__rop__(y)`` for ``op`` (``floor_divide`` or ``remainder``):
    a floating-point tensor goes straight to ``dispatch.binary``; any other first checks
    for an integer zero divisor (PyTorch's ``RuntimeError: ZeroDivisionError``)."""
    def forward(self, other):
        if self.dtype in _FLOATS:  # a floating-point result: no zero-divisor check
            return dispatch.binary(op, self, other)
        return _int_division(op, self, other)

    def reflected(self, other):
        if self.dtype in _FLOATS:
            return dispatch.binary(op, other, self)
        return _int_division(op, other, self)
    return forward, reflected


_FLOATS = frozenset(("float32", "float64"))


def _int_division(op: str, input, other):
    """``op`` (``floor_divide`` or ``remainder``) after the integer zero-divisor check."""
    (a, b), dtype = _promoted(op, input, other)
    _check_int_divisor(op, b, dtype)
    return dispatch.binary(op, a, b)


# ---------------------------------------------------------------- unary
def _unary(op: str, doc: str):
    def fn(input):
        return dispatch.unary(op, input)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = doc
    return fn


neg = _unary("neg", "``-input`` elementwise.")
abs = _unary("abs", "``|input|`` elementwise.")  # noqa: A001 - PyTorch's name
sign = _unary("sign", "-1, 0 or 1 elementwise (no gradient).")
exp = _unary("exp", "``e ** input`` elementwise.")
log = _unary("log", "The natural logarithm elementwise.")
log2 = _unary("log2", "The base-2 logarithm elementwise.")
log1p = _unary("log1p", "``log(1 + input)`` elementwise, accurate near 0.")
expm1 = _unary("expm1", "``exp(input) - 1`` elementwise, accurate near 0.")
sqrt = _unary("sqrt", "The square root elementwise.")
rsqrt = _unary("rsqrt", "``1 / sqrt(input)`` elementwise.")
sin = _unary("sin", "The sine elementwise.")
cos = _unary("cos", "The cosine elementwise.")
tanh = _unary("tanh", "The hyperbolic tangent elementwise.")
sigmoid = _unary("sigmoid", "``1 / (1 + exp(-input))`` elementwise.")
erf = _unary("erf", "The error function elementwise.")
erfc = _unary("erfc", "The complementary error function ``1 - erf(input)`` elementwise, accurate where "
              "erf is close to 1.")
floor = _unary("floor", "Rounded down to an integral value (ints unchanged; no gradient).")
ceil = _unary("ceil", "Rounded up to an integral value (ints unchanged; no gradient).")
isnan = _unary("isnan", "True where the element is NaN.")
isfinite = _unary("isfinite", "True where the element is neither infinite nor NaN.")


def logical_not(input):
    """True where the element is zero (or False), as bool.

    >>> import lucid
    >>> lucid.logical_not(lucid.tensor([0, 3])).tolist()
    [True, False]
    """
    return dispatch.unary("logical_not", cast(_tensor_first(input), "bool"))


_ROUND_POS = dispatch.Chain([("mul", {}, (0, 1)), ("round", {}, (-1,)), ("div", {}, (-1, 1))],
                            name="round_decimals")
_ROUND_NEG = dispatch.Chain([("div", {}, (0, 1)), ("round", {}, (-1,)), ("mul", {}, (-1, 1))],
                            name="round_decimals")


def round(input, *, decimals: int = 0):  # noqa: A001 - PyTorch's name
    """Rounded to ``decimals`` decimal places, halves to even (as ``torch.round``: for
    ``decimals > 0`` it is ``round(x * 10**d) / 10**d``). No gradient.

    >>> import lucid
    >>> lucid.round(lucid.tensor([0.5, 1.5, 1.2345], dtype=lucid.float64), decimals=2).tolist()
    [0.5, 1.5, 1.23]
    """
    x = _tensor_first(input)
    decimals = int(decimals)
    if decimals == 0 or not x.dtype.is_floating_point:
        if decimals != 0:
            raise NotImplementedError(f"round: decimals is not supported for integer tensors "
                               f"({x.dtype!r}, shape {tuple(x.shape)}), as in PyTorch")
        return dispatch.unary("round", x)
    if decimals > 0:
        return dispatch.call(_ROUND_POS, (x, float(10.0 ** decimals)))
    return dispatch.call(_ROUND_NEG, (x, float(10.0 ** -decimals)))


# trunc(x) = sign(x) * floor(|x|): exact, signed zeros and infinities included
_TRUNC = dispatch.Chain([("abs", {}, (0,)), ("floor", {}, (-1,)), ("sign", {}, (0,)),
                         ("mul", {}, (-1, -2))], name="trunc")


def trunc(input):
    """Rounded toward zero (ints unchanged; no gradient).

    >>> import lucid
    >>> lucid.trunc(lucid.tensor([-2.7, 2.7, 0.5])).tolist()
    [-2.0, 2.0, 0.0]
    """
    x = _tensor_first(input)
    if x.dtype == "bool":
        raise RuntimeError(f"trunc: not implemented for bool tensors (shape {tuple(x.shape)})")
    return dispatch.call(_TRUNC, (x,)) if x.dtype.is_floating_point else dispatch.unary("floor", x)


_ISINF = dispatch.Chain([("isfinite", {}, (0,)), ("isnan", {}, (0,)), ("logical_or", {}, (-1, -2)),
                         ("logical_not", {}, (-1,))], name="isinf")


def isinf(input):
    """True where the element is +inf or -inf (never for ints and bools).

    >>> import lucid
    >>> lucid.isinf(lucid.tensor([1.0, float("inf"), float("nan")])).tolist()
    [False, True, False]
    """
    return dispatch.call(_ISINF, (_tensor_first(input),))


_SQUARE = dispatch.Chain([("mul", {}, (0, 0))], name="square")


def square(input):
    """``input * input`` (bool becomes int64, as in PyTorch).

    >>> import lucid
    >>> lucid.square(lucid.tensor([-3, 2])).tolist()
    [9, 4]
    """
    x = _tensor_first(input)
    return dispatch.call(_SQUARE, (cast(x, "int64") if x.dtype == "bool" else x,))


def reciprocal(input):
    """``1 / input`` (ints give the default float dtype).

    >>> import lucid
    >>> lucid.reciprocal(lucid.tensor([2, 4])).tolist()
    [0.5, 0.25]
    """
    return dispatch.binary("div", 1.0, _tensor_first(input))


# ---------------------------------------------------------------- binary
def _binary(op: str, doc: str):
    def fn(input, other):
        return dispatch.binary(op, _tensor_first(input, other), other)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = doc
    return fn


mul = _binary("mul", "``input * other`` (broadcasting, PyTorch's promotion).")
true_divide = _binary("div", "``input / other`` (true division: ints give floats).")
true_divide.__name__ = true_divide.__qualname__ = "true_divide"
def pow(input, exponent):  # noqa: A001 - PyTorch's name
    """``input ** exponent`` elementwise (a tensor's power: ``Tensor.pow``, where a float
    tensor to the power 2, 3 or 0.5 is a multiply or a square root, as in PyTorch).

    >>> import lucid
    >>> lucid.pow(lucid.tensor([1.5]), 2).tolist(), lucid.pow(2, lucid.tensor([3])).tolist()
    ([2.25], [8])
    """
    x = _tensor_first(input, exponent)
    return x.pow(exponent) if type(x) in dispatch._TENSOR_TYPES else dispatch.binary("pow", x, exponent)
eq = _binary("eq", "``input == other`` elementwise, as bool.")
ne = _binary("ne", "``input != other`` elementwise, as bool.")
lt = _binary("lt", "``input < other`` elementwise, as bool.")
le = _binary("le", "``input <= other`` elementwise, as bool.")
gt = _binary("gt", "``input > other`` elementwise, as bool.")
ge = _binary("ge", "``input >= other`` elementwise, as bool.")
logical_and = _binary("logical_and", "Elementwise ``a and b`` of the truth values, as bool.")
logical_or = _binary("logical_or", "Elementwise ``a or b`` of the truth values, as bool.")
logical_xor = _binary("logical_xor", "Elementwise ``a xor b`` of the truth values, as bool.")


_ADD_SCALED = dispatch.Chain([("mul", {}, (1, 2)), ("add", {}, (0, -1))], name="add_alpha")
_SUB_SCALED = dispatch.Chain([("mul", {}, (1, 2)), ("sub", {}, (0, -1))], name="sub_alpha")


def _scaled(op: str, chain, input, other, alpha):
    """``input op alpha * other`` as one call (``alpha`` a weak number, as ``other``)."""
    if alpha == 1:
        return dispatch.binary(op, _tensor_first(input, other), other)
    (a, b), dtype = _promoted(op, input, other)
    if hasattr(alpha, "item"):  # a numpy number or a one-element tensor
        alpha = alpha.item()
    if isinstance(alpha, float) and not dtype.startswith("float"):
        raise RuntimeError(f"{op}: for integral input tensors ({dtype}), argument alpha must not "
                           f"be a floating point number")
    return dispatch.call(chain, (a, b, alpha))


def floor_divide(input, other):
    """``input // other``, rounded toward minus infinity (an integer division by zero is
    a RuntimeError, as PyTorch's).

    >>> import lucid
    >>> lucid.floor_divide(lucid.tensor([7, -7]), 2).tolist()
    [3, -4]
    """
    return _int_division("floor_divide", input, other)


def remainder(input, other):
    """``input % other``, with the divisor's sign (Python's; an integer division by zero
    is a RuntimeError, as PyTorch's).

    >>> import lucid
    >>> lucid.remainder(lucid.tensor([7, -7]), 3).tolist()
    [1, 2]
    """
    return _int_division("remainder", input, other)


def add(input, other, *, alpha=1):
    """``input + alpha * other`` (broadcasting, PyTorch's promotion).

    >>> import lucid
    >>> lucid.add(lucid.tensor([1, 2]), lucid.tensor([10, 20]), alpha=3).tolist()
    [31, 62]
    """
    return _scaled("add", _ADD_SCALED, input, other, alpha)


def sub(input, other, *, alpha=1):
    """``input - alpha * other`` (bool operands are refused, as in PyTorch).

    >>> import lucid
    >>> lucid.sub(lucid.tensor([1.0, 2.0]), 1.0, alpha=0.5).tolist()
    [0.5, 1.5]
    """
    return _scaled("sub", _SUB_SCALED, input, other, alpha)


# div(rounding_mode="trunc"): trunc(a / b) on floats, sign(a)·sign(b)·(|a| // |b|) on ints
_DIV_TRUNC_FLOAT = dispatch.Chain([("div", {}, (0, 1)), ("abs", {}, (-1,)), ("floor", {}, (-1,)),
                                   ("sign", {}, (-3,)), ("mul", {}, (-1, -2))], name="div_trunc")
_DIV_TRUNC_INT = dispatch.Chain([("abs", {}, (0,)), ("abs", {}, (1,)), ("floor_divide", {}, (-2, -1)),
                                 ("sign", {}, (0,)), ("sign", {}, (1,)), ("mul", {}, (-1, -2)),
                                 ("mul", {}, (-1, -4))], name="div_trunc")


def div(input, other, *, rounding_mode=None):
    """``input / other``: true division (``rounding_mode=None``: ints give floats),
    rounded toward zero (``"trunc"``) or toward minus infinity (``"floor"``), which keep
    integer dtypes. The rounded forms have no gradient (PyTorch's is zero).

    >>> import lucid
    >>> a, b = lucid.tensor([7, -7]), lucid.tensor([2, 2])
    >>> lucid.div(a, b).tolist(), a.div(b, rounding_mode="trunc").tolist(), a.div(b, rounding_mode="floor").tolist()
    ([3.5, -3.5], [3, -3], [3, -4])
    """
    if rounding_mode is None:
        return dispatch.binary("div", _tensor_first(input), other)
    if rounding_mode == "floor":
        return _int_division("floor_divide", input, other)
    if rounding_mode != "trunc":
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                           f"found '{rounding_mode}'")
    (a, b), dtype = _promoted("floor_divide", input, other)
    _check_int_divisor("div", b, dtype)
    if dtype == "bool":
        a, b = (cast(o, "int64") if hasattr(o, "_data") else o for o in (a, b))
    chain = _DIV_TRUNC_FLOAT if dtype.startswith("float") else _DIV_TRUNC_INT
    return dispatch.call(chain, (a, b))


# fmod(a, b) = a - trunc(a / b) * b, exactly: the remainder of |b| with a's sign
_FMOD = dispatch.Chain([("abs", {}, (1,)), ("neg", {}, (0,)), ("remainder", {}, (-1, -2)),
                        ("neg", {}, (-1,)), ("remainder", {}, (0, -4)), ("lt", {}, (0, 2)),
                        ("select", {}, (-1, -3, -2))], name="fmod")


def fmod(input, other):
    """The remainder of ``input / other`` rounded toward zero: it takes ``input``'s sign
    (C's ``fmod``; ``remainder`` takes the divisor's).

    >>> import lucid
    >>> lucid.fmod(lucid.tensor([-3, 3]), 2).tolist(), lucid.tensor([-3.0, 3.0]).fmod(-2).tolist()
    ([-1, 1], [-1.0, 1.0])
    """
    (a, b), dtype = _promoted("remainder", input, other)
    if dtype == "bool":
        raise RuntimeError("fmod: not implemented for bool tensors")
    _check_int_divisor("fmod", b, dtype)
    return dispatch.call(_FMOD, (a, b, 0))


# ---------------------------------------------------------------- Tensor methods
_METHODS = ("add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "eq",
            "ne", "lt", "le", "gt", "ge", "square", "reciprocal", "trunc", "isinf", "round",
            "logical_not")


def _install(Tensor) -> None:
    """Attach the methods PyTorch has that ``Tensor`` lacks (from ``lucid.tensor``)."""
    g = globals()
    for name in _METHODS:
        setattr(Tensor, name, g[name])
    Tensor.greater, Tensor.greater_equal, Tensor.less, Tensor.less_equal = gt, ge, lt, le
    Tensor.not_equal, Tensor.multiply, Tensor.subtract, Tensor.divide = ne, mul, sub, div
    Tensor.fix = trunc
    Tensor.__floordiv__, Tensor.__rfloordiv__ = _division_operators("floor_divide")
    Tensor.__mod__, Tensor.__rmod__ = _division_operators("remainder")
