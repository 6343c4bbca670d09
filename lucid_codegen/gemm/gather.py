"""Packing a gathered GEMM operand: an im2col patch matrix read straight from its tensor.

A gathered operand (``GemmSpec.gather``, ``lucid_ir.passes.gather_operand``) is never
materialised: its element (i, j) is ``X[rows[i] + cols[j]]``, X the tensor the patches
are cut from (padded, channels-last, any strides) and ``rows`` / ``cols`` two int64
tables of element offsets (positions, and tap x channel). The packing routines below
fill the same micro-panels as ``pack.build_pack_a`` / ``build_pack_b`` (same layout,
rows or columns past the edge zero-filled), loading each element through the tables;
the micro-kernels, K blocking and epilogue are the GEMM's own.

ABI (no new arguments: the GEMM entry's operand words carry the tables):

- A gathered: ``A`` = X, ``rsa`` = the address of ``rows`` (M entries), ``csa`` = the
  address of ``cols`` (K entries). A split of M across threads advances ``rsa`` by
  8 bytes a row (``call.run_ptrs``, ``native_plan._parts``).
- B gathered: ``B`` = X, ``rsb`` = the address of the K-table, ``csb`` = the address of
  the N-table. A split of N advances ``csb``.

>>> import llvmlite.ir as ir
>>> from lucid_codegen.gemm.microkernel import Ctx, default_blocking
>>> c = Ctx(ir.Module("m"), "float32", default_blocking("float32", 32))
>>> build_pack_a_gather(c, "pa").name, build_pack_b_gather(c, "pb").name
('pa', 'pb')
"""
from __future__ import annotations

import llvmlite.ir as ir

from lucid_codegen.gemm.microkernel import I1, I32, I64, Ctx, counted_loop, imin
from lucid_codegen.gemm.pack import store_transposed

__all__ = ["build_pack_a_gather", "build_pack_b_gather", "I64P"]

I64P = I64.as_pointer()


def _lanes(b: ir.IRBuilder, n_valid, first: int, count: int):
    """<count x i1>: lane l set iff first + l < n_valid (an i64)."""
    iota = ir.Constant(ir.VectorType(I64, count), list(range(first, first + count)))
    nv = b.insert_element(ir.Constant(ir.VectorType(I64, count), ir.Undefined), n_valid, I32(0))
    nv = b.shuffle_vector(nv, ir.Constant(ir.VectorType(I64, count), ir.Undefined),
                          ir.Constant(ir.VectorType(I32, count), [0] * count))
    return b.icmp_signed("<", iota, nv)


def _gather(c: Ctx, b: ir.IRBuilder, ptrs: list, off, mask):
    """<len(ptrs) x T>: ptrs[l][off] (every pointer valid), lanes off ``mask`` zero."""
    vt = ir.VectorType(c.T, len(ptrs))
    v = ir.Constant(vt, ir.Undefined)
    for lane, p in enumerate(ptrs):
        v = b.insert_element(v, b.load(b.gep(p, [off])), I32(lane))
    return b.select(mask, v, ir.Constant(vt, [0.0] * len(ptrs)))


def _bases(b: ir.IRBuilder, X, table, n_valid, count: int) -> list:
    """X + table[min(l, n_valid - 1)] for l < count: a valid pointer for every lane (the
    lanes past the edge repeat the last valid one and are masked off)."""
    last = b.sub(n_valid, I64(1))
    return [b.gep(X, [b.load(b.gep(table, [imin(b, I64(l), last)]))]) for l in range(count)]


def _unit_run(c: Ctx, b: ir.IRBuilder, table, at):
    """i1: table[at + l] == table[at] + l for every l < W (W consecutive columns of one
    tap: W contiguous elements of the source, read as one vector)."""
    W = c.W
    vt = ir.VectorType(I64, W)
    v = b.load(b.bitcast(b.gep(table, [at]), vt.as_pointer()), align=8)
    first = b.shuffle_vector(v, ir.Constant(vt, ir.Undefined), ir.Constant(ir.VectorType(I32, W), [0] * W))
    same = b.icmp_signed("==", b.sub(v, first), ir.Constant(vt, list(range(W))))
    bits = b.bitcast(same, ir.IntType(W))
    return b.icmp_unsigned("==", bits, ir.Constant(ir.IntType(W), (1 << W) - 1))


def _unit_run_within(c: Ctx, b: ir.IRBuilder, table, at: int, n):
    """``_unit_run`` at ``at`` when the table has W entries there (at + W <= n), else
    false; nothing past n is read."""
    with b.goto_entry_block():
        flag = b.alloca(I1)
    b.store(ir.Constant(I1, 0), flag)
    with b.if_then(b.icmp_signed(">=", n, I64(at + c.W))):
        b.store(_unit_run(c, b, table, I64(at)), flag)
    return b.load(flag)


def build_pack_a_gather(c: Ctx, name: str) -> ir.Function:
    """void pack_a_gather(i64 kc, i64 mc, T* X, i64* rows, i64* cols, T* Ap)

    ``pack_a``'s panels of A[i, p] = X[rows[i] + cols[p]] for i < mc, p < kc (``rows``
    and ``cols`` already offset to the block): panel q at Ap + q*MR*kc, element (p, i)
    at p*MR + i, rows past mc zero-filled. Full panels read W consecutive columns of one
    tap (contiguous in the source: ``_unit_run``) as one vector a row and transpose them
    (W x W register transposes, as ``pack_a`` does); the rest element by element."""
    MR, W = c.blk.MR, c.blk.W
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), [I64, I64, c.P, I64P, I64P, c.P]), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    kc, mc, X, rows, cols, Ap = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    vt = ir.VectorType(c.T, MR).as_pointer()

    def panel(q0):
        n = imin(b, b.sub(mc, q0), I64(MR))
        ptrs = _bases(b, X, b.gep(rows, [q0]), n, MR)
        mask = _lanes(b, n, 0, MR)
        dst = b.gep(Ap, [b.mul(q0, kc)])

        def column(p):
            v = _gather(c, b, ptrs, b.load(b.gep(cols, [p])), mask)
            b.store(v, b.bitcast(b.gep(dst, [b.mul(p, I64(MR))]), vt), align=c.size)

        def chunk(p0):
            with b.if_else(_unit_run(c, b, cols, p0)) as (unit, other):
                with unit:
                    off = b.load(b.gep(cols, [p0]))
                    store_transposed(c, b, [c.vload(b, b.gep(ptrs[i], [off])) for i in range(MR)], dst, p0)
                with other:
                    counted_loop(b, p0, b.add(p0, I64(W)), 1, column, "pag.pw")
        full = b.icmp_signed("==", n, I64(MR))
        kvec = b.select(full, b.mul(b.sdiv(kc, I64(W)), I64(W)), I64(0))
        counted_loop(b, I64(0), kvec, W, chunk, "pag.v")
        counted_loop(b, kvec, kc, 1, column, "pag.p")
    counted_loop(b, I64(0), mc, MR, panel, "pag")
    b.ret_void()
    return fn


def build_pack_b_gather(c: Ctx, name: str) -> ir.Function:
    """void pack_b_gather(i64 kc, i64 nc, T* X, i64* rows, i64* cols, T* Bp)

    ``pack_b``'s panels of B[p, j] = X[rows[p] + cols[j]] for p < kc, j < nc: panel q at
    Bp + q*NR*kc, element (p, j) at p*NR + j, columns past nc zero-filled; a last panel
    of at most W columns packed W wide (element (p, j) at p*W + j)."""
    NR, W, NV = c.blk.NR, c.blk.W, c.blk.NV
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), [I64, I64, c.P, I64P, I64P, c.P]), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    kc, nc, X, rows, cols, Bp = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def panel(q0):
        n = b.sub(nc, q0)
        dst = b.gep(Bp, [b.mul(q0, kc)])
        ctab = b.gep(cols, [q0])
        with b.if_else(b.icmp_signed("<=", n, I64(W))) as (narrow, full):
            for width, branch in ((W, narrow), (NR, full)):
                with branch:
                    ptrs = _bases(b, X, ctab, imin(b, n, I64(width)), width)
                    masks = [_lanes(b, n, v * W, W) for v in range(width // W)]
                    # a vector of W columns inside the panel, consecutive in one tap: one load
                    units = [_unit_run_within(c, b, ctab, v * W, n) for v in range(width // W)]

                    def row(p, ptrs=ptrs, masks=masks, units=units, width=width):
                        off = b.load(b.gep(rows, [p]))
                        d = b.gep(dst, [b.mul(p, I64(width))])
                        for v, (mask, unit) in enumerate(zip(masks, units)):
                            with b.if_else(unit) as (one, lanes):
                                with one:
                                    c.vstore(b, c.vload(b, b.gep(ptrs[v * W], [off])), b.gep(d, [I64(v * W)]))
                                with lanes:
                                    c.vstore(b, _gather(c, b, ptrs[v * W:(v + 1) * W], off, mask),
                                             b.gep(d, [I64(v * W)]))
                    counted_loop(b, I64(0), kc, 1, row, f"pbg{width}.p")
    assert NR == NV * W
    counted_loop(b, I64(0), nc, NR, panel, "pbg")
    b.ret_void()
    return fn
