"""The fused attention backward kernel (FlashAttention-2's backward on the CPU).

``lucid_attention_bwd(block, t0, t1, 0, 0)`` (the forward's ABI) computes the gradients of (batch,
head) indices ``t0 .. t1``. For one of them, with the forward's ``lse`` (read from the
packed forward result, never recomputed) and ``D = rowsum(dO ∘ O) - g_lse``:

* pack once: ``QT`` (E × Lp, scaled) and ``Q`` (Lp × Ep), ``dOT`` (Ev × Lp) and
  ``dO`` (Lp × Evp), ``lse`` and ``D`` (Lp); ``dQ`` accumulates in Lp × Ep. The
  transposed packs are stored as panels, one per block of ``BLOCK`` queries (E × BLOCK,
  contiguous): a product reads a block's panel with rows ``BLOCK`` elements apart. Read
  in place from E × Lp, its rows would be ``Lp`` apart, 4 KiB at sequence 1024, so every
  row falls in the same few L1 cache sets and the panel never stays in L1 (the tile
  product ran at a quarter of its speed on such a B, on Zen 3);
* for each block of ``BLOCK`` keys (K's rows packed to ``Kj``, Bc × Ep), for each block
  of queries that may see it (causal: from the diagonal on):
  ``Sᵀ = K_blk·QT``, ``Pᵀ = exp(Sᵀ - lse)`` (0 where masked), ``dV_blk += Pᵀ·dO``,
  ``dPᵀ = V_blk·dOT``, ``dSᵀ = Pᵀ ∘ (dPᵀ - D)·scale``, ``dK_blk += dSᵀ·Q``,
  ``dQ += dS·Kj``: five tile products (``attention_tiles``), vectors along the
  queries for the first two, along the features for the rest; on the diagonal, each
  without the masked quarter (``attention_diagonal``);
* dK, dV of the key block, then dQ, into the packed result.

``Lp``/``Ep``/``Evp``: the lengths rounded up to ``BLOCK`` and the feature dims to the
vector width, zero-padded, so the products never need edge cases in N. Each (batch,
head) is one sequential computation (dQ sums over key blocks in order): any split of
the indices across threads gives the same bits.
"""
from __future__ import annotations

import llvmlite.ir as ir

from lucid_codegen.kernels.attention import (FWD_WORDS, kernel_function, load_offset, scale_word, softmax_mask,
                                             visible_keys, zero_rows)
from lucid_codegen.kernels.attention_diagonal import diagonal_cut, keys_by_queries, keys_over_queries, queries_over_keys
from lucid_codegen.kernels.attention_tiles import BLOCK, Emitter, declare_tile_product, vector_width
from lucid_codegen.kernels.loops import I64, Loop, const64
from lucid_codegen.kernels.vector_math import emit_exp

BWD_WORDS = FWD_WORDS + ("packed", "g", "Lp", "Ep", "Evp", "g_off", "g_rs", "g_cs", "g_lse")


def _pad(n: int, m: int) -> int:
    return -(-n // m) * m


def backward_layout(L: int, S: int, e: int, ev: int, dtype: str):
    """``(Lp, Ep, Evp, scratch elements)`` of one thread's backward scratch."""
    w = vector_width(dtype)
    lp, ep, evp = _pad(L, BLOCK), _pad(e, w), _pad(ev, w)
    n = (e * lp + lp * ep + ev * lp + lp * evp + 2 * lp + lp * ep + BLOCK * ep
         + 2 * BLOCK * BLOCK + BLOCK * ep + BLOCK * evp)
    return lp, ep, evp, n


def build_backward(dtype: str) -> ir.Module:
    module = ir.Module(f"attention_bwd_{dtype}")
    tile = declare_tile_product(module, dtype)
    b, e, a, t0, t1, scratch, finish = kernel_function(module, "lucid_attention_bwd", dtype, BWD_WORDS)
    BR = BLOCK
    scale = scale_word(e, a.scale)
    q, k, v, out, packed, g = (e.pointer(w) for w in (a.q, a.k, a.v, a.out, a.packed, a.g))
    Lp, Ep, Evp = a.Lp, a.Ep, a.Evp
    # scratch regions, in backward_layout's order
    qt = scratch
    qr = e.at(qt, e.mul(a.E, Lp))
    dot = e.at(qr, e.mul(Lp, Ep))
    dor = e.at(dot, e.mul(a.Ev, Lp))
    lse = e.at(dor, e.mul(Lp, Evp))
    dl = e.at(lse, Lp)
    dq = e.at(dl, Lp)
    kj = e.at(dq, e.mul(Lp, Ep))
    st = e.at(kj, e.mul(const64(BR), Ep))
    dst = e.at(st, const64(BR * BR))
    dk = e.at(dst, const64(BR * BR))
    dv = e.at(dk, e.mul(const64(BR), Ep))
    in_len = e.add(e.mul(a.L, a.Ev), a.L)
    out_len = e.add(e.mul(a.L, a.E), e.mul(a.S, a.E), e.mul(a.S, a.Ev))
    with Loop(b, t0, t1, 1, name="bh") as item:
        bh = item.i
        qbase = e.at(q, load_offset(e, a.q_off, bh))
        kbase = e.at(k, load_offset(e, a.k_off, bh))
        vbase = e.at(v, load_offset(e, a.v_off, bh))
        fwd = e.at(packed, e.mul(bh, in_len))
        grad = e.at(g, load_offset(e, a.g_off, bh))  # (dO's rows g_rs apart, its features g_cs)
        res = e.at(out, e.mul(bh, out_len))
        # pack Q (both ways), dO (both ways), lse and D
        zv, W = e.vconst(0.0), e.w
        scale_v = e.splat(scale)
        with Loop(b, const64(0), Lp, W, name="rows") as r:  # the transposed packs: W rows a vector
            # (panels of BLOCK queries, each E × BLOCK: see _panel)
            block0, lane0 = b.mul(b.sdiv(r.i, const64(BR)), const64(BR)), b.srem(r.i, const64(BR))
            rows, valid = e.row_offsets(r.i, a.L, a.q_rs)
            with Loop(b, const64(0), a.E, 1, name="qd") as d:
                col = e.mul(d.i, a.q_cs)
                x = b.select(valid, e.gather(qbase, [e.add(o, col) for o in rows]), zv)
                e.vstore(b.fmul(x, scale_v), qt, e.add(e.mul(block0, a.E), e.mul(d.i, const64(BR)), lane0))
            rows, _ = e.row_offsets(r.i, a.L, a.Ev)
            grows, _ = e.row_offsets(r.i, a.L, a.g_rs)
            with Loop(b, const64(0), a.Ev, 1, [zv], name="od") as d:
                gcol = e.mul(d.i, a.g_cs)
                x = b.select(valid, e.gather(grad, [e.add(o, gcol) for o in grows]), zv)
                o = b.select(valid, e.gather(fwd, [e.add(o, d.i) for o in rows]), zv)
                e.vstore(x, dot, e.add(e.mul(block0, a.Ev), e.mul(d.i, const64(BR)), lane0))
                d.next = [b.fadd(d.vars[0], b.fmul(x, o))]
            tails = [b.select(b.icmp_signed("<", e.add(r.i, const64(i)), a.L),
                              e.add(e.mul(a.L, a.Ev), r.i, const64(i)), const64(0)) for i in range(W)]
            e.vstore(b.select(valid, e.gather(fwd, tails), zv), lse, r.i)
            # lse's gradient after dO's rows when g is packed (g_lse), else none (0)
            packed_g = b.icmp_signed("!=", a.g_lse, const64(0))
            g_lse = b.select(packed_g, e.gather(grad, [b.select(packed_g, t, const64(0)) for t in tails]), zv)
            e.vstore(b.select(valid, b.fsub(d.results[0], g_lse), zv), dl, r.i)
        with Loop(b, const64(0), Lp, 1, name="rowsr") as r:  # the row-major packs
            inside = b.icmp_signed("<", r.i, a.L)
            qrow = e.at(qbase, b.select(inside, e.mul(r.i, a.q_rs), const64(0)))
            grow = e.at(grad, b.select(inside, e.mul(r.i, a.g_rs), const64(0)))
            ne, nev = (b.select(inside, n, const64(0)) for n in (a.E, a.Ev))
            with Loop(b, const64(0), Ep, W, name="qdr") as d:
                e.vstore(e.load_span(qrow, a.q_cs, d.i, ne), qr, e.add(e.mul(r.i, Ep), d.i))
            with Loop(b, const64(0), Evp, W, name="odr") as d:
                e.vstore(e.load_span(grow, a.g_cs, d.i, nev), dor, e.add(e.mul(r.i, Evp), d.i))
        e.zero_fill(dq, e.mul(Lp, Ep))
        with Loop(b, const64(0), a.S, BR, name="keys") as kb:
            j0 = kb.i
            kn = e.imin(const64(BR), b.sub(a.S, j0))
            kblk = e.at(kbase, e.mul(j0, a.k_rs))
            vblk = e.at(vbase, e.mul(j0, a.v_rs))
            with Loop(b, const64(0), const64(BR), 1, name="kjr") as r:
                inside = b.icmp_signed("<", r.i, kn)
                krow = e.at(kblk, b.select(inside, e.mul(r.i, a.k_rs), const64(0)))
                ne = b.select(inside, a.E, const64(0))
                with Loop(b, const64(0), Ep, W, name="kjd") as d:
                    e.vstore(e.load_span(krow, a.k_cs, d.i, ne), kj, e.add(e.mul(r.i, Ep), d.i))
            e.zero_fill(dk, e.mul(const64(BR), Ep))
            e.zero_fill(dv, e.mul(const64(BR), Evp))
            first = b.select(b.icmp_signed("!=", a.causal, const64(0)), j0, const64(0))
            first = b.mul(b.sdiv(first, const64(BR)), const64(BR))
            with Loop(b, first, a.L, BR, name="queries") as qb:
                i0 = qb.i
                cut = diagonal_cut(e, a.causal, i0, j0)  # (a diagonal block without its dead quarter)
                br = const64(BR)
                keys_by_queries(e, tile, cut, kn, br, a.E, kblk, a.k_rs, a.k_cs, e.at(qt, e.mul(i0, a.E)), br, st, br)
                _probabilities(e, st, kn, j0, i0, a.causal, lse)
                keys_by_queries(e, tile, cut, kn, br, a.Ev, vblk, a.v_rs, a.v_cs, e.at(dot, e.mul(i0, a.Ev)), br, dst, br)
                _score_gradient(e, st, dst, kn, j0, i0, a.causal, dl, scale)
                keys_over_queries(e, tile, cut, kn, Evp, br, st, br, const64(1), e.at(dor, e.mul(i0, Evp)), Evp,
                                  dv, Evp)
                keys_over_queries(e, tile, cut, kn, Ep, br, dst, br, const64(1), e.at(qr, e.mul(i0, Ep)), Ep, dk, Ep)
                queries_over_keys(e, tile, 1, cut, br, Ep, kn, dst, const64(1), br, kj, Ep, e.at(dq, e.mul(i0, Ep)),
                                  Ep)
            with Loop(b, const64(0), kn, 1, name="dkr") as r:
                row = e.add(j0, r.i)
                dk_row = e.at(res, e.add(e.mul(a.L, a.E), e.mul(row, a.E)))
                with Loop(b, const64(0), a.E, W, name="dkd") as d:
                    e.store_span(e.vload(dk, e.add(e.mul(r.i, Ep), d.i)), dk_row, d.i, a.E)
                dv_row = e.at(res, e.add(e.mul(a.L, a.E), e.mul(a.S, a.E), e.mul(row, a.Ev)))
                with Loop(b, const64(0), a.Ev, W, name="dvd") as d:
                    e.store_span(e.vload(dv, e.add(e.mul(r.i, Evp), d.i)), dv_row, d.i, a.Ev)
        with Loop(b, const64(0), a.L, 1, name="dqr") as r:
            dq_row = e.at(res, e.mul(r.i, a.E))
            with Loop(b, const64(0), a.E, W, name="dqd") as d:
                e.store_span(e.vload(dq, e.add(e.mul(r.i, Ep), d.i)), dq_row, d.i, a.E)
    finish()
    return module


def _probabilities(e: Emitter, st, kn, j0, i0, causal, lse):
    """Sᵀ (kn × BLOCK) becomes Pᵀ = exp(Sᵀ - lse) in place (0 where masked; keys no
    query of a vector may see are 0 without an exponential)."""
    b, BR = e.b, BLOCK
    with Loop(b, const64(0), const64(BR), e.w, name="pcol") as c:
        q0 = e.add(i0, c.i)
        lv = e.vload(lse, q0)
        seen = visible_keys(e, causal, kn, j0, q0)
        with Loop(b, const64(0), seen, 1, name="prow") as kk:
            off = e.add(e.mul(kk.i, const64(BR)), c.i)
            pv = emit_exp(b, b.fsub(e.vload(st, off), lv))
            pv = b.select(softmax_mask(e, causal, e.add(j0, kk.i), q0), e.vconst(0.0), pv)
            e.vstore(pv, st, off)
        zero_rows(e, st, seen, kn, c.i)


def _score_gradient(e: Emitter, st, dst, kn, j0, i0, causal, dl, scale):
    """dSᵀ = Pᵀ ∘ (dPᵀ - D) · scale, in dPᵀ's place (0 for the keys no query of a vector
    may see, whose dPᵀ a diagonal block leaves uncomputed)."""
    b, BR = e.b, BLOCK
    sv = e.splat(scale)
    with Loop(b, const64(0), const64(BR), e.w, name="dscol") as c:
        dv = e.vload(dl, e.add(i0, c.i))
        seen = visible_keys(e, causal, kn, j0, e.add(i0, c.i))
        with Loop(b, const64(0), seen, 1, name="dsrow") as kk:
            off = e.add(e.mul(kk.i, const64(BR)), c.i)
            x = b.fmul(b.fmul(e.vload(st, off), b.fsub(e.vload(dst, off), dv)), sv)
            e.vstore(x, dst, off)
        zero_rows(e, dst, seen, kn, c.i)
