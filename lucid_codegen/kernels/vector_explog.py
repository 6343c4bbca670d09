"""The exp/log family beyond ``exp`` and ``log``, built on their range reductions
(``vector_math``): ``log2``, ``log1p``, ``expm1`` and float ``pow``. Like everything in
``vector_math``, each takes and returns LLVM values of one float type, scalar or vector
alike, branch-free, with numpy's values at ±0, ±inf and NaN.

* ``log2 x = e + log(m) / ln2`` from log's own split x = 2^e m, log m from pow's
  double-double log: exact for powers of two, within an ulp elsewhere.
* ``log1p x = log u + u_lo / u`` with 1 + x = u + u_lo exactly (two-sum) and log u
  as a double-double (see ``pow``): tiny x keep full relative accuracy (u == 1 gives x
  itself, -0.0 included). float32 is computed in float64 and rounded once.
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

from lucid_codegen.kernels.vector_math import (F32, F64, exp_reduce, pow2i, scale_pow2, atanh_series, call_intrinsic,
                          const, emit_exp, fma, horner, int_type_for, log_parts,
                          log_specials, scalar_of, select_nan, with_scalar)

__all__ = ["emit_log2", "emit_log1p", "emit_expm1", "emit_pow"]

LN2_HI = 0.6931471805598903     # ln 2 with its last 11 bits zero: e * LN2_HI is exact
LN2_LO = 5.497923018708371e-14  # ln 2 - LN2_HI
LOG2E_HI = 1.4426950408889634   # 1/ln 2 = LOG2E_HI + LOG2E_LO
LOG2E_LO = 2.0355273740931033e-17


def emit_log2(b, x):
    """``e + log(m) / ln2`` with log m as a double-double (see ``pow``) times 1/ln2 in two
    parts, in float64 (float32 rounded once): within an ulp, and exact at powers of two."""
    if scalar_of(x.type) == F32:
        return b.fptrunc(emit_log2(b, b.fpext(x, with_scalar(x.type, F64))), x.type)
    ty = x.type
    ef, m_hi, m_lo = _log_m_double_double(b, x)
    t, t_lo = _two_prod(b, m_hi, const(ty, LOG2E_HI))
    t_lo = fma(b, m_hi, const(ty, LOG2E_LO), fma(b, m_lo, const(ty, LOG2E_HI), t_lo))
    y, y_lo = _two_sum(b, ef, t)
    return log_specials(b, x, b.fadd(y, b.fadd(y_lo, t_lo)))


def emit_log1p(b, x):
    if scalar_of(x.type) == F32:
        return b.fptrunc(emit_log1p(b, b.fpext(x, with_scalar(x.type, F64))), x.type)
    ty = x.type
    one = const(ty, 1.0)
    u, u_lo = _two_sum(b, x, one)                       # 1 + x = u + u_lo exactly
    hi, lo = _log_double_double(b, u)
    y = b.fadd(hi, b.fadd(lo, b.fdiv(u_lo, u)))         # log(u + u_lo) = log u + u_lo/u + ...
    y = b.select(b.fcmp_ordered("==", u, one), x, y)    # |x| < ulp(1): x itself (-0.0 too)
    # u <= 0 or inf: log's own special values (-inf, NaN, inf)
    finite_pos = b.and_(b.fcmp_ordered(">", u, const(ty, 0.0)), b.fcmp_ordered("<", u, const(ty, math.inf)))
    return select_nan(b, x, b.select(finite_pos, y, log_specials(b, u, y)))


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


def _log_m_double_double(b, ax):
    """log x = e ln2 + log m for finite x > 0 (float64): (e, hi, lo) with log m = hi + lo
    to ~2^-100 relative.

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
    hi, e1 = _two_sum(b, b.fmul(two, s), b.fmul(two, t3))
    lo = b.fadd(e1, b.fmul(two, b.fadd(b.fadd(s_lo, t3_lo), rest)))
    return ef, hi, lo


def _log_double_double(b, ax):
    """log(ax) as hi + lo (|lo| <= ulp(hi)/2) for finite ax > 0 (float64), to ~2^-100."""
    ty = ax.type
    ef, m_hi, m_lo = _log_m_double_double(b, ax)
    h, e1 = _two_sum(b, b.fmul(ef, const(ty, LN2_HI)), m_hi)
    lo = b.fadd(e1, fma(b, ef, const(ty, LN2_LO), m_lo))
    return _two_sum(b, h, lo)


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
    # p_lo matters only where e^p is neither 0 nor inf (elsewhere it may be huge, or NaN)
    in_range = b.fcmp_ordered("<", call_intrinsic(b, "fabs", [p]), const(ty, 1000.0))
    core = emit_exp(b, p, b.select(in_range, p_lo, zero))
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
