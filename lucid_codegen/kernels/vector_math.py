"""Float math in LLVM IR, scalar or vector alike: the transcendentals and helpers that
the op table (``lucid_codegen.kernels.lowering``) and the GEMM epilogue emit.

Every function here takes an ``IRBuilder`` and LLVM values of one float type
``T`` (``float``/``double`` or ``<N x float>``/``<N x double>``) and returns a
value of ``T``. The same code therefore serves the vector body of a kernel and
its scalar remainder loop, so an element gets the same bits whichever path
computed it (that is what makes thread splits bit-identical).

Transcendentals are branch-free polynomials (explicit ``llvm.fma`` calls, no
fast-math flags):

* ``exp``: x = n ln2 + r (ln2 split in two), Taylor polynomial of e^r on
  |r| <= ln2/2 (degree 7 for f32, 13 for f64), times 2^n built from exponent
  bits in two halves (so results in the subnormal range come out right).
* ``log``: x = 2^e m with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s) with
  s = (m-1)/(m+1), |s| <= 0.172, odd series (to s^11 for f32, s^21 for f64).
  Subnormal inputs are scaled first.
* ``tanh``: Cephes rational/polynomial for |x| < 0.625, else
  1 - 2/(e^{2|x|} + 1), sign restored.
* ``sigmoid``: exactly the reference formula: e = exp(-|x|), 1/(1+e) or e/(1+e).

NaN/Inf follow numpy: exp(inf)=inf, exp(-inf)=0, log(0)=-inf, log(x<0)=nan,
log(inf)=inf, NaN in -> NaN out; ``maximum`` propagates a NaN from either side
and comparisons with NaN are false (``ne``: true).

>>> import llvmlite.ir as ir
>>> m = ir.Module(); f = ir.Function(m, ir.FunctionType(ir.FloatType(), [ir.FloatType()]), "e")
>>> b = ir.IRBuilder(f.append_basic_block())
>>> _ = b.ret(emit_exp(b, f.args[0]))
"""
from __future__ import annotations

import math

import llvmlite.ir as ir

F32 = ir.FloatType()
F64 = ir.DoubleType()
I1 = ir.IntType(1)
I32 = ir.IntType(32)
I64 = ir.IntType(64)

I8 = ir.IntType(8)

LLVM_FLOAT = {"float32": F32, "float64": F64}
#: the type values are computed in (bool as i1) and the type they are stored as
#: (bool as one byte, numpy's layout)
LLVM_TYPE = {**LLVM_FLOAT, "int32": I32, "int64": I64, "bool": I1}
LLVM_MEMORY = {**LLVM_FLOAT, "int32": I32, "int64": I64, "bool": I8}
ITEMSIZE = {"float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1}


# ------------------------------------------------------------------ type helpers
def scalar_of(ty):
    return ty.element if isinstance(ty, ir.VectorType) else ty


def lanes_of(ty) -> int:
    return ty.count if isinstance(ty, ir.VectorType) else 0


def with_scalar(ty, scalar):
    """``ty``'s shape (scalar or vector of the same lane count) with element ``scalar``."""
    return ir.VectorType(scalar, ty.count) if isinstance(ty, ir.VectorType) else scalar


def const(ty, value):
    """A constant of ``ty`` (a splat for vector types); ints and bools take whole values."""
    s = scalar_of(ty)
    if isinstance(s, ir.IntType):
        value = int(value)
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [ir.Constant(s, value)] * ty.count)
    return ir.Constant(ty, value)


def to_compute(b, v, dtype: str):
    """A loaded value in its compute type: a bool byte becomes i1 (any non-zero byte is true)."""
    return b.icmp_unsigned("!=", v, const(v.type, 0)) if dtype == "bool" else v


def to_memory(b, v, dtype: str):
    """A computed value in its stored type: an i1 becomes a 0/1 byte."""
    return b.zext(v, with_scalar(v.type, I8)) if dtype == "bool" else v


def mem_align(elem) -> int:
    """The natural alignment of one stored element of LLVM type ``elem``."""
    if isinstance(elem, ir.IntType):
        return max(1, elem.width // 8)
    return 4 if elem == F32 else 8


def int_type_for(ty):
    bits = 32 if scalar_of(ty) == F32 else 64
    return with_scalar(ty, ir.IntType(bits))


def _intrinsic_name(base: str, ty) -> str:
    s = "f32" if scalar_of(ty) == F32 else "f64"
    return f"llvm.{base}.v{ty.count}{s}" if isinstance(ty, ir.VectorType) else f"llvm.{base}.{s}"


def call_intrinsic(b: ir.IRBuilder, base: str, args, ty=None):
    """Call ``llvm.<base>`` overloaded on ``ty`` (declared as a plain function)."""
    ty = ty or args[0].type
    module = b.module
    name = _intrinsic_name(base, ty)
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ty, [a.type for a in args]), name)
    return b.call(fn, args)


def fma(b, x, y, z):
    return call_intrinsic(b, "fma", [x, y, z])


def horner(b, x, coeffs):
    """c0*x^k + ... + ck by FMAs (coeffs highest degree first)."""
    acc = const(x.type, coeffs[0])
    for c in coeffs[1:]:
        acc = fma(b, acc, x, const(x.type, c))
    return acc


def is_nan(b, x):
    return b.fcmp_unordered("uno", x, x)


def select_nan(b, x, value):
    """``x`` where x is NaN, else ``value`` (NaN inputs propagate unchanged)."""
    return b.select(is_nan(b, x), x, value)


# ------------------------------------------------------------------ exp
def pow2i(b, n_int, ty):
    """2^n as a float of ``ty`` for n already inside the normal exponent range."""
    s = scalar_of(ty)
    mant, bias = (23, 127) if s == F32 else (52, 1023)
    ity = n_int.type
    bits = b.shl(b.add(n_int, const(ity, bias)), const(ity, mant))
    return b.bitcast(bits, ty)


def exp_reduce(b, x, clamp: bool = True):
    """x = n ln2 + r, |r| <= ln2/2 (ln2 in two parts, x clamped to where e^x is neither
    0 nor inf yet; ``clamp=False`` for a caller whose x never leaves that range):
    returns (n as a float, r)."""
    ty = x.type
    if scalar_of(ty) == F32:
        lo, hi, c1, c2 = -104.0, 89.0, 0.693359375, -2.12194440e-4
    else:
        lo, hi, c1, c2 = -746.0, 710.0, 6.93145751953125e-1, 1.42860682030941723212e-6
    xc = x
    if clamp:
        xc = call_intrinsic(b, "maxnum", [xc, const(ty, lo)])
        xc = call_intrinsic(b, "minnum", [xc, const(ty, hi)])
    n = call_intrinsic(b, "rint", [b.fmul(xc, const(ty, 1.0 / math.log(2.0)))])
    r = fma(b, n, const(ty, -c1), xc)
    return n, fma(b, n, const(ty, -c2), r)


def scale_pow2(b, p, n):
    """p * 2^n for an integer-valued float n in the range ``exp_reduce`` gives, in two
    halves (so results in the subnormal range come out right)."""
    ty = p.type
    ni = b.fptosi(n, int_type_for(ty))
    n1 = b.ashr(ni, const(ni.type, 1))
    n2 = b.sub(ni, n1)
    return b.fmul(b.fmul(p, pow2i(b, n1, ty)), pow2i(b, n2, ty))


def exp_poly(b, r):
    """e^r for |r| <= ln2/2 (``exp_reduce``'s remainder): Taylor to the dtype's precision."""
    taylor = 7 if scalar_of(r.type) == F32 else 13
    return horner(b, r, [1.0 / math.factorial(k) for k in range(taylor, -1, -1)])


def emit_exp(b, x, x_lo=None):
    """e^x; with ``x_lo``, e^(x + x_lo) for a small correction ``x_lo`` (the low part of
    a double-double argument, as ``pow`` makes)."""
    n, r = exp_reduce(b, x)
    if x_lo is not None:
        r = b.fadd(r, x_lo)
    return select_nan(b, x, scale_pow2(b, exp_poly(b, r), n))


# ------------------------------------------------------------------ log
def log_parts(b, x):
    """log x = e ln2 + log m = e ln2 + 2 atanh(s) for x > 0 (finite), m in
    [sqrt(1/2), sqrt(2)], s = (m - 1)/(m + 1): returns (e as a float, s, m, the number
    of series terms that reach the dtype's precision)."""
    ty = x.type
    s = scalar_of(ty)
    ity = int_type_for(ty)
    if s == F32:
        mant, bias, tiny, scale_bits, terms = 23, 127, 1.1754943508222875e-38, 24, 6
    else:
        mant, bias, tiny, scale_bits, terms = 52, 1023, 2.2250738585072014e-308, 54, 11
    sub = b.fcmp_ordered("<", x, const(ty, tiny))
    xs = b.select(sub, b.fmul(x, const(ty, float(2 ** scale_bits))), x)
    bits = b.bitcast(xs, ity)
    e = b.sub(b.lshr(bits, const(ity, mant)), const(ity, bias))
    e = b.sub(e, b.select(sub, const(ity, scale_bits), const(ity, 0)))
    mbits = b.or_(b.and_(bits, const(ity, (1 << mant) - 1)), const(ity, bias << mant))
    m = b.bitcast(mbits, ty)                     # in [1, 2)
    big = b.fcmp_ordered(">", m, const(ty, math.sqrt(2.0)))
    m = b.select(big, b.fmul(m, const(ty, 0.5)), m)
    e = b.add(e, b.select(big, const(ity, 1), const(ity, 0)))
    f = b.fsub(m, const(ty, 1.0))
    sv = b.fdiv(f, b.fadd(m, const(ty, 1.0)))
    return b.sitofp(e, ty), sv, m, terms


def atanh_series(b, z, terms: int, first: int = 0):
    """sum_{k >= first} z^(k - first) / (2k + 1): 2 atanh(s) = 2s * atanh_series(s^2)."""
    return horner(b, z, [1.0 / (2 * k + 1) for k in range(terms - 1, first - 1, -1)])


def log_specials(b, x, y):
    """``y`` (a log of x computed for x > 0) with numpy's values elsewhere: 0 -> -inf,
    < 0 -> nan, inf -> inf, nan -> nan."""
    ty = x.type
    y = b.select(b.fcmp_ordered("==", x, const(ty, 0.0)), const(ty, -math.inf), y)
    y = b.select(b.fcmp_ordered("<", x, const(ty, 0.0)), const(ty, math.nan), y)
    y = b.select(b.fcmp_ordered("==", x, const(ty, math.inf)), x, y)
    return select_nan(b, x, y)


def emit_log(b, x):
    ty = x.type
    ef, sv, _, terms = log_parts(b, x)
    series = atanh_series(b, b.fmul(sv, sv), terms)
    logm = b.fmul(b.fmul(sv, const(ty, 2.0)), series)
    return log_specials(b, x, fma(b, ef, const(ty, math.log(2.0)), logm))


# ------------------------------------------------------------------ tanh, sigmoid
def emit_tanh(b, x):
    ty = x.type
    s = scalar_of(ty)
    ax = call_intrinsic(b, "fabs", [x])
    z = b.fmul(x, x)
    if s == F32:
        p = horner(b, z, [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                          1.33314422036e-1, -3.33332819422e-1])
        small = fma(b, b.fmul(p, z), x, x)
    else:
        num = horner(b, z, [-9.64399179425052238628e-1, -9.92877231001918586564e1,
                            -1.61468768441708447952e3])
        den = horner(b, z, [1.0, 1.12811678491632931402e2, 2.23548839060100448583e3,
                            4.84406305325125486048e3])
        small = fma(b, b.fmul(z, b.fdiv(num, den)), x, x)
    # e^(2|x|) for the large branch: 2|x| clamped where tanh is 1 to the last bit (1 - 2e-35
    # at 40; a NaN becomes 40 and ``select_nan`` returns it below), so e^(2|x|) is a
    # normal number and one power-of-two scaling does (no subnormal halves, no overflow)
    top = 40.0 if s == F32 else 400.0
    n, r = exp_reduce(b, call_intrinsic(b, "minnum", [b.fmul(ax, const(ty, 2.0)), const(ty, top)]))
    e = b.fmul(exp_poly(b, r), pow2i(b, b.fptosi(n, int_type_for(ty)), ty))
    large = b.fsub(const(ty, 1.0), b.fdiv(const(ty, 2.0), b.fadd(e, const(ty, 1.0))))
    large = call_intrinsic(b, "copysign", [large, x])
    y = b.select(b.fcmp_ordered("<", ax, const(ty, 0.625)), small, large)
    y = call_intrinsic(b, "copysign", [y, x])  # tanh(-0) = -0 (the polynomial gives +0)
    return select_nan(b, x, y)


def emit_sigmoid(b, x):
    ty = x.type
    ax = call_intrinsic(b, "fabs", [x])
    e = emit_exp(b, b.fneg(ax))
    one = const(ty, 1.0)
    d = b.fadd(one, e)
    pos = b.fdiv(one, d)
    neg = b.fdiv(e, d)
    y = b.select(b.fcmp_ordered(">=", x, const(ty, 0.0)), pos, neg)
    return select_nan(b, x, y)
