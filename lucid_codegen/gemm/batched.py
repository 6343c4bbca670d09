"""The batched GEMM entry of every GEMM module: one call runs a whole stack of products.

``i32 S_batched(i64 lo, i64 hi, i64 desc, double alpha, T* A, i64, i64, T* B, i64, i64,
T* C, i64, T* bias, T* R, i64, i64, T* ws)`` (``S = gemm_symbol(spec)``; the unnamed
words are unused) has the GEMM entry's 17-word shape (``spin.GEMM_ARGS``), so the worker
pool and native programs call it like any GEMM part. ``desc`` is the address of an int64
*batch descriptor* (``describe``):

    [M, N, K, rsa, csa, rsb, csb, ldc, rsr, csr, nd, P, split_m, step, ws_elems,
     then per batch axis (outermost first): extent, A's, B's, C's and R's stride]

(strides in elements; a broadcast batch axis has stride 0, a transposed operand its
swapped strides: no copies). The work is ``units = batches x P`` products: unit ``t`` is
batch ``t // P`` (a multi-index over the batch axes, last fastest) and part ``t % P`` of
it, rows ``[p*step, (p+1)*step)`` of C when ``split_m`` else those columns (the last
part takes the rest). The call runs
units ``[lo, hi)``, each through the 2-D driver (packing, micro-kernel, small-shape paths
and epilogue are the 2-D kernel's): the same unit gives the same bits whoever runs it,
so splitting units across threads changes no result. bias (N contiguous elements) is
shared by every batch; R (a residual or gate) has C's batch axes, or A's for ``gate_a``.
Returns the first non-zero status of a unit, else 0.
"""
from __future__ import annotations

import llvmlite.ir as ir

from lucid_codegen.gemm.microkernel import I32, I64, counted_loop, imin

DESC_HEAD = 15            # words before the per-axis records
AXIS_WORDS = 5            # extent, then A's, B's, C's, R's stride


def batched_symbol(sym: str) -> str:
    return sym + "_batched"


def build_batched_entry(c, spec, driver: ir.Function, name: str, extra: tuple = ()) -> ir.Function:
    """The batched entry (see the module docstring) calling ``driver`` once per unit.
    ``extra``: types of more arguments, passed on to ``driver`` after its own (the
    core's generic entry: the variant's store, gemm/driver.py)."""
    D, P = ir.DoubleType(), c.P
    args = [I64, I64, I64, D, P, I64, I64, P, I64, I64, P, I64, P, P, I64, I64, P]
    fn = ir.Function(c.m, ir.FunctionType(I32, args + list(extra)), name)
    lo, hi, desc_i, alpha, A, _, _, B, _, _, C, _, bias, R, _, _, ws = fn.args[:17]
    passed = list(fn.args[17:])
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    desc = b.inttoptr(desc_i, I64.as_pointer())

    def word(k):
        return b.load(b.gep(desc, [k if isinstance(k, ir.Value) else I64(k)]))
    M, N, K, rsa, csa, rsb, csb, ldc, rsr, csr, nd, parts, split_m, step, ws_elems = (
        word(k) for k in range(DESC_HEAD))
    split_m = b.icmp_signed("!=", split_m, I64(0))
    cap = b.select(b.icmp_unsigned("==", ws, ir.Constant(P, None)), I64(0), ws_elems)
    status = b.alloca(I32, name="status")
    b.store(I32(0), status)
    slots = [b.alloca(I64, name=n) for n in ("rem", "oa", "ob", "oc", "orr")]
    done = b.append_basic_block("done")

    def unit(t):
        batch = b.sdiv(t, parts)
        p = b.sub(t, b.mul(batch, parts))
        b.store(batch, slots[0])
        for s in slots[1:]:
            b.store(I64(0), s)

        def axis(j):  # axes innermost first: index = rem % extent, rem //= extent
            rec = b.add(I64(DESC_HEAD), b.mul(b.sub(b.sub(nd, I64(1)), j), I64(AXIS_WORDS)))
            extent = word(rec)
            rem = b.load(slots[0])
            q = b.sdiv(rem, extent)
            idx = b.sub(rem, b.mul(q, extent))
            b.store(q, slots[0])
            for k, s in enumerate(slots[1:]):
                stride = word(b.add(rec, I64(k + 1)))
                b.store(b.add(b.load(s), b.mul(idx, stride)), s)
        counted_loop(b, I64(0), nd, 1, axis, "axis")
        oa, ob, oc, orr = (b.load(s) for s in slots[1:])
        o = b.mul(p, step)
        total = b.select(split_m, M, N)
        last = b.icmp_signed("==", p, b.sub(parts, I64(1)))
        n = b.select(last, b.sub(total, o), imin(b, step, b.sub(total, o)))
        zero = I64(0)
        rows = b.select(split_m, n, M)
        cols = b.select(split_m, N, n)
        ro, co = b.select(split_m, o, zero), b.select(split_m, zero, o)
        a_p = b.gep(A, [b.add(oa, b.mul(ro, rsa))])
        b_p = b.gep(B, [b.add(ob, b.mul(co, csb))])
        c_p = b.gep(C, [b.add(oc, b.add(b.mul(ro, ldc), co))])
        bias_p = b.gep(bias, [co]) if spec.bias else bias
        if spec.gate_a:      # R has A's layout: rows move with A's
            r_p = b.gep(R, [b.add(orr, b.mul(ro, rsr))])
        elif spec.reads_r:
            r_p = b.gep(R, [b.add(orr, b.add(b.mul(ro, rsr), b.mul(co, csr)))])
        else:
            r_p = R
        st = b.call(driver, [rows, cols, K, alpha, a_p, rsa, csa, b_p, rsb, csb, c_p, ldc,
                             bias_p, r_p, rsr, csr, ws, cap] + passed)
        with b.if_then(b.icmp_signed("!=", st, I32(0)), likely=False):
            b.store(st, status)
            b.branch(done)
    counted_loop(b, lo, hi, 1, unit, "unit")
    b.branch(done)
    b.position_at_end(done)
    b.ret(b.load(status))
    return fn
