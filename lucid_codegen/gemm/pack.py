"""IR for packing GEMM operands into micro-panels, and the residual-staging store wrapper.

Packing is skipped for panels the micro-kernel can read in place (A with unit
row stride, B with unit column stride: see ``build_microkernel``); those
panels are only packed at the matrix edge, where reading a full panel would
leave the operand. General-stride panels are copied by small runtime loops
(compact code: these are fallbacks); the common transposed layouts (rows of A
or columns of B contiguous) use W x W register transposes.
"""
from __future__ import annotations

import llvmlite.ir as ir

from lucid_codegen.gemm.microkernel import I1, I32, I64, Ctx, counted_loop


def _copy_strided(c: Ctx, b: ir.IRBuilder, n_lines, lo, hi, width, src, s_line, s_elem,
                  dst, d_line, tag, gate=None):
    """for l < width: for e in [lo, hi): dst[e*d_line + l] = l < n_lines ? src[l*s_line + e*s_elem] : 0

    One runtime loop nest (not unrolled): packs one panel's lines (rows of A or
    columns of B), zero-filling the lines past ``n_lines``. ``gate = (G, g_line,
    g_elem)``: an element whose G element is not > 0 is packed as 0.
    """
    zero = ir.Constant(c.T, 0.0)

    def line(l):
        s = b.gep(src, [b.mul(l, s_line)])
        d = b.gep(dst, [l])
        g = b.gep(gate[0], [b.mul(l, gate[1])]) if gate is not None else None

        def elem(e):
            v = b.load(b.gep(s, [b.mul(e, s_elem)]))
            if g is not None:
                gv = b.load(b.gep(g, [b.mul(e, gate[2])]))
                v = b.select(b.fcmp_ordered(">", gv, zero), v, zero)
            b.store(v, b.gep(d, [b.mul(e, d_line)]))
        valid = b.icmp_signed("<", l, n_lines)
        with b.if_else(valid) as (then, otherwise):
            with then:
                counted_loop(b, lo, hi, 1, elem, f"{tag}.cp")
            with otherwise:
                counted_loop(b, lo, hi, 1, lambda e: b.store(zero, b.gep(d, [b.mul(e, d_line)])),
                             f"{tag}.z")
    counted_loop(b, I64(0), I64(width) if isinstance(width, int) else width, 1, line, tag)


def build_pack_a(c: Ctx, name: str, gated: bool = False) -> ir.Function:
    """void pack_a(i64 kc, i64 mc, T* A, i64 rsa, i64 csa, T* Ap, i1 direct)

    Ap holds ceil(mc/MR) panels of MR rows: panel q at Ap + q*MR*kc, element
    (p, i) at p*MR + i. Rows past mc are zero-filled. With ``direct`` (A has unit
    row stride and full panels are read in place) only the last, partial panel
    is packed. A is read only inside rows [0, mc) and columns [0, kc).

    ``gated``: three more arguments ``T* G, i64 rsg, i64 csg``, a matrix of A's
    shape; A's element is packed where G's is > 0, else 0 (relu's backward applied
    by the GEMM that consumes the gradient). ``direct`` must then be false.
    """
    MR, W = c.blk.MR, c.blk.W
    args = [I64, I64, c.P, I64, I64, c.P, I1] + ([c.P, I64, I64] if gated else [])
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), args), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    kc, mc, A, rsa, csa, Ap, direct = fn.args[:7]
    G, rsg, csg = fn.args[7:] if gated else (None, None, None)
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def panel(q0):
        rows = b.sub(mc, q0)
        dst = b.gep(Ap, [b.mul(q0, kc)])
        src = b.gep(A, [b.mul(q0, rsa)])
        gsrc = b.gep(G, [b.mul(q0, rsg)]) if gated else None
        full = b.icmp_signed(">=", rows, I64(MR))
        with b.if_then(b.not_(b.and_(full, direct))):
            # Rows of A (and G) contiguous (csa == 1), full panel: W x W register
            # transposes of MR rows (zero-padded to a multiple of W).
            unit = b.icmp_signed("==", csa, I64(1))
            if gated:
                unit = b.and_(unit, b.icmp_signed("==", csg, I64(1)))
            kvec = b.select(b.and_(full, unit), b.mul(b.sdiv(kc, I64(W)), I64(W)), I64(0))
            zero_v = c.cvec(0.0)
            ptrs = [b.gep(src, [b.mul(I64(i), rsa)]) for i in range(MR)]
            gptrs = [b.gep(gsrc, [b.mul(I64(i), rsg)]) for i in range(MR)] if gated else None

            def row_vector(i, p0):
                v = c.vload(b, b.gep(ptrs[i], [p0]))
                if gated:
                    gv = c.vload(b, b.gep(gptrs[i], [p0]))
                    v = b.select(b.fcmp_ordered(">", gv, zero_v), v, zero_v)
                return v

            def chunk(p0):
                store_transposed(c, b, [row_vector(i, p0) for i in range(MR)], dst, p0)
            counted_loop(b, I64(0), kvec, W, chunk, "pa.tr")
            # columns of A (and G) contiguous (A = Xᵀ, or a gradientᵀ), full panel: each
            # column's MR elements as masked vectors (not the scalar fallback: a weight
            # gradient's A is packed this way when it has many column tiles)
            col = b.and_(b.and_(full, b.not_(unit)), b.icmp_signed("==", rsa, I64(1)))
            if gated:
                col = b.and_(col, b.icmp_signed("==", rsg, I64(1)))
            kcol = b.select(col, kc, I64(0))

            def column(p):
                a0 = b.gep(src, [b.mul(p, csa)])
                g0 = b.gep(gsrc, [b.mul(p, csg)]) if gated else None
                d = b.gep(dst, [b.mul(p, I64(MR))])
                for k0 in range(0, MR, W):
                    mask = c.lane_mask(b, I64(min(W, MR - k0)))
                    v = c.mload(b, b.gep(a0, [I64(k0)]), mask)
                    if gated:
                        gv = c.mload(b, b.gep(g0, [I64(k0)]), mask)
                        v = b.select(b.fcmp_ordered(">", gv, zero_v), v, zero_v)
                    c.mstore(b, v, b.gep(d, [I64(k0)]), mask)
            counted_loop(b, I64(0), kcol, 1, column, "pa.col")
            done = b.select(col, kc, kvec)
            _copy_strided(c, b, rows, done, kc, MR, src, rsa, csa, dst, I64(MR), "pa.gen",
                          gate=(gsrc, rsg, csg) if gated else None)
    counted_loop(b, I64(0), mc, MR, panel, "pa")
    b.ret_void()
    return fn


def build_pack_b(c: Ctx, name: str) -> ir.Function:
    """void pack_b(i64 kc, i64 nc, T* B, i64 rsb, i64 csb, T* Bp, i1 direct)

    Bp holds ceil(nc/NR) panels: panel q at Bp + q*NR*kc, element (p, j) at
    p*NR + j, columns past nc zero-filled; except that a last panel of at most
    W columns is packed W wide (element (p, j) at p*W + j) for the narrow
    micro-kernel. With ``direct`` (B has unit column stride and full panels are
    read in place) only the last, partial panel is packed.
    """
    NR, W, NV = c.blk.NR, c.blk.W, c.blk.NV
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), [I64, I64, c.P, I64, I64, c.P, I1]),
                     name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    kc, nc, B, rsb, csb, Bp, direct = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def panel(q0):
        cols = b.sub(nc, q0)
        dst = b.gep(Bp, [b.mul(q0, kc)])
        src = b.gep(B, [b.mul(q0, csb)])
        full = b.icmp_signed(">=", cols, I64(NR))
        with b.if_then(b.not_(b.and_(full, direct))):
            unit = b.icmp_signed("==", csb, I64(1))
            with b.if_else(b.and_(full, unit)) as (then, otherwise):
                with then:
                    def row(p):
                        s = b.gep(src, [b.mul(p, rsb)])
                        d = b.gep(dst, [b.mul(p, I64(NR))])
                        for v in range(NV):
                            c.vstore(b, c.vload(b, b.gep(s, [I64(v * W)])),
                                     b.gep(d, [I64(v * W)]), align=64)
                    counted_loop(b, I64(0), kc, 1, row, "pb.vec")
                with otherwise:
                    # Columns of B contiguous (B = W^T), full panel: W x W transposes.
                    tr = b.and_(full, b.icmp_signed("==", rsb, I64(1)))
                    kvec = b.select(tr, b.mul(b.sdiv(kc, I64(W)), I64(W)), I64(0))
                    cptrs = [b.gep(src, [b.mul(I64(j), csb)]) for j in range(NR)]

                    def chunk(p0):
                        rws = [c.vload(b, b.gep(cptrs[j], [p0])) for j in range(NR)]
                        for v in range(NV):
                            t = transpose(c, b, rws[v * W:(v + 1) * W])
                            for p in range(W):
                                d = b.gep(dst, [b.add(b.mul(b.add(p0, I64(p)), I64(NR)),
                                                      I64(v * W))])
                                c.vstore(b, t[p], d, align=64)
                    counted_loop(b, I64(0), kvec, W, chunk, "pb.tr")
                    width = b.select(b.icmp_signed("<=", cols, I64(W)), I64(W), I64(NR))
                    _copy_strided(c, b, cols, kvec, kc, width, src, csb, rsb, dst, width,
                                  "pb.gen")
    counted_loop(b, I64(0), nc, NR, panel, "pb")
    b.ret_void()
    return fn


def store_transposed(c: Ctx, b: ir.IRBuilder, rows: list, dst, p0) -> None:
    """Columns p0 .. p0+W of an A panel from its MR rows' W-vectors (``rows``): element
    (p, i) at dst[p*MR + i], by W x W register transposes (rows zero-padded to a multiple
    of W)."""
    MR, W = c.blk.MR, c.blk.W
    nblk = -(-MR // W)
    rws = list(rows) + [c.cvec(0.0)] * (nblk * W - MR)
    ts = [transpose(c, b, rws[k * W:(k + 1) * W]) for k in range(nblk)]
    for p in range(W):
        d = b.gep(dst, [b.mul(b.add(p0, I64(p)), I64(MR))])
        for k in range(nblk):
            n = min(W, MR - k * W)
            v = ts[k][p]
            if n < W:
                v = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, n), list(range(n))))
            b.store(v, b.bitcast(b.gep(d, [I64(k * W)]), ir.VectorType(c.T, n).as_pointer()), align=c.size)


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

    ``epi`` with a residual of any column stride: a residual without unit column
    stride is first copied (rows [0, mr) x columns [0, nr)) into a stack tile.
    """
    MR, NR = c.blk.MR, c.blk.NR
    args = [c.P, c.P, I64, I64, I64, c.P, c.P, I64, I64, I1, I1, c.T]
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), args), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    tile, C, ldc, mr, nr, bias, R, rsr, csr, first, last, alpha = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    rt = b.alloca(c.T, MR * NR)
    rt.align = 64
    direct = b.icmp_signed("==", csr, I64(1)) if spec.reads_r else ir.Constant(I1, 1)
    with b.if_else(direct) as (then, otherwise):
        with then:
            b.call(epi, [tile, C, ldc, mr, nr, bias, R, rsr, first, last, alpha])
        with otherwise:
            def row(i):
                d = b.gep(rt, [b.mul(i, I64(NR))])
                s = b.gep(R, [b.mul(i, rsr)])
                counted_loop(b, I64(0), nr, 1, lambda j: b.store(
                    b.load(b.gep(s, [b.mul(j, csr)])), b.gep(d, [j])), "rin.j")
            counted_loop(b, I64(0), mr, 1, row, "rin")
            b.call(epi, [tile, C, ldc, mr, nr, bias, rt, I64(NR), first, last, alpha])
    b.ret_void()
    return fn
