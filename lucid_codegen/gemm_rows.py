"""IR for the GEMM's few-rows path with B row-major: C's rows built from B's rows, in place.

A layer's backward ``dX = dY·W`` at batch 1 .. ROWS_M multiplies a few rows of dY by W
stored row-major (K x N, unit column stride). The general path would pack A, and its
register tile (MR rows, two vectors wide) is mostly empty at M = 1, so each k step
waits for the FMA latency of a few chains. Here each row of C is a sum of B's rows
(an axpy per k), vectorised along N, with a block of C's row in registers::

    for i0 in 0, R, 2R, ...                      (R = 4, 2 or 1 rows of C; see ``_ROW_GROUPS``)
      for j0 in 0, JB*W, 2*JB*W, ...             (JB vectors of C's columns: the block)
        for pc in 0, KC, 2*KC, ...               (the general path's K blocks)
          acc[r][v] = 0
          for p in pc .. pc + kc:                (B's row p, read once per row group)
            acc[r][v] = fma(A[i0+r, p], B[p, j0 + v*W : +W], acc[r][v])
          tile <- acc; epilogue(tile, first = pc == 0, last = pc + KC >= K)

B is streamed once per row group, row by row, never packed; A's elements are read one
at a time (any strides). Rows past the end of a group repeat the group's last row and
are never stored; a last, partial column block reads B through masked loads (lanes past
N read 0 and touch no memory).

Summation order: every element of C is the one FMA chain p = 0, 1, 2, ... per K block,
started from 0, then the general path's epilogue with its K-block protocol: exactly the
micro-kernel's arithmetic (``gemm_microkernel.build_microkernel``), so the result is
bit-identical to the general path's and a split across threads may put rows on either
side of ``ROWS_M``.

>>> from lucid_codegen.gemm_rows import uses_row_path
>>> uses_row_path(1, csb=1), uses_row_path(1, csb=784), uses_row_path(64, csb=1)
(True, False, False)
"""
from __future__ import annotations

import llvmlite.ir as ir

from .gemm_microkernel import I1, I64, Ctx, counted_loop, imin

#: C with at most this many rows and B with unit column stride take the row path.
ROWS_M = 8
#: row-group height R -> vectors of C's columns per block (JB, a multiple of the tile's
#: NV): R x JB accumulators, R broadcasts of A and, for R > 1, JB vectors of B's row
#: fit in AVX2's 16 registers (8 independent FMA chains each, enough for the latency)
_ROW_GROUPS = {4: 2, 2: 4, 1: 8}


def uses_row_path(M: int, csb: int, gate_a: bool = False, dot: bool = False) -> bool:
    """Whether the kernel computes C(M, N) on the row path (mirrors ``row_condition``;
    ``dot``: the dot path, which is tried first, takes it)."""
    return not gate_a and not dot and csb == 1 and 0 < M <= ROWS_M


def row_condition(b: ir.IRBuilder, spec, M, csb):
    """The i1 the driver branches on (see ``uses_row_path``)."""
    if spec.gate_a:
        return ir.Constant(I1, 0)
    return b.and_(b.icmp_signed("<=", M, I64(ROWS_M)), b.icmp_signed("==", csb, I64(1)))


def _build_axpy(c: Ctx, name: str, R: int, JB: int, masked: bool) -> ir.Function:
    """void axpy(i64 kc, T* A, i64 rsa, i64 csa, i64 rows, T* B, i64 rsb, i64 cols, T* tile)

    tile[(v*W // NR)*R*NR + r*NR + (v*W % NR) + l] = sum_{p < kc} A[r*rsa + p*csa] *
    B[p*rsb + v*W + l] for r < R, v < JB: the block's NR-wide tiles one after another,
    each with row stride NR. Rows past ``rows`` repeat row ``rows - 1``. ``masked``:
    columns at or past ``cols`` are read as 0 (masked loads), else all JB*W are read.
    """
    NR, W = c.blk.NR, c.W
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), [I64, c.P, I64, I64, I64, c.P, I64, I64,
                                                          c.P]), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    kc, A, rsa, csa, rows, B, rsb, cols, tile = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    a_rows = [b.mul(imin(b, I64(r), b.sub(rows, I64(1))), rsa) for r in range(R)]
    masks = [c.lane_mask(b, b.sub(cols, I64(v * W))) for v in range(JB)] if masked else None

    pre = b.block
    hdr, body, end = (b.append_basic_block(f"axpy.{t}") for t in ("hdr", "body", "end"))
    b.branch(hdr)
    b.position_at_end(hdr)
    p = b.phi(I64)
    ap = b.phi(c.P)
    bp = b.phi(c.P)
    accs = [b.phi(c.V) for _ in range(R * JB)]
    p.add_incoming(I64(0), pre)
    ap.add_incoming(A, pre)
    bp.add_incoming(B, pre)
    for acc in accs:
        acc.add_incoming(c.cvec(0.0), pre)
    b.cbranch(b.icmp_signed("<", p, kc), body, end)
    b.position_at_end(body)
    if masked:
        bv = [c.mload(b, b.gep(bp, [I64(v * W)]), masks[v]) for v in range(JB)]
    else:
        bv = [c.vload(b, b.gep(bp, [I64(v * W)])) for v in range(JB)]
    nxt = []
    for r in range(R):
        a = c.splat(b, b.load(b.gep(ap, [a_rows[r]]), align=c.size))
        nxt += [c.fma(b, a, bv[v], accs[r * JB + v]) for v in range(JB)]
    p.add_incoming(b.add(p, I64(1)), b.block)
    ap.add_incoming(b.gep(ap, [csa]), b.block)
    bp.add_incoming(b.gep(bp, [rsb]), b.block)
    for acc, v in zip(accs, nxt):
        acc.add_incoming(v, b.block)
    b.branch(hdr)
    b.position_at_end(end)
    for r in range(R):
        for v in range(JB):
            t, off = divmod(v * W, NR)
            c.vstore(b, accs[r * JB + v], b.gep(tile, [I64(t * R * NR + r * NR + off)]), align=64)
    b.ret_void()
    return fn


def build_row_path(c: Ctx, spec, store, kblock, name: str) -> ir.Function:
    """i32 rows(i64 M, i64 N, i64 K, T alpha, T* A, i64 rsa, i64 csa, T* B, i64 rsb, T* C,
    i64 ldc, T* bias, T* R, i64 rsr, i64 csr)

    C = epilogue(A·B) for B with unit column stride (see the module docstring);
    ``store`` is the general path's tile store, ``kblock(b, K)`` its K-block depth (an
    i64). Returns 0.
    """
    NR = c.blk.NR
    assert all(jb * c.W % NR == 0 for jb in _ROW_GROUPS.values())
    kernels = {(r, masked): _build_axpy(c, f"{name}.axpy{r}{'m' if masked else ''}", r, jb, masked)
               for r, jb in _ROW_GROUPS.items() for masked in (False, True)}
    args = [I64, I64, I64, c.T, c.P, I64, I64, c.P, I64, c.P, I64, c.P, c.P, I64, I64]
    fn = ir.Function(c.m, ir.FunctionType(ir.IntType(32), args), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    M, N, K, alpha, A, rsa, csa, B, rsb, C, ldc, bias, Rp, rsr, csr = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    tile = b.alloca(c.T, max(r * jb * c.W for r, jb in _ROW_GROUPS.items()), name="tile")
    tile.align = 64
    kd = b.select(b.icmp_signed(">", K, I64(1)), K, I64(1))
    kcb = kblock(b, kd)

    def row_group(i0, R):
        JB = _ROW_GROUPS[R]
        rows = imin(b, I64(R), b.sub(M, i0))
        a_i = b.gep(A, [b.mul(i0, rsa)])
        c_i = b.gep(C, [b.mul(i0, ldc)])
        r_i = b.gep(Rp, [b.mul(i0, rsr)]) if spec.reads_r else Rp

        def block(j0):
            cols = b.sub(N, j0)
            b_j = b.gep(B, [j0])

            def k_block(pc):
                kc = imin(b, kcb, b.sub(K, pc))
                first = b.icmp_signed("==", pc, I64(0))
                last = b.icmp_signed(">=", b.add(pc, kcb), K)
                args = [kc, b.gep(a_i, [b.mul(pc, csa)]), rsa, csa, rows,
                        b.gep(b_j, [b.mul(pc, rsb)]), rsb, cols, tile]
                with b.if_else(b.icmp_signed(">=", cols, I64(JB * c.W))) as (whole, edge):
                    with whole:
                        b.call(kernels[(R, False)], args)
                    with edge:
                        b.call(kernels[(R, True)], args)

                def sub_tile(jt):
                    j = b.add(j0, jt)
                    nr = imin(b, I64(NR), b.sub(N, j))
                    t = b.gep(tile, [b.mul(b.sdiv(jt, I64(NR)), I64(R * NR))])
                    bias_j = b.gep(bias, [j]) if spec.bias else bias
                    c_j = b.gep(c_i, [j])
                    if spec.reads_r:
                        b.call(store, [t, c_j, ldc, rows, nr, bias_j, b.gep(r_i, [b.mul(j, csr)]),
                                       rsr, csr, first, last, alpha])
                    else:
                        b.call(store, [t, c_j, ldc, rows, nr, bias_j, Rp, rsr, first, last, alpha])
                counted_loop(b, I64(0), imin(b, I64(JB * c.W), cols), NR, sub_tile, f"rows{R}.t")
            counted_loop(b, I64(0), kd, kcb, k_block, f"rows{R}.pc")
        counted_loop(b, I64(0), N, JB * c.W, block, f"rows{R}.j0")

    # row groups: 4 while at least 3 rows remain, then 2, then 1
    def group_loop(i0):
        left = b.sub(M, i0)
        with b.if_else(b.icmp_signed(">=", left, I64(3))) as (four, fewer):
            with four:
                row_group(i0, 4)
            with fewer:
                with b.if_else(b.icmp_signed("==", left, I64(2))) as (two, one):
                    with two:
                        row_group(i0, 2)
                    with one:
                        row_group(i0, 1)
    counted_loop(b, I64(0), M, 4, group_loop, "rows.i0")
    b.ret(ir.IntType(32)(0))
    return fn
