"""Accumulating a reduction in registers: the pieces the reduction kernels and the row
kernels share (``reduction.py``, ``row_codegen.py``).

A reduction runs a vector accumulator of ``lanes`` along the reduced elements and a
scalar one over the remainder, then folds the vector by a fixed halving tree and adds
the scalar: the order of operations depends only on the number of elements, never on a
thread split. float32 sums and means accumulate in float64 and are rounded once at the
end; max/min propagate NaN like numpy.

>>> import llvmlite.ir as ir
>>> acc = Accumulator("sum", "float32")
>>> acc.aty == ir.DoubleType(), acc.vty == ir.FloatType()
(True, True)
"""
from __future__ import annotations

import math

import llvmlite.ir as ir

from lucid_codegen.kernels.loops import splat
from lucid_codegen.kernels.lowering import emit_maximum, emit_minimum
from lucid_codegen.kernels.vector_math import F64, I64, LLVM_MEMORY, const

_I32 = ir.IntType(32)


def reduced_dtype(red_op: str, dtype: str) -> str:
    """The result dtype (the IR's rule): sums and products of int/bool are int64."""
    return "int64" if red_op in ("sum", "prod") and dtype in ("int32", "int64", "bool") else dtype


def accumulator_type(red_op: str, dtype: str):
    """float64 for float sums/products/means, int64 for int/bool ones; else the stored
    type (bool max/min: 0/1 bytes, so scratch rows and vectors stay byte arrays)."""
    if red_op in ("sum", "prod", "mean"):
        return F64 if dtype in ("float32", "float64") else I64
    return LLVM_MEMORY[dtype]



class Accumulator:
    """How one reduction ``red_op`` of values of ``dtype`` accumulates: its identity,
    combining step, horizontal fold and final rounding, as LLVM instructions."""

    def __init__(self, red_op: str, dtype: str):
        self.red_op, self.in_dtype = red_op, dtype
        self.aty = accumulator_type(red_op, dtype)
        self.vty = LLVM_MEMORY[reduced_dtype(red_op, dtype)]  # as the output stores it
        self.is_float = isinstance(self.aty, (ir.FloatType, ir.DoubleType))

    def acc_type(self, lanes):
        return ir.VectorType(self.aty, lanes) if lanes else self.aty

    def identity(self, lanes):
        ty = self.acc_type(lanes)
        if self.red_op in ("sum", "mean"):
            return const(ty, 0)
        if self.red_op == "prod":
            return const(ty, 1)
        larger = self.red_op == "max"
        if self.is_float:
            return const(ty, -math.inf if larger else math.inf)
        if self.in_dtype == "bool":
            return const(ty, 0 if larger else 1)
        bits = self.aty.width
        return const(ty, -(1 << (bits - 1)) if larger else (1 << (bits - 1)) - 1)

    def widen(self, b, v, lanes):
        """A value of the reduced dtype (compute type) as the accumulator type."""
        ty = self.acc_type(lanes)
        if v.type == ty:
            return v
        if self.is_float:
            return b.fpext(v, ty)
        return b.zext(v, ty) if self.in_dtype == "bool" else b.sext(v, ty)

    def combine(self, b, acc, v):
        if self.red_op == "max":
            return emit_maximum(b, acc, v)
        if self.red_op == "min":
            return emit_minimum(b, acc, v)
        if self.red_op == "prod":
            return b.fmul(acc, v) if self.is_float else b.mul(acc, v)
        return b.fadd(acc, v) if self.is_float else b.add(acc, v)

    def hreduce(self, b, v):
        """The lanes of ``v`` folded by a fixed halving tree."""
        return b.extract_element(self.fold_runs(b, v, v.type.count), ir.Constant(_I32, 0))

    def fold_runs(self, b, v, width: int):
        """Each run of ``width`` lanes of ``v`` (a power of two) folded by ``hreduce``'s
        tree, all runs at once: a vector of one lane per run, in order (the rows of a row
        kernel's group, side by side in one accumulator)."""
        n, runs = width, v.type.count // width
        while n > 1:
            h = n // 2
            pick = [[r * n + off + j for r in range(runs) for j in range(h)] for off in (0, h)]
            lo, hi = (b.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, runs * h), lanes))
                      for lanes in pick)
            v, n = self.combine(b, lo, hi), h
        return v

    def finish(self, b, acc, scale):
        """The total as the result dtype: a mean scaled by ``scale`` (1/count, double)
        first, a float32 total rounded once."""
        if self.red_op == "mean":
            acc = b.fmul(acc, scale if not isinstance(acc.type, ir.VectorType)
                         else splat(b, scale, acc.type.count))
        if self.aty != self.vty:  # only float32 sums: round the float64 total once
            ty = ir.VectorType(self.vty, acc.type.count) if isinstance(acc.type, ir.VectorType) else self.vty
            acc = b.fptrunc(acc, ty)
        return acc


__all__ = ["Accumulator", "accumulator_type", "reduced_dtype", "splat", "I64"]
