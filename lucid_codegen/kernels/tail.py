"""The last, partial vector of a loop: one vector operation for the fewer-than-``L``
elements past a loop's whole vectors, instead of a scalar loop over them.

Lanes ``start + l`` for ``l < L`` of which those below ``stop`` are ``live``. Contiguous
elements of 4 or 8 bytes move with masked loads and stores (AVX2 and AVX-512 have
them; the lanes off read zeros and write nothing); others (bytes, strided elements)
through the stack: ``gather`` reads each lane's element with its index clamped to the
last live one (no lane reads past the end), ``scatter`` stores the live lanes only.
Whatever the dead lanes compute is thrown away, and no op traps on any value (integer
division is made safe in lowering.py).

Row kernels (a row's tail) and elementwise kernels (a short inner dimension: a
convolution's 3x3 taps, ten classes) share it. Besides fewer instructions, a vector
pays a denormal operand's microcode assist once for all its lanes, where the scalar
loop paid it per element (an SGD step over a momentum buffer of denormals: 0.2 ms of a
1.3 ms CNN step on Sapphire Rapids, before).
"""
from __future__ import annotations

import llvmlite.ir as ir

from lucid_codegen.kernels.loops import I64, Loop, const64, masked_intrinsic, splat
from lucid_codegen.kernels.vector_math import mem_align

_I32 = ir.IntType(32)


class Tail:
    """Lanes ``start .. start + L`` of a loop ending at ``stop`` (``stop - start < L``)."""

    def __init__(self, b, start, stop, L: int):
        self.start, self.R, self.L = start, stop, L
        self.last = b.sub(stop, const64(1))
        lane_ids = b.add(splat(b, start, L), ir.Constant(ir.VectorType(I64, L), list(range(L))))
        self.live = b.icmp_signed("<", lane_ids, splat(b, stop, L))

    @staticmethod
    def maskable(elem) -> bool:
        """Whether elements of LLVM type ``elem`` move with masked loads and stores."""
        if isinstance(elem, ir.IntType):
            return elem.width in (32, 64)
        return isinstance(elem, (ir.FloatType, ir.DoubleType))

    def load(self, b, base, stride=None):
        """The tail's lanes of the elements at ``base`` (``stride`` apart, else adjacent)."""
        elem = base.type.pointee
        if stride is not None or not self.maskable(elem):
            return self.gather(b, base, stride)
        vty = ir.VectorType(elem, self.L)
        p = b.bitcast(b.gep(base, [self.start]), vty.as_pointer())
        return b.call(masked_intrinsic(b.module, "load", vty),
                      [p, _I32(mem_align(elem)), self.live, ir.Constant(vty, None)])

    def store(self, b, base, value, stride=None) -> None:
        """The live lanes of ``value`` to the elements at ``base`` (``stride`` apart, else
        adjacent)."""
        elem = value.type.element
        if stride is not None or not self.maskable(elem):
            self.scatter(b, base, value, stride)
            return
        p = b.bitcast(b.gep(base, [self.start]), value.type.as_pointer())
        b.call(masked_intrinsic(b.module, "store", value.type), [value, p, _I32(mem_align(elem)), self.live])

    @staticmethod
    def _stack_vector(b, vty):
        """A ``vty`` slot on the stack, allocated in the function's entry block (once per
        call of the kernel, not per row)."""
        here = b.block
        b.position_at_start(b.function.entry_basic_block)
        slot = b.alloca(vty, name="tail.lanes")
        b.position_at_end(here)
        return slot

    def _at(self, b, i, stride):
        return i if stride is None else b.mul(i, stride)

    def gather(self, b, base, stride=None):
        """The tail's lanes through the stack, a lane past the end reading the last live
        element: a loop of ``L`` loads into a vector on the stack, then one vector load
        (one loop body of code, not ``L`` loads and insertions)."""
        elem = base.type.pointee
        buf = self._stack_vector(b, ir.VectorType(elem, self.L))
        slots = b.bitcast(buf, elem.as_pointer())
        with Loop(b, const64(0), const64(self.L), name="tail.gather") as gl:
            i = b.add(self.start, gl.i)
            i = b.select(b.icmp_signed("<", i, self.R), i, self.last)
            b.store(b.load(b.gep(base, [self._at(b, i, stride)])), b.gep(slots, [gl.i]))
        return b.load(buf)

    def scatter(self, b, base, value, stride=None) -> None:
        """The live lanes of ``value`` stored through the stack: the vector stored there,
        then a loop over the live lanes."""
        buf = self._stack_vector(b, value.type)
        b.store(value, buf)
        slots = b.bitcast(buf, value.type.element.as_pointer())
        with Loop(b, const64(0), b.sub(self.R, self.start), name="tail.scatter") as sl:
            b.store(b.load(b.gep(slots, [sl.i])), b.gep(base, [self._at(b, b.add(self.start, sl.i), stride)]))
