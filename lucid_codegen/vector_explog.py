"""The exp/log family beyond ``exp`` and ``log``, built on their range reductions
(``vector_math``): ``log2``, ``log1p``, ``expm1`` and float ``pow``. Like everything in
``vector_math``, each takes and returns LLVM values of one float type, scalar or vector
alike, branch-free, with numpy's values at ±0, ±inf and NaN.

* ``log2 x = e + log(m) / ln2`` from log's own split x = 2^e m: exact for powers of two.
* ``log1p x = log u + (x - (u - 1)) / u`` with u = 1 + x rounded: the second term is
  the part of x that the rounding of u lost, so tiny x keep full relative accuracy
  (u == 1 gives x itself, -0.0 included).
* ``expm1``: exp's reduction x = n ln2 + r, then ``2^n expm1(r) + (2^n - 1)`` with
  ``expm1(r) = r (1 + r/2 + r^2/6 + ...)`` (so n = 0 gives the polynomial itself); for
  x above 20 (float32) / 40 (float64) ``e^x`` alone, below minus that, -1.
* ``pow``: C's ``pow`` special cases on top of ``e^(y log|x|)``. float64 needs log|x| to
  more than double precision (``y log|x|`` reaches ~709, where one ulp of the log is
  ~1e-13 of the result): it is formed as a double-double (the division's remainder by
  FMA, ln2 in two parts) and its low part is added after exp's range reduction.
  float32 is computed in float64 and rounded once.

>>> import llvmlite.ir as ir
>>> m = ir.Module(); f = ir.Function(m, ir.FunctionType(F64, [F64, F64]), "p")
>>> b = ir.IRBuilder(f.append_basic_block())
>>> _ = b.ret(emit_pow(b, *f.args))
"""
from __future__ import annotations

import math

from .vector_math import (F32, F64, exp_reduce, pow2i, scale_pow2, atanh_series, call_intrinsic,
                          const, emit_exp, emit_log, fma, horner, int_type_for, log_parts,
                          log_specials, scalar_of, select_nan, with_scalar)

__all__ = ["emit_log2", "emit_log1p", "emit_expm1", "emit_pow"]

LN2_HI = 0.6931471805598903     # ln 2 with its last 11 bits zero: e * LN2_HI is exact
LN2_LO = 5.497923018708371e-14  # ln 2 - LN2_HI


def emit_log2(b, x):
    ty = x.type
    ef, sv, _, terms = log_parts(b, x)
    logm = b.fmul(b.fmul(sv, const(ty, 2.0)), atanh_series(b, b.fmul(sv, sv), terms))
    return log_specials(b, x, fma(b, logm, const(ty, 1.0 / math.log(2.0)), ef))


def emit_log1p(b, x):
    ty = x.type
    one = const(ty, 1.0)
    u = b.fadd(x, one)
    log_u = emit_log(b, u)
    lost = b.fsub(x, b.fsub(u, one))
    y = b.fadd(log_u, b.fdiv(lost, u))
    y = b.select(b.fcmp_ordered("==", u, one), x, y)
    # u <= 0 or inf: log u is the answer (-inf, NaN, inf) and the correction undefined
    finite_pos = b.and_(b.fcmp_ordered(">", u, const(ty, 0.0)), b.fcmp_ordered("<", u, const(ty, math.inf)))
    return select_nan(b, x, b.select(finite_pos, y, log_u))


def emit_expm1(b, x):
    ty = x.type
    f32 = scalar_of(ty) == F32
    terms, big = (8, 20.0) if f32 else (14, 40.0)
    n, r = exp_reduce(b, x)
    q = b.fmul(r, horner(b, r, [1.0 / math.factorial(k + 1) for k in range(terms - 1, -1, -1)]))
    # |n| <= 60 where this is used; elsewhere the bits are garbage and not selected
    t = pow2i(b, b.fptosi(n, int_type_for(ty)), ty)
    mid = fma(b, q, t, b.fsub(t, const(ty, 1.0)))
    y = b.select(b.fcmp_ordered("==", n, const(ty, 0.0)), q, mid)
    y = b.select(b.fcmp_ordered(">", x, const(ty, big)), scale_pow2(b, b.fadd(q, const(ty, 1.0)), n), y)
    y = b.select(b.fcmp_ordered("<", x, const(ty, -big)), const(ty, -1.0), y)
    y = b.select(b.fcmp_ordered("==", x, const(ty, 0.0)), x, y)  # keeps -0.0
    return select_nan(b, x, y)


# ------------------------------------------------------------------ pow
def _two_sum(b, a, c):
    """(s, e) with s = fl(a + c) and a + c = s + e exactly (Knuth)."""
    s = b.fadd(a, c)
    bb = b.fsub(s, a)
    return s, b.fadd(b.fsub(a, b.fsub(s, bb)), b.fsub(c, bb))


def _two_prod(b, a, c):
    """(p, e) with p = fl(a c) and a c = p + e exactly (one FMA)."""
    p = b.fmul(a, c)
    return p, fma(b, a, c, b.fneg(p))


def _log_double_double(b, ax):
    """log(ax) as hi + lo (|lo| <= ulp(hi)/2) for finite ax > 0 (float64), to ~2^-100.

    log m = 2 s + 2 s^3/3 + 2 (s^5/5 + ...): s to double-double from the division's
    exact remainder, s^3/3 (up to 0.5% of log m) in double-double too, the rest (< 2e-4
    of log m) in double."""
    ty = ax.type
    ef, s, m, terms = log_parts(b, ax)
    one, two = const(ty, 1.0), const(ty, 2.0)
    f = b.fsub(m, one)                                  # exact (m in [0.7, 1.42])
    d, d_lo = _two_sum(b, m, one)                       # m + 1 = d + d_lo
    rem = fma(b, b.fneg(s), d, f)                       # f - s d, exact
    rem = fma(b, b.fneg(s), d_lo, rem)
    s_lo = b.fdiv(rem, d)                               # s + s_lo = f / (m + 1)
    z, z_lo = _two_prod(b, s, s)
    c, c_lo = _two_prod(b, s, z)                        # s^3 = c + c_lo (+ 2^-106)
    c_lo = fma(b, s, z_lo, c_lo)
    third, third_lo = 1.0 / 3.0, 1.850371707708594e-17  # 1/3 - third, exactly rounded
    t3, t3_lo = _two_prod(b, c, const(ty, third))      # s^3 / 3 = t3 + t3_lo
    t3_lo = fma(b, c_lo, const(ty, third), fma(b, c, const(ty, third_lo), t3_lo))
    t3_lo = fma(b, z, s_lo, t3_lo)                      # (s + s_lo)^3/3 - s^3/3
    rest = b.fmul(b.fmul(c, z), atanh_series(b, z, terms + 3, first=2))  # s^5/5 + ...
    h1, e1 = _two_sum(b, b.fmul(ef, const(ty, LN2_HI)), b.fmul(two, s))
    h2, e2 = _two_sum(b, h1, b.fmul(two, t3))
    lo = b.fmul(two, b.fadd(b.fadd(s_lo, t3_lo), rest))
    lo = b.fadd(b.fadd(e1, e2), fma(b, ef, const(ty, LN2_LO), lo))
    return _two_sum(b, h2, lo)


def _pow_f64(b, x, y):
    ty = x.type
    zero, one, inf = const(ty, 0.0), const(ty, 1.0), const(ty, math.inf)
    ax = call_intrinsic(b, "fabs", [x])
    hi, lo = _log_double_double(b, ax)
    # log 0 = -inf, log inf = inf (their double-double parts are meaningless)
    hi = b.select(b.fcmp_ordered("==", ax, zero), const(ty, -math.inf), hi)
    hi = b.select(b.fcmp_unordered("==", ax, inf), ax, hi)                  # inf, or NaN
    p = b.fmul(y, hi)
    p_lo = fma(b, y, lo, fma(b, y, hi, b.fneg(p)))
    finite = b.fcmp_ordered("<", call_intrinsic(b, "fabs", [p]), inf)
    core = emit_exp(b, p, b.select(finite, p_lo, zero))
    # signs and C's special cases
    y_int = b.fcmp_ordered("==", call_intrinsic(b, "floor", [y]), y)       # inf counts, NaN not
    half = b.fmul(y, const(ty, 0.5))
    y_odd = b.and_(y_int, b.fcmp_unordered("!=", call_intrinsic(b, "floor", [half]), half))
    ity = int_type_for(ty)
    sign_bit = b.icmp_signed("<", b.bitcast(x, ity), const(ity, 0))
    out = b.select(b.and_(sign_bit, y_odd), b.fneg(core), core)
    finite_neg = b.and_(b.fcmp_ordered("<", x, zero), b.fcmp_ordered(">", x, b.fneg(inf)))
    y_fin = b.fcmp_ordered("<", call_intrinsic(b, "fabs", [y]), inf)
    out = b.select(b.and_(finite_neg, b.and_(y_fin, b.not_(y_int))), const(ty, math.nan), out)
    unit_inf = b.and_(b.fcmp_ordered("==", ax, one), b.fcmp_ordered("==", call_intrinsic(b, "fabs", [y]), inf))
    out = b.select(unit_inf, one, out)
    out = b.select(b.fcmp_ordered("==", x, one), one, out)
    return b.select(b.fcmp_ordered("==", y, zero), one, out)


def emit_pow(b, x, y):
    """C's ``pow(x, y)`` for float operands (see the module docstring)."""
    if scalar_of(x.type) == F64:
        return _pow_f64(b, x, y)
    wide = with_scalar(x.type, F64)
    return b.fptrunc(_pow_f64(b, b.fpext(x, wide), b.fpext(y, wide)), x.type)


def emit_int_pow(b, x, y):
    """``x ** y`` for signed integers, wrapping; negative y: 1 for x == 1, ±1 for x == -1,
    else 0 (PyTorch's values). Square-and-multiply over every bit of y, branch-free."""
    ty = x.type
    bits = scalar_of(ty).width
    one, zero = const(ty, 1), const(ty, 0)
    result, base, e = one, x, y
    for _ in range(bits - 1):
        bit = b.icmp_signed("!=", b.and_(e, one), zero)
        result = b.select(bit, b.mul(result, base), result)
        base = b.mul(base, base)
        e = b.lshr(e, one)
    odd = b.icmp_signed("!=", b.and_(y, one), zero)
    minus_one = const(ty, -1)
    negative = b.select(b.icmp_signed("==", x, one), one,
                        b.select(b.icmp_signed("==", x, minus_one), b.select(odd, minus_one, one), zero))
    return b.select(b.icmp_signed("<", y, zero), negative, result)
