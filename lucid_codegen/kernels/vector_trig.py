"""``sin`` and ``cos`` in LLVM IR, scalar or vector alike (see ``vector_math``).

Both are computed in float64 (float32 operands are widened, so their results are
rounded once, from a float64 value accurate to ~1e-16):

* reduction: n = rint(x 2/pi), r = x - n pi/2 with pi/2 in three float64 parts and an
  FMA per part. ``x - n P1`` is exact (both are multiples of 2^-52 and the difference is
  below 2), so r keeps ~53 correct bits for |x| up to 2^30 (~1.07e9);
* Taylor polynomials of sin r and cos r on |r| <= pi/4 (to r^17 / r^18 for float64, to
  r^11 / r^12 where the result is rounded to float32), cos as
  ``w + ((1 - w) - r^2/2) + r^4 C(r^2)`` with ``w = 1 - r^2/2``;
* the quadrant n mod 4 picks ±sin r or ±cos r.

Lanes with |x| > 2^30 (or infinite) would need a reduction with hundreds of bits of
pi (Payne-Hanek). They take a slow path instead: only when a vector holds one, a branch
calls the C library's ``sin``/``cos`` (``llvm.sin``/``llvm.cos``, one call per lane)
and keeps its values for those lanes. Every other vector runs branch-free code.

>>> import llvmlite.ir as ir
>>> m = ir.Module(); f = ir.Function(m, ir.FunctionType(F32, [F32]), "s")
>>> b = ir.IRBuilder(f.append_basic_block())
>>> _ = b.ret(emit_sin(b, f.args[0]))
"""
from __future__ import annotations

import math

import llvmlite.ir as ir

from lucid_codegen.kernels.vector_math import F32, F64, I1, call_intrinsic, const, fma, horner, scalar_of, with_scalar

__all__ = ["emit_sin", "emit_cos", "emit_cos_bounded"]

PIO2 = (1.5707963267948966, 6.123233995736766e-17, -1.4973849048591698e-33)  # pi/2 = sum
LIMIT = float(2 ** 30)  # |x| beyond: the C library


def _sin_poly(b, r, z, terms):
    s = horner(b, z, [(-1) ** k / math.factorial(2 * k + 1) for k in range(terms, 0, -1)])
    return fma(b, b.fmul(r, z), s, r)                  # r + r^3 (-1/6 + z/120 - ...)


def _cos_poly(b, z, terms):
    ty = z.type
    c = horner(b, z, [(-1) ** k / math.factorial(2 * k) for k in range(terms, 1, -1)])
    hz = b.fmul(z, const(ty, 0.5))
    w = b.fsub(const(ty, 1.0), hz)
    return b.fadd(w, fma(b, b.fmul(z, z), c, b.fsub(b.fsub(const(ty, 1.0), w), hz)))


def _any(b, mask):
    if not isinstance(mask.type, ir.VectorType):
        return mask
    name = f"llvm.vector.reduce.or.v{mask.type.count}i1"
    fn = b.module.globals.get(name) or ir.Function(b.module, ir.FunctionType(I1, [mask.type]), name)
    return b.call(fn, [mask])


def _sin_cos(b, x, cosine: bool, narrow: bool, bounded: bool = False):
    """sin or cos of the float64 value(s) ``x``; ``narrow``: the result becomes float32;
    ``bounded``: the caller knows |x| <= LIMIT (no slow path, no branch)."""
    ty = x.type
    ax = call_intrinsic(b, "fabs", [x])
    small = b.fcmp_ordered("<=", ax, const(ty, LIMIT))
    n = call_intrinsic(b, "rint", [b.fmul(x, const(ty, 2.0 / math.pi))])
    r = x
    for part in PIO2:
        r = fma(b, n, const(ty, -part), r)
    z = b.fmul(r, r)
    sin_r = _sin_poly(b, r, z, 5 if narrow else 8)
    cos_r = _cos_poly(b, z, 6 if narrow else 9)
    ity = with_scalar(ty, ir.IntType(32))
    q = b.fptosi(b.select(small, n, const(ty, 0.0)), ity)   # only in-range values converted
    if cosine:
        q = b.add(q, const(ity, 1))
    swap = b.icmp_signed("!=", b.and_(q, const(ity, 1)), const(ity, 0))
    flip = b.icmp_signed("!=", b.and_(q, const(ity, 2)), const(ity, 0))
    y = b.select(swap, cos_r, sin_r)
    y = b.select(flip, b.fneg(y), y)
    if not cosine:
        y = b.select(b.fcmp_ordered("==", x, const(ty, 0.0)), x, y)  # sin(-0.0) = -0.0
    if bounded:
        return y
    # the rare slow path: lanes beyond LIMIT (NaN lanes are NaN already)
    huge = b.fcmp_ordered(">", ax, const(ty, LIMIT))
    entry = b.block
    slow = b.append_basic_block("trig.huge")
    join = b.append_basic_block("trig.join")
    b.cbranch(_any(b, huge), slow, join)
    b.position_at_end(slow)
    fixed = b.select(huge, call_intrinsic(b, "cos" if cosine else "sin", [x]), y)
    slow_end = b.block
    b.branch(join)
    b.position_at_end(join)
    out = b.phi(ty)
    out.add_incoming(y, entry)
    out.add_incoming(fixed, slow_end)
    return out


def _emit(b, x, cosine, bounded=False):
    if scalar_of(x.type) == F64:
        return _sin_cos(b, x, cosine, narrow=False, bounded=bounded)
    wide = with_scalar(x.type, F64)
    return b.fptrunc(_sin_cos(b, b.fpext(x, wide), cosine, narrow=True, bounded=bounded), x.type)


def emit_sin(b, x):
    return _emit(b, x, False)


def emit_cos(b, x):
    return _emit(b, x, True)


def emit_cos_bounded(b, x):
    """``cos`` of values the caller knows are at most 2^30 in magnitude (the same bits
    as ``emit_cos`` there), branch-free: no slow path to test for."""
    return _emit(b, x, True, bounded=True)
