"""Elementwise ops: arithmetic, transcendentals, ``abs``/``sign``, ``cast``. Binary ops
broadcast their operands the numpy way; operands must share a dtype (the user API
inserts ``cast``, see ``lucid_ir.types.result_type``). Each op names the dtypes it
accepts; any other gets a TypeError naming the op, the operands and what to do:

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> i = b.input((3,), "int32")
>>> b.emit("add", i, i).type, b.emit("cast", i, dtype="float32").type
(TensorType(shape=(3,), dtype='int32'), TensorType(shape=(3,), dtype='float32'))
>>> b.emit("exp", i)
Traceback (most recent call last):
...
TypeError: exp: takes float32/float64 operands, got i32[3]; cast to a float dtype first

Comparisons, ``select``, the logical/bitwise ops and ``isnan``/``isfinite`` live in
``logical``; integer-aware ``floor_divide``/``remainder`` in ``division``; ``pow`` in
``power``; ``floor``/``ceil``/``round`` in ``rounding``; ``log2 log1p expm1 rsqrt sin cos
erf`` in ``transcendental``.
"""
from __future__ import annotations

import numpy as np

from ..types import DTYPES, FLOAT_DTYPES, INT_DTYPES, TensorType, broadcast_shapes, check_dtype, is_float
from . import OpDef, register, same_dtype
from .gradient_helpers import scalar, sum_to

FLOAT = FLOAT_DTYPES
NUMERIC = INT_DTYPES + FLOAT_DTYPES
INT_BOOL = INT_DTYPES + ("bool",)
ALL = DTYPES
_HINT = {FLOAT: "cast to a float dtype first", NUMERIC: "cast to a numeric dtype first",
         INT_BOOL: "cast to an integer or bool dtype first", ("bool",): "compare or cast to bool first"}


def check_accepts(op: str, types, accepts) -> None:
    """TypeError naming ``op`` when an operand's dtype is not in ``accepts``."""
    if all(t.dtype in accepts for t in types):
        return
    listed = " and ".join(str(t) for t in types)
    hint = _HINT.get(tuple(accepts), "")
    raise TypeError(f"{op}: takes {'/'.join(accepts)} operands, got {listed}"
                    + (f"; {hint}" if hint else ""))


class Unary(OpDef):
    group, kind = "elementwise", "unary"
    arity = 1
    accepts = FLOAT

    def infer(self, types, attrs):
        check_accepts(self.name, types, self.accepts)
        return types[0]


class Binary(OpDef):
    group, kind = "elementwise", "binary"
    arity = 2
    accepts = FLOAT
    result = None  # the output dtype, when it is not the operands' (comparisons: bool)

    def infer(self, types, attrs):
        dtype = same_dtype(self.name, types)
        check_accepts(self.name, types, self.accepts)
        shape = broadcast_shapes(types[0].shape, types[1].shape, op=self.name)
        return TensorType(shape, self.result or dtype)


@register
class Neg(Unary):
    name, accepts = "neg", NUMERIC
    involution = True

    def evaluate(self, a, attrs):
        return np.negative(a[0])

    def grad(self, b, node, g):
        return [b.emit("neg", g)]


@register
class Exp(Unary):
    name = "exp"
    cost = 12

    def evaluate(self, a, attrs):
        return np.exp(a[0])

    def grad(self, b, node, g):
        return [b.emit("mul", g, node.out)]


@register
class Log(Unary):
    name = "log"
    cost = 28

    def evaluate(self, a, attrs):
        return np.log(a[0])

    def grad(self, b, node, g):
        return [b.emit("div", g, node.inputs[0])]


@register
class Sqrt(Unary):
    name = "sqrt"
    cost = 4

    def evaluate(self, a, attrs):
        return np.sqrt(a[0])

    def grad(self, b, node, g):  # g / (2 sqrt(x))
        return [b.emit("div", g, b.emit("mul", node.out, scalar(b, 2.0, g.dtype)))]


@register
class Tanh(Unary):
    name = "tanh"
    cost = 41

    def evaluate(self, a, attrs):
        return np.tanh(a[0])

    def grad(self, b, node, g):  # g * (1 - y^2)
        y = node.out
        one = scalar(b, 1.0, y.dtype)
        return [b.emit("mul", g, b.emit("sub", one, b.emit("mul", y, y)))]


@register
class Sigmoid(Unary):
    name = "sigmoid"
    cost = 20

    def evaluate(self, a, attrs):
        x = a[0]
        # 1 / (1 + e^-x) without overflow: e^-|x| never exceeds 1.
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def grad(self, b, node, g):  # g * y * (1 - y)
        y = node.out
        one = scalar(b, 1.0, y.dtype)
        return [b.emit("mul", g, b.emit("mul", y, b.emit("sub", one, y)))]


@register
class Abs(Unary):
    """``|x|``; the integer minimum stays itself (wraps, as in numpy and PyTorch).
    Gradient ``g * sign(x)`` (0 at 0, as PyTorch). Not defined for bool (as PyTorch)."""

    name, accepts = "abs", NUMERIC

    def evaluate(self, a, attrs):
        return np.abs(a[0])

    def grad(self, b, node, g):
        return [b.emit("mul", g, b.emit("sign", node.inputs[0]))]


@register
class Sign(Unary):
    """-1, 0 or 1 (NaN stays NaN; the sign of a bool is itself). No gradient."""

    name, accepts = "sign", ALL

    def evaluate(self, a, attrs):
        x = a[0]
        return x.copy() if x.dtype == np.bool_ else np.sign(x)

    def grad(self, b, node, g):
        return [None]


def float_to_int(x: np.ndarray, dtype: str) -> np.ndarray:
    """Truncate toward zero; NaN and values outside the target range give the integer
    minimum (x86's "integer indefinite", which numpy and PyTorch give there too), here
    without depending on the platform or warning.

    >>> float_to_int(np.array([2.7, -2.7, np.nan, 1e10]), "int32")
    array([          2,          -2, -2147483648, -2147483648], dtype=int32)
    """
    info = np.iinfo(dtype)
    ok = (x >= info.min) & (x < -float(info.min))
    return np.where(ok, np.trunc(np.where(ok, x, 0)).astype(dtype), np.array(info.min, dtype))


@register
class Cast(Unary):
    """``cast[dtype]`` between any two of the five dtypes: float -> int truncates toward
    zero (NaN/out of range: see ``float_to_int``), int32 <- int64 wraps, -> bool is
    ``x != 0`` (NaN is true), bool -> number is 0/1. The gradient flows only between
    float dtypes (autodiff never sends one into or out of an int/bool value)."""

    name, accepts = "cast", ALL
    attr_names = ("dtype",)

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        return {"dtype": check_dtype(attrs["dtype"])}

    def infer(self, types, attrs):
        return TensorType(types[0].shape, attrs["dtype"])

    def evaluate(self, a, attrs):
        x, dtype = a[0], attrs["dtype"]
        if is_float(x.dtype.name) and dtype in INT_DTYPES:
            return float_to_int(x, dtype)
        return x.astype(dtype)

    def grad(self, b, node, g):
        if not (is_float(node.inputs[0].dtype) and is_float(node.out.dtype)):
            return [None]
        return [b.emit("cast", g, dtype=node.inputs[0].dtype)]


@register
class Add(Binary):
    """``x + y``; integers wrap on overflow; for bool, ``or`` (as PyTorch)."""

    name, accepts = "add", ALL
    units = (0.0, 0.0)


    def evaluate(self, a, attrs):
        return np.add(a[0], a[1])

    def grad(self, b, node, g):
        x, y = node.inputs
        return [sum_to(b, g, x.shape), sum_to(b, g, y.shape)]


@register
class Sub(Binary):
    name, accepts = "sub", NUMERIC
    units = (None, 0.0)

    def evaluate(self, a, attrs):
        return np.subtract(a[0], a[1])

    def grad(self, b, node, g):
        x, y = node.inputs
        return [sum_to(b, g, x.shape), sum_to(b, b.emit("neg", g), y.shape)]


@register
class Mul(Binary):
    """``x * y``; integers wrap on overflow; for bool, ``and`` (as PyTorch)."""

    name, accepts = "mul", ALL
    units = (1.0, 1.0)


    def evaluate(self, a, attrs):
        return np.multiply(a[0], a[1])

    def grad(self, b, node, g):
        x, y = node.inputs
        return [sum_to(b, b.emit("mul", g, y), x.shape), sum_to(b, b.emit("mul", g, x), y.shape)]


@register
class Div(Binary):
    """True division, floats only: the user API casts integer operands to a float dtype
    first (PyTorch's ``/`` of two int tensors is float); ``floor_divide`` is the
    integer division."""

    name = "div"
    cost, units = 2, (None, 1.0)


    def infer(self, types, attrs):
        if any(t.dtype not in FLOAT for t in types):
            listed = " and ".join(str(t) for t in types)
            raise TypeError(f"div: true division takes float32/float64 operands, got {listed}; "
                            f"cast integer operands to a float dtype first (or use floor_divide)")
        return super().infer(types, attrs)

    def evaluate(self, a, attrs):
        return np.divide(a[0], a[1])

    def grad(self, b, node, g):  # d(x/y) = g/y, -g*x/y^2 = -(g/y) * out
        x, y = node.inputs
        gx = b.emit("div", g, y)
        gy = b.emit("neg", b.emit("mul", gx, node.out))
        return [sum_to(b, gx, x.shape), sum_to(b, gy, y.shape)]


class _Extremum(Binary):
    """Gradient goes to the first operand where it is strictly on the winning side of
    the second, else to the second (so ``relu = maximum(x, 0)`` has gradient 0 at
    x == 0, as in PyTorch's relu).

    The mask is computed from the op's output (``out > y`` is the same as ``x > y``),
    so the backward reads the output rather than the input: for relu after a matmul,
    the fused GEMM's output is all the backward needs. NaN on either side wins."""

    accepts = ALL
    numpy_fn = mask_op = None

    def evaluate(self, a, attrs):
        return type(self).numpy_fn(a[0], a[1])

    def grad(self, b, node, g):
        x, y = node.inputs
        mask = b.emit(self.mask_op, node.out, y)
        zero = scalar(b, 0.0, g.dtype)
        gx = b.emit("select", mask, g, zero)
        gy = b.emit("select", mask, zero, g)
        return [sum_to(b, gx, x.shape), sum_to(b, gy, y.shape)]


@register
class Maximum(_Extremum):
    name, numpy_fn, mask_op = "maximum", np.maximum, "gt"


@register
class Minimum(_Extremum):
    name, numpy_fn, mask_op = "minimum", np.minimum, "lt"


from . import division, logical, power, rounding, transcendental  # noqa: E402,F401  (registers)
