"""The fused attention forward kernel (FlashAttention's tiling on the CPU), built with llvmlite.

``lucid_attention_fwd(block, t0, t1, 0, 0)`` (the loop kernels' ABI, so native programs
run and split it as they do those) computes work items ``t0 .. t1``; an item is one block
of ``BLOCK`` queries of one (batch, head) index. The call takes its scratch from
``malloc`` (the ``scratch`` word: elements) and frees it on return. For each item:

1. the queries are packed transposed and scaled, ``QT[d, q] = q[i0+q, d] · scale``
   (zeros past the sequence's end): vectors run along the queries from here on;
2. for each block of ``BLOCK`` keys up to the last one any of its queries may see
   (causal: the tiles above the diagonal are never computed, nor the masked quarter
   of a tile on it, ``attention_diagonal``), the scores
   ``Sᵀ = K_blk · QT`` (one tile product, K read in place at its strides), then the
   online softmax per query (a vector lane each): the running maximum ``m``, the
   factor ``α = exp(m_old - m_new)``, ``Pᵀ = exp(Sᵀ - m_new)`` (0 where masked) and
   the running sum ``l = l·α + Σ Pᵀ``; then ``Oᵀ = Oᵀ·α + V_blkᵀ · Pᵀ`` (one tile
   product, V read in place);
3. ``out = (Oᵀ / l)ᵀ`` and ``lse = m + log l`` into the packed result.

Nothing larger than ``BLOCK × BLOCK`` scores exists at any time; the scratch of one
thread holds ``(E + BLOCK + Ev + 3) · BLOCK`` elements (``forward_scratch``). Items
are independent and each is one sequential computation, so any split of the items
across threads gives the same bits. Items run in a zig-zag order within each (batch,
head): blocks 0, n-1, 1, n-2, …, so a contiguous range of items holds about as much
causal work as any other range of the same length.

Block words (int64), ``FWD_WORDS``: sizes, the scale (a double's bits), the operands'
addresses, per-(batch, head) element offset tables and row/column strides.
"""
from __future__ import annotations

import ctypes

import llvmlite.ir as ir

from lucid_codegen.kernels.attention_diagonal import diagonal_cut, keys_by_queries, queries_over_keys
from lucid_codegen.kernels.attention_tiles import BLOCK, Args, Emitter, declare_tile_product, maxnum
from lucid_codegen.jit.cache import load_or_compile, source_stamp
from lucid_codegen.jit.llvm import loop_pipeline
from lucid_codegen.kernels.loops import I64, Loop, const64
from lucid_codegen.kernels.vector_math import F64, emit_exp, emit_log

KERNEL_ABI = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_int64), ctypes.c_int64,
                              ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
GENERATOR = ("kernels.attention", "kernels.attention_backward", "kernels.attention_diagonal",
             "kernels.attention_tiles", "kernels.loops", "kernels.vector_math")
#: the forward's block words, in order (``*_off``: per-(batch, head) offset tables)
FWD_WORDS = ("scratch", "L", "S", "E", "Ev", "causal", "scale", "nqb", "q", "k", "v", "out",
             "q_off", "k_off", "v_off", "q_rs", "q_cs", "k_rs", "k_cs", "v_rs", "v_cs")


def forward_scratch(e: int, ev: int) -> int:
    """Elements of one thread's forward scratch."""
    return (e + BLOCK + ev + 3) * BLOCK


def scale_word(e: Emitter, word):
    """The scale (a double's bits in an int64 word) in the element type."""
    s = e.b.bitcast(word, F64)
    return s if e.dtype == "float64" else e.b.fptrunc(s, e.ft)


def load_offset(e: Emitter, table_word, bh):
    return e.b.load(e.b.gep(e.b.inttoptr(table_word, I64.as_pointer()), [bh]))


def softmax_mask(e: Emitter, causal, key, q0):
    """Lanes whose query (``q0 + lane``) may not see ``key`` (causal and key > query)."""
    b = e.b
    key = b.select(b.icmp_signed("!=", causal, const64(0)), key, const64(-1))
    vt = ir.VectorType(I64, e.w)
    return b.icmp_signed(">", e.splat(key, vt), e.lane_indices(q0))


def visible_keys(e: Emitter, causal, kn, j0, q0):
    """How many of the block's ``kn`` keys (from ``j0``) the queries ``q0 .. q0+W-1`` of
    one vector may see: all, or causal, those up to the last of them. The keys past it
    are masked in every lane, so their probabilities are 0 without an exponential."""
    b = e.b
    last = b.sub(e.add(q0, const64(e.w)), j0)
    seen = e.imin(kn, b.select(b.icmp_signed("<", last, const64(0)), const64(0), last))
    return b.select(b.icmp_signed("!=", causal, const64(0)), seen, kn)


def zero_rows(e: Emitter, st, start, kn, col):
    """Rows ``start .. kn`` of the block's column vector ``col`` (row stride BLOCK) set to 0."""
    with Loop(e.b, start, kn, 1, name="zrow") as kk:
        e.vstore(e.vconst(0.0), st, e.add(e.mul(kk.i, const64(BLOCK)), col))


def kernel_function(module: ir.Module, name: str, dtype: str, words):
    """``name(block, t0, t1, c0, c1)`` begun: ``(builder, emitter, words, t0, t1, scratch,
    finish)``; ``finish()`` frees the scratch and returns."""
    i8p = ir.IntType(8).as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64, I64, I64]), name)
    malloc = ir.Function(module, ir.FunctionType(i8p, [I64]), "malloc")
    free = ir.Function(module, ir.FunctionType(ir.VoidType(), [i8p]), "free")
    block, t0, t1 = fn.args[:3]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    e = Emitter(b, dtype)
    a = Args(b, block, words)
    raw = b.call(malloc, [b.add(b.mul(a.scratch, const64(e.itemsize)), const64(64))])
    scratch = b.bitcast(raw, e.ptr)

    def finish():
        b.call(free, [raw])
        b.ret_void()
    return b, e, a, t0, t1, scratch, finish


def build_forward(dtype: str) -> ir.Module:
    module = ir.Module(f"attention_fwd_{dtype}")
    tile = declare_tile_product(module, dtype)
    b, e, a, t0, t1, scratch, finish = kernel_function(module, "lucid_attention_fwd", dtype, FWD_WORDS)
    W, BR = e.w, BLOCK
    scale = scale_word(e, a.scale)
    q, k, v, out = (e.pointer(w) for w in (a.q, a.k, a.v, a.out))
    qt = scratch                                          # E × BR
    st = e.at(qt, e.mul(a.E, const64(BR)))                # BR × BR (keys × queries)
    ot = e.at(st, const64(BR * BR))                       # Ev × BR
    m_buf = e.at(ot, e.mul(a.Ev, const64(BR)))            # BR each: m, l, α
    l_buf = e.at(m_buf, const64(BR))
    al_buf = e.at(l_buf, const64(BR))
    packed_len = e.add(e.mul(a.L, a.Ev), a.L)
    with Loop(b, t0, t1, 1, name="item") as item:
        bh = b.sdiv(item.i, a.nqb)
        p = b.srem(item.i, a.nqb)
        half = b.sdiv(p, const64(2))
        qb = b.select(b.icmp_signed("==", b.srem(p, const64(2)), const64(0)), half,
                      b.sub(b.sub(a.nqb, const64(1)), half))
        i0 = b.mul(qb, const64(BR))
        qn = e.imin(const64(BR), b.sub(a.L, i0))
        qbase = e.at(q, e.add(load_offset(e, a.q_off, bh), e.mul(i0, a.q_rs)))
        kbase = e.at(k, load_offset(e, a.k_off, bh))
        vbase = e.at(v, load_offset(e, a.v_off, bh))
        # 1. QT = (q block)ᵀ · scale, zero past the end: W queries per vector
        scale_v = e.splat(scale)
        with Loop(b, const64(0), const64(BR), W, name="packq") as qq:
            rows, valid = e.row_offsets(qq.i, qn, a.q_rs)
            with Loop(b, const64(0), a.E, 1, name="packd") as d:
                col = e.mul(d.i, a.q_cs)
                x = b.fmul(e.gather(qbase, [e.add(r, col) for r in rows]), scale_v)
                e.vstore(b.select(valid, x, e.vconst(0.0)), qt, e.add(e.mul(d.i, const64(BR)), qq.i))
        e.zero_fill(ot, e.mul(a.Ev, const64(BR)))
        with Loop(b, const64(0), const64(BR), W, name="init") as c:
            e.vstore(e.vconst(float("-inf")), m_buf, c.i)
            e.vstore(e.vconst(0.0), l_buf, c.i)
        kend = b.select(b.icmp_signed("!=", a.causal, const64(0)), e.imin(a.S, e.add(i0, qn)), a.S)
        with Loop(b, const64(0), kend, BR, name="keys") as kb:
            j0 = kb.i
            kn = e.imin(const64(BR), b.sub(kend, j0))
            # 2. scores, online softmax, output update (a diagonal block without its dead quarter)
            cut = diagonal_cut(e, a.causal, i0, j0)
            keys_by_queries(e, tile, cut, kn, const64(BR), a.E, e.at(kbase, e.mul(j0, a.k_rs)), a.k_rs, a.k_cs,
                            qt, const64(BR), st, const64(BR))
            _online_softmax(e, st, kn, j0, i0, a.causal, m_buf, l_buf, al_buf)
            queries_over_keys(e, tile, 2, cut, a.Ev, const64(BR), kn, e.at(vbase, e.mul(j0, a.v_rs)), a.v_cs,
                              a.v_rs, st, const64(BR), ot, const64(BR), al_buf, queries_are_rows=False)
        # 3. out = Oᵀ / l, lse = m + log l (lse into α's slot first)
        with Loop(b, const64(0), const64(BR), W, name="fin") as c:
            lv = e.vload(l_buf, c.i)
            e.vstore(b.fadd(e.vload(m_buf, c.i), emit_log(b, lv)), al_buf, c.i)
            e.vstore(b.fdiv(e.vconst(1.0), lv), l_buf, c.i)
        obase = e.at(out, e.mul(bh, packed_len))
        with Loop(b, const64(0), qn, 1, name="outq") as qq:
            inv = e.splat(e.load(l_buf, qq.i))
            orow = e.at(obase, e.mul(e.add(i0, qq.i), a.Ev))
            with Loop(b, const64(0), a.Ev, W, name="outd") as d:  # Oᵀ's column qq, W rows at a time
                x = e.load_span(e.at(ot, qq.i), const64(BR), d.i, a.Ev)
                e.store_span(b.fmul(x, inv), orow, d.i, a.Ev)
            e.store(e.load(al_buf, qq.i), obase, e.add(e.mul(a.L, a.Ev), i0, qq.i))
    finish()
    return module


def _online_softmax(e: Emitter, st, kn, j0, i0, causal, m_buf, l_buf, al_buf):
    """Sᵀ (kn × BLOCK) becomes Pᵀ = exp(Sᵀ - m_new) in place; m, l, α updated per query.
    Keys no query of a vector may see (past the diagonal) are skipped: their P is 0."""
    b, W, BR = e.b, e.w, BLOCK
    ninf, zero = e.vconst(float("-inf")), e.vconst(0.0)
    with Loop(b, const64(0), const64(BR), W, name="smcol") as c:
        q0 = e.add(i0, c.i)
        seen = visible_keys(e, causal, kn, j0, q0)
        m_old = e.vload(m_buf, c.i)
        with Loop(b, const64(0), seen, 1, [m_old], name="smmax") as kk:
            s = e.vload(st, e.add(e.mul(kk.i, const64(BR)), c.i))
            s = b.select(softmax_mask(e, causal, e.add(j0, kk.i), q0), ninf, s)
            kk.next = [maxnum(b, kk.vars[0], s)]
        m_new = kk.results[0]
        alpha = emit_exp(b, b.fsub(m_old, m_new))
        with Loop(b, const64(0), seen, 1, [zero], name="smexp") as kk:
            off = e.add(e.mul(kk.i, const64(BR)), c.i)
            pv = emit_exp(b, b.fsub(e.vload(st, off), m_new))
            pv = b.select(softmax_mask(e, causal, e.add(j0, kk.i), q0), zero, pv)
            e.vstore(pv, st, off)
            kk.next = [b.fadd(kk.vars[0], pv)]
        zero_rows(e, st, seen, kn, c.i)
        e.vstore(m_new, m_buf, c.i)
        e.vstore(b.fadd(b.fmul(e.vload(l_buf, c.i), alpha), kk.results[0]), l_buf, c.i)
        e.vstore(alpha, al_buf, c.i)


_FUNCTIONS: dict = {}


def kernel(direction: str, dtype: str):
    """The compiled ``lucid_attention_fwd`` / ``lucid_attention_bwd`` for ``dtype``."""
    key = (direction, dtype)
    fn = _FUNCTIONS.get(key)
    if fn is None:
        from lucid_codegen.kernels.attention_backward import build_backward
        from lucid_codegen.kernels.attention_tiles import block_rows, vector_width
        build = build_forward if direction == "fwd" else build_backward
        symbol = f"lucid_attention_{direction}"
        text = f"{direction}|{dtype}|W{vector_width(dtype)}|R{block_rows()}"
        # the loop kernels' pass list (jit.LOOPS): the tiles' vector code and loops are
        # explicit. Against speed level 3 with unrolling (until session 21), on Zen 3:
        # LLVM 483 -> 99 ms for the backward, 155 -> 54 for the forward; sequence 1024
        # forward + backward (benchmarks/bench_attention.py) about the same at 1 thread,
        # 1.7x faster at 2 (the unrolled backward did not scale: 440 ms at 1 and 2 threads)
        lib = load_or_compile(f"attention/{source_stamp(*GENERATOR)}|{text}", lambda: build(dtype),
                              [symbol], label=f"attention {text}", pipeline=loop_pipeline())
        fn = _FUNCTIONS.setdefault(key, KERNEL_ABI(lib.address(symbol)))
    return fn
