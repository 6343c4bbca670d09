"""IR for the GEMM's small-shape path: C = A·B as dot products, B never packed.

When C has few rows (the batch-1 ``x @ W.T`` of a linear layer: M = 1 .. SMALL_M) or
few columns (a matrix-vector product: N <= SMALL_N), packing B into panels costs as
much as the multiply-adds themselves, and the register tile of the general path is
mostly empty. If the rows of A and the columns of B are contiguous (``csa == 1``,
``rsb == 1``: A row-major and B = Wᵀ with W row-major), every element of C is a dot
product of two contiguous vectors of length K, so the operands are streamed once, in
place::

    for i0 in 0, R, 2R, ... (R = 4, 2 or 1 rows: whatever covers the remaining rows)
      for j0 in 0, NR, 2NR, ...                     (one epilogue tile of columns)
        for jj in j0, j0 + JB, ...                  (JB columns at a time)
          acc[r][j] = 0                             (R x JB vector accumulators)
          for p in 0, W, 2W, ... < K                (the last step masked)
            acc[r][j] = fma(A[i0+r, p:p+W], B[p:p+W, jj+j], acc[r][j])
          tile[r][j] = reduce(acc[r][j])            (a fixed tree of adds)
        epilogue(tile)                              (the general path's own code)

Rows (columns) past the end of a group read the last real row (column) again and are
never stored, so nothing outside the operands is read. The epilogue is the general
path's tile store with ``first = last = 1`` (all of K in one block): bias, activation,
residual, gates and accumulate are applied by exactly the same instructions.

Summation order: lane l of an accumulator adds the products p = l, l + W, l + 2W, ...
in order, then the lanes are added in a fixed tree, so an element's value depends
only on K and W, never on M, N, the group or the thread that computed it. It differs
from the general path's order (one chain p = 0, 1, 2, ...) by rounding, which is why
a split across threads never moves a row (column) between this path and the general
one (``gemm_call.split_spans``).

>>> from lucid_codegen.gemm.small import uses_dot_path
>>> uses_dot_path(1, 256, csa=1, rsb=1), uses_dot_path(64, 256, csa=1, rsb=1)
(True, False)
"""
from __future__ import annotations

import llvmlite.ir as ir

from lucid_codegen.gemm.microkernel import I1, I32, I64, Ctx, call_tile_store, callee, counted_loop, imin, store_type

#: C with at most this many rows takes the dot path. Measured on a linear layer 784 -> 256
#: (``python benchmarks/bench_small_crossover.py``, Zen 3, one thread, busy machine): the
#: dot path beat the general path at every M = 1 .. 16, general/dot time 2.9 (M = 1),
#: 2.6 (4), 1.75 (8), 1.27 (12), 1.17 (16), so the range is the issue's whole 1 .. 16
#: (not measured for other shapes: small K favours the general path, no reduction)
SMALL_M = 16
#: ... or with at most this many columns (a matrix-vector product)
SMALL_N = 4
#: columns per pass for each row-group height, at most: R x JB accumulators plus the
#: operand vectors must stay in registers (see ``_row_groups``)
_JB = {1: 8, 2: 8, 4: 4}


def uses_dot_path(M: int, N: int, csa: int, rsb: int, gate_a: bool = False) -> bool:
    """Whether the kernel computes C(M, N) on the dot path (mirrors ``small_condition``)."""
    return not gate_a and csa == 1 and rsb == 1 and (M <= SMALL_M or N <= SMALL_N)


def small_condition(b: ir.IRBuilder, spec, M, N, csa, rsb):
    """The i1 the driver branches on (see ``uses_dot_path``)."""
    if spec.gate_a:
        return ir.Constant(I1, 0)
    small = b.or_(b.icmp_signed("<=", M, I64(SMALL_M)), b.icmp_signed("<=", N, I64(SMALL_N)))
    layout = b.and_(b.icmp_signed("==", csa, I64(1)), b.icmp_signed("==", rsb, I64(1)))
    return b.and_(small, layout)


def _row_groups(c: Ctx) -> dict:
    """Row-group height R -> columns per pass JB: R x JB accumulators, R row vectors of A
    and (for R > 1, where each is used R times) JB column vectors of B in registers, two
    to spare. With one row, B's vectors are FMA memory operands. Zen 3 (16 registers):
    {1: 8, 2: 4, 4: 2}, 8 independent FMA chains each, enough to cover the FMA latency."""
    regs = 32 if c.W * c.size >= 64 else 16
    out = {}
    for r, jb in _JB.items():
        while jb > 1 and r * jb + (jb if r > 1 else 0) + r > regs - 2:
            jb //= 2
        out[r] = jb
    return out


def _bit_reversed(n: int) -> list:
    """0 .. n-1 in bit-reversed order (n a power of two): [0, 4, 2, 6, 1, 5, 3, 7] for 8."""
    bits = n.bit_length() - 1
    return [int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(n)]


def reduce_lanes(c: Ctx, b: ir.IRBuilder, vecs: list):
    """One vector whose lane q is the sum of ``vecs[q]``'s lanes (W vectors), by a fixed
    tree: lane l is added to lane l + W/2, then l + W/4, ... (halves added until one lane
    is left), the same tree for every lane, so a dot product's value never depends on
    which other dot products were reduced with it. Lanes W/2, W/4, .. apart are paired
    whatever a vector's rotation, so a vector whose lanes are rotated gives the same
    bits (``_build_dots`` starts B's loads at aligned addresses, which rotates them).

    The vectors are merged in pairs (a transpose-and-add): X and Y, each holding its
    columns' partial sums in segments of s lanes, give the vector of the lower halves of
    their segments, interleaved X, Y segment by segment, plus that of the upper halves:
    segments of s/2 lanes, twice as many columns. Every shuffle stays inside an aligned
    block of s lanes (vperm2f128, then in-lane shufps/unpcklps on AVX2), and W vectors
    take W - 1 adds instead of W log2(W). The merges leave the columns in bit-reversed
    lane order, so the inputs are taken in that order. For W = 4, vectors a b c d:
    [a0+a2, a1+a3, b0+b2, b1+b3] and [c0+c2, ..] give [(a0+a2)+(a1+a3), (b..), (c..), (d..)].
    """
    W = c.W
    assert len(vecs) == W
    order = _bit_reversed(W)
    cur = [vecs[order[i]] for i in range(W)]
    s = W
    while len(cur) > 1:
        lo = [k * s + (i if i < s // 2 else W + i - s // 2)
              for k in range(W // s) for i in range(s)]
        hi = [x + s // 2 for x in lo]
        nxt = []
        for x, y in zip(cur[::2], cur[1::2]):
            lov = b.shuffle_vector(x, y, ir.Constant(ir.VectorType(I32, W), lo))
            hiv = b.shuffle_vector(x, y, ir.Constant(ir.VectorType(I32, W), hi))
            nxt.append(b.fadd(lov, hiv))
        cur, s = nxt, s // 2
    return cur[0]


def _build_dots(c: Ctx, name: str, R: int, JB: int) -> ir.Function:
    """void dots(i64 K, T* A, i64 rsa, i64 rows, T* B, i64 csb, i64 cols, T* tile)

    tile[r * NR + j] = sum_p A[r*rsa + p] * B[j*csb + p] for r < R, j < JB; rows past
    ``rows`` repeat row ``rows - 1``, columns past ``cols`` repeat column ``cols - 1``.
    The K loop is unrolled by two (the same FMA chain per lane); the R x JB accumulators
    are reduced W at a time by ``reduce_lanes``.
    """
    NR, W = c.blk.NR, c.W
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), [I64, c.P, I64, I64, c.P, I64, I64, c.P]),
                     name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    K, A, rsa, rows, B, csb, cols, tile = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    a_rows = [b.gep(A, [b.mul(imin(b, I64(r), b.sub(rows, I64(1))), rsa)]) for r in range(R)]
    b_cols = [b.gep(B, [b.mul(imin(b, I64(j), b.sub(cols, I64(1))), csb)]) for j in range(JB)]
    # B's vectors loaded from W-aligned addresses (a vector across two cache lines costs
    # two reads: F.linear 1x784 -> 256 took 12-13.6 us with W 16 bytes off a line, 8.8
    # on one): when every column starts at the same offset m from an aligned address
    # (csb a multiple of W), the first vector starts m elements early, its lanes before
    # the column masked off. Lane l then gathers the products p = l - m (mod W), in the
    # same order as lane p mod W does from an aligned start: the lanes are the aligned
    # start's rotated by m, and ``reduce_lanes``' tree adds lanes W/2, W/4, .. apart, the
    # same pairs under any rotation, so the bits are those of an aligned start.
    base = b.ptrtoint(b_cols[0], I64)
    uniform = b.and_(b.icmp_signed("==", b.srem(csb, I64(W)), I64(0)),
                     b.icmp_signed("==", b.and_(base, I64(c.size - 1)), I64(0)))
    m = b.select(uniform, b.and_(b.lshr(base, I64(c.size.bit_length() - 1)), I64(W - 1)), I64(0))
    iota = ir.Constant(ir.VectorType(I64, W), list(range(W)))
    lanes = b.sub(iota, _splat64(b, m, W))           # p of each lane of the first vector
    head = b.and_(b.icmp_signed(">=", lanes, _splat64(b, I64(0), W)), b.icmp_signed("<", lanes, _splat64(b, K, W)))
    start = b.sub(I64(W), m)                         # the first p of the second vector
    accs0 = []
    bv = [c.mload(b, b.gep(col, [b.neg(m)]), head) for col in b_cols]
    for r in range(R):
        av = c.mload(b, b.gep(a_rows[r], [b.neg(m)]), head)
        accs0 += [c.fma(b, av, bv[j], c.cvec(0.0)) for j in range(JB)]
    beyond = b.select(b.icmp_signed(">", K, start), b.sub(K, start), I64(0))
    kfull = b.add(start, b.mul(b.sdiv(beyond, I64(W)), I64(W)))

    def step(accs, p):
        bv = [c.vload(b, b.gep(col, [p])) for col in b_cols]
        nxt = []
        for r in range(R):
            av = c.vload(b, b.gep(a_rows[r], [p]))
            nxt += [c.fma(b, av, bv[j], accs[r * JB + j]) for j in range(JB)]
        return nxt

    def loop(accs, lo, hi, unroll, tag):
        """for p in [lo, hi) by unroll*W: accs = step(...) unroll times; returns (accs, p)."""
        pre = b.block
        hdr, body, end = (b.append_basic_block(f"{tag}.{t}") for t in ("hdr", "body", "end"))
        b.branch(hdr)
        b.position_at_end(hdr)
        p = b.phi(I64)
        phis = [b.phi(c.V) for _ in accs]
        p.add_incoming(lo, pre)
        for phi, v in zip(phis, accs):
            phi.add_incoming(v, pre)
        b.cbranch(b.icmp_signed("<=", b.add(p, I64(unroll * W)), hi), body, end)
        b.position_at_end(body)
        cur = list(phis)
        for u in range(unroll):
            cur = step(cur, b.add(p, I64(u * W)))
        p.add_incoming(b.add(p, I64(unroll * W)), b.block)
        for phi, v in zip(phis, cur):
            phi.add_incoming(v, b.block)
        b.branch(hdr)
        b.position_at_end(end)
        return phis, p

    accs, p = loop(accs0, start, kfull, 2, "dot2")
    accs, p = loop(accs, p, kfull, 1, "dot1")

    # the last products: masked loads (lanes off read 0 and touch no memory)
    mask = c.lane_mask(b, b.sub(K, kfull))
    bv = [c.mload(b, b.gep(col, [kfull]), mask) for col in b_cols]
    out = []
    for r in range(R):
        av = c.mload(b, b.gep(a_rows[r], [kfull]), mask)
        out += [c.fma(b, av, bv[j], accs[r * JB + j]) for j in range(JB)]
    # W accumulators at a time (row-major order, padded by repeating the last) reduce to
    # one vector: whole rows of the tile when JB >= W, else W // JB rows of JB lanes
    n = len(out)
    for g in range(0, n, W):
        chunk = out[g:g + W]
        sums = reduce_lanes(c, b, chunk + [chunk[-1]] * (W - len(chunk)))
        for q in range(0, min(W, n - g), min(JB, W)):
            r, j = divmod(g + q, JB)
            width = min(JB, W)
            ptr = b.gep(tile, [I64(r * NR + j)])
            if width == W:
                c.vstore(b, sums, ptr)
            else:
                part = b.shuffle_vector(sums, sums, ir.Constant(ir.VectorType(I32, width),
                                                                list(range(q, q + width))))
                b.store(part, b.bitcast(ptr, ir.VectorType(c.T, width).as_pointer()), align=c.size)
    b.ret_void()
    return fn


def _splat64(b: ir.IRBuilder, value, n: int):
    v = b.insert_element(ir.Constant(ir.VectorType(I64, n), ir.Undefined), value, I32(0))
    return b.shuffle_vector(v, ir.Constant(ir.VectorType(I64, n), ir.Undefined),
                            ir.Constant(ir.VectorType(I32, n), [0] * n))


def build_dots_kernels(c: Ctx, prefix: str) -> dict:
    """The small path's dot-product kernels, ``{rows: function}`` (named ``prefix.dotsR``):
    they depend on the dtype and blocking only, so gemm_core.py compiles them once for
    every GEMM variant."""
    return {r: _build_dots(c, f"{prefix}.dots{r}", r, jb) for r, jb in _row_groups(c).items()}


def build_small_path(c: Ctx, spec, store, name: str, dots: dict | None = None) -> ir.Function:
    """i32 small(i64 M, i64 N, i64 K, T alpha, T* A, i64 rsa, T* B, i64 csb, T* C, i64 ldc,
    T* bias, T* R, i64 rsr, i64 csr[, store*])

    C = epilogue(A·B) for A with unit column stride and B with unit row stride (see the
    module docstring); ``store`` is the general path's tile store, or None: the store
    (``store_type``, R with any column stride) is the last argument (the core's generic
    driver, gemm/kernel.py); ``dots`` the dot-product kernels (``build_dots_kernels``;
    built into the module when None). Returns 0.
    """
    NR, MR = c.blk.NR, c.blk.MR
    groups = _row_groups(c)
    if dots is None:
        dots = build_dots_kernels(c, name)
    args = [I64, I64, I64, c.T, c.P, I64, c.P, I64, c.P, I64, c.P, c.P, I64, I64]
    fn = ir.Function(c.m, ir.FunctionType(I32, args + [store_type(c).as_pointer()] * (store is None)), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    M, N, K, alpha, A, rsa, B, csb, C, ldc, bias, Rp, rsr, csr = fn.args[:14]
    store = fn.args[14] if store is None else store
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    tile = b.alloca(c.T, MR * NR, name="tile")
    tile.align = 64
    true = ir.Constant(I1, 1)

    def row_group(i0, R):
        rows = imin(b, I64(R), b.sub(M, i0))
        a_i = b.gep(A, [b.mul(i0, rsa)])
        c_i = b.gep(C, [b.mul(i0, ldc)])
        r_i = b.gep(Rp, [b.mul(i0, rsr)]) if spec.reads_r else Rp
        JB = groups[R]

        def col_tile(j0):
            nr = imin(b, I64(NR), b.sub(N, j0))
            b_j = b.gep(B, [b.mul(j0, csb)])

            def cols(jj):
                b.call(callee(b, dots[R]), [K, a_i, rsa, rows, b.gep(b_j, [b.mul(jj, csb)]), csb,
                                 b.sub(nr, jj), b.gep(tile, [jj])])
            counted_loop(b, I64(0), nr, JB, cols, f"small{R}.jj")
            bias_j = b.gep(bias, [j0]) if spec.bias else bias
            c_j = b.gep(c_i, [j0])
            r_j = b.gep(r_i, [b.mul(j0, csr)]) if spec.reads_r else Rp
            call_tile_store(b, spec, store, tile, c_j, ldc, rows, nr, bias_j, r_j, rsr, csr, true, true, alpha)
        counted_loop(b, I64(0), N, NR, col_tile, f"small{R}.j0")

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
    counted_loop(b, I64(0), M, 4, group_loop, "small.i0")
    b.ret(I32(0))
    return fn
