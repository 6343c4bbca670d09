"""Counter-based random numbers in LLVM IR, scalar or vector alike: the lowering of
``random_uniform`` and ``random_normal`` (their meaning, constants and numpy reference
are in ``lucid_ir.ops.random``).

Each value is SplitMix64 of ``key + counter * GAMMA`` where the counter comes from the
element's linear index in the kernel's loop (``lucid_codegen.kernels.elementwise`` passes it):
64-bit integer adds, multiplies, shifts and xors, which wrap exactly as the reference's
uint64 arithmetic does. The conversion to a float is exact (at most 24 or 53 bits,
scaled by a power of two), so ``random_uniform`` gives the reference's bits whatever
the vector width, the thread split or the fusion. ``random_normal`` goes on through
``log``, ``sqrt`` and ``cos`` (``vector_math``, ``vector_trig``): within a few ulps of
numpy's.

>>> import llvmlite.ir as ir
>>> m = ir.Module(); f = ir.Function(m, ir.FunctionType(ir.FloatType(), [I64, I64]), "u")
>>> b = ir.IRBuilder(f.append_basic_block())
>>> _ = b.ret(emit_uniform(b, f.args[0], f.args[1], "float32"))
"""
from __future__ import annotations

import math

from lucid_ir.ops.random import GAMMA, MANTISSA, MIX1, MIX2

from lucid_codegen.kernels.vector_math import I32, I64, LLVM_FLOAT, call_intrinsic, const, emit_log, with_scalar
from lucid_codegen.kernels.vector_trig import emit_cos_bounded

__all__ = ["emit_uniform", "emit_normal", "EMITTERS"]


def _i64(value: int) -> int:
    """An unsigned 64-bit constant as the signed value of the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


def splitmix(b, key, counter):
    """SplitMix64 of ``key + counter * GAMMA`` (i64 values, or vectors of them)."""
    ty = counter.type
    z = b.add(key, b.mul(counter, const(ty, _i64(GAMMA))))
    z = b.mul(b.xor(z, b.lshr(z, const(ty, 30))), const(ty, _i64(MIX1)))
    z = b.mul(b.xor(z, b.lshr(z, const(ty, 27))), const(ty, _i64(MIX2)))
    return b.xor(z, b.lshr(z, const(ty, 31)))


def to_unit(b, z, dtype: str, open_below: bool = False):
    """64 random bits as a float of ``dtype`` in [0, 1) (in (0, 1] if ``open_below``)."""
    shift, scale = MANTISSA[dtype]
    top = b.lshr(z, const(z.type, shift))
    if open_below:
        top = b.add(top, const(z.type, 1))
    fty = with_scalar(z.type, LLVM_FLOAT[dtype])
    if dtype == "float32":  # at most 2**24: exact through a 32-bit integer (one vcvtdq2ps)
        value = b.sitofp(b.trunc(top, with_scalar(z.type, I32)), fty)
    else:  # at most 2**53: exact
        value = b.sitofp(top, fty)
    return b.fmul(value, const(fty, scale))


def emit_uniform(b, key, index, dtype: str):
    """Uniform on [0, 1): counter ``index + 1``."""
    return to_unit(b, splitmix(b, key, b.add(index, const(index.type, 1))), dtype)


def emit_normal(b, key, index, dtype: str):
    """Standard normal by Box-Muller from counters ``2 index + 1`` and ``2 index + 2``."""
    first = b.add(b.mul(index, const(index.type, 2)), const(index.type, 1))
    u1 = to_unit(b, splitmix(b, key, first), dtype, open_below=True)
    u2 = to_unit(b, splitmix(b, key, b.add(first, const(index.type, 1))), dtype)
    ty = u1.type
    r = call_intrinsic(b, "sqrt", [b.fmul(const(ty, -2.0), emit_log(b, u1))])
    return b.fmul(r, emit_cos_bounded(b, b.fmul(const(ty, 2.0 * math.pi), u2)))  # below 2 pi


#: op name -> ``emit(b, key, index, dtype)``: the ops whose values depend on the
#: element's position (``lucid_ir.opnames.RANDOM``)
EMITTERS = {"random_uniform": emit_uniform, "random_normal": emit_normal}
