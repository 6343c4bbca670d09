"""The GEMM's driver: the BLIS loop nest around the packing routines and micro-kernels,
with the small-shape and few-rows paths in front (gemm/small.py, gemm/rows.py).

``build_driver`` writes it for one spec (a variant with A's gate: ``gate_a``), or, as
``build_generic_driver``, once per dtype and blocking into the GEMM core (gemm/core.py)
for every other spec: the tile store (the epilogue) is then an argument, so a variant
compiles little more than its epilogue.

>>> import llvmlite.ir as ir
>>> from lucid_codegen.gemm.kernel import GemmSpec
>>> from lucid_codegen.gemm.microkernel import Ctx
>>> spec = GemmSpec("float32")
>>> len(driver_args(Ctx(ir.Module("m"), "float32", spec.blocking))), one_block(spec)
(18, False)
"""
from __future__ import annotations

import llvmlite.ir as ir

from lucid_codegen.gemm.batched import build_batched_entry
from lucid_codegen.gemm.microkernel import I1, I32, I64, Blocking, Ctx, call_tile_store, counted_loop, imin, store_type
from lucid_codegen.gemm.rows import build_row_path, row_condition
from lucid_codegen.gemm.small import build_small_path, small_condition

STACK_BYTES = 96 * 1024          # largest workspace taken from the stack
I64P = I64.as_pointer()          # a gathered operand's offset tables (gemm/gather.py)
ROW_A_MAX_TILES = 8              # see ``a_row`` in ``build_driver``
B_DIRECT_MAX_TILES = 4           # see ``b_direct`` in ``build_driver``


def sub_mr(blk: Blocking) -> int:
    """Rows of the remainder micro-kernel (a divisor of MR)."""
    for d in (4, 3, 2, 1):
        if blk.MR % d == 0 and blk.MR // d >= 2:
            return d
    return blk.MR


class AnyEpilogue:
    """What the core's generic driver is built for (in place of a :class:`GemmSpec`):
    every spec without ``gate_a``. The bias and R operands are passed on to the store
    (which ignores what its epilogue does not read), the store is an argument and so is
    whether K runs in one block (``one_block``)."""

    bias = reads_r = uses_r = True
    gate_a = False


def one_block(spec: GemmSpec) -> bool:
    """Whether K runs in a single block (C_old must survive until the activation)."""
    return spec.accumulate and not spec.linear


def driver_args(c: Ctx) -> list:
    """The driver's argument types (see ``_build_driver``)."""
    P = c.P
    return [I64, I64, I64, ir.DoubleType(), P, I64, I64, P, I64, I64, P, I64, P, P, I64, I64, P, I64]


def build_generic_driver(c: Ctx, name: str, core) -> ir.Function:
    """The core's driver for every spec without ``gate_a`` (``core`` its functions):
    ``i32 driver(<the driver's arguments>, store* store, i1 one_block)`` -- a variant
    passes its tile store (``pack.build_store_tile``) and compiles little more than its
    epilogue. Calling the store through a pointer costs one indirect call per tile."""
    KC = c.blk.KC

    def kblock(b, kd, fn):
        return b.select(fn.args[-1], kd, imin(b, I64(KC), kd))
    small = build_small_path(c, AnyEpilogue, None, name + ".small", core.dots)
    rows = build_row_path(c, AnyEpilogue, None, kblock, name + ".rows", core.strips, extra=(I1,))
    fn = build_driver(c, AnyEpilogue, name, core.pack_a, core.pack_b, core.ukrs, None, small, rows)
    fn.linkage = "external"
    return fn


def build_generic_batched(c: Ctx, name: str, driver: ir.Function) -> ir.Function:
    """The core's batched entry (gemm/batched.py) for every spec without ``gate_a``:
    its arguments, then the variant's store and ``one_block``, passed on to ``driver``
    (:func:`build_generic_driver`)."""
    fn = build_batched_entry(c, AnyEpilogue, driver, name, extra=(store_type(c).as_pointer(), I1))
    fn.linkage = "external"
    return fn


def build_driver(c: Ctx, spec: GemmSpec, name: str, pack_a, pack_b, ukrs, store,
                  small, rows) -> ir.Function:
    """The exported full entry. ``ukrs[(mr, nv)]``: micro-kernels for full tiles
    (MR rows), the row remainder (MR // 3 rows at a time) and narrow column edges
    (one vector wide); ``small``: the small-shape path (gemm_small.py); ``rows``: the
    few-rows path for row-major B (gemm_rows.py); both None: the general path only (a
    gathered operand, or A's gate, is applied while packing). ``store`` None: the generic driver
    (``spec`` is :class:`AnyEpilogue`), taking the store and ``one_block`` as its last
    two arguments."""
    blk = c.blk
    MR, NR, MC, NC, KC, W = blk.MR, blk.NR, blk.MC, blk.NC, blk.KC, blk.W
    MRS = sub_mr(blk)
    generic = store is None
    args = driver_args(c) + ([store_type(c).as_pointer(), I1] if generic else [])
    fn = ir.Function(c.m, ir.FunctionType(I32, args), name)
    fn.attributes.add("noinline")
    fn.linkage = "internal"
    (M, N, K, alpha_d, A, rsa, csa, B, rsb, csb, C, ldc, bias, R, rsr, csr, ws, ws_elems) = fn.args[:18]
    for a, n in zip(fn.args, "M N K alpha A rsa csa B rsb csb C ldc bias R rsr csr ws ws_elems"
                    .split()):
        a.name = n
    extra = list(fn.args[18:])   # the generic driver's store and one_block
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    stack_elems = STACK_BYTES // c.size
    stack = b.alloca(c.T, stack_elems, name="stackws")
    stack.align = 64
    tile = b.alloca(c.T, MR * NR, name="tile")
    tile.align = 64
    alpha = alpha_d if c.size == 8 else b.fptrunc(alpha_d, c.T)

    ret_ok = b.append_basic_block("ret_ok")
    with b.goto_block(ret_ok):
        b.ret(I32(0))
    empty = b.or_(b.icmp_signed("<=", M, I64(0)), b.icmp_signed("<=", N, I64(0)))
    go = b.append_basic_block("go")
    b.cbranch(empty, ret_ok, go)
    b.position_at_end(go)
    gather = getattr(spec, "gather", "")  # an operand gathered through tables (gemm/gather.py)
    if small is not None:  # (none: the general path only, for a gathered or gated operand)
        with b.if_then(small_condition(b, spec, M, N, csa, rsb)):
            b.ret(b.call(small, [M, N, K, alpha, A, rsa, B, csb, C, ldc, bias, R, rsr, csr] + extra[:1]))
        with b.if_then(row_condition(b, spec, M, csb)):
            b.ret(b.call(rows, [M, N, K, alpha, A, rsa, csa, B, rsb, C, ldc, bias, R, rsr, csr] + extra))

    kd = b.select(b.icmp_signed(">", K, I64(1)), K, I64(1))
    if generic:
        store, one = extra
        kcb = b.select(one, kd, imin(b, I64(KC), kd))
    else:
        kcb = k_block_ir(b, spec, kd)
    align = 64 // c.size

    def rup(x, m):
        return b.mul(b.sdiv(b.add(x, I64(m - 1)), I64(m)), I64(m))
    a_elems = rup(b.mul(rup(imin(b, I64(MC), M), MR), kcb), align)
    need = b.add(a_elems, b.mul(rup(imin(b, I64(NC), N), NR), kcb))
    no_ws = b.icmp_signed(">", need, ws_elems)      # the caller's buffer is too small
    too_big = b.and_(no_ws, b.icmp_signed(">", need, I64(stack_elems)))
    fail = b.append_basic_block("fail")
    with b.goto_block(fail):
        b.ret(I32(2))
    body = b.append_basic_block("body")
    b.cbranch(too_big, fail, body)
    b.position_at_end(body)
    base = b.select(no_ws, stack, ws)
    Ap = base
    Bp = b.gep(base, [a_elems])
    # Panels read in place: A with unit row stride (A = X^T), B with unit column stride.
    # A gated A (spec.gate_a: R is an (M, K) gate on A) is always packed, gate applied.
    never = ir.Constant(I1, 0)
    few_tiles = b.icmp_signed("<=", N, I64(ROW_A_MAX_TILES * NR))
    # A = Xᵀ read in place only for few column tiles, too: each tile reads its panel
    # again, KC columns csa apart. Zen 3, one thread, C = Xᵀ·B (a weight gradient) with
    # K = 1024: packed 60-64 against 49-57 GFLOP/s in place at N = 512, 63-76 against
    # 50-57 at N = 1024, about even at N = 128 (packing changes no bit)
    a_direct = never if spec.gate_a or gather == "a" else b.and_(b.icmp_signed("==", rsa, I64(1)), few_tiles)
    # A row-major and few column tiles (each A panel used by at most ROW_A_MAX_TILES
    # tiles): packing A would cost about as much as the tiles' FMAs, so full panels are
    # read in place by the strided micro-kernel (only a last, partial panel is packed)
    a_row = never if spec.gate_a or gather == "a" else b.and_(
        b.and_(b.icmp_signed("==", csa, I64(1)), b.not_(a_direct)), few_tiles)
    a_skip = b.or_(a_direct, a_row)
    # B with unit column stride is read in place (full panels) only while C has few row
    # tiles: each tile reads its panel again, KC rows rsb apart -- lines that share a few
    # cache sets when N is a power of two -- where a packed panel is contiguous and stays
    # in L1. Zen 3, one thread, C = A·B with B row-major (a backward GEMM's dY·W or
    # X's use in dYᵀ·X): in place 2x faster than packed at M = 6, 1.5x at 12, even at 24,
    # 0.75x at 96 and 0.53x at M = N = K = 1024 (50 against 93 GFLOP/s); packing never
    # changes a bit (the same products in the same order)
    b_direct = never if gather == "b" else b.and_(
        b.icmp_signed("==", csb, I64(1)), b.icmp_signed("<=", M, I64(B_DIRECT_MAX_TILES * MR)))

    def call_store(mr, nr, ci, bias_j, ri, first, last):
        call_tile_store(b, spec, store, tile, ci, ldc, mr, nr, bias_j, ri if spec.reads_r else R, rsr, csr,
                        first, last, alpha)

    def jc_body(jc):
        nc = imin(b, I64(NC), b.sub(N, jc))

        def pc_body(pc):
            kc = imin(b, kcb, b.sub(K, pc))
            first = b.icmp_signed("==", pc, I64(0))
            last = b.icmp_signed(">=", b.add(pc, kcb), K)
            Bblk = b.gep(B, [b.add(b.mul(pc, rsb), b.mul(jc, csb))])
            if gather == "b":  # (gemm/gather.py: rsb, csb are the tables' addresses)
                b.call(pack_b, [kc, nc, B, b.gep(b.inttoptr(rsb, I64P), [pc]), b.gep(b.inttoptr(csb, I64P), [jc]), Bp])
            else:
                b.call(pack_b, [kc, nc, Bblk, rsb, csb, Bp, b_direct])

            def ic_body(ic):
                mc = imin(b, I64(MC), b.sub(M, ic))
                Ablk = b.gep(A, [b.add(b.mul(ic, rsa), b.mul(pc, csa))])
                gate = [b.gep(R, [b.add(b.mul(ic, rsr), b.mul(pc, csr))]), rsr, csr] if spec.gate_a else []
                if gather == "a":  # (gemm/gather.py: rsa, csa are the tables' addresses)
                    b.call(pack_a, [kc, mc, A, b.gep(b.inttoptr(rsa, I64P), [ic]),
                                    b.gep(b.inttoptr(csa, I64P), [pc]), Ap])
                else:
                    b.call(pack_a, [kc, mc, Ablk, rsa, csa, Ap, a_skip] + gate)

                def jr_body(jr):
                    nr = imin(b, I64(NR), b.sub(nc, jr))
                    j = b.add(jc, jr)
                    in_place = b.and_(b_direct, b.icmp_signed("==", nr, I64(NR)))
                    narrow = b.icmp_signed("<=", nr, I64(W))
                    bp = b.select(in_place, b.gep(Bblk, [jr]), b.gep(Bp, [b.mul(jr, kc)]))
                    b_ps = b.select(in_place, rsb, b.select(narrow, I64(W), I64(NR)))
                    bias_j = b.gep(bias, [j]) if spec.bias else bias
                    cj = b.gep(C, [j])
                    rj = b.gep(R, [b.mul(j, csr)]) if spec.reads_r else R

                    def run_ukr(mrows, args, strided=False):
                        key = (mrows, 1, strided)
                        if blk.NV == 1:
                            b.call(ukrs[key], args)
                            return
                        with b.if_else(narrow) as (then, otherwise):
                            with then:
                                b.call(ukrs[key], args)
                            with otherwise:
                                b.call(ukrs[(mrows, blk.NV, strided)], args)

                    def ir_body(ir_):
                        mr = imin(b, I64(MR), b.sub(mc, ir_))
                        i = b.add(ic, ir_)
                        ci = b.gep(cj, [b.mul(i, ldc)])
                        ri = b.gep(rj, [b.mul(i, rsr)]) if spec.reads_r else R
                        apk = b.gep(Ap, [b.mul(ir_, kc)])
                        with b.if_else(b.icmp_signed("==", mr, I64(MR))) as (then, otherwise):
                            with then:
                                with b.if_else(a_row) as (row_major, other):
                                    with row_major:
                                        run_ukr(MR, [kc, b.gep(Ablk, [b.mul(ir_, rsa)]), I64(1), bp,
                                                     b_ps, tile, rsa], strided=True)
                                    with other:
                                        ap = b.select(a_direct, b.gep(Ablk, [ir_]), apk)
                                        a_ps = b.select(a_direct, csa, I64(MR))
                                        run_ukr(MR, [kc, ap, a_ps, bp, b_ps, tile])
                                call_store(I64(MR), nr, ci, bias_j, ri, first, last)
                            with otherwise:
                                def sub(s):
                                    run_ukr(MRS, [kc, b.gep(apk, [s]), I64(MR), bp, b_ps, tile])
                                    call_store(imin(b, I64(MRS), b.sub(mr, s)), nr,
                                               b.gep(ci, [b.mul(s, ldc)]), bias_j,
                                               b.gep(ri, [b.mul(s, rsr)]) if spec.reads_r
                                               else R, first, last)
                                counted_loop(b, I64(0), mr, MRS, sub, "irs")
                    counted_loop(b, I64(0), mc, MR, ir_body, "ir")
                counted_loop(b, I64(0), nc, NR, jr_body, "jr")
            counted_loop(b, I64(0), M, MC, ic_body, "ic")
        counted_loop(b, I64(0), kd, kcb, pc_body, "pc")
    counted_loop(b, I64(0), N, NC, jc_body, "jc")
    b.branch(ret_ok)
    return fn


def k_block_ir(b: ir.IRBuilder, spec: GemmSpec, kd):
    """The K-block depth as an i64 for ``kd = max(K, 1)`` (mirrors ``k_block``)."""
    if one_block(spec):
        return kd          # C_old must survive until the activation: one K block
    return imin(b, I64(spec.blocking.KC), kd)
