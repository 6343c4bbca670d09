"""IR for packing GEMM operands into micro-panels, and the edge-tile store wrapper."""
from __future__ import annotations

import llvmlite.ir as ir

from .gemm_microkernel import I1, I32, I64, Ctx, counted_loop, imin


def build_pack_a(c: Ctx, name: str) -> ir.Function:
    """void pack_a(i64 kc, i64 mc, T* A, i64 rsa, i64 csa, T* Ap)

    Ap holds ceil(mc/MR) panels of MR rows: panel q at Ap + q*MR*kc, element
    (p, i) at p*MR + i. Rows past mc are zero-filled. A is read only inside
    rows [0, mc) and columns [0, kc).
    """
    MR, W = c.blk.MR, c.blk.W
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), [I64, I64, c.P, I64, I64, c.P]), name)
    fn.linkage = "internal"
    kc, mc, A, rsa, csa, Ap = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def panel(q0):
        rows = b.sub(mc, q0)
        dst = b.gep(Ap, [b.mul(q0, kc)])
        full = b.icmp_signed(">=", rows, I64(MR))
        with b.if_else(full) as (then, otherwise):
            with then:
                ptrs = [b.gep(A, [b.mul(b.add(q0, I64(i)), rsa)]) for i in range(MR)]
                # Rows of A contiguous (csa == 1): W x W register transposes of
                # MR rows (zero-padded to a multiple of W), W columns at a time.
                kvec = b.select(b.icmp_signed("==", csa, I64(1)),
                                b.mul(b.sdiv(kc, I64(W)), I64(W)), I64(0))
                nblk = -(-MR // W)
                zero_v = c.cvec(0.0)

                def chunk(p0):
                    rows = [c.vload(b, b.gep(ptrs[i], [p0])) if i < MR else zero_v
                            for i in range(nblk * W)]
                    ts = [transpose(c, b, rows[k * W:(k + 1) * W]) for k in range(nblk)]
                    for p in range(W):
                        d = b.gep(dst, [b.mul(b.add(p0, I64(p)), I64(MR))])
                        for k in range(nblk):
                            n = min(W, MR - k * W)
                            v = ts[k][p]
                            if n < W:
                                v = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, n),
                                                                       list(range(n))))
                            vt = ir.VectorType(c.T, n)
                            b.store(v, b.bitcast(b.gep(d, [I64(k * W)]), vt.as_pointer()),
                                    align=c.size)
                counted_loop(b, I64(0), kvec, W, chunk, "pa.tr")

                def col(p):
                    off = b.mul(p, csa)
                    d = b.gep(dst, [b.mul(p, I64(MR))])
                    for i in range(MR):
                        b.store(b.load(b.gep(ptrs[i], [off])), b.gep(d, [I64(i)]))
                counted_loop(b, kvec, kc, 1, col, "pa.full")
            with otherwise:
                last = b.sub(rows, I64(1))
                ptrs, valid = [], []
                for i in range(MR):
                    ii = imin(b, I64(i), last)
                    ptrs.append(b.gep(A, [b.mul(b.add(q0, ii), rsa)]))
                    valid.append(b.icmp_signed("<", I64(i), rows))

                def col(p):
                    off = b.mul(p, csa)
                    d = b.gep(dst, [b.mul(p, I64(MR))])
                    for i in range(MR):
                        v = b.load(b.gep(ptrs[i], [off]))
                        b.store(b.select(valid[i], v, ir.Constant(c.T, 0.0)), b.gep(d, [I64(i)]))
                counted_loop(b, I64(0), kc, 1, col, "pa.edge")
    counted_loop(b, I64(0), mc, MR, panel, "pa")
    b.ret_void()
    return fn


def build_pack_b(c: Ctx, name: str) -> ir.Function:
    """void pack_b(i64 kc, i64 nc, T* B, i64 rsb, i64 csb, T* Bp)

    Bp holds ceil(nc/NR) panels of NR columns: panel q at Bp + q*NR*kc, element
    (p, j) at p*NR + j; columns past nc are zero-filled.
    """
    NR, W, NV = c.blk.NR, c.blk.W, c.blk.NV
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), [I64, I64, c.P, I64, I64, c.P]), name)
    fn.linkage = "internal"
    kc, nc, B, rsb, csb, Bp = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def panel(q0):
        cols = b.sub(nc, q0)
        dst = b.gep(Bp, [b.mul(q0, kc)])
        src = b.gep(B, [b.mul(q0, csb)])
        full = b.icmp_signed(">=", cols, I64(NR))
        unit = b.icmp_signed("==", csb, I64(1))
        with b.if_else(b.and_(full, unit)) as (then, otherwise):
            with then:
                def row(p):
                    s = b.gep(src, [b.mul(p, rsb)])
                    d = b.gep(dst, [b.mul(p, I64(NR))])
                    for v in range(NV):
                        c.vstore(b, c.vload(b, b.gep(s, [I64(v * W)])), b.gep(d, [I64(v * W)]),
                                 align=64)
                counted_loop(b, I64(0), kc, 1, row, "pb.vec")
            with otherwise:
                # Columns of B contiguous (B = W^T): W x W register transposes.
                tr = b.and_(full, b.icmp_signed("==", rsb, I64(1)))
                kvec = b.select(tr, b.mul(b.sdiv(kc, I64(W)), I64(W)), I64(0))
                cptrs = [b.gep(src, [b.mul(I64(j), csb)]) for j in range(NR)]

                def chunk(p0):
                    rows = [c.vload(b, b.gep(cptrs[j], [p0])) for j in range(NR)]
                    for v in range(NV):
                        t = transpose(c, b, rows[v * W:(v + 1) * W])
                        for p in range(W):
                            d = b.gep(dst, [b.add(b.mul(b.add(p0, I64(p)), I64(NR)), I64(v * W))])
                            c.vstore(b, t[p], d, align=64)
                counted_loop(b, I64(0), kvec, W, chunk, "pb.tr")
                last = b.sub(imin(b, cols, I64(NR)), I64(1))
                ptrs, valid = [], []
                for j in range(NR):
                    jj = imin(b, I64(j), last)
                    ptrs.append(b.gep(src, [b.mul(jj, csb)]))
                    valid.append(b.icmp_signed("<", I64(j), cols))

                def row(p):
                    off = b.mul(p, rsb)
                    d = b.gep(dst, [b.mul(p, I64(NR))])
                    for j in range(NR):
                        v = b.load(b.gep(ptrs[j], [off]))
                        b.store(b.select(valid[j], v, ir.Constant(c.T, 0.0)), b.gep(d, [I64(j)]))
                counted_loop(b, kvec, kc, 1, row, "pb.gen")
    counted_loop(b, I64(0), nc, NR, panel, "pb")
    b.ret_void()
    return fn


def transpose(c: Ctx, b: ir.IRBuilder, rows: list) -> list:
    """Transpose W vectors of W lanes (rows[j][p] -> out[p][j]) with two-input shuffles.

    Level h swaps the off-diagonal h x h blocks of every 2h x 2h block; the levels
    together swap every bit of the row index with the same bit of the lane index.
    """
    W = len(rows)
    rows = list(rows)
    h = W // 2
    while h >= 1:
        top_mask, bot_mask = [], []
        for cs in range(0, W, 2 * h):
            top_mask += [cs + t for t in range(h)] + [W + cs + t for t in range(h)]
            bot_mask += [cs + h + t for t in range(h)] + [W + cs + h + t for t in range(h)]
        tm = ir.Constant(ir.VectorType(I32, W), top_mask)
        bm = ir.Constant(ir.VectorType(I32, W), bot_mask)
        for i in range(W):
            if i & h:
                continue
            top, bot = rows[i], rows[i + h]
            rows[i] = b.shuffle_vector(top, bot, tm)
            rows[i + h] = b.shuffle_vector(top, bot, bm)
        h //= 2
    return rows


def build_store_tile(c: Ctx, spec, epi: ir.Function, name: str) -> ir.Function:
    """void store(T* tile, T* C, i64 ldc, i64 mr, i64 nr, T* bias, T* R, i64 rsr, i64 csr,
                  i1 first, i1 last, T alpha)

    Full-width tiles (nr == NR, residual with unit column stride) go straight to
    ``epi``; others are staged through stack tiles so that nothing outside
    rows [0, mr) x columns [0, nr) of C, bias or R is touched.
    """
    MR, NR = c.blk.MR, c.blk.NR
    args = [c.P, c.P, I64, I64, I64, c.P, c.P, I64, I64, I1, I1, c.T]
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), args), name)
    fn.linkage = "internal"
    tile, C, ldc, mr, nr, bias, R, rsr, csr, first, last, alpha = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ct = b.alloca(c.T, MR * NR)
    ct.align = 64
    bt = b.alloca(c.T, NR)
    bt.align = 64
    rt = b.alloca(c.T, MR * NR)
    rt.align = 64
    direct = b.icmp_signed("==", nr, I64(NR))
    if spec.residual:
        direct = b.and_(direct, b.icmp_signed("==", csr, I64(1)))
    with b.if_else(direct) as (then, otherwise):
        with then:
            b.call(epi, [tile, C, ldc, mr, bias, R, rsr, first, last, alpha])
        with otherwise:
            def copy(dst, dst_rs, dst_cs, src, src_rs, src_cs, tag):
                def row(i):
                    d = b.gep(dst, [b.mul(i, dst_rs)])
                    s = b.gep(src, [b.mul(i, src_rs)])
                    counted_loop(b, I64(0), nr, 1, lambda j: b.store(
                        b.load(b.gep(s, [b.mul(j, src_cs)])), b.gep(d, [b.mul(j, dst_cs)])),
                        f"{tag}.j")
                counted_loop(b, I64(0), mr, 1, row, tag)

            copy(ct, I64(NR), I64(1), C, ldc, I64(1), "cin")
            if spec.bias:
                zero = ir.Constant(c.T, 0.0)
                for j in range(NR):
                    b.store(zero, b.gep(bt, [I64(j)]))
                counted_loop(b, I64(0), nr, 1, lambda j: b.store(
                    b.load(b.gep(bias, [j])), b.gep(bt, [j])), "bin")
            if spec.residual:
                copy(rt, I64(NR), I64(1), R, rsr, csr, "rin")
            b.call(epi, [tile, ct, I64(NR), mr, bt, rt, I64(NR), first, last, alpha])
            copy(C, ldc, I64(1), ct, I64(NR), I64(1), "cout")
    b.ret_void()
    return fn
