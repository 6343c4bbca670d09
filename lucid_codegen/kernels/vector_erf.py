"""``erf`` in LLVM IR, scalar or vector alike (see ``vector_math``), branch-free.

float64, the pieces of ``erf_coefficients.SMALL`` / ``TAIL``:

* |x| <= 1: ``x P(x^2)``, P interpolating erf(x)/x (``erf_coefficients.SMALL``);
* 1 < |x| < 6: ``1 - e^{-x^2} R(|x|)``, R interpolating erfcx = erfc(x) e^{x^2} on
  [1, 2.5] or [2.5, 6] (``erf_coefficients.TAIL``; each lane picks its piece's
  coefficients, so one polynomial is evaluated). The rounding of x^2 costs at most
  ~4e-16 relative on erfc <= 0.16, well under half an ulp of the result;
* |x| >= 6: ±1 (erfc(6) = 2e-17 is below half an ulp of 1).

float32, computed in float32 (twice the lanes of float64, half the polynomial degree;
within ~1.5 ulp of the correctly rounded value), ``SMALL32`` / ``TAIL32``:

* |x| <= 1: ``fma(x, Q(x^2), x)`` with Q = erf(x)/x - 1 (the leading 1 exact);
* 1 < |x| < 3.92: ``1 - e^{-x^2} R(|x|)``, one piece;
* |x| >= 3.92: ±1 (erfc(3.92) = 2.6e-8 is below half an ulp of 1).

Sign restored with copysign (``erf(-0.0) = -0.0``); NaN stays NaN.

>>> import llvmlite.ir as ir
>>> m = ir.Module(); f = ir.Function(m, ir.FunctionType(F64, [F64]), "e")
>>> b = ir.IRBuilder(f.append_basic_block())
>>> _ = b.ret(emit_erf(b, f.args[0]))
"""
from __future__ import annotations

from lucid_codegen.kernels.erf_coefficients import ERFC32, ERFC64, SMALL, SMALL32, TAIL, TAIL32
from lucid_codegen.kernels.vector_math import (F64, call_intrinsic, const, emit_exp, exp_poly, exp_reduce, fma,
                                               int_type_for, pow2i, scalar_of, select_nan)

__all__ = ["emit_erf", "emit_erfc"]


def _centred(b, t, lo, hi):
    """u = (t - c) / h for the interval [lo, hi] (lo, hi: Python floats or LLVM values)."""
    ty = t.type
    c = const(ty, (lo + hi) / 2) if isinstance(lo, float) else lo
    inv_h = const(ty, 2 / (hi - lo)) if isinstance(lo, float) else hi
    return b.fmul(b.fsub(t, c), inv_h)


def _horner_low_first(b, u, coeffs):
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = fma(b, acc, u, c)
    return acc


def _erf_f64(b, x):
    ty = x.type
    one = const(ty, 1.0)
    ax = call_intrinsic(b, "fabs", [x])
    # |x| <= 1
    lo, hi, coeffs = SMALL
    p = _horner_low_first(b, _centred(b, b.fmul(x, x), lo, hi), [const(ty, c) for c in coeffs])
    small = b.fmul(ax, p)
    # 1 < |x| < 6: the piece's coefficients per lane
    (lo0, hi0, c0), (lo1, hi1, c1) = TAIL
    second = b.fcmp_ordered(">", ax, const(ty, hi0))
    pick = lambda a, z: b.select(second, const(ty, z), const(ty, a))  # noqa: E731
    t = call_intrinsic(b, "minnum", [call_intrinsic(b, "maxnum", [ax, one]), const(ty, hi1)])
    u = _centred(b, t, pick((lo0 + hi0) / 2, (lo1 + hi1) / 2), pick(2 / (hi0 - lo0), 2 / (hi1 - lo1)))
    r = _horner_low_first(b, u, [pick(a, z) for a, z in zip(c0, c1)])
    erfc = b.fmul(emit_exp(b, b.fneg(b.fmul(t, t))), r)
    y = b.select(b.fcmp_ordered("<=", ax, one), small, b.fsub(one, erfc))
    y = b.select(b.fcmp_ordered(">=", ax, const(ty, hi1)), one, y)
    return select_nan(b, x, call_intrinsic(b, "copysign", [y, x]))


def _erf_f32(b, x):
    ty = x.type
    one = const(ty, 1.0)
    ax = call_intrinsic(b, "fabs", [x])
    small = fma(b, x, _horner_low_first(b, b.fmul(x, x), [const(ty, c) for c in SMALL32[2]]), x)
    lo, hi, coeffs = TAIL32
    t = call_intrinsic(b, "minnum", [call_intrinsic(b, "maxnum", [ax, one]), const(ty, hi)])
    u = fma(b, t, const(ty, 2 / (hi - lo)), const(ty, -(hi + lo) / (hi - lo)))
    r = _horner_low_first(b, u, [const(ty, c) for c in coeffs])
    erfc = b.fmul(_exp_of_tail(b, b.fmul(b.fneg(t), t)), r)
    y = b.select(b.fcmp_ordered(">", ax, one), b.fsub(one, erfc), small)  # NaN: small's NaN
    y = b.select(b.fcmp_ordered(">=", ax, const(ty, hi)), one, y)
    return call_intrinsic(b, "copysign", [y, x])


def _exp_of_tail(b, z):
    """e^z for the tail's z = -t², t in [1, 3.92] (float32): ``emit_exp``'s reduction and
    polynomial without what this range never needs (clamping, NaN, the two-step scale
    that keeps subnormal results: e^z >= 2e-7 here), so ``erf`` costs fewer operations
    (it is GELU's whole cost; same values as ``emit_exp``, the scale is exact)."""
    n, r = exp_reduce(b, z, clamp=False)
    return b.fmul(exp_poly(b, r), pow2i(b, b.fptosi(n, int_type_for(z.type)), z.type))


def emit_erf(b, x):
    return _erf_f64(b, x) if scalar_of(x.type) == F64 else _erf_f32(b, x)


#: where erfc underflows to 0 for good (e^{-z^2} below the least subnormal)
_ERFC_ZERO = {"f32": 10.5, "f64": 27.5}


def _gaussian(b, x):
    """e^{-x^2} with x^2 exact as hi + lo: ``e^{-hi}`` is emitted exactly as the graph's
    ``exp(neg(mul(x, x)))`` (erfc's gradient, GELU's backward) emits it, so a kernel
    computing both computes it once (LLVM merges the identical instructions), and
    ``e^{-hi} (1 - lo)`` adds lo's part (|lo| <= 2^-24 hi in float32). Where x^2
    overflows, lo is NaN or -inf, clamped into [-1, 1]: e^{-hi} is 0 there, and so is
    the result."""
    ty = x.type
    hi = b.fmul(x, x)
    e_hi = emit_exp(b, b.fneg(hi))
    lo = fma(b, x, x, b.fneg(hi))
    lo = call_intrinsic(b, "minnum", [call_intrinsic(b, "maxnum", [lo, const(ty, -1.0)]), const(ty, 1.0)])
    return fma(b, b.fneg(e_hi), lo, e_hi)


def emit_erfc(b, x):
    """``erfc(x) = 1 - erf(x)``, one branch-free formula (``erf_coefficients.ERFC32`` /
    ``ERFC64``): for z = |x|, ``t e^{-z^2} S(2t - 1)`` with t = 1 / (1 + p z); z^2 is
    carried as hi + lo (an FMA) into the exponential, so the tail keeps its relative
    accuracy down to the underflow (erfc(10) = 2e-45 in float32); its e^{-x^2} is shared
    with a gradient's (:func:`_gaussian`). Negative x:
    ``2 - erfc(-x)``; erfc(+inf) = 0, erfc(-inf) = 2, NaN stays NaN."""
    ty = x.type
    f64 = scalar_of(ty) == F64
    p, coeffs = ERFC64 if f64 else ERFC32
    one = const(ty, 1.0)
    z = call_intrinsic(b, "minnum", [call_intrinsic(b, "fabs", [x]), const(ty, _ERFC_ZERO["f64" if f64 else "f32"])])
    t = b.fdiv(one, fma(b, z, const(ty, p), one))
    s = _horner_low_first(b, fma(b, t, const(ty, 2.0), const(ty, -1.0)), [const(ty, c) for c in coeffs])
    y = b.fmul(b.fmul(t, s), _gaussian(b, x))
    y = b.select(b.fcmp_ordered("<", x, const(ty, 0.0)), b.fsub(const(ty, 2.0), y), y)
    if f64:  # |x| < 1/2: 1 - erf(x) (at most 0.52 taken from 1), where the product above
        lo_, hi_, small = SMALL  # would lose a few ulps of float64 near 1
        erf = b.fmul(x, _horner_low_first(b, _centred(b, b.fmul(x, x), lo_, hi_), [const(ty, c) for c in small]))
        y = b.select(b.fcmp_ordered("<", z, const(ty, 0.5)), b.fsub(one, erf), y)
    return select_nan(b, x, y)
