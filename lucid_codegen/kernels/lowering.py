"""The op table: every elementwise op as LLVM instructions, for every dtype, scalar or
vector alike (so a vector body and its scalar remainder give the same bits).

Values arrive in their compute types (``vector_math.LLVM_TYPE``): ``float``/``double``,
``i32``/``i64`` (signed) and ``i1`` for bool; the op's kind is read off the operand
type. Integer semantics, all without undefined behaviour whatever the data:

* ``add``/``sub``/``mul``/``neg``/``abs`` wrap (no ``nsw``): numpy's and PyTorch's
  results; for bool, ``add`` is ``or`` and ``mul`` is ``and``;
* ``floor_divide``/``remainder`` round toward minus infinity, the remainder takes the
  divisor's sign; the divisor is made safe before ``sdiv``/``srem`` (x // 0 = x % 0 = 0,
  MIN // -1 = MIN, MIN % -1 = 0, the values of the numpy reference), so they never trap;
* float ``floor_divide``/``remainder`` are numpy's fmod-based formula, step by step;
* ``cast`` float -> int truncates; NaN and out-of-range give the integer minimum
  (what x86, numpy and PyTorch give) with ``fptosi`` only ever seeing in-range values;
* ``pow`` wraps (square and multiply), negative exponents give PyTorch's 0/±1;
  ``floor``/``ceil``/``round`` return integers unchanged; ``isnan``/``isfinite`` of an
  integer or bool are constants.

Float rounding is one instruction each (``llvm.floor``/``ceil``/``roundeven``: half to
even, as ``torch.round``), ``rsqrt`` is ``1 / sqrt(x)`` (two correctly rounded steps,
PyTorch's own formula); the transcendentals come from ``vector_math``,
``vector_explog``, ``vector_trig`` and ``vector_erf``; the counter-based random numbers
(``random_uniform``, ``random_normal``: a function of a key and the element's index)
from ``vector_random``.

>>> import llvmlite.ir as ir
>>> m = ir.Module(); f = ir.Function(m, ir.FunctionType(I32, [I32, I32]), "f")
>>> b = ir.IRBuilder(f.append_basic_block())
>>> _ = b.ret(emit_op(b, "floor_divide", list(f.args), {}))
"""
from __future__ import annotations

import llvmlite.ir as ir

from lucid_codegen.kernels.vector_erf import emit_erf, emit_erfc
from lucid_codegen.kernels.vector_explog import emit_expm1, emit_int_pow, emit_log1p, emit_log2, emit_pow
from lucid_codegen.kernels.vector_math import (F32, I1, I32, I64, LLVM_FLOAT, LLVM_TYPE, call_intrinsic, const,
                          emit_exp, emit_log, emit_sigmoid, emit_tanh, is_nan, scalar_of, with_scalar)
from lucid_codegen.kernels.vector_trig import emit_cos, emit_sin
from lucid_codegen.kernels.vector_random import EMITTERS as POSITIONAL_EMITTERS

__all__ = ["emit_op", "SUPPORTED", "kind_of"]


def kind_of(ty) -> str:
    """'f' (float), 'i' (signed integer) or 'b' (bool, i1) for a scalar or vector type."""
    s = scalar_of(ty)
    if isinstance(s, ir.IntType):
        return "b" if s.width == 1 else "i"
    return "f"


def _int_limits(ty):
    bits = scalar_of(ty).width
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


# ------------------------------------------------------------------ max / min
def _extremum(b, x, y, larger: bool):
    kind = kind_of(x.type)
    if kind == "b":
        return b.or_(x, y) if larger else b.and_(x, y)
    if kind == "i":
        return b.select(b.icmp_signed(">=" if larger else "<=", x, y), x, y)
    # numpy and PyTorch: x if it wins strictly or x is NaN, else y (a tie gives y: the
    # sign of maximum(-0.0, 0.0) is y's), so a NaN on either side wins
    take_x = b.or_(b.fcmp_ordered(">" if larger else "<", x, y), is_nan(b, x))
    return b.select(take_x, x, y)


def emit_maximum(b, x, y):
    return _extremum(b, x, y, True)


def emit_minimum(b, x, y):
    return _extremum(b, x, y, False)


# ------------------------------------------------------------------ comparisons
_FCMP = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==", "ne": "!="}


def emit_compare(b, op, x, y):
    kind = kind_of(x.type)
    if kind == "f":  # ordered: false with NaN; ne is the unordered complement of eq
        return (b.fcmp_unordered if op == "ne" else b.fcmp_ordered)(_FCMP[op], x, y)
    return (b.icmp_signed if kind == "i" else b.icmp_unsigned)(_FCMP[op], x, y)


# ------------------------------------------------------------------ abs, sign
def emit_abs(b, x):
    if kind_of(x.type) == "f":
        return call_intrinsic(b, "fabs", [x])
    return b.select(b.icmp_signed("<", x, const(x.type, 0)), b.neg(x), x)


def emit_sign(b, x):
    ty, kind = x.type, kind_of(x.type)
    if kind == "b":
        return x
    if kind == "i":
        pos = b.zext(b.icmp_signed(">", x, const(ty, 0)), ty)
        neg = b.zext(b.icmp_signed("<", x, const(ty, 0)), ty)
        return b.sub(pos, neg)
    zero_or_nan = b.select(is_nan(b, x), x, const(ty, 0.0))  # numpy: sign(-0.0) is +0.0
    y = b.select(b.fcmp_ordered("<", x, const(ty, 0.0)), const(ty, -1.0), zero_or_nan)
    return b.select(b.fcmp_ordered(">", x, const(ty, 0.0)), const(ty, 1.0), y)


# ------------------------------------------------------------------ floor division
def _int_divmod(b, x, d):
    """(quotient, remainder) rounded toward minus infinity, safe for any d."""
    ty = x.type
    zero, one, minus_one = const(ty, 0), const(ty, 1), const(ty, -1)
    is0 = b.icmp_signed("==", d, zero)
    is_m1 = b.icmp_signed("==", d, minus_one)
    special = b.or_(is0, is_m1)
    safe = b.select(special, one, d)
    q, r = b.sdiv(x, safe), b.srem(x, safe)
    adjust = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("<", b.xor(r, safe), zero))
    q = b.select(adjust, b.sub(q, one), q)
    r = b.select(adjust, b.add(r, safe), r)
    q = b.select(is_m1, b.neg(x), b.select(is0, zero, q))
    r = b.select(special, zero, r)
    return q, r


def _float_mod_parts(b, x, y):
    """numpy's/PyTorch's fmod-based division up to the floor: (remainder, div).
    The remainder is PyTorch's: fmod, plus y when the signs differ (a zero keeps
    fmod's sign, the sign of x)."""
    ty = x.type
    mod = b.frem(x, y)
    mod_nonzero = b.fcmp_unordered("!=", mod, const(ty, 0.0))  # NaN counts as non-zero
    signs_differ = b.xor(b.fcmp_ordered("<", y, const(ty, 0.0)), b.fcmp_ordered("<", mod, const(ty, 0.0)))
    adjust = b.and_(mod_nonzero, signs_differ)
    div = b.fdiv(b.fsub(x, mod), y)
    div = b.select(adjust, b.fsub(div, const(ty, 1.0)), div)
    return b.select(adjust, b.fadd(mod, y), mod), div


def emit_floor_divide(b, x, y):
    if kind_of(x.type) == "i":
        return _int_divmod(b, x, y)[0]
    ty = x.type
    _, div = _float_mod_parts(b, x, y)
    fl = call_intrinsic(b, "floor", [div])
    fl = b.select(b.fcmp_ordered(">", b.fsub(div, fl), const(ty, 0.5)), b.fadd(fl, const(ty, 1.0)), fl)
    quotient = b.fdiv(x, y)
    zero = call_intrinsic(b, "copysign", [const(ty, 0.0), quotient])
    res = b.select(b.fcmp_unordered("!=", div, const(ty, 0.0)), fl, zero)
    return b.select(b.fcmp_ordered("==", y, const(ty, 0.0)), quotient, res)


def emit_remainder(b, x, y):
    if kind_of(x.type) == "i":
        return _int_divmod(b, x, y)[1]
    return _float_mod_parts(b, x, y)[0]  # y == 0: fmod gives NaN, as the reference


# ------------------------------------------------------------------ cast
def emit_cast(b, x, dtype: str):
    src = kind_of(x.type)
    dst_scalar = LLVM_TYPE[dtype]
    dst = with_scalar(x.type, dst_scalar)
    if scalar_of(x.type) == dst_scalar:
        return x
    if dtype == "bool":
        if src == "f":
            return b.fcmp_unordered("!=", x, const(x.type, 0.0))  # NaN is true
        return b.icmp_signed("!=", x, const(x.type, 0))
    if dtype in LLVM_FLOAT:
        if src == "f":
            return b.fpext(x, dst) if scalar_of(x.type) == F32 else b.fptrunc(x, dst)
        return b.uitofp(x, dst) if src == "b" else b.sitofp(x, dst)
    if src == "b":
        return b.zext(x, dst)
    if src == "i":
        return b.sext(x, dst) if scalar_of(x.type).width < dst_scalar.width else b.trunc(x, dst)
    lo, _ = _int_limits(dst)
    ok = b.and_(b.fcmp_ordered(">=", x, const(x.type, float(lo))),
                b.fcmp_ordered("<", x, const(x.type, -float(lo))))
    t = b.fptosi(b.select(ok, x, const(x.type, 0.0)), dst)
    return b.select(ok, t, const(dst, lo))


# ------------------------------------------------------------------ rounding, classification
def _rounding(intrinsic):
    def emit(b, x):
        return call_intrinsic(b, intrinsic, [x]) if kind_of(x.type) == "f" else x
    return emit


def _classify(test, int_value: bool):
    def emit(b, x):
        if kind_of(x.type) != "f":
            return const(with_scalar(x.type, I1), int(int_value))
        return test(b, x)
    return emit


def emit_isfinite(b, x):  # |x| < inf is false for inf and NaN
    return b.fcmp_ordered("<", call_intrinsic(b, "fabs", [x]), const(x.type, float("inf")))


def emit_rsqrt(b, x):
    return b.fdiv(const(x.type, 1.0), call_intrinsic(b, "sqrt", [x]))


def emit_power(b, x, y):
    return emit_pow(b, x, y) if kind_of(x.type) == "f" else emit_int_pow(b, x, y)


# ------------------------------------------------------------------ the table
def _arith(fop, iop, bop=None):
    def emit(b, x, y):
        kind = kind_of(x.type)
        if kind == "f":
            return getattr(b, fop)(x, y)
        return getattr(b, iop if kind == "i" else bop)(x, y)
    return emit


UNARY_EMITTERS = {
    "neg": lambda b, x: b.fneg(x) if kind_of(x.type) == "f" else b.neg(x),
    "sqrt": lambda b, x: call_intrinsic(b, "sqrt", [x]),  # one vsqrtps/pd: exact, NaN below 0
    "exp": emit_exp,
    "log": emit_log,
    "tanh": emit_tanh,
    "sigmoid": emit_sigmoid,
    "abs": emit_abs,
    "sign": emit_sign,
    "logical_not": lambda b, x: b.not_(x),
    "bitwise_not": lambda b, x: b.not_(x),
    "log2": emit_log2,
    "log1p": emit_log1p,
    "expm1": emit_expm1,
    "rsqrt": emit_rsqrt,
    "sin": emit_sin,
    "cos": emit_cos,
    "erf": emit_erf,
    "erfc": emit_erfc,
    "floor": _rounding("floor"),
    "ceil": _rounding("ceil"),
    "round": _rounding("roundeven"),
    "isnan": _classify(is_nan, False),
    "isfinite": _classify(emit_isfinite, True),
}
BINARY_EMITTERS = {
    "add": _arith("fadd", "add", "or_"),
    "sub": _arith("fsub", "sub"),
    "mul": _arith("fmul", "mul", "and_"),
    "div": lambda b, x, y: b.fdiv(x, y),
    "maximum": emit_maximum,
    "minimum": emit_minimum,
    "floor_divide": emit_floor_divide,
    "remainder": emit_remainder,
    "pow": emit_power,
    "logical_and": lambda b, x, y: b.and_(x, y),
    "logical_or": lambda b, x, y: b.or_(x, y),
    "logical_xor": lambda b, x, y: b.xor(x, y),
    "bitwise_and": lambda b, x, y: b.and_(x, y),
    "bitwise_or": lambda b, x, y: b.or_(x, y),
    "bitwise_xor": lambda b, x, y: b.xor(x, y),
}


def _unary(emit):
    return lambda b, args, attrs, index: emit(b, args[0])


def _binary(emit):
    return lambda b, args, attrs, index: emit(b, args[0], args[1])


def _compare(op):
    return lambda b, args, attrs, index: emit_compare(b, op, args[0], args[1])


def _positional(op, emit):
    def lower(b, args, attrs, index):
        if index is None:
            raise NotImplementedError(f"{op}: this kernel's loop does not give element positions "
                                      f"(only elementwise loops over the op's own shape do)")
        return emit(b, args[0], index(), attrs["dtype"])
    return lower


#: op name -> ``lower(builder, args, attrs, index)``: one entry per elementwise op (the
#: tables above feed it; an op of another shape of arguments adds its entry here)
LOWERINGS = {
    **{op: _unary(emit) for op, emit in UNARY_EMITTERS.items()},
    **{op: _binary(emit) for op, emit in BINARY_EMITTERS.items()},
    **{op: _compare(op) for op in _FCMP},
    **{op: _positional(op, emit) for op, emit in POSITIONAL_EMITTERS.items()},
    "select": lambda b, args, attrs, index: b.select(*args),
    "cast": lambda b, args, attrs, index: emit_cast(b, args[0], attrs["dtype"]),
}


def emit_op(b: ir.IRBuilder, op: str, args, attrs: dict, index=None):
    """The LLVM value of ``op(*args)`` (args in their compute types; the IR's type rules
    guarantee the dtypes each op accepts). The random ops also read the element's linear
    index in the loop: ``index()`` gives it (i64, or a vector of one per lane); a loop
    that cannot say (None) cannot run them."""
    lower = LOWERINGS.get(op)
    if lower is None:
        raise NotImplementedError(f"no native lowering for elementwise op {op!r}")
    return lower(b, args, attrs, index)


SUPPORTED = frozenset(LOWERINGS)
