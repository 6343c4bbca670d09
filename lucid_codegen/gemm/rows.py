"""IR for the GEMM's few-rows path with B row-major: C's rows built from B's rows, in place.

A layer's backward ``dX = dY·W`` at batch 1 .. ROWS_M multiplies a few rows of dY by W
stored row-major (K x N, unit column stride). The general path would pack A, and its
register tile (MR rows, two vectors wide) is mostly empty at M = 1, so each k step
waits for the FMA latency of a few chains. Here each row of C is a sum of B's rows
(an axpy per k), vectorised along N, with a block of C's row in registers::

    for i0 in 0, R, 2R, ...                      (R = 2 or 1 rows of C; see ``_ROW_GROUPS``)
      for j0 in 0, NB, 2*NB, ...                 (a strip: NB columns, STRIP_BYTES in all)
        for pc in 0, KC, 2*KC, ...               (the general path's K blocks)
          S[r][:] = 0                            (C's partial sums, in L1)
          for p in pc, pc + U, ...               (U rows of B at a time, each read once)
            for j in j0, j0 + W, ...             (front to back along B's rows)
              S[r][j] = fma(A[i0+r, p+U-1], B[p+U-1, j], .. fma(A[i0+r, p], B[p, j], S[r][j]))
          epilogue(S's NR-wide tiles, first = pc == 0, last = pc + KC >= K)

B is streamed once per row group, row by row, never packed (U sequential streams,
which the hardware prefetcher follows, instead of a short piece of every row); A's
elements are read one at a time (any strides). Rows past the end of a group repeat the
group's last row and are never stored; a last, partial vector of B is read through
masked loads (lanes past N read 0 and touch no memory).

Summation order: every element of C is the one FMA chain p = 0, 1, 2, ... per K block,
started from 0, then the general path's epilogue with its K-block protocol: exactly the
micro-kernel's arithmetic (``gemm_microkernel.build_microkernel``), so the result is
bit-identical to the general path's and a split across threads may put rows on either
side of ``ROWS_M``.

>>> from lucid_codegen.gemm.rows import uses_row_path
>>> uses_row_path(1, csb=1), uses_row_path(1, csb=784), uses_row_path(64, csb=1)
(True, False, False)
"""
from __future__ import annotations

import llvmlite.ir as ir

from lucid_codegen.gemm.microkernel import I1, I64, Ctx, call_tile_store, callee, counted_loop, imin, store_type

#: C with at most this many rows and B with unit column stride take the row path.
#: Measured on dX = dY·W, (M, 256)·(256, 784) (``python benchmarks/bench_small_crossover.py``,
#: Zen 3, one thread): general/row time 1.59 at M = 1, 1.49 at M = 2, then 0.92-1.02 for
#: M = 3 .. 16 (a 2-row group and a 1-row group stream B twice; the general path's 6-row
#: register tile reads B once), so rows from 3 on take the general path.
ROWS_M = 2
#: row-group height R -> rows of B per pass over the strip (U): the R x U broadcasts of
#: A and U vectors of B fit in AVX2's 16 registers. U = 4 at R = 1 measured ~15% faster
#: than U = 8 (1x256x784: 15-18 µs against 18); a 4-row group (U = 2, four loads and
#: stores of the strip per 8 FMAs) ran as slowly as two 2-row groups.
_ROW_GROUPS = {2: 4, 1: 4}
#: bytes of C's partial sums (the strip: R rows x as many columns as fit) kept in L1
STRIP_BYTES = 8192


def uses_row_path(M: int, csb: int, gate_a: bool = False, dot: bool = False) -> bool:
    """Whether the kernel computes C(M, N) on the row path (mirrors ``row_condition``;
    ``dot``: the dot path, which is tried first, takes it)."""
    return not gate_a and not dot and csb == 1 and 0 < M <= ROWS_M


def row_condition(b: ir.IRBuilder, spec, M, csb):
    """The i1 the driver branches on (see ``uses_row_path``)."""
    if spec.gate_a:
        return ir.Constant(I1, 0)
    return b.and_(b.icmp_signed("<=", M, I64(ROWS_M)), b.icmp_signed("==", csb, I64(1)))


def _build_strip(c: Ctx, name: str, R: int, U: int) -> ir.Function:
    """void strip(i64 kc, T* A, i64 rsa, i64 csa, i64 rows, T* B, i64 rsb, i64 cols, T* S)

    S[(j // NR)*R*NR + r*NR + j % NR] = sum_{p < kc} A[r*rsa + p*csa] * B[p*rsb + j] for
    r < R and j < cols rounded up to NR: the strip's NR-wide tiles one after another,
    each with row stride NR (columns past ``cols`` read B as 0 through masked loads).
    Rows past ``rows`` repeat row ``rows - 1``.

    S is zeroed, then each group of U rows of B is streamed once, front to back: every
    vector of S is loaded, given U FMAs (p, p+1, ..) per row and stored, with the R x U
    elements of A broadcast in registers. That is each element's chain p = 0, 1, .. in
    order, the partial sum parked in S (in L1) between groups.
    """
    NR, NV, W = c.blk.NR, c.blk.NV, c.W
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), [I64, c.P, I64, I64, I64, c.P, I64, I64,
                                                          c.P]), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    kc, A, rsa, csa, rows, B, rsb, cols, S = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    a_rows = [b.mul(imin(b, I64(r), b.sub(rows, I64(1))), rsa) for r in range(R)]
    full = b.sdiv(cols, I64(NR))                         # whole NR-wide tiles
    tiles = b.sdiv(b.add(cols, I64(NR - 1)), I64(NR))
    zero = c.cvec(0.0)

    def zero_tile(t):
        st = b.gep(S, [b.mul(t, I64(R * NR))])
        for k in range(R * NV):
            c.vstore(b, zero, b.gep(st, [I64(k * W)]), align=64)
    counted_loop(b, I64(0), tiles, 1, zero_tile, "strip.zero")

    def group(p, u_count):
        """FMAs of B's rows p .. p + u_count - 1 into every tile of S."""
        ap = b.gep(A, [b.mul(p, csa)])
        bcast = [[c.splat(b, b.load(b.gep(ap, [b.add(a_rows[r], b.mul(I64(u), csa))]),
                                     align=c.size)) for u in range(u_count)] for r in range(R)]
        brows = [b.gep(B, [b.mul(b.add(p, I64(u)), rsb)]) for u in range(u_count)]

        def tile(t, masked):
            st = b.gep(S, [b.mul(t, I64(R * NR))])
            j = b.mul(t, I64(NR))
            for v in range(NV):
                if masked:
                    mask = c.lane_mask(b, b.sub(cols, b.add(j, I64(v * W))))
                    bv = [c.mload(b, b.gep(br, [b.add(j, I64(v * W))]), mask) for br in brows]
                else:
                    bv = [c.vload(b, b.gep(br, [b.add(j, I64(v * W))])) for br in brows]
                for r in range(R):
                    sp = b.gep(st, [I64(r * NR + v * W)])
                    acc = c.vload(b, sp, align=64)
                    for u in range(u_count):
                        acc = c.fma(b, bcast[r][u], bv[u], acc)
                    c.vstore(b, acc, sp, align=64)
        counted_loop(b, I64(0), full, 1, lambda t: tile(t, False), f"strip{u_count}.t")
        with b.if_then(b.icmp_signed("<", full, tiles)):
            tile(full, True)

    kmain = b.mul(b.sdiv(kc, I64(U)), I64(U))
    counted_loop(b, I64(0), kmain, U, lambda p: group(p, U), f"strip.p{U}")
    counted_loop(b, kmain, kc, 1, lambda p: group(p, 1), "strip.p1")
    b.ret_void()
    return fn


def _strip_cols(c: Ctx, R: int) -> int:
    """Columns of a strip of R rows: STRIP_BYTES worth, a multiple of NR."""
    NR = c.blk.NR
    return max(NR, STRIP_BYTES // (R * c.size) // NR * NR)


def build_strip_kernels(c: Ctx, prefix: str) -> dict:
    """The few-rows path's strip kernels, ``{rows: function}`` (named ``prefix.stripR``):
    they depend on the dtype and blocking only, so gemm_core.py compiles them once for
    every GEMM variant."""
    return {r: _build_strip(c, f"{prefix}.strip{r}", r, u) for r, u in _ROW_GROUPS.items()}


def build_row_path(c: Ctx, spec, store, kblock, name: str, kernels: dict | None = None,
                   extra: tuple = ()) -> ir.Function:
    """i32 rows(i64 M, i64 N, i64 K, T alpha, T* A, i64 rsa, i64 csa, T* B, i64 rsb, T* C,
    i64 ldc, T* bias, T* R, i64 rsr, i64 csr[, store*[, i1 one_block]])

    C = epilogue(A·B) for B with unit column stride (see the module docstring);
    ``store`` is the general path's tile store, or None: the store (``store_type``) is an
    argument (the core's generic driver, gemm/kernel.py); ``kblock(b, kd, fn)`` its
    K-block depth (an i64) for kd = max(K, 1), ``fn`` the function being built;
    ``kernels`` the strip kernels (``build_strip_kernels``; built into the module when
    None). ``extra``: types of more arguments, after the store's (for ``kblock``).
    Returns 0.
    """
    NR = c.blk.NR
    if kernels is None:
        kernels = build_strip_kernels(c, name)
    args = [I64, I64, I64, c.T, c.P, I64, I64, c.P, I64, c.P, I64, c.P, c.P, I64, I64]
    args += [store_type(c).as_pointer()] * (store is None) + list(extra)
    fn = ir.Function(c.m, ir.FunctionType(ir.IntType(32), args), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    M, N, K, alpha, A, rsa, csa, B, rsb, C, ldc, bias, Rp, rsr, csr = fn.args[:15]
    store = fn.args[15] if store is None else store
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    strip = b.alloca(c.T, max(r * _strip_cols(c, r) for r in _ROW_GROUPS), name="strip")
    strip.align = 64
    kd = b.select(b.icmp_signed(">", K, I64(1)), K, I64(1))
    kcb = kblock(b, kd, fn)

    def row_group(i0, R):
        NB = _strip_cols(c, R)
        rows = imin(b, I64(R), b.sub(M, i0))
        a_i = b.gep(A, [b.mul(i0, rsa)])
        c_i = b.gep(C, [b.mul(i0, ldc)])
        r_i = b.gep(Rp, [b.mul(i0, rsr)]) if spec.reads_r else Rp

        def block(j0):
            cols = imin(b, I64(NB), b.sub(N, j0))
            b_j = b.gep(B, [j0])

            def k_block(pc):
                kc = imin(b, kcb, b.sub(K, pc))
                first = b.icmp_signed("==", pc, I64(0))
                last = b.icmp_signed(">=", b.add(pc, kcb), K)
                b.call(callee(b, kernels[R]), [kc, b.gep(a_i, [b.mul(pc, csa)]), rsa, csa, rows,
                                    b.gep(b_j, [b.mul(pc, rsb)]), rsb, cols, strip])

                def sub_tile(jt):
                    j = b.add(j0, jt)
                    nr = imin(b, I64(NR), b.sub(N, j))
                    t = b.gep(strip, [b.mul(b.sdiv(jt, I64(NR)), I64(R * NR))])
                    bias_j = b.gep(bias, [j]) if spec.bias else bias
                    c_j = b.gep(c_i, [j])
                    r_j = b.gep(r_i, [b.mul(j, csr)]) if spec.reads_r else Rp
                    call_tile_store(b, spec, store, t, c_j, ldc, rows, nr, bias_j, r_j, rsr, csr, first, last, alpha)
                counted_loop(b, I64(0), cols, NR, sub_tile, f"rows{R}.t")
            counted_loop(b, I64(0), kd, kcb, k_block, f"rows{R}.pc")
        counted_loop(b, I64(0), N, NB, block, f"rows{R}.j0")

    # row groups: 2 while at least 2 rows remain, then 1
    def group_loop(i0):
        with b.if_else(b.icmp_signed(">=", b.sub(M, i0), I64(2))) as (two, one):
            with two:
                row_group(i0, 2)
            with one:
                row_group(i0, 1)
    counted_loop(b, I64(0), M, 2, group_loop, "rows.i0")
    b.ret(ir.IntType(32)(0))
    return fn
