"""IR pieces of the GEMM kernel: vector helpers, micro-kernel, tile store (the epilogue).

Everything here is built with ``llvmlite.ir.IRBuilder``. No fast-math flags are
used: every FMA is an explicit ``llvm.fma.*`` call, so the arithmetic done for an
element of C does not depend on which code path (full tile, edge tile, thread
chunk) computed it. That is what makes a multi-threaded split bit-identical to a
single-threaded run.
"""
from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from lucid_codegen.kernels.loops import concat, lanes_of, splat
from lucid_codegen.kernels.vector_math import const, fma

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)


@dataclass(frozen=True)
class Blocking:
    """Register and cache blocking of one kernel (all derived from the vector width)."""

    W: int    # lanes per vector
    NV: int   # vectors per micro-tile row (NR = NV * W)
    MR: int   # rows of the micro-tile
    MC: int   # rows of a packed A block (multiple of MR)
    KC: int   # depth of a K block
    NC: int   # columns of a packed B block (multiple of NR)
    UNROLL: int = 2  # k-loop unroll of the micro-kernel

    @property
    def NR(self) -> int:
        return self.NV * self.W

    def tag(self) -> str:
        return (f"W{self.W}NV{self.NV}MR{self.MR}MC{self.MC}KC{self.KC}NC{self.NC}"
                f"U{self.UNROLL}")


def default_blocking(dtype: str, vector_bytes: int) -> Blocking:
    size = 4 if dtype == "float32" else 8
    W = max(vector_bytes // size, 1)
    # 32 vector registers with AVX-512, 16 with AVX2: accumulators MR x NV plus NV
    # B vectors and a broadcast must fit.
    MR = 12 if vector_bytes >= 64 else 6
    NV = 2
    KC = 512 if size == 4 else 256
    MC = MR * 12
    NC = NV * W * (64 if size == 4 else 96)
    return Blocking(W=W, NV=NV, MR=MR, MC=MC, KC=KC, NC=NC)


class Ctx:
    """Types and intrinsic declarations for one module and element type."""

    def __init__(self, module: ir.Module, dtype: str, blk: Blocking):
        self.m = module
        self.dtype = dtype
        self.blk = blk
        self.T = ir.FloatType() if dtype == "float32" else ir.DoubleType()
        self.size = 4 if dtype == "float32" else 8
        self.IT = I32 if dtype == "float32" else I64   # same-width integer
        self.W = blk.W
        self.V = ir.VectorType(self.T, self.W)
        self.VI = ir.VectorType(self.IT, self.W)
        self.P = self.T.as_pointer()
        self.VP = self.V.as_pointer()
        self.sfx = f"v{self.W}{'f32' if self.size == 4 else 'f64'}"
        # (made once: a vector constant is W element objects, and splats are many)
        self._undef = ir.Constant(self.V, ir.Undefined)
        self._lane0 = I32(0)
        self._broadcast = ir.Constant(ir.VectorType(I32, self.W), [0] * self.W)

    # -- declarations -------------------------------------------------------
    def intrinsic(self, name: str, ret, args) -> ir.Function:
        if name in self.m.globals:
            return self.m.globals[name]
        return ir.Function(self.m, ir.FunctionType(ret, args), name)

    def vcall(self, b: ir.IRBuilder, op: str, *args):
        fn = self.intrinsic(f"llvm.{op}.{self.sfx}", self.V, [self.V] * len(args))
        return b.call(fn, list(args))

    def fma(self, b, x, y, z):
        return self.vcall(b, "fma", x, y, z)

    # -- constants and vectors ---------------------------------------------
    def cvec(self, value: float) -> ir.Constant:
        return ir.Constant(self.V, [value] * self.W)

    def civec(self, value: int) -> ir.Constant:
        return ir.Constant(self.VI, [value] * self.W)

    def splat(self, b: ir.IRBuilder, scalar):
        v = b.insert_element(self._undef, scalar, self._lane0)
        return b.shuffle_vector(v, self._undef, self._broadcast)

    def vload(self, b, ptr, align=None):
        vp = b.bitcast(ptr, self.VP)
        return b.load(vp, align=align or self.size)

    def vstore(self, b, val, ptr, align=None):
        vp = b.bitcast(ptr, self.VP)
        b.store(val, vp, align=align or self.size)

    def lane_mask(self, b, n):
        """<W x i1>: lane l set iff l < n (n an i64; any value)."""
        iota = ir.Constant(ir.VectorType(I64, self.W), list(range(self.W)))
        nv = b.insert_element(ir.Constant(ir.VectorType(I64, self.W), ir.Undefined), n, I32(0))
        nv = b.shuffle_vector(nv, ir.Constant(ir.VectorType(I64, self.W), ir.Undefined),
                              ir.Constant(ir.VectorType(I32, self.W), [0] * self.W))
        return b.icmp_signed("<", iota, nv)

    def mload(self, b, ptr, mask):
        """Masked vector load (lanes off read as 0.0 and touch no memory)."""
        MT = ir.VectorType(I1, self.W)
        fn = self.intrinsic(f"llvm.masked.load.{self.sfx}.p0", self.V, [self.VP, I32, MT, self.V])
        return b.call(fn, [b.bitcast(ptr, self.VP), I32(self.size), mask, self.cvec(0.0)])

    def prefetch(self, b, ptr, write: bool = False) -> None:
        """Ask for the cache line holding ``ptr`` (``llvm.prefetch``: a hint, never a
        memory access: any address, inside a buffer or not, is safe)."""
        fn = self.intrinsic("llvm.prefetch.p0", ir.VoidType(), [ir.IntType(8).as_pointer(), I32, I32, I32])
        b.call(fn, [b.bitcast(ptr, ir.IntType(8).as_pointer()), I32(int(write)), I32(3), I32(1)])

    def mstore(self, b, val, ptr, mask):
        MT = ir.VectorType(I1, self.W)
        fn = self.intrinsic(f"llvm.masked.store.{self.sfx}.p0", ir.VoidType(),
                            [self.V, self.VP, I32, MT])
        b.call(fn, [val, b.bitcast(ptr, self.VP), I32(self.size), mask])


# -- functions called through a slot ---------------------------------------

@dataclass(frozen=True)
class Slot:
    """A function called through entry ``index`` of ``table`` (a global array of
    addresses, filled when the code it points to is loaded): the GEMM core's driver calls
    the small path's and few-rows path's kernels this way, so they are compiled only for
    shapes that take those paths (gemm/core.py ``ensure_paths``)."""

    table: ir.GlobalVariable
    index: int
    type: ir.FunctionType


def callee(b: ir.IRBuilder, fn):
    """What ``b.call`` calls for ``fn``: a function, or the address a :class:`Slot` holds."""
    if not isinstance(fn, Slot):
        return fn
    address = b.load(b.gep(fn.table, [I32(0), I32(fn.index)]))
    return b.bitcast(address, fn.type.as_pointer())


# -- control flow helpers ---------------------------------------------------

def counted_loop(b: ir.IRBuilder, lo, hi, step, body, name="loop"):
    """for (i = lo; i < hi; i += step) body(i)   (signed compare)."""
    pre = b.block
    hdr = b.append_basic_block(f"{name}.hdr")
    bod = b.append_basic_block(f"{name}.body")
    end = b.append_basic_block(f"{name}.end")
    b.branch(hdr)
    b.position_at_end(hdr)
    i = b.phi(I64, name=f"{name}.i")
    i.add_incoming(lo, pre)
    b.cbranch(b.icmp_signed("<", i, hi), bod, end)
    b.position_at_end(bod)
    body(i)
    nxt = b.add(i, step if isinstance(step, ir.Value) else I64(step))
    i.add_incoming(nxt, b.block)
    b.branch(hdr)
    b.position_at_end(end)


def imin(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


# -- micro-kernel ----------------------------------------------------------------

def build_microkernel(c: Ctx, name: str, MR: int | None = None, NV: int | None = None,
                      U: int | None = None, strided_a: bool = False) -> ir.Function:
    """void ukr(i64 kc, T* Ap, i64 a_ps, T* Bp, i64 b_ps, T* tile):
    tile[i][j] = sum_p Ap[p*a_ps + i] * Bp[p*b_ps + j] for i < MR, j < NV*W.
    With ``strided_a`` a last argument ``i64 a_rs`` gives A's row stride:
    Ap[p*a_ps + i*a_rs] (a row-major A read in place, a_ps = 1).

    The A and B "panels" may be packed buffers (a_ps = MR, b_ps = NR) or the
    operands themselves (A with unit row stride, B with unit column stride), so
    small or already well-laid-out operands need no packing. The tile has row
    stride NR (the full tile width) whatever NV is. Every element is the same
    chain of FMAs in p order for every variant, so the variant that computed an
    element never changes its value.
    """
    blk = c.blk
    MR = blk.MR if MR is None else MR
    NV = blk.NV if NV is None else NV
    U = blk.UNROLL if U is None else U
    W, NR = blk.W, blk.NR
    args = [I64, c.P, I64, c.P, I64, c.P] + ([I64] if strided_a else [])
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), args), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    kc, ap0, a_ps, bp0, b_ps, tile = fn.args[:6]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    zero = c.cvec(0.0)
    row = ([b.mul(I64(i), fn.args[6]) for i in range(MR)] if strided_a
           else [I64(i) for i in range(MR)])  # where row i of the panel starts

    def step(bb, accs, ap, bp):
        bv = [c.vload(bb, bb.gep(bp, [I64(v * W)])) for v in range(NV)]
        out = list(accs)
        for i in range(MR):
            a = c.splat(bb, bb.load(bb.gep(ap, [row[i]]), align=c.size))
            for v in range(NV):
                out[i * NV + v] = c.fma(bb, a, bv[v], accs[i * NV + v])
        return out

    def kloop(lo_accs, lo_ap, lo_bp, count, per_iter, tag):
        """Loop `count` times doing `per_iter` k-steps; returns final (accs, ap, bp)."""
        pre = b.block
        hdr = b.append_basic_block(f"{tag}.hdr")
        bod = b.append_basic_block(f"{tag}.body")
        end = b.append_basic_block(f"{tag}.end")
        b.branch(hdr)
        b.position_at_end(hdr)
        it = b.phi(I64)
        ap = b.phi(c.P)
        bp = b.phi(c.P)
        accs = [b.phi(c.V) for _ in range(MR * NV)]
        it.add_incoming(I64(0), pre)
        ap.add_incoming(lo_ap, pre)
        bp.add_incoming(lo_bp, pre)
        for phi, val in zip(accs, lo_accs):
            phi.add_incoming(val, pre)
        b.cbranch(b.icmp_signed("<", it, count), bod, end)
        b.position_at_end(bod)
        cur = list(accs)
        cap, cbp = ap, bp
        for u in range(per_iter):
            cur = step(b, cur, cap, cbp)
            cap, cbp = b.gep(cap, [a_ps]), b.gep(cbp, [b_ps])
        nit = b.add(it, I64(1))
        latch = b.block
        it.add_incoming(nit, latch)
        ap.add_incoming(cap, latch)
        bp.add_incoming(cbp, latch)
        for phi, val in zip(accs, cur):
            phi.add_incoming(val, latch)
        b.branch(hdr)
        b.position_at_end(end)
        return accs, ap, bp

    accs = [zero] * (MR * NV)
    if U > 1:
        accs, ap, bp = kloop(accs, ap0, bp0, b.sdiv(kc, I64(U)), U, "kmain")
        accs, ap, bp = kloop(accs, ap, bp, b.srem(kc, I64(U)), 1, "krem")
    else:
        accs, ap, bp = kloop(accs, ap0, bp0, kc, 1, "k")
    for i in range(MR):
        for v in range(NV):
            c.vstore(b, accs[i * NV + v], b.gep(tile, [I64(i * NR + v * W)]), align=64)
    b.ret_void()
    return fn


# -- tile store: the epilogue subgraph, K-block protocol, accumulate ------------------

def store_type(c: Ctx) -> ir.FunctionType:
    """The tile store every path of the GEMM calls (``pack.build_store_tile``):
    ``void store(T* tile, T* C, i64 ldc, i64 mr, i64 nr, T* bias, T* R, i64 rsr, i64 csr,
    i1 first, i1 last, T alpha)``."""
    return ir.FunctionType(ir.VoidType(), [c.P, c.P, I64, I64, I64, c.P, c.P, I64, I64, I1, I1, c.T])


def build_tile_epilogue(c: Ctx, spec, name: str) -> ir.Function:
    """void epi(T* tile, T* C, i64 ldc, i64 mr, i64 nr, T* bias, T* R, i64 rsr,
                i1 first, i1 last, T alpha)

    Writes rows [0, mr) x columns [0, nr) of a tile (row stride NR) into C, where
    C, bias (the epilogue's row operand) and R (its (M, N) operand) all have unit column
    stride; an edge tile (nr < NR) uses masked loads and stores, so nothing outside that
    rectangle is read or written. With P = alpha * S, S the sum over K, and E the
    epilogue (``spec.epilogue``, a ``gemm_epilogue.Epilogue``), K-block protocol:

    * E linear (``scale * P`` plus or minus operands: ``E.linear_form()``): on the first
      K block C = init + alpha*scale*S0 with init = [C_old if accumulate] ± the
      operands, in E's order; later blocks C += alpha*scale*S_k.
    * otherwise: C holds the raw partial sum between blocks; on the last block
      C = E(alpha*S, bias, R) [+ C_old if accumulate]. (An accumulating nonlinear
      kernel always runs K in a single block, so C_old is still in C.)
    """
    blk = c.blk
    NR, NV, W = blk.NR, blk.NV, blk.W
    epilogue = spec.epilogue
    args = [c.P, c.P, I64, I64, I64, c.P, c.P, I64, I1, I1, c.T]
    fn = ir.Function(c.m, ir.FunctionType(ir.VoidType(), args), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    tile, C, ldc, mr, nr, bias, R, rsr, first, last, alpha = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    if spec.reads_r:
        # R's lines of the tile below this one, the next tile the driver stores (its
        # loop over row tiles runs inside the one over column tiles): the tiles step
        # down the rows, MR rows of R at a time, a line or two of each, which the
        # hardware prefetcher does not follow. Without this, the GELU backward's
        # epilogue (C = dY·W2ᵀ ∘ gelu'(R)) stalled half its time on R's loads, and
        # ran 3x as long as the same ops as an elementwise kernel (perf, GPT step)
        for r in range(blk.MR, 2 * blk.MR):
            row = b.gep(R, [b.mul(I64(r), rsr)])
            c.prefetch(b, row)
            c.prefetch(b, b.gep(row, [I64(NR - 1)]))
    masks = [c.lane_mask(b, b.sub(nr, I64(v * W))) for v in range(NV)]
    bvs = [c.mload(b, b.gep(bias, [I64(v * W)]), masks[v]) if spec.bias else None
           for v in range(NV)]

    # A full-width tile (nr == NR, the common case) uses plain loads and stores: the
    # masked ones are microcoded on AMD Zen 3 (a rank-1 update storing C through them
    # ran 10x slower). Same values either way; only the edge tiles are masked.
    full = b.icmp_signed(">=", nr, I64(NR))
    wide = NV * W
    walpha = splat(b, alpha, wide)
    wbias = concat(b, bvs) if spec.bias else None

    def rows(body, tag):
        """Rows [0, mr) of the tile through ``body(t, old, bias, r)`` -> the stored value,
        on one vector of a row's NV * W lanes (its vectors concatenated: ``old()`` gives
        C's old values so, ``bias`` and ``r`` the operands'), so that an epilogue's
        dependent chains run side by side (LLVM splits each wide operation into adjacent
        vector ones) and its constants are materialised once for them all, as in the
        elementwise kernels' two-vector loops (``elementwise.vector_widths``). One
        vector at a time, the GELU backward's epilogue was one long chain of dependent
        operations per vector and its code twice as long."""
        def row(i, masked):
            vmasks = [masks[v] if masked else None for v in range(NV)]

            def vectors(ptr, align=None):
                ps = [b.gep(ptr, [I64(v * W)]) for v in range(NV)]
                return ps, [c.vload(b, p, align=align) if m is None else c.mload(b, p, m)
                            for p, m in zip(ps, vmasks)]
            cps = [b.gep(b.gep(C, [b.mul(i, ldc)]), [I64(v * W)]) for v in range(NV)]
            t = concat(b, [c.vload(b, b.gep(tile, [b.add(b.mul(i, I64(NR)), I64(v * W))]), align=64)
                           for v in range(NV)])
            rv = concat(b, vectors(b.gep(R, [b.mul(i, rsr)]))[1]) if spec.reads_r else None
            old = []

            def old_c():
                if not old:
                    old.append(concat(b, [c.vload(b, p) if m is None else c.mload(b, p, m)
                                          for p, m in zip(cps, vmasks)]))
                return old[0]
            y = body(t, old_c, wbias, rv)
            for v, (cp, m) in enumerate(zip(cps, vmasks)):
                part = lanes_of(b, y, v * W, W)
                if m is None:
                    c.vstore(b, part, cp)
                else:
                    c.mstore(b, part, cp, m)
        with b.if_else(full) as (whole, edge):
            with whole:
                counted_loop(b, I64(0), mr, 1, lambda i: row(i, False), tag)
            with edge:
                counted_loop(b, I64(0), mr, 1, lambda i: row(i, True), tag + ".edge")

    form = epilogue.linear_form()
    if form is not None:
        scale, terms = form
        vscale = walpha if scale == 1.0 else b.fmul(walpha, const(walpha.type, scale))

        def first_body(t, old, bv, rv):
            init = old() if spec.accumulate else None
            for kind, sign in terms:
                extra = bv if kind == "row" else rv
                if init is None:
                    init = extra if sign > 0 else b.fneg(extra)
                else:
                    init = b.fadd(init, extra) if sign > 0 else b.fsub(init, extra)
            if init is None:
                return b.fmul(vscale, t)
            return fma(b, vscale, t, init)

        with b.if_else(first) as (then, otherwise):
            with then:
                rows(first_body, "first")
            with otherwise:
                rows(lambda t, old, bv, rv: fma(b, vscale, t, old()), "later")
    else:
        def last_body(t, old, bv, rv, with_partial):
            s = b.fadd(t, old()) if with_partial else t
            y = epilogue.emit(b, b.fmul(walpha, s), bv, rv)
            return b.fadd(y, old()) if spec.accumulate else y

        def partial_body(t, old, bv, rv, with_partial):
            return b.fadd(t, old()) if with_partial else t

        def by_block(body, tag):
            with b.if_else(first) as (then, otherwise):
                with then:
                    rows(lambda *a: body(*a, False), tag + "first")
                with otherwise:
                    rows(lambda *a: body(*a, True), tag + "later")
        with b.if_else(last) as (then, otherwise):
            with then:
                by_block(last_body, "last")
            with otherwise:
                by_block(partial_body, "mid")
    b.ret_void()
    return fn


def call_tile_store(b: ir.IRBuilder, spec, store, tile, c, ldc, rows, cols, bias, residual, rsr, csr,
                    first, last, alpha) -> None:
    """Call a variant's tile store (``store``) on ``tile``: C at ``c``, the bias at
    ``bias``; ``residual`` points at the tile's R when the epilogue reads one (its
    strides ``rsr``, ``csr`` passed), else it is passed as it is (unused)."""
    if spec.reads_r:
        b.call(store, [tile, c, ldc, rows, cols, bias, residual, rsr, csr, first, last, alpha])
    else:
        b.call(store, [tile, c, ldc, rows, cols, bias, residual, rsr, first, last, alpha])
